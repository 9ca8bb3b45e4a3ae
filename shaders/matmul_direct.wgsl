// wgrad batched matmul for CPU adapters (lavapipe, llvmpipe): no workgroup memory and no
// barriers (there workgroup memory is ordinary memory and every barrier splits the shader).
// Each invocation computes a block of `ROWS` rows × 4 columns of C from vec4 reads: the
// generated `mm_block(batch, row0, col0)` holds one accumulator per row (unrolled), reads
// B[k, n..n+4] once per step for all rows through `load_b4`, and A[m, k..k+4] through
// `load_a4`. The prelude also declares `M`, `N`, `K`, `ROWS`, the workgroup shape `WG_X` ×
// `WG_Y` (64 invocations, fewer along rows for short matrices), `store_value(v, i)` (the value
// stored at flat index i: the product, or a fused elementwise consumer of it), and the
// grid: `CB` column blocks × `RB` row blocks × products, `GROUPS` in all, numbered flat.

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= GROUPS) {
        return;
    }
    let batch = g / (CB * RB);
    let row0 = (((g / CB) % RB) * WG_Y + lid.y) * ROWS;
    let col0 = ((g % CB) * WG_X + lid.x) * 4u;
    if (row0 >= M || col0 >= N) {
        return;
    }
    mm_block(batch, row0, col0);
}

// Row `row` of the output block: columns col .. col + 3.
fn store_row(batch: u32, row: u32, col: u32, v: vec4<f32>) {
    if (row >= M) {
        return;
    }
    let base = batch * M * N + row * N;
    for (var c = 0u; c < 4u; c = c + 1u) {
        if (col + c < N) {
            wg_store(base + col + c, store_value(v[c], base + col + c));
        }
    }
}
