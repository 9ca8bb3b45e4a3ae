// wgrad batched matmul: C[b] = A[b] · B[b], A: M×K, B: K×N, accumulated in f32.
// A 16×16 workgroup computes a 64×64 tile of C, each invocation a 4×4 block (register
// blocking); A and B pass through workgroup memory 16 columns of K at a time. `load_a` and
// `load_b` read through whatever the scheduler fused in front (transposes, broadcasts, scales).
{{ENABLE}}
{{BINDINGS}}
{{HELPERS}}
{{FUNCTIONS}}

const M: u32 = {{M}}u;
const N: u32 = {{N}}u;
const K: u32 = {{K}}u;

var<workgroup> tile_a: array<array<f32, 64>, 16>;
var<workgroup> tile_b: array<array<f32, 64>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let batch = wid.z;
    let row0 = wid.y * 64u;
    let col0 = wid.x * 64u;
    let t = lid.y * 16u + lid.x;
    var acc: array<array<f32, 4>, 4>;
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
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var r = 0u; r < 4u; r = r + 1u) {
                a[r] = tile_a[kk][lid.y + r * 16u];
                b[r] = tile_b[kk][lid.x + r * 16u];
            }
            for (var r = 0u; r < 4u; r = r + 1u) {
                for (var c = 0u; c < 4u; c = c + 1u) {
                    acc[r][c] = fma(a[r], b[c], acc[r][c]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < 4u; r = r + 1u) {
        let row = row0 + lid.y + r * 16u;
        for (var c = 0u; c < 4u; c = c + 1u) {
            let col = col0 + lid.x + c * 16u;
            if (row < M && col < N) {
                out[batch * M * N + row * N + col] = {{STORE}};
            }
        }
    }
}
