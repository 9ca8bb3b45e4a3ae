// wgrad reduction kernels (sum, max). The scheduler fills the {{...}} slots; `src(o, r)` reads
// element r of the reduced block of output o, with the producer of the input fused into it.
// Two variants: one invocation per output (short reductions), and one workgroup per
// (output, chunk) with a tree in workgroup memory (long reductions; chunks are combined by a
// second, short reduction).
{{ENABLE}}
{{BINDINGS}}
{{HELPERS}}
{{FUNCTIONS}}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = gid.x + gid.y * nwg.x * 256u;
    if (o >= {{OUTPUTS}}u) {
        return;
    }
    var acc: {{ACC}} = {{IDENTITY}};
    for (var r = 0u; r < {{R}}u; r = r + 1u) {
        acc = {{COMBINE}}(acc, src(o, r));
    }
    out[o] = {{STORE}};
}
//--- group ---
{{ENABLE}}
{{BINDINGS}}
{{HELPERS}}
{{FUNCTIONS}}

var<workgroup> partial: array<{{ACC}}, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    let o = g / {{CHUNKS}}u;
    let c = g % {{CHUNKS}}u;
    var acc: {{ACC}} = {{IDENTITY}};
    if (o < {{OUTPUTS}}u) {
        let end = min((c + 1u) * {{CHUNK}}u, {{R}}u);
        for (var r = c * {{CHUNK}}u + lid; r < end; r = r + 256u) {
            acc = {{COMBINE}}(acc, src(o, r));
        }
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            partial[lid] = {{COMBINE}}(partial[lid], partial[lid + s]);
        }
        workgroupBarrier();
    }
    if (lid == 0u && o < {{OUTPUTS}}u) {
        out[g] = {{STORE_PARTIAL}};
    }
}
