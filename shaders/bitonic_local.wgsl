// wgrad bitonic sorting steps inside a workgroup: each workgroup holds one block of B (value,
// index) pairs of a row of LEN in workgroup memory and runs the network's steps whose partners
// lie inside the block, with a barrier between steps. K = 0: every step of every k up to B
// (the blocks come out sorted in the network's alternating directions); K > B: the steps
// j = B/2 .. 1 of that k (after the steps with j >= B ran as separate launches). The order is
// total: values ascending, NaN last, ties by index. The generated prelude declares `B`, `K`,
// `LEN`, `TOTAL` (pairs in the tensor) and `src(i)` (the packed input at a flat index).

var<workgroup> wv: array<f32, 1024>;
var<workgroup> wi: array<f32, 1024>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let blk = wid.x + wid.y * nwg.x;
    let first = blk * B;
    let live = first < TOTAL;
    let t = lid.x;
    for (var e = t; e < B; e = e + 256u) {
        if (live) {
            wv[e] = src((first + e) * 2u);
            wi[e] = src((first + e) * 2u + 1u);
        }
    }
    workgroupBarrier();
    var k = select(K, 2u, K == 0u);
    let k_end = select(K, B, K == 0u);
    loop {
        if (k > k_end) {
            break;
        }
        var j = min(k, B) / 2u;
        loop {
            if (j == 0u) {
                break;
            }
            for (var pr = t; pr < B / 2u; pr = pr + 256u) {
                let p = (pr / j) * 2u * j + pr % j;
                let q = p + j;
                let up = (((first + p) % LEN) & k) == 0u;
                let swap = select(wg_sort_before(wv[p], wi[p], wv[q], wi[q]), wg_sort_before(wv[q], wi[q], wv[p], wi[p]), up);
                if (swap) {
                    let v = wv[p];
                    let ix = wi[p];
                    wv[p] = wv[q];
                    wi[p] = wi[q];
                    wv[q] = v;
                    wi[q] = ix;
                }
            }
            workgroupBarrier();
            j = j / 2u;
        }
        k = k * 2u;
    }
    for (var e = t; e < B; e = e + 256u) {
        if (live) {
            wg_store((first + e) * 2u, wv[e]);
            wg_store((first + e) * 2u + 1u, wi[e]);
        }
    }
}
