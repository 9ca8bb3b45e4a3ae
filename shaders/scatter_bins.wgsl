// wgrad scatter-add by rows of updates: one invocation per (outer, inner) row of the
// [OUTER, M, INNER] updates and group of up to 1,024 of the N positions (GROUPS of them). It
// owns the outputs of its group, zeroes them and adds the row's updates that fall in the group,
// in update order — the same sums, in the same order, as one invocation per output element
// looping over every update would make, in M·GROUPS work per row instead of M·N. The outputs
// are the accumulator (a private array of positions made lavapipe's compiler take 17 s). The
// generated prelude declares `N`, `M`, `OUTER`, `INNER`, `GROUPS`, `Acc`, `src(i)` (an update),
// `slot(i)` (its position, wrapped and clamped), `load_out(i)` and `wg_store`.

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = gid.x + gid.y * nwg.x * 64u;
    if (g >= OUTER * INNER * GROUPS) {
        return;
    }
    let grp = g % GROUPS;
    let row = g / GROUPS;
    let o = row / INNER;
    let q = row % INNER;
    let lo = grp * 1024u;
    let hi = min(lo + 1024u, N);
    for (var j = lo; j < hi; j = j + 1u) {
        wg_store((o * N + j) * INNER + q, Acc(0));
    }
    for (var k = 0u; k < M; k = k + 1u) {
        let at = (o * M + k) * INNER + q;
        let s = slot(at);
        if (GROUPS == 1u || (s >= lo && s < hi)) {
            let to = (o * N + s) * INNER + q;
            wg_store(to, load_out(to) + src(at));
        }
    }
}
