//! Numbers that must be right in every corner (issue: trustworthy numbers): loops past the
//! software drivers' 65,535-iteration cap, long sums without drift, IEEE inf/NaN through
//! max-type ops, identities at the extremes of each dtype, dtype promotion without silent
//! truncation, and shape arithmetic without overflow.

mod common;

use wgrad::prelude::*;

/// `n - 1` zeros, then a one.
fn last_one(n: usize) -> Tensor {
    let mut v = vec![0.0f32; n];
    v[n - 1] = 1.0;
    Tensor::from_vec(v, [n])
}

#[test]
fn reductions_see_every_term_past_the_loop_cap() {
    common::setup();
    for n in [65_535usize, 65_536, 65_537, 262_144, 1_000_003] {
        assert_eq!(last_one(n).sum(None, false).item(), 1.0, "sum of {n}");
        let m = (last_one(n) * 5.0 - 1.0).max(None, false).item();
        assert_eq!(m, 4.0, "max of {n}");
        // The gradient of the max lands on the last element.
        let g = grad(|x: &Tensor| x.max(None, false))(&last_one(n)).to_vec::<f32>();
        assert_eq!(g[n - 1], 1.0, "max gradient of {n}");
        assert_eq!(g.iter().sum::<f32>(), 1.0);
    }
    // A bias gradient over 256 × 256 rows: one output, 65,536 terms.
    let g =
        grad(|b: &Tensor| (Tensor::ones([65_536, 1]) + b).sum(None, false))(&Tensor::zeros([1]));
    assert_eq!(g.item(), 65_536.0);
}

#[test]
fn long_sums_do_not_drift() {
    common::setup();
    // 60,000 terms of 0.1 (as f32): sequential f32 summation is off by ~1e-3 relative.
    let n = 60_000;
    let want = n as f64 * 0.1f32 as f64;
    let got = Tensor::full([n], 0.1).sum(None, false).item() as f64;
    assert!((got - want).abs() / want < 1e-5, "{got} vs {want}");
    let got = Tensor::full([3, n], 0.1).sum(1, false).to_vec::<f32>();
    for g in got {
        assert!((g as f64 - want).abs() / want < 1e-5, "{g} vs {want}");
    }
}

#[test]
fn max_type_ops_propagate_nan_and_reach_infinity() {
    common::setup();
    let inf = f32::INFINITY;
    let x = Tensor::from_vec(vec![-inf, -inf], [2]);
    assert_eq!(x.max(None, false).item(), -inf);
    assert_eq!(
        grad(|x: &Tensor| x.max(None, false))(&x).to_vec::<f32>(),
        vec![0.5, 0.5]
    );
    let y = Tensor::from_vec(vec![inf, inf], [2]);
    assert_eq!(y.min(None, false).item(), inf);
    let nan1 = Tensor::from_vec(vec![f32::NAN, 1.0], [2]);
    assert!(nan1.max(None, false).item().is_nan(), "max([nan, 1])");
    assert!(nan1.min(None, false).item().is_nan(), "min([nan, 1])");
    let one_nan = Tensor::from_vec(vec![1.0, f32::NAN], [2]);
    assert!(one_nan.max(None, false).item().is_nan(), "max([1, nan])");
    let a = Tensor::from_vec(vec![f32::NAN, 0.0, 2.0], [3]);
    let b = Tensor::from_vec(vec![0.0, f32::NAN, 1.0], [3]);
    for v in [a.maximum(&b), a.minimum(&b)] {
        let v = v.to_vec::<f32>();
        assert!(v[0].is_nan() && v[1].is_nan(), "{v:?}");
    }
    let r = a.relu().to_vec::<f32>();
    assert!(r[0].is_nan() && r[1] == 0.0 && r[2] == 2.0, "relu {r:?}");
    assert!(a.sign().to_vec::<f32>()[0].is_nan(), "sign(nan)");
    // Integer extremes are their own identities.
    let i = Tensor::from_slice(&[i32::MIN], [1]);
    assert_eq!(i.max(None, false).to_vec::<i32>(), vec![i32::MIN]);
    let j = Tensor::from_slice(&[i32::MAX], [1]);
    assert_eq!(j.min(None, false).to_vec::<i32>(), vec![i32::MAX]);
}

#[test]
fn int_plus_float_promotes_instead_of_truncating() {
    common::setup();
    let i = Tensor::from_slice(&[1i32, 2], [2]);
    let y = &i + 2.5;
    assert_eq!(y.dtype(), DType::F32);
    assert_eq!(y.to_vec::<f32>(), vec![3.5, 4.5]);
    let z = &i * Tensor::scalar(0.5);
    assert_eq!(z.to_vec::<f32>(), vec![0.5, 1.0]);
}

#[test]
fn shape_arithmetic_overflow_is_an_error() {
    common::setup();
    let e = Tensor::try_full([1 << 63 | 1, 2], 0.0, DType::F32).unwrap_err();
    assert!(matches!(e, wgrad::Error::TooLarge { .. }), "{e}");
    let empty = Tensor::zeros([0]);
    assert!(empty.try_reshape([1 << 32, 1 << 32]).is_err());
    assert!(Tensor::try_from_slice::<f32>(&[], [1 << 40, 1 << 40, 0]).is_ok());
}
