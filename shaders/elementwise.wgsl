// wgrad elementwise kernel template: the scheduler fills the {{...}} slots.
// One invocation computes one output element; the grid is folded into 2-D when it needs more
// than 65535 workgroups in x. The graph nodes fused into this kernel (elementwise ops,
// broadcasts, transposes, slices, pads, concats, comparisons, selects, casts) each become a
// function `fn vN(i: u32) -> T` that computes the node at flat index i.
{{ENABLE}}
{{BINDINGS}}

{{HELPERS}}
{{FUNCTIONS}}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= {{N}}u) {
        return;
    }
    out[i] = {{STORE}};
}
