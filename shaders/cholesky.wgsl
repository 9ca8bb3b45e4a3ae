// wgrad Cholesky factorization, one workgroup per N×N matrix of a batch of MATS: the lower
// triangle of `src` (the input at a flat index, producers fused) is factored in place in
// `out`, column by column (left-looking): the workgroup's invocations share the rows of each
// column, with a barrier between the dot products, the pivot and the scaling. A launch does
// columns J0..J1 (the lowering splits the columns so that no invocation loops past what
// software drivers allow); the first also copies the input, the last checks the pivots. A
// pivot that is not positive (a matrix that is not positive definite, or NaN) becomes NaN and
// makes the whole matrix NaN, as JAX. The generated prelude declares `N`, `MATS`, `J0`, `J1`,
// `src(i)` and `load_out(i)` (the output as written so far).

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let m = wid.x + wid.y * nwg.x;
    if (m >= MATS) {
        return;
    }
    let base = m * N * N;
    let t = lid.x;
    if (J0 == 0u) {
        for (var i = t; i < N * N; i = i + 64u) {
            wg_store(base + i, select(0.0, src(base + i), i % N <= i / N));
        }
        storageBarrier();
    }
    for (var j = J0; j < J1; j = j + 1u) {
        for (var i = j + t; i < N; i = i + 64u) {
            var s = load_out(base + i * N + j);
            for (var k = 0u; k < j; k = k + 1u) {
                s = s - load_out(base + i * N + k) * load_out(base + j * N + k);
            }
            wg_store(base + i * N + j, s);
        }
        storageBarrier();
        let pivot = load_out(base + j * N + j);
        let d = select(wg_nan(pivot), sqrt(pivot), pivot > 0.0);
        storageBarrier();
        for (var i = j + t; i < N; i = i + 64u) {
            wg_store(base + i * N + j, select(load_out(base + i * N + j) / d, d, i == j));
        }
        storageBarrier();
    }
    if (J1 == N) {
        var bad = false;
        for (var j = 0u; j < N; j = j + 1u) {
            bad = bad || wg_isnan(load_out(base + j * N + j));
        }
        if (bad) {
            for (var i = t; i < N * N; i = i + 64u) {
                wg_store(base + i, wg_nan(load_out(base + i)));
            }
        }
    }
}
