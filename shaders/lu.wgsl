// wgrad LU factorization with partial pivoting, P A = L U, one workgroup per N×N matrix of a
// batch of MATS, right-looking: for each column the first invocation picks the pivot (the
// largest magnitude, first of ties) and swaps the rows; then the invocations share the rows
// of the multipliers and of the trailing update, with barriers between. Each matrix's result
// is N rows of W = N + 3 values: L below the diagonal (its unit diagonal implied) and U on and
// above it, then the row permutation `perm` (row i of P A is row perm[i] of A), its inverse,
// and in row 0 the permutation's sign. A launch does columns J0..J1 (split by the lowering so
// that no invocation loops past what software drivers allow); the first also copies the input,
// the last writes the inverse permutation. The generated prelude declares `N`, `W`, `MATS`,
// `J0`, `J1`, `src(i)` and `load_out(i)` (the output as written so far).

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let m = wid.x + wid.y * nwg.x;
    if (m >= MATS) {
        return;
    }
    let base = m * N * W;
    let t = lid.x;
    if (J0 == 0u) {
        for (var i = t; i < N * W; i = i + 64u) {
            let r = i / W;
            let c = i % W;
            var v = 0.0;
            if (c < N) {
                v = src(m * N * N + r * N + c);
            } else if (c == N) {
                v = f32(r);
            } else if (c == N + 2u && r == 0u) {
                v = 1.0;
            }
            wg_store(base + i, v);
        }
        storageBarrier();
    }
    for (var j = J0; j < J1; j = j + 1u) {
        if (t == 0u) {
            var p = j;
            var best = abs(load_out(base + j * W + j));
            for (var i = j + 1u; i < N; i = i + 1u) {
                let v = abs(load_out(base + i * W + j));
                if (v > best) {
                    best = v;
                    p = i;
                }
            }
            if (p != j) {
                for (var c = 0u; c <= N; c = c + 1u) {
                    let a = load_out(base + j * W + c);
                    wg_store(base + j * W + c, load_out(base + p * W + c));
                    wg_store(base + p * W + c, a);
                }
                wg_store(base + N + 2u, -load_out(base + N + 2u));
            }
        }
        storageBarrier();
        let pivot = load_out(base + j * W + j);
        for (var i = j + 1u + t; i < N; i = i + 64u) {
            let l = load_out(base + i * W + j) / pivot;
            wg_store(base + i * W + j, l);
            for (var c = j + 1u; c < N; c = c + 1u) {
                wg_store(base + i * W + c, load_out(base + i * W + c) - l * load_out(base + j * W + c));
            }
        }
        storageBarrier();
    }
    // The inverse permutation: perm[i] = r means row r of A went to row i.
    if (J1 == N) {
        for (var i = t; i < N; i = i + 64u) {
            let r = u32(load_out(base + i * W + N));
            wg_store(base + r * W + N + 1u, f32(i));
        }
    }
}
