//! `wgrad::random` against numbers computed by JAX 0.10 (partitionable Threefry, the default):
//! uniform bits exactly, normal / truncated normal / Gumbel to a few ulp; moments of large
//! draws. Run on every adapter by CI, so the bits are the same on lavapipe and GL too.
// The reference values are JAX's, as it prints them (more digits than an f32 holds).
#![allow(clippy::excessive_precision)]

use crate::common;

use wgrad::Tensor;
use wgrad::random::{self, key};

#[test]
fn uniform_bits_are_jaxs() {
    common::setup();
    let u = random::uniform(key(42), [5]).to_vec::<f32>();
    let jax = [
        0.48870956897735596f32,
        0.6797971725463867,
        0.6162714958190918,
        0.5610160827636719,
        0.4506446123123169,
    ];
    assert_eq!(u, jax);
    // A range: JAX's XLA fuses u·(b-a)+a into one FMA (one rounding), wgrad rounds twice.
    let r = random::uniform_range(key(42), [3], -2.0, 3.0).to_vec::<f32>();
    common::close(
        &r,
        &[0.4435478448867798, 1.3989858627319336, 1.081357479095459],
        0.0,
        2.5e-7,
    )
    .unwrap();
    // A key from split, the same as JAX's.
    let k = key(42).split(3)[1];
    assert_eq!(k.words(), [64467757, 2916123636]);
    let b = random::bernoulli(key(42), 0.3, [8]).to_vec::<bool>();
    assert_eq!(b, [false, false, false, false, false, false, true, false]);
    assert_eq!(wgrad::Tensor::rand([5], 42).to_vec::<f32>(), jax);
}

#[test]
fn derived_samplers_match_jax_to_a_few_ulp() {
    common::setup();
    let close = |got: Vec<f32>, want: &[f32], what: &str| {
        common::close(&got, want, 2e-6, 2e-7).unwrap_or_else(|e| panic!("{what}: {e}"));
    };
    close(
        random::normal(key(42), [6]).to_vec(),
        &[
            -0.02830461598932743,
            0.4671318531036377,
            0.2957029640674591,
            0.15354591608047485,
            -0.12403281778097153,
            0.21692314743995667,
        ],
        "normal",
    );
    close(
        random::truncated_normal(key(42), -1.0, 2.0, [5]).to_vec(),
        &[
            0.14770005643367767,
            0.5684449076652527,
            0.42102551460266113,
            0.29997000098228455,
            0.0691138207912445,
        ],
        "truncated_normal",
    );
    close(
        random::gumbel(key(42), [4]).to_vec(),
        &[
            0.3340933918952942,
            0.952019453048706,
            0.7255305647850037,
            0.5481715202331543,
        ],
        "gumbel",
    );
    let logits = wgrad::Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0, -1.0, 0.5], [2, 3]);
    assert_eq!(
        random::categorical(key(42), &logits, -1).to_vec::<i32>(),
        vec![2, 0]
    );
}

#[test]
fn large_draws_have_the_right_moments() {
    common::setup();
    let n = 1 << 18;
    let z = random::normal(key(7), [n]).to_vec::<f32>();
    let mean = z.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let var = z.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    assert!(
        mean.abs() < 0.01 && (var - 1.0).abs() < 0.01,
        "mean {mean}, variance {var}"
    );
    let t = random::truncated_normal(key(8), -0.5, 1.5, [n]).to_vec::<f32>();
    assert!(t.iter().all(|&v| v > -0.5 && v < 1.5));
    // Category frequencies follow softmax(logits).
    let logits = wgrad::Tensor::from_vec(vec![0.0f32, 1.0f32.ln(), 2.0f32.ln()], [1, 3])
        .broadcast_to([n, 3]);
    let c = random::categorical(key(9), &logits, -1).to_vec::<i32>();
    for (class, p) in [(0, 0.25f64), (1, 0.25), (2, 0.5)] {
        let f = c.iter().filter(|&&v| v == class).count() as f64 / n as f64;
        assert!((f - p).abs() < 0.01, "class {class}: {f} vs {p}");
    }
    // Different keys, independent streams.
    let [a, b] = key(10).split_n::<2>();
    let (x, y) = (
        random::uniform(a, [n]).to_vec::<f32>(),
        random::uniform(b, [n]).to_vec::<f32>(),
    );
    let cov = x
        .iter()
        .zip(&y)
        .map(|(p, q)| (*p as f64 - 0.5) * (*q as f64 - 0.5))
        .sum::<f64>()
        / n as f64;
    assert!((cov * 12.0).abs() < 0.01, "correlation {}", cov * 12.0);
}

#[test]
fn permutation_is_jaxs() {
    common::setup();
    // jax.random.permutation(jax.random.PRNGKey(42), 1797): two sorting rounds.
    let p = wgrad::random::permutation(wgrad::random::key(42), 1797).to_vec::<i32>();
    assert_eq!(&p[..8], &[1212, 684, 1208, 1427, 406, 1698, 650, 1343]);
    assert_eq!(&p[1793..], &[578, 1618, 305, 1669]);
    let mut sorted = p.clone();
    sorted.sort();
    assert_eq!(sorted, (0..1797).collect::<Vec<i32>>());
    assert_eq!(
        wgrad::random::permutation(wgrad::random::key(1), 0).numel(),
        0
    );
    assert_eq!(
        wgrad::random::permutation(wgrad::random::key(1), 1).to_vec::<i32>(),
        vec![0]
    );
}

/// Mean and variance of a sample (f64).
fn moments(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n;
    (m, var)
}

#[test]
fn gamma_family_moments_match_their_distributions() {
    common::setup();
    let n = 200_000;
    // Within 5 standard errors of the exact moments, E[log X] = ψ(a) included (it weighs the
    // small-a tail that the a + 1 boost produces).
    for (k, a) in [0.3f64, 1.0, 2.5, 10.0].into_iter().enumerate() {
        let g = random::gamma(random::key(k as u64), &Tensor::scalar(a as f32), [n]);
        let v = g.to_vec::<f32>();
        assert!(
            v.iter().all(|x| *x > 0.0 && x.is_finite()),
            "gamma({a}) support"
        );
        let (m, var) = moments(&v);
        let se = (a / n as f64).sqrt();
        assert!((m - a).abs() < 5.0 * se, "gamma({a}) mean {m}");
        assert!(
            (var - a).abs() < 5.0 * (2.0 * a * a / n as f64).sqrt() * 2.0,
            "gamma({a}) var {var}"
        );
        let logs: Vec<f32> = v.iter().map(|x| x.ln()).collect();
        let (lm, lv) = moments(&logs);
        assert!(
            (lm - common::digamma64(a)).abs() < 5.0 * (lv / n as f64).sqrt(),
            "gamma({a}) E log {lm}"
        );
    }
    // Beta(2, 6): mean 1/4, variance ab / ((a+b)²(a+b+1)) = 12/576.
    let b = random::beta(
        random::key(9),
        &Tensor::scalar(2.0),
        &Tensor::scalar(6.0),
        [n],
    );
    let (m, var) = moments(&b.to_vec::<f32>());
    assert!((m - 0.25).abs() < 5.0 * (var / n as f64).sqrt() && (var - 12.0 / 576.0).abs() < 1e-3);
    // Dirichlet(1, 2, 5): means alpha / 8.
    let alpha = Tensor::from_vec(vec![1.0f32, 2.0, 5.0], [3]);
    let d = random::dirichlet(random::key(10), &alpha, [n / 4])
        .mean_axes(0)
        .to_vec::<f32>();
    for (got, want) in d.iter().zip([1.0 / 8.0, 2.0 / 8.0, 5.0 / 8.0]) {
        assert!(
            (*got as f64 - want).abs() < 0.005,
            "dirichlet mean {got} vs {want}"
        );
    }
    // Student's t with 6 degrees of freedom: variance 6/4.
    let (m, var) = moments(&random::t(random::key(11), &Tensor::scalar(6.0), [n]).to_vec::<f32>());
    assert!(m.abs() < 0.02 && (var - 1.5).abs() < 0.05, "t: {m} {var}");
    // Poisson: mean = variance = lam.
    for lam in [0.5f32, 3.5, 40.0] {
        let k = random::poisson(random::key(12), lam, [n]).to_vec::<i32>();
        let kf: Vec<f32> = k.iter().map(|&v| v as f32).collect();
        let (m, var) = moments(&kf);
        let l = lam as f64;
        assert!(
            (m - l).abs() < 5.0 * (l / n as f64).sqrt(),
            "poisson({lam}) mean {m}"
        );
        assert!(
            (var - l).abs() < 0.05 * l.max(1.0),
            "poisson({lam}) var {var}"
        );
    }
    // Exponential and Laplace: the first draws as JAX's for key 42 (checked in their docs),
    // the moments here.
    let (m, var) = moments(&random::exponential(random::key(13), [n]).to_vec::<f32>());
    assert!((m - 1.0).abs() < 0.012 && (var - 1.0).abs() < 0.03);
    let (m, var) = moments(&random::laplace(random::key(14), [n]).to_vec::<f32>());
    assert!(m.abs() < 0.02 && (var - 2.0).abs() < 0.05);
}
