// wgrad inclusive scan (cumulative sum, product, maximum or log-sum-exp) along the last axis of
// a [ROWS, L] view, one invocation per row. The generated prelude declares `ROWS`, `L`, `Acc`,
// `src(row, k)` (element k of the row, with its producer fused in), `identity()`,
// `combine(a, b)` and `finish(acc)`. Rows are kept short by the op (long
// axes are scanned in blocks whose totals are scanned again), so the loop stays short.

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = gid.x + gid.y * nwg.x * 64u;
    if (row >= ROWS) {
        return;
    }
    var acc = identity();
    for (var k = 0u; k < L; k = k + 1u) {
        acc = combine(acc, src(row, k));
        wg_store(row * L + k, finish(acc));
    }
}
