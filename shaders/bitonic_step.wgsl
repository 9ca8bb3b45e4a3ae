// wgrad: one step of the bitonic network over (value, index) pairs, one invocation per
// compare-exchange: pair positions p and q = p + J (in the same row of LEN), kept in order when
// the block of K they lie in ascends (the smaller first), else reversed. The order is total:
// values ascending, NaN last, ties by index. The generated prelude declares `J`, `K`, `LEN`,
// `TOTAL` (pairs in the tensor) and `src(i)` (the packed input at a flat index).

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = gid.x + gid.y * nwg.x * 256u;
    if (g >= TOTAL / 2u) {
        return;
    }
    let p = (g / J) * 2u * J + g % J;
    let q = p + J;
    let av = src(p * 2u);
    let ai = src(p * 2u + 1u);
    let bv = src(q * 2u);
    let bi = src(q * 2u + 1u);
    let up = ((p % LEN) & K) == 0u;
    let swap = select(wg_sort_before(av, ai, bv, bi), wg_sort_before(bv, bi, av, ai), up);
    wg_store(p * 2u, select(av, bv, swap));
    wg_store(p * 2u + 1u, select(ai, bi, swap));
    wg_store(q * 2u, select(bv, av, swap));
    wg_store(q * 2u + 1u, select(bi, ai, swap));
}
