// wgrad triangular solve A X = B for N×N triangular A and N×K right-hand sides B, batched over
// MATS: one invocation per (matrix, column of B), forward substitution for a lower A
// (`LOWER` = 1) or back substitution for an upper one, reading only that triangle of A. A
// launch does steps S0..S1 of the substitution (split by the lowering so that no invocation
// loops past what software drivers allow). The generated prelude declares `S0`, `S1`, `N`, `K`, `MATS`, `LOWER`, `src_a(i)` and `src_b(i)` (the
// operands at a flat index, producers fused); X goes to `out` and is read back as it grows.

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = gid.x + gid.y * nwg.x * 64u;
    if (g >= MATS * K) {
        return;
    }
    let m = g / K;
    let c = g % K;
    let a0 = m * N * N;
    let b0 = m * N * K;
    for (var s = S0; s < S1; s = s + 1u) {
        let i = select(N - 1u - s, s, LOWER == 1u);
        var v = src_b(b0 + i * K + c);
        for (var q = 0u; q < s; q = q + 1u) {
            let k = select(N - 1u - q, q, LOWER == 1u);
            v = v - src_a(a0 + i * N + k) * load_out(b0 + k * K + c);
        }
        wg_store(b0 + i * K + c, v / src_a(a0 + i * N + i));
    }
}
