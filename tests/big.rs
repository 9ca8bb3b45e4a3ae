//! Tensors larger than one storage binding (128 MiB on lavapipe and in browsers by default):
//! elementwise ops, reductions, matmul and gathers over them, checked against the host.

mod common;

use wgrad::prelude::*;

/// Just over 128 MiB of f32.
const N: usize = (128 << 20) / 4 + 1_000_003;

#[test]
fn elementwise_and_reductions_over_a_tensor_past_the_binding_limit() {
    common::setup();
    let x = Tensor::rand([N], 7);
    let y = (&x * 2.0 + 1.0).realize().clone();
    let (xv, yv) = (x.to_vec::<f32>(), y.to_vec::<f32>());
    assert_eq!(yv.len(), N);
    for k in [
        0,
        1,
        N / 2,
        (128 << 20) / 4 - 1,
        (128 << 20) / 4,
        (128 << 20) / 4 + 1,
        N - 1,
    ] {
        assert_eq!(yv[k], xv[k] * 2.0 + 1.0, "element {k}");
    }
    let want: f64 = xv.iter().map(|&v| v as f64).sum();
    let got = x.sum_all().item() as f64;
    assert!((got - want).abs() / want < 1e-5, "{got} vs {want}");
    // A sum along a short axis: an output as large as a binding too.
    let rows = x
        .slice([0], [N - N % 2])
        .reshape([(N - N % 2) / 2, 2])
        .sum_axes(1);
    let r = rows.to_vec::<f32>();
    let last = r.len() - 1;
    assert_eq!(r[last], xv[2 * last] + xv[2 * last + 1]);
}

#[test]
fn matmul_and_gather_read_operands_past_the_binding_limit() {
    common::setup();
    let (m, k) = (8_400, 4_000); // 134.4 MB
    let a = Tensor::rand([m, k], 11) - 0.5;
    let b = Tensor::rand([k, 2], 12) - 0.5;
    let c = a.matmul(&b).to_vec::<f32>();
    let (av, bv) = (a.to_vec::<f32>(), b.to_vec::<f32>());
    for row in [0, 1, m / 2, m - 2, m - 1] {
        for col in 0..2 {
            let want: f64 = (0..k)
                .map(|t| av[row * k + t] as f64 * bv[t * 2 + col] as f64)
                .sum();
            let got = c[row * 2 + col] as f64;
            assert!((got - want).abs() < 1e-3, "row {row}: {got} vs {want}");
        }
    }
    // Rows of an embedding table larger than a binding.
    let table = Tensor::rand([1_100_000, 32], 13);
    let picked = table.take([5, 1_099_999, 600_000], 0).to_vec::<f32>();
    let tv = table.to_vec::<f32>();
    assert_eq!(&picked[..32], &tv[5 * 32..6 * 32]);
    assert_eq!(&picked[32..64], &tv[1_099_999 * 32..1_100_000 * 32]);
    assert_eq!(&picked[64..], &tv[600_000 * 32..600_001 * 32]);
}

#[test]
fn a_fused_broadcast_larger_than_a_binding_is_never_refused() {
    common::setup();
    // 6000 × 6000 pairwise differences (144 MB, never materialized: fused into the sum).
    let x = Tensor::arange(6000) * 1e-3;
    let d = (x.expand_dims(1) - x.expand_dims(0))
        .square()
        .sum_all()
        .item() as f64;
    let n = 6000f64;
    // Σ_ij (x_i - x_j)² = 2 n Σ x² - 2 (Σ x)², with x_i = i/1000.
    let (s1, s2) = (
        (n - 1.0) * n / 2.0 * 1e-3,
        (n - 1.0) * n * (2.0 * n - 1.0) / 6.0 * 1e-6,
    );
    let want = 2.0 * n * s2 - 2.0 * s1 * s1;
    assert!((d - want).abs() / want < 1e-4, "{d} vs {want}");
}
