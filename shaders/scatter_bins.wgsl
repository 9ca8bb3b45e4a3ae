// wgrad scatter-add into few positions: one invocation per (outer, inner) row of the
// [OUTER, M, INNER] updates, which owns its N outputs, zeroes them and adds its M updates into
// them in update order (the same sums, in the same order, as one invocation per output
// element looping over every update — M·N work — would make, in M). The outputs are the
// accumulator (a private array of N made lavapipe's compiler take 17 s). The generated
// prelude declares `N`, `M`, `OUTER`, `INNER`, `Acc`, `src(i)` (an update), `slot(i)` (its
// position, wrapped and clamped), `load_out(i)` and `wg_store`.

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = gid.x + gid.y * nwg.x * 64u;
    if (g >= OUTER * INNER) {
        return;
    }
    let o = g / INNER;
    let q = g % INNER;
    for (var j = 0u; j < N; j = j + 1u) {
        wg_store((o * N + j) * INNER + q, Acc(0));
    }
    for (var k = 0u; k < M; k = k + 1u) {
        let at = (o * M + k) * INNER + q;
        let to = (o * N + slot(at)) * INNER + q;
        wg_store(to, load_out(to) + src(at));
    }
}
