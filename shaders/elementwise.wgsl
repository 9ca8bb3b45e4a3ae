// wgrad elementwise kernel: one invocation per output element. The generated prelude declares
// `N` (the number of outputs), the node functions of everything fused into the kernel
// (elementwise ops, broadcasts, transposes, slices, pads, gathers, comparisons, selects, casts),
// and `result(i)`, output element i as stored; `wg_extra(i)` stores the further outputs of a
// multi-output kernel (nothing otherwise). The grid is folded into 2-D when it needs more than
// 65535 workgroups in x.

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= N) {
        return;
    }
    wg_store(i, result(i));
    wg_extra(i);
}
