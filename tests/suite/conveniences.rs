//! The names users reach for first (issue 21): `clamp`, `powf`, `powi`, `linspace`, `dot`,
//! `norm`, `norm_axes` — values against the host, derivatives against finite differences, and
//! IEEE cases as JAX has them.

use crate::common;
use wgrad::prelude::*;

fn t(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape)
}

#[test]
fn clamp_limits_propagates_nan_and_passes_gradient_inside_only() {
    common::setup();
    let x = t(
        &[f32::NEG_INFINITY, f32::NAN, 0.3, -0.5, 2.0, f32::INFINITY],
        &[6],
    );
    let y = x.clamp(-0.25, 1.0).to_vec::<f32>();
    assert_eq!(y[0], -0.25);
    assert!(y[1].is_nan(), "NaN propagates, as jnp.clip: {y:?}");
    assert_eq!(&y[2..], &[0.3, -0.25, 1.0, 1.0]);
    let g = grad(|x: &Tensor| x.clamp(-0.25, 1.0).sum_all())(&t(&[0.3, -0.5, 2.0], &[3]));
    assert_eq!(g.to_vec::<f32>(), vec![1.0, 0.0, 0.0]);
    assert!(
        Tensor::zeros([1])
            .try_clamp(2.0, 1.0)
            .unwrap_err()
            .to_string()
            .contains("exceeds")
    );
}

#[test]
fn powf_and_powi_match_the_host_and_differentiate() {
    common::setup();
    let xs = [0.25f32, 1.0, 1.5, 3.0];
    let x = t(&xs, &[4]);
    let want: Vec<f32> = xs.iter().map(|v| v.powf(1.7)).collect();
    common::close(&x.powf(1.7).to_vec::<f32>(), &want, 1e-5, 1e-6).unwrap();
    // Negative bases with integer exponents (powi), odd and even, and a negative exponent.
    let ns = [-2.0f32, -0.5, 0.75, 2.5];
    let n = t(&ns, &[4]);
    for p in [-3, -1, 0, 2, 5, 11] {
        let want: Vec<f32> = ns.iter().map(|v| v.powi(p)).collect();
        common::close(&n.powi(p).to_vec::<f32>(), &want, 1e-6, 0.0)
            .unwrap_or_else(|e| panic!("powi({p}): {e}"));
    }
    // Small integer powers are exact (repeated products, as JAX's integer_pow), and x⁰ = 1
    // even for NaN and infinities.
    assert_eq!(
        t(&[3.0, -7.0], &[2]).powi(3).to_vec::<f32>(),
        vec![27.0, -343.0]
    );
    assert_eq!(
        t(&[f32::NAN, f32::INFINITY], &[2]).powi(0).to_vec::<f32>(),
        vec![1.0, 1.0]
    );
    // A negative base to a non-integer power is NaN, as f32::powf and jnp.power.
    assert!(t(&[-2.0], &[1]).powf(0.5).item().is_nan());
    check_grads(
        |a: &[Tensor]| a[0].powf(1.7).sum_all(),
        &[x],
        2,
        &[Mode::Fwd, Mode::Rev],
        2e-2,
    )
    .unwrap();
    check_grads(
        |a: &[Tensor]| a[0].powi(3).sum_all(),
        std::slice::from_ref(&n),
        2,
        &[Mode::Fwd, Mode::Rev],
        2e-2,
    )
    .unwrap();
    let g = grad(|x: &Tensor| x.powi(3).sum_all())(&n).to_vec::<f32>();
    let want: Vec<f32> = ns.iter().map(|v| 3.0 * v * v).collect();
    common::close(&g, &want, 1e-5, 1e-6).unwrap();
}

#[test]
fn linspace_includes_both_ends() {
    common::setup();
    for (a, b, num) in [
        (0.0f32, 1.0f32, 5usize),
        (-3.0, 7.5, 7),
        (1.0, -1.0, 2),
        (0.1, 0.7, 13),
    ] {
        let got = Tensor::linspace(a, b, num).to_vec::<f32>();
        assert_eq!(got.len(), num);
        assert_eq!(got[0], a);
        assert_eq!(got[num - 1], b, "the last value is stop exactly");
        for (k, v) in got.iter().enumerate() {
            let want = a as f64 + k as f64 * (b as f64 - a as f64) / (num - 1) as f64;
            assert!(
                (*v as f64 - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{a}..{b}/{num}: {got:?}"
            );
        }
    }
    assert_eq!(Tensor::linspace(2.0, 5.0, 1).to_vec::<f32>(), vec![2.0]);
    assert_eq!(Tensor::linspace(2.0, 5.0, 0).shape(), &[0]);
}

#[test]
fn dot_covers_numpys_cases_and_differentiates() {
    common::setup();
    let a = [1.0f32, -2.0, 0.5, 3.0, 0.25, -1.0];
    let b = [0.5f32, 2.0, -1.0];
    let (m, v) = (t(&a, &[2, 3]), t(&b, &[3]));
    // Vector · vector.
    assert_eq!(v.dot(&v).item(), 0.25 + 4.0 + 1.0);
    // Matrix · vector, vector · matrix, matrix · matrix, scalar · anything.
    let mv: Vec<f32> = (0..2)
        .map(|i| (0..3).map(|k| a[i * 3 + k] * b[k]).sum())
        .collect();
    assert_eq!(m.dot(&v).to_vec::<f32>(), mv);
    let w = t(&[1.0, 2.0], &[2]);
    let vm: Vec<f32> = (0..3).map(|j| a[j] + 2.0 * a[3 + j]).collect();
    assert_eq!(w.dot(&m).to_vec::<f32>(), vm);
    assert_eq!(m.dot(&m.transpose([1, 0])).shape(), &[2, 2]);
    assert_eq!(
        Tensor::scalar(2.0).dot(&v).to_vec::<f32>(),
        vec![1.0, 4.0, -2.0]
    );
    // A 3-D left side contracts its last axis with a vector.
    let c = Tensor::arange(12).reshape([2, 2, 3]);
    assert_eq!(c.dot(&v).shape(), &[2, 2]);
    // Refused with both shapes named.
    let e = m.try_dot(&c).unwrap_err().to_string();
    assert!(e.starts_with("dot") && e.contains("[2, 2, 3]"), "{e}");
    let e = m.try_dot(&w).unwrap_err().to_string();
    assert!(
        e.starts_with("dot") && e.contains("[2, 3]") && e.contains("[2]"),
        "{e}"
    );
    check_grads(
        |x: &[Tensor]| x[0].dot(&x[1]).tanh().sum_all(),
        &[m, v],
        2,
        &[Mode::Fwd, Mode::Rev],
        2e-2,
    )
    .unwrap();
}

#[test]
fn norm_is_the_two_norm_with_jaxs_gradient() {
    common::setup();
    let xs = [3.0f32, -4.0, 12.0, 0.0];
    let x = t(&xs, &[2, 2]);
    assert_eq!(x.norm().item(), 13.0);
    assert_eq!(x.norm_axes(1).to_vec::<f32>(), vec![5.0, 12.0]);
    assert_eq!(
        x.norm_axes(0).to_vec::<f32>(),
        vec![(9.0f32 + 144.0).sqrt(), 4.0]
    );
    let g = grad(|x: &Tensor| x.norm())(&x).to_vec::<f32>();
    common::close(&g, &xs.map(|v| v / 13.0), 1e-6, 1e-7).unwrap();
    // At zero the gradient is NaN, as jax.grad(jnp.linalg.norm)(0) is.
    let g0 = grad(|x: &Tensor| x.norm())(&Tensor::zeros([3])).to_vec::<f32>();
    assert!(g0.iter().all(|v| v.is_nan()), "{g0:?}");
    // Overflow: the squares of 1e20 overflow float32, as they do in jnp.linalg.norm.
    assert!(t(&[1e20, 0.0], &[2]).norm().item().is_infinite());
    check_grads(
        |a: &[Tensor]| a[0].norm_axes(-1).sum_all(),
        &[t(&[0.5, -1.0, 2.0, 0.25], &[2, 2])],
        2,
        &[Mode::Fwd, Mode::Rev],
        2e-2,
    )
    .unwrap();
}

#[test]
fn integer_literals_are_weakly_typed_as_in_jax() {
    common::setup();
    let x = t(&[1.5, -3.0], &[2]);
    assert_eq!((&x * 2).to_vec::<f32>(), vec![3.0, -6.0]);
    assert_eq!((2 * &x).to_vec::<f32>(), vec![3.0, -6.0]);
    assert_eq!((&x / 2).to_vec::<f32>(), vec![0.75, -1.5]);
    assert_eq!((1 - &x).to_vec::<f32>(), vec![-0.5, 4.0]);
    assert_eq!((x.clone() + 1).dtype(), DType::F32);
    // Integer tensors stay integer, except under `/`, which divides truly (JAX's `/`).
    let i = Tensor::from_slice(&[7i32, -3], [2]);
    assert_eq!((&i * 3).to_vec::<i32>(), vec![21, -9]);
    assert_eq!((&i + 1).dtype(), DType::I32);
    let q = &i / 2;
    assert_eq!(q.dtype(), DType::F32);
    assert_eq!(q.to_vec::<f32>(), vec![3.5, -1.5]);
    assert_eq!((10 / &i).to_vec::<f32>(), vec![10.0 / 7.0, -10.0 / 3.0]);
    // Differentiable like the float literals.
    let g = grad(|x: &Tensor| (3 * x.square() / 2).sum_all())(&x).to_vec::<f32>();
    assert_eq!(g, vec![4.5, -9.0]);
}

#[test]
fn binary_methods_take_literals_as_weak_operands() {
    common::setup();
    let x = t(&[-1.5, 0.0, 2.0], &[3]);
    assert_eq!(x.maximum(0.0).to_vec::<f32>(), vec![0.0, 0.0, 2.0]);
    assert_eq!(x.minimum(1).to_vec::<f32>(), vec![-1.5, 0.0, 1.0]);
    assert_eq!(x.pow(2).to_vec::<f32>(), vec![2.25, 0.0, 4.0]);
    assert_eq!(x.add(x.clone()).to_vec::<f32>(), vec![-3.0, 0.0, 4.0]);
    // An integer tensor with an f32 literal becomes float (never a silent truncation).
    let i = Tensor::from_slice(&[1i32, 2], [2]);
    assert_eq!(i.mul(2.5).dtype(), DType::F32);
    assert_eq!(i.maximum(2).to_vec::<i32>(), vec![2, 2]);
    // The try_ twins take the same operands; errors still name the op and both shapes.
    assert!(x.try_maximum(0.5).is_ok());
    let e = x.try_add(Tensor::ones([2])).unwrap_err().to_string();
    assert!(
        e.contains("add") && e.contains("[3]") && e.contains("[2]"),
        "{e}"
    );
    // relu by maximum(0.0) differentiates as JAX's: ½ at the tie.
    let g = grad(|x: &Tensor| x.maximum(0.0).sum_all())(&x).to_vec::<f32>();
    assert_eq!(g, vec![0.0, 0.5, 1.0]);
}

#[test]
fn try_vmap_takes_axes_as_vmap_does() {
    common::setup();
    let xs = Tensor::from_vec((0..6).map(|v| v as f32).collect(), [2, 3]);
    let w = Tensor::from_vec(vec![1.0f32, 10.0], [2]);
    let f = |(x, w): &(Tensor, Tensor)| (x * w).sum_all();
    // Axis 1 of x against an unbatched w, as `vmap(f, [Some(1), None])`.
    let got = try_vmap(f, [Some(1), None])(&(xs.clone(), w.clone())).unwrap();
    let want = vmap(f, [Some(1), None])(&(xs.clone(), w.clone()));
    assert_eq!(got.to_vec::<f32>(), want.to_vec::<f32>());
    assert_eq!(got.to_vec::<f32>(), vec![30.0, 41.0, 52.0]);
    // An axis out of range is an error, not a panic.
    assert!(try_vmap(|x: &Tensor| x.sum_all(), 5)(&xs).is_err());
    let v2 = try_vmap2(|a: &Tensor, b: &Tensor| a * b, 0)(&xs, &xs).unwrap();
    assert_eq!(v2.shape(), &[2, 3]);
}
