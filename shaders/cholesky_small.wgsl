// wgrad Cholesky factorization of small matrices: one invocation per N×N matrix of a batch of
// MATS (for N up to 32, where a workgroup per matrix would leave most of its invocations idle
// at every barrier). Left-looking, in `out`; a pivot that is not positive makes the whole
// matrix NaN, as JAX. The generated prelude declares `N`, `MATS`, `src(i)` and `load_out(i)`.

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let m = gid.x + gid.y * nwg.x * 64u;
    if (m >= MATS) {
        return;
    }
    let base = m * N * N;
    var bad = false;
    for (var j = 0u; j < N; j = j + 1u) {
        var d = src(base + j * N + j);
        for (var k = 0u; k < j; k = k + 1u) {
            let l = load_out(base + j * N + k);
            d = d - l * l;
        }
        bad = bad || !(d > 0.0);
        let r = sqrt(max(d, 0.0));
        wg_store(base + j * N + j, r);
        for (var i = j + 1u; i < N; i = i + 1u) {
            var s = src(base + i * N + j);
            for (var k = 0u; k < j; k = k + 1u) {
                s = s - load_out(base + i * N + k) * load_out(base + j * N + k);
            }
            wg_store(base + i * N + j, s / r);
            wg_store(base + j * N + i, 0.0);
        }
    }
    if (bad) {
        for (var i = 0u; i < N * N; i = i + 1u) {
            wg_store(base + i, wg_nan(0.0));
        }
    }
}
