//! `wgrad::random` against numbers computed by JAX 0.10 (partitionable Threefry, the default):
//! uniform bits exactly, normal / truncated normal / Gumbel to a few ulp; moments of large
//! draws. Run on every adapter by CI, so the bits are the same on lavapipe and GL too.
// The reference values are JAX's, as it prints them (more digits than an f32 holds).
#![allow(clippy::excessive_precision)]

use crate::common;

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
