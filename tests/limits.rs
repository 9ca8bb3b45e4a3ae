//! Panics that must be errors or must just work: Jacobians whose basis is larger than one
//! binding, zero-size Jacobians, very deep graphs on a small stack, `try_` twins.

mod common;

use wgrad::prelude::*;

#[test]
fn jacobians_chunk_by_their_largest_intermediate() {
    common::setup();
    // One input, 6000 outputs: the cotangent basis alone is 6000 × 6000 (144 MB).
    let j = jacrev(|x: &Tensor| x * Tensor::ones([6000]))(&Tensor::ones([1]));
    assert_eq!(j.shape(), &[6000, 1]);
    assert_eq!(j.sum_all().item(), 6000.0);
    let j = jacfwd(|x: &Tensor| x.sum_all() * Tensor::ones([3]))(&Tensor::ones([6000]));
    assert_eq!(j.shape(), &[3, 6000]);
    assert_eq!(j.sum_all().item(), 18000.0);
}

#[test]
fn zero_size_jacobians_are_empty() {
    common::setup();
    let f = |x: &Tensor| x.sum_all() * Tensor::ones([3]);
    for j in [
        jacrev(f)(&Tensor::zeros([0])),
        jacfwd(f)(&Tensor::zeros([0])),
    ] {
        assert_eq!(j.shape(), &[3, 0]);
        assert!(j.to_vec::<f32>().is_empty());
    }
    let g = |x: &Tensor| x.slice([0], [0]);
    for j in [jacrev(g)(&Tensor::ones([2])), jacfwd(g)(&Tensor::ones([2]))] {
        assert_eq!(j.shape(), &[0, 2]);
    }
}

#[test]
fn very_deep_graphs_need_no_deep_stack() {
    common::setup();
    // 300,000 movement ops, built, realized, differentiated and dropped on a thread with a
    // small stack.
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]);
            let mut y = x.clone();
            for k in 0..300_000 {
                y = if k % 2 == 0 {
                    y.reshape([4])
                } else {
                    y.reshape([2, 2])
                };
            }
            let v = y.to_vec::<f32>();
            let g = grad(|x: &Tensor| {
                let mut y = x.clone();
                for _ in 0..30_001 {
                    y = y.transpose([1, 0]);
                }
                (y * x).sum_all()
            })(&x)
            .to_vec::<f32>();
            (v, g)
        })
        .unwrap();
    let (v, g) = handle.join().expect("no stack overflow");
    assert_eq!(v, vec![1.0, 2.0, 3.0, 4.0]);
    // 30,001 transposes: f = sum(xᵀ ⊙ x), whose gradient is 2xᵀ.
    assert_eq!(g, vec![2.0, 6.0, 4.0, 8.0]);
}

#[test]
fn try_twins_return_errors() {
    common::setup();
    assert!(Tensor::zeros([3]).try_mt().is_err());
    assert!(Tensor::zeros([3]).try_squeeze(0).is_err());
    assert!(Tensor::zeros([3]).try_expand_dims(2).is_err());
    assert!(Tensor::zeros([3]).try_pad([1, 1], [0]).is_err());
    assert!(Tensor::ones([2]).exp().try_realize().is_ok());
    let h = wgrad::try_hessian(|x: &Tensor| x.square().sum_all())(&Tensor::ones([2])).unwrap();
    assert_eq!(h.to_vec::<f32>(), vec![2.0, 0.0, 0.0, 2.0]);
}

#[test]
fn try_vmap_returns_an_error_when_a_batching_rule_hits_a_limit() {
    common::setup();
    // 400 MB per example (lazy: never materialized per example), 4 GB for ten: more than
    // the device's largest buffer.
    let f = |x: &Tensor| x.broadcast_to([100_000_000]);
    let opts = VmapOptions {
        in_axes: 0.into(),
        ..Default::default()
    };
    let r = try_vmap(f, opts)(&Tensor::ones([10, 1]));
    let e = r.expect_err("an error, not a panic or a result");
    assert!(matches!(e, wgrad::Error::TooLarge { .. }), "{e}");
}
