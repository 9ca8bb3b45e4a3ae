//! Nothing grows without bound: the pipeline cache over 2,000 distinct shapes, the buffer pool
//! after the tensors it served are dropped. (Its own test binary: the counters and the policy
//! are process-wide.)

mod common;

use wgrad::prelude::*;

#[test]
fn the_pipeline_cache_is_bounded() {
    common::setup();
    let cap = 64;
    wgrad::set_policy(wgrad::Policy {
        pipeline_cache: cap,
        ..wgrad::policy()
    });
    let before = wgrad::counters();
    for n in 1..=2000usize {
        // A new shape each time: a new kernel source.
        let y = (Tensor::ones([n]) * 2.0).exp();
        y.realize();
        assert!(wgrad::counters().pipelines_cached <= cap as u64);
    }
    let c = wgrad::counters().since(&before);
    assert!(c.pipelines_evicted >= 2000 - cap as u64, "{c:?}");
    // Evicted pipelines are compiled again when needed, and still compute the right thing.
    assert_eq!((Tensor::ones([1]) * 2.0).exp().item(), 2f32.exp());
    wgrad::set_policy(wgrad::Policy {
        pipeline_cache: 512,
        ..wgrad::policy()
    });
}

#[test]
fn the_pool_returns_idle_memory_on_its_own() {
    common::setup();
    let floor = wgrad::policy().pool_idle_bytes;
    {
        // About 400 MB of tensors and temporaries.
        let big: Vec<Tensor> = (0..10)
            .map(|k| {
                let t = Tensor::rand([10_000_000], k) * 2.0;
                t.realize();
                t
            })
            .collect();
        assert!(wgrad::counters().bytes_allocated > 300 << 20);
        drop(big);
    }
    let c = wgrad::counters();
    assert!(
        c.pooled_bytes <= floor,
        "idle {} bytes kept after every tensor was dropped (floor {floor})",
        c.pooled_bytes
    );
}

#[test]
fn random_streams_of_different_seeds_are_independent() {
    common::setup();
    let n = 4096;
    let a = Tensor::rand([n + 1], 0).to_vec::<f32>();
    let b = Tensor::rand([n + 1], 403_110_877).to_vec::<f32>();
    // Not a shifted copy of each other (the old hash made seed 403110877 seed 0 shifted by one).
    for shift in 0..3 {
        let same = (0..n - 2).filter(|&k| a[k + shift] == b[k]).count();
        assert!(same < 10, "shift {shift}: {same} equal values");
        let same = (0..n - 2).filter(|&k| a[k] == b[k + shift]).count();
        assert!(same < 10, "shift -{shift}: {same} equal values");
    }
    // Uncorrelated, and uniform: correlation and moments of 8 streams.
    let streams: Vec<Vec<f32>> = (0..8)
        .map(|s| Tensor::rand([n], s).to_vec::<f32>())
        .collect();
    for (i, x) in streams.iter().enumerate() {
        let mean = x.iter().sum::<f32>() / n as f32;
        assert!((mean - 0.5).abs() < 0.02, "seed {i}: mean {mean}");
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n as f32;
        assert!((var - 1.0 / 12.0).abs() < 0.01, "seed {i}: variance {var}");
        for (j, y) in streams.iter().enumerate().skip(i + 1) {
            let cov = x
                .iter()
                .zip(y)
                .map(|(a, b)| (a - 0.5) * (b - 0.5))
                .sum::<f32>()
                / n as f32;
            assert!(
                (cov * 12.0).abs() < 0.06,
                "seeds {i}, {j}: correlation {}",
                cov * 12.0
            );
        }
    }
}
