// wgrad reduction, one invocation per output (short reductions, or outputs enough to fill the
// device). The generated prelude declares `OUTPUTS`, `R` (terms per output), the accumulator
// type `Acc`, and `identity(z)` (computed from `z` so that ±inf is no constant), `combine(a, b)`, `src(o, r)` (term r of output o, with the
// producer of the input fused into it) and `finish(acc)` (the value as stored).

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = gid.x + gid.y * nwg.x * 256u;
    if (o >= OUTPUTS) {
        return;
    }
    // Blocks of 64 terms, each combined into the total: a sum's rounding error grows with
    // about 64 + R/64 terms instead of R (R is at most 4096, so every loop stays far below
    // the 65,535 iterations software drivers allow an invocation).
    var acc = identity(o);
    for (var b0 = 0u; b0 < R; b0 = b0 + 64u) {
        var part = identity(o);
        let end = min(b0 + 64u, R);
        for (var r = b0; r < end; r = r + 1u) {
            part = combine(part, src(o, r));
        }
        acc = combine(acc, part);
    }
    wg_store(o, finish(acc));
}
