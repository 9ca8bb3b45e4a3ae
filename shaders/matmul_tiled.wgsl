// wgrad batched matmul for GPUs: C[b] = A[b] · B[b], A: M×K, B: K×N, accumulated in f32.
// A 16×16 workgroup computes a 64×64 tile of C, each invocation a 4×4 block held in four vec4
// registers; A and B pass through workgroup memory 16 columns of K at a time. The generated
// prelude declares `M`, `N`, `K`, `load_a(b, m, k)` and `load_b(b, k, n)` (reading through
// whatever the scheduler fused in front: transposes, broadcasts, scales), `store_value(v, i)`
// (the value stored at flat index i: the product, or a fused elementwise consumer of it), and
// the grid: `CB` column blocks × `RB` row blocks × products, `GROUPS` in all, numbered flat.

var<workgroup> tile_a: array<array<f32, 64>, 16>;
var<workgroup> tile_b: array<array<f32, 64>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= GROUPS) {
        return;
    }
    let batch = g / (CB * RB);
    let row0 = ((g / CB) % RB) * 64u;
    let col0 = (g % CB) * 64u;
    let t = lid.y * 16u + lid.x;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < K; k0 = k0 + 16u) {
        for (var l = 0u; l < 4u; l = l + 1u) {
            let e = t + l * 256u;
            // A tile: 64 rows × 16 k; B tile: 16 k × 64 columns.
            let am = e / 16u;
            let ak = e % 16u;
            var va = 0.0;
            if (row0 + am < M && k0 + ak < K) {
                va = load_a(batch, row0 + am, k0 + ak);
            }
            tile_a[ak][am] = va;
            let bk = e / 64u;
            let bn = e % 64u;
            var vb = 0.0;
            if (k0 + bk < K && col0 + bn < N) {
                vb = load_b(batch, k0 + bk, col0 + bn);
            }
            tile_b[bk][bn] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk = kk + 1u) {
            let a = vec4<f32>(tile_a[kk][lid.y], tile_a[kk][lid.y + 16u], tile_a[kk][lid.y + 32u], tile_a[kk][lid.y + 48u]);
            let b = vec4<f32>(tile_b[kk][lid.x], tile_b[kk][lid.x + 16u], tile_b[kk][lid.x + 32u], tile_b[kk][lid.x + 48u]);
            acc0 = fma(vec4<f32>(a.x), b, acc0);
            acc1 = fma(vec4<f32>(a.y), b, acc1);
            acc2 = fma(vec4<f32>(a.z), b, acc2);
            acc3 = fma(vec4<f32>(a.w), b, acc3);
        }
        workgroupBarrier();
    }
    store_row(batch, row0 + lid.y, col0 + lid.x, acc0);
    store_row(batch, row0 + lid.y + 16u, col0 + lid.x, acc1);
    store_row(batch, row0 + lid.y + 32u, col0 + lid.x, acc2);
    store_row(batch, row0 + lid.y + 48u, col0 + lid.x, acc3);
}

// Row `row` of the output block: columns col, col + 16, col + 32, col + 48.
fn store_row(batch: u32, row: u32, col: u32, v: vec4<f32>) {
    if (row >= M) {
        return;
    }
    let base = batch * M * N + row * N;
    for (var c = 0u; c < 4u; c = c + 1u) {
        let n = col + c * 16u;
        if (n < N) {
            wg_store(base + n, store_value(v[c], base + n));
        }
    }
}
