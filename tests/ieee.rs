//! Numbers that must be right in every corner (issue: trustworthy numbers): loops past the
//! software drivers' 65,535-iteration cap, long sums without drift, IEEE inf/NaN through
//! max-type ops, identities at the extremes of each dtype, dtype promotion without silent
//! truncation, and shape arithmetic without overflow.

mod common;

use wgrad::MatmulKernel;
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
        assert_eq!(last_one(n).sum_all().item(), 1.0, "sum of {n}");
        let m = (last_one(n) * 5.0 - 1.0).max_all().item();
        assert_eq!(m, 4.0, "max of {n}");
        // The gradient of the max lands on the last element.
        let g = grad(|x: &Tensor| x.max_all())(&last_one(n)).to_vec::<f32>();
        assert_eq!(g[n - 1], 1.0, "max gradient of {n}");
        assert_eq!(g.iter().sum::<f32>(), 1.0);
    }
    // A bias gradient over 256 × 256 rows: one output, 65,536 terms.
    let g = grad(|b: &Tensor| (Tensor::ones([65_536, 1]) + b).sum_all())(&Tensor::zeros([1]));
    assert_eq!(g.item(), 65_536.0);
}

#[test]
fn long_sums_do_not_drift() {
    common::setup();
    // 60,000 terms of 0.1 (as f32): sequential f32 summation is off by ~1e-3 relative.
    let n = 60_000;
    let want = n as f64 * 0.1f32 as f64;
    let got = Tensor::full([n], 0.1).sum_all().item() as f64;
    assert!((got - want).abs() / want < 1e-5, "{got} vs {want}");
    let got = Tensor::full([3, n], 0.1).sum_axes(1).to_vec::<f32>();
    for g in got {
        assert!((g as f64 - want).abs() / want < 1e-5, "{g} vs {want}");
    }
}

#[test]
fn max_type_ops_propagate_nan_and_reach_infinity() {
    common::setup();
    let inf = f32::INFINITY;
    let x = Tensor::from_vec(vec![-inf, -inf], [2]);
    assert_eq!(x.max_all().item(), -inf);
    assert_eq!(
        grad(|x: &Tensor| x.max_all())(&x).to_vec::<f32>(),
        vec![0.5, 0.5]
    );
    let y = Tensor::from_vec(vec![inf, inf], [2]);
    assert_eq!(y.min_all().item(), inf);
    let nan1 = Tensor::from_vec(vec![f32::NAN, 1.0], [2]);
    assert!(nan1.max_all().item().is_nan(), "max([nan, 1])");
    assert!(nan1.min_all().item().is_nan(), "min([nan, 1])");
    let one_nan = Tensor::from_vec(vec![1.0, f32::NAN], [2]);
    assert!(one_nan.max_all().item().is_nan(), "max([1, nan])");
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
    assert_eq!(i.max_all().to_vec::<i32>(), vec![i32::MIN]);
    let j = Tensor::from_slice(&[i32::MAX], [1]);
    assert_eq!(j.min_all().to_vec::<i32>(), vec![i32::MAX]);
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

#[test]
fn matmul_sums_every_term_of_a_long_inner_axis() {
    common::setup();
    // K = 300,000: the CPU kernel lost terms from K = 262,144, the tiled one from ~58,000.
    let k = 300_000;
    let a = Tensor::arange(k).reshape([1, k]) * 1e-3;
    let b = Tensor::ones([k, 2]);
    let want = (0..k).map(|i| i as f64 * 1e-3).sum::<f64>();
    for kernel in [MatmulKernel::Direct, MatmulKernel::Tiled] {
        wgrad::set_matmul_kernel(kernel);
        let c = a.matmul(&b).to_vec::<f32>();
        for v in c {
            assert!(
                (v as f64 - want).abs() / want < 1e-4,
                "{kernel:?}: {v} vs {want}"
            );
        }
    }
    wgrad::set_matmul_kernel(MatmulKernel::Auto);
}

#[test]
fn large_grids_fold_instead_of_failing() {
    common::setup();
    // 3,000,000 columns: more than 65,535 workgroups along one dimension.
    let n = 3_000_000;
    let b = Tensor::arange(n).reshape([1, n]);
    for kernel in [MatmulKernel::Direct, MatmulKernel::Tiled] {
        wgrad::set_matmul_kernel(kernel);
        let c = Tensor::full([1, 1], 2.0).try_matmul(&b).unwrap();
        let v = c.try_to_vec::<f32>().unwrap();
        assert_eq!((v[0], v[n - 1]), (0.0, 2.0 * (n - 1) as f32), "{kernel:?}");
    }
    wgrad::set_matmul_kernel(MatmulKernel::Auto);
    // 70,000 products in one batch (vmap of a matmul over 70,000 examples).
    let x = Tensor::ones([70_000, 2, 3]);
    let w = Tensor::ones([70_000, 3, 2]);
    let y = x.matmul(&w).sum_all().item();
    assert_eq!(y, 70_000.0 * 4.0 * 3.0);
}

#[test]
fn scatter_add_over_a_long_index_list() {
    common::setup();
    // 100,000 lookups of 3 rows: the gradient adds up across every one.
    let n = 100_000;
    let idx: Vec<i32> = (0..n).map(|k| (k % 3) as i32).collect();
    let it = Tensor::from_vec(idx, [n]);
    let g = grad(|t: &Tensor| t.take(&it, 0).sum_all())(&Tensor::zeros([3, 2]));
    let c = [33_334.0f32, 33_333.0, 33_333.0];
    assert_eq!(
        g.to_vec::<f32>(),
        c.iter().flat_map(|&v| [v, v]).collect::<Vec<_>>()
    );
}

#[test]
fn empty_tensors_work_in_reductions() {
    common::setup();
    assert_eq!(Tensor::zeros([3, 0]).sum_all().item(), 0.0);
    assert_eq!(
        Tensor::zeros([3, 0]).sum_axes(1).to_vec::<f32>(),
        vec![0.0; 3]
    );
    assert_eq!(
        Tensor::zeros([0, 3]).sum_axes(0).to_vec::<f32>(),
        vec![0.0; 3]
    );
    assert_eq!(
        Tensor::zeros([2, 0]).prod_axes(1).to_vec::<f32>(),
        vec![1.0; 2]
    );
    assert!(Tensor::zeros([0, 4]).exp().to_vec::<f32>().is_empty());
}

#[test]
fn division_by_a_constant_zero_is_ieee_and_never_reads_stale_memory() {
    common::setup();
    let x = Tensor::from_vec(vec![0.0f32, 1.0, -2.0, 0.0], [4]);
    let check = |v: Vec<f32>, what: &str| {
        assert!(v[0].is_nan() && v[3].is_nan(), "{what}: {v:?}");
        assert_eq!(
            (v[1], v[2]),
            (f32::INFINITY, f32::NEG_INFINITY),
            "{what}: {v:?}"
        );
    };
    for _ in 0..3 {
        // Leave recognisable values in a pooled buffer of the same size first.
        {
            let s = &Tensor::from_vec(vec![12345.0f32, 777.0, 31337.0, 42.0], [4]) + 0.0;
            s.realize();
        }
        check((&x / 0.0).to_vec::<f32>(), "x / 0.0");
        check((&x / Tensor::scalar(0.0)).to_vec::<f32>(), "x / scalar(0)");
        // x * 0 keeps the sign: -2 / -0 is +inf.
        let v = (&x / (&x * 0.0)).to_vec::<f32>();
        assert!(v[0].is_nan() && v[3].is_nan(), "x / (x * 0): {v:?}");
        assert_eq!(
            (v[1], v[2]),
            (f32::INFINITY, f32::INFINITY),
            "x / (x * 0): {v:?}"
        );
    }
    let m = Tensor::zeros([2, 0]).mean_axes(1).to_vec::<f32>();
    assert!(
        m.iter().all(|v| v.is_nan()),
        "mean over an empty axis: {m:?}"
    );
}

#[test]
fn empty_tensors_work_in_every_op() {
    common::setup();
    let e = Tensor::zeros([0, 3]);
    let shapes = |ts: &[(&str, Tensor, &[usize])]| {
        for (name, t, want) in ts {
            assert_eq!(t.shape(), *want, "{name}");
            assert_eq!(t.to_f32_vec().len(), t.numel(), "{name}");
        }
    };
    shapes(&[
        ("exp", e.exp().erf().tanh(), &[0, 3]),
        ("add broadcast", &e + Tensor::ones([3]), &[0, 3]),
        (
            "compare",
            e.greater(&Tensor::scalar(0.0)).cast(DType::F32),
            &[0, 3],
        ),
        ("transpose", e.transpose([1, 0]), &[3, 0]),
        ("pad", e.pad([1, 0], [0, 0]), &[1, 3]),
        (
            "concat",
            concat(&[e.clone(), Tensor::ones([2, 3])], 0),
            &[2, 3],
        ),
        ("flip", e.flip(0), &[0, 3]),
        ("sum rows", e.sum_axes(0), &[3]),
        ("sum cols", e.sum_axes(1), &[0]),
        ("prod", e.prod_axes(0), &[3]),
        ("cumsum", e.cumsum(0), &[0, 3]),
        (
            "matmul k=0",
            Tensor::zeros([2, 0]).matmul(&Tensor::zeros([0, 4])),
            &[2, 4],
        ),
        ("matmul m=0", e.matmul(&Tensor::ones([3, 4])), &[0, 4]),
        (
            "take none",
            Tensor::ones([4, 3]).take(Tensor::from_slice::<i32>(&[], [0]), 0),
            &[0, 3],
        ),
        (
            "take from empty",
            e.take(Tensor::from_slice::<i32>(&[], [0]), 0),
            &[0, 3],
        ),
        (
            "one_hot",
            one_hot(Tensor::from_slice::<i32>(&[], [0]), 4),
            &[0, 4],
        ),
        (
            "conv n=0",
            Tensor::zeros([0, 2, 5, 5])
                .conv2d(&Tensor::ones([3, 2, 3, 3]), Conv2dOptions::default()),
            &[0, 3, 3, 3],
        ),
        (
            "pool",
            Tensor::zeros([0, 1, 4, 4]).max_pool2d(2, None),
            &[0, 1, 2, 2],
        ),
        ("grad", grad(|x: &Tensor| x.sin().sum_all())(&e), &[0, 3]),
        ("vmap", vmap(|x: &Tensor| x.exp(), 0)(&e), &[0, 3]),
    ]);
    assert_eq!(
        Tensor::zeros([2, 0])
            .matmul(&Tensor::zeros([0, 4]))
            .to_vec::<f32>(),
        vec![0.0; 8]
    );
    assert_eq!(e.sum_axes(0).to_vec::<f32>(), vec![0.0; 3]);
    assert_eq!(e.prod_axes(0).to_vec::<f32>(), vec![1.0; 3]);
    assert!(
        e.try_max_axes(0).is_err(),
        "a max over nothing has no value (as JAX)"
    );
}

#[test]
fn no_compiler_folds_x_minus_x_or_x_times_zero() {
    common::setup();
    let x = Tensor::from_vec(vec![f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1.0], [4]);
    let d = (&x - &x).to_vec::<f32>();
    let z = (&x * 0.0).to_vec::<f32>();
    let q = (&x / &x).to_vec::<f32>();
    for v in [&d, &z, &q] {
        assert!(v[..3].iter().all(|a| a.is_nan()), "{v:?}");
    }
    assert_eq!((d[3], z[3], q[3]), (0.0, 0.0, 1.0));
    // Two equal expressions built separately (a compiler merges them, then folds).
    let e = (x.exp() - x.exp()).to_vec::<f32>();
    assert!(e[0].is_nan() && e[2].is_nan() && e[3] == 0.0, "{e:?}");
}

#[test]
fn empty_tensors_with_a_huge_dimension_give_empty_results_or_clear_errors() {
    common::setup();
    // [2^33, 0]: no elements, but one dimension past 32-bit indices.
    let x = Tensor::try_from_slice::<f32>(&[], [1 << 33, 0]).unwrap();
    let empty = |r: wgrad::Result<Tensor>, what: &str| match r {
        Ok(y) => {
            let n = y.numel();
            match y.try_to_vec::<f32>() {
                Ok(v) => assert_eq!(v.len(), n, "{what}"),
                Err(e) => assert!(!e.to_string().contains("internal"), "{what}: {e}"),
            }
        }
        Err(e) => assert!(!e.to_string().contains("internal"), "{what}: {e}"),
    };
    let run = |what: &str, f: &dyn Fn() -> wgrad::Result<Tensor>| {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        match r {
            Ok(r) => empty(r, what),
            Err(_) => panic!("{what} panicked"),
        }
    };
    run("exp", &|| x.try_exp());
    run("sum over the huge axis", &|| x.try_sum_axes(0));
    run("max over the huge axis", &|| x.try_max_axes(0));
    run("mean over the huge axis", &|| x.try_mean_axes(0));
    run("transpose", &|| x.try_transpose([1, 0]).map(|t| t * 2.0));
    run("matmul over the huge axis", &|| x.try_mt()?.try_matmul(&x));
    assert_eq!(x.try_sum_axes(0).unwrap().shape(), &[0]);
}
