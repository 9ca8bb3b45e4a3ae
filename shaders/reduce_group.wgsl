// wgrad reduction, one workgroup per (output, chunk) with a tree in workgroup memory (long
// reductions; the chunks of an output are combined by a second, short reduction). The
// generated prelude declares `OUTPUTS`, `R`, `CHUNKS`, `CHUNK` (terms per chunk), `Acc`, and
// `identity(z)`, `combine(a, b)`, `src(o, r)` and `finish(acc)`.

var<workgroup> partial: array<Acc, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    let o = g / CHUNKS;
    let c = g % CHUNKS;
    // Each invocation takes every 256th term of its chunk, in blocks of 16 terms combined into
    // its total (less drift); at most CHUNK / 256 iterations (the op keeps that far below the
    // 65,535 software drivers allow).
    var acc = identity(lid);
    if (o < OUTPUTS) {
        let end = min((c + 1u) * CHUNK, R);
        for (var b0 = c * CHUNK + lid; b0 < end; b0 = b0 + 4096u) {
            var part = identity(lid);
            let stop = min(b0 + 4096u, end);
            for (var r = b0; r < stop; r = r + 256u) {
                part = combine(part, src(o, r));
            }
            acc = combine(acc, part);
        }
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            partial[lid] = combine(partial[lid], partial[lid + s]);
        }
        workgroupBarrier();
    }
    if (lid == 0u && o < OUTPUTS) {
        wg_store(g, finish(partial[0]));
    }
}
