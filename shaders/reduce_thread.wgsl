// wgrad reduction, one invocation per output (short reductions, or outputs enough to fill the
// device). The generated prelude declares `OUTPUTS`, `R` (terms per output), the accumulator
// type `Acc`, and `identity()`, `combine(a, b)`, `src(o, r)` (term r of output o, with the
// producer of the input fused into it) and `finish(acc)` (the value as stored).

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = gid.x + gid.y * nwg.x * 256u;
    if (o >= OUTPUTS) {
        return;
    }
    var acc = identity();
    for (var r = 0u; r < R; r = r + 1u) {
        acc = combine(acc, src(o, r));
    }
    out[o] = finish(acc);
}
