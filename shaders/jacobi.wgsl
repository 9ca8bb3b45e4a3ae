// wgrad symmetric eigendecomposition by cyclic Jacobi rotations, one workgroup per N×N matrix
// of a batch of MATS. Each matrix's result is 2N + 1 rows of N: the eigenvalues, the
// eigenvectors as columns (V, N rows), and the working matrix (N rows). MODE 0 reads the lower
// triangle of `src` (mirrored), sets V = I and runs one sweep; MODE 1 runs one more sweep in
// place; MODE 2 sorts the eigenvalues ascending with V's columns. A sweep rotates every pair
// (p, q) once: all invocations compute the same rotation from a_pp, a_qq, a_pq (Numerical
// Recipes' stable form), then share the rows of the column update, the row update and V's,
// with barriers between. The generated prelude declares `N`, `MATS`, `MODE`, `src(i)` and
// `load_out(i)` (the output as written so far).

// The entries at x and y of the output, rotated: (c x - s y, s x + c y).
fn rotate(x: u32, y: u32, c: f32, s: f32) {
    let a = load_out(x);
    let b = load_out(y);
    wg_store(x, c * a - s * b);
    wg_store(y, s * a + c * b);
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let m = wid.x + wid.y * nwg.x;
    if (m >= MATS) {
        return;
    }
    let base = m * (2u * N + 1u) * N;
    let vb = base + N;
    let ab = base + (N + 1u) * N;
    let t = lid.x;
    if (MODE == 0u) {
        for (var e = t; e < N * N; e = e + 64u) {
            let i = e / N;
            let j = e % N;
            wg_store(ab + e, src(m * N * N + max(i, j) * N + min(i, j)));
            wg_store(vb + e, select(0.0, 1.0, i == j));
        }
        storageBarrier();
    }
    if (MODE < 2u) {
        for (var p = 0u; p + 1u < N; p = p + 1u) {
            for (var q = p + 1u; q < N; q = q + 1u) {
                let app = load_out(ab + p * N + p);
                let aqq = load_out(ab + q * N + q);
                let apq = load_out(ab + p * N + q);
                var c = 1.0;
                var s = 0.0;
                if (apq != 0.0) {
                    let th = (aqq - app) / (2.0 * apq);
                    var tt = 1.0 / (abs(th) + sqrt(th * th + 1.0));
                    if (abs(th) > 1e18) {
                        tt = 0.5 / abs(th);
                    }
                    tt = select(tt, -tt, th < 0.0);
                    c = 1.0 / sqrt(tt * tt + 1.0);
                    s = tt * c;
                }
                storageBarrier();
                for (var k = t; k < N; k = k + 64u) {
                    rotate(ab + k * N + p, ab + k * N + q, c, s);
                    rotate(vb + k * N + p, vb + k * N + q, c, s);
                }
                storageBarrier();
                for (var k = t; k < N; k = k + 64u) {
                    rotate(ab + p * N + k, ab + q * N + k, c, s);
                }
                storageBarrier();
            }
        }
    }
    if (MODE == 2u && t == 0u) {
        for (var i = 0u; i < N; i = i + 1u) {
            wg_store(base + i, load_out(ab + i * N + i));
        }
        for (var i = 0u; i < N; i = i + 1u) {
            var k = i;
            for (var j = i + 1u; j < N; j = j + 1u) {
                if (load_out(base + j) < load_out(base + k)) {
                    k = j;
                }
            }
            if (k != i) {
                let w = load_out(base + i);
                wg_store(base + i, load_out(base + k));
                wg_store(base + k, w);
                for (var r = 0u; r < N; r = r + 1u) {
                    let a = load_out(vb + r * N + i);
                    wg_store(vb + r * N + i, load_out(vb + r * N + k));
                    wg_store(vb + r * N + k, a);
                }
            }
        }
    }
}
