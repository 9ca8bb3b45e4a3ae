//! More distributions of `jax.random`: exponential, Laplace, multivariate normal (the same
//! numbers as JAX for the same key, to a few ulp, since JAX's algorithms are transformations of
//! its uniform and normal draws), and gamma, beta, Dirichlet, Student's t and Poisson (the same
//! distributions as JAX's, by other algorithms: JAX's gamma runs a per-element rejection loop
//! whose keys cannot be reproduced in parallel).

use super::{Key, try_normal, try_uniform, try_uniform_range};
use crate::base::error::{Result, or_panic, shape_err};
use crate::ir::tensor::Tensor;

/// Standard exponential, as `jax.random.exponential(key, shape)`: `-log1p(-u)`.
///
/// ```
/// use wgrad::random;
/// let e = random::exponential(random::key(42), [2]).to_vec::<f32>();
/// assert!((e[0] - 0.670_817_5).abs() < 1e-6 && (e[1] - 1.138_800_6).abs() < 1e-6); // as JAX
/// ```
#[track_caller]
pub fn exponential(key: Key, shape: impl AsRef<[usize]>) -> Tensor {
    or_panic(try_exponential(key, shape))
}

/// Fallible [`exponential`].
///
/// ```
/// assert!(wgrad::random::try_exponential(wgrad::random::key(0), [2]).is_ok());
/// ```
pub fn try_exponential(key: Key, shape: impl AsRef<[usize]>) -> Result<Tensor> {
    try_uniform(key, shape)?.try_neg()?.try_log1p()?.try_neg()
}

/// Standard Laplace, as `jax.random.laplace(key, shape)`: `sign(u) log1p(-|u|)` for `u`
/// uniform in `(-1, 1)`.
///
/// ```
/// use wgrad::random;
/// let l = random::laplace(random::key(42), [2]).to_vec::<f32>();
/// assert!((l[0] - 0.022_839_65).abs() < 1e-6 && (l[1] + 0.445_653_56).abs() < 1e-6); // as JAX
/// ```
#[track_caller]
pub fn laplace(key: Key, shape: impl AsRef<[usize]>) -> Tensor {
    or_panic(try_laplace(key, shape))
}

/// Fallible [`laplace`].
///
/// ```
/// assert!(wgrad::random::try_laplace(wgrad::random::key(0), [2]).is_ok());
/// ```
pub fn try_laplace(key: Key, shape: impl AsRef<[usize]>) -> Result<Tensor> {
    let u = try_uniform_range(key, shape, -1.0 + f32::EPSILON / 2.0, 1.0)?;
    u.try_sign()?.try_mul(&u.try_abs()?.try_neg()?.try_log1p()?)
}

/// Draws of the multivariate normal `N(mean, cov)` of shape `shape + [d]`, as
/// `jax.random.multivariate_normal(key, mean, cov, shape)`: `mean + L z` with `L` the
/// Cholesky factor of `cov` (`d × d`) and `z` standard normal.
///
/// ```
/// use wgrad::prelude::*;
/// use wgrad::random;
/// let mean = Tensor::from_vec(vec![1.0f32, -2.0], [2]);
/// let cov = Tensor::from_vec(vec![2.0f32, 0.5, 0.5, 1.0], [2, 2]);
/// let x = random::multivariate_normal(random::key(42), &mean, &cov, [3]).to_vec::<f32>();
/// assert!((x[0] - 0.959_971_25).abs() < 1e-5 && (x[1] + 1.573_045_4).abs() < 1e-5); // as JAX
/// ```
#[track_caller]
pub fn multivariate_normal(
    key: Key,
    mean: &Tensor,
    cov: &Tensor,
    shape: impl AsRef<[usize]>,
) -> Tensor {
    or_panic(try_multivariate_normal(key, mean, cov, shape))
}

/// Fallible [`multivariate_normal`]: an error unless `mean` is `[d]` and `cov` `[d, d]`.
///
/// ```
/// use wgrad::prelude::*;
/// let r = wgrad::random::try_multivariate_normal(wgrad::random::key(0), &Tensor::zeros([2]), &Tensor::eye(3), [1]);
/// assert!(r.is_err());
/// ```
pub fn try_multivariate_normal(
    key: Key,
    mean: &Tensor,
    cov: &Tensor,
    shape: impl AsRef<[usize]>,
) -> Result<Tensor> {
    let d = mean.shape().first().copied().unwrap_or(0);
    if mean.rank() != 1 || cov.shape() != [d, d] {
        return shape_err(
            "multivariate_normal",
            format!(
                "mean [d] and cov [d, d] expected, got {:?} and {:?}",
                mean.shape(),
                cov.shape()
            ),
        );
    }
    let mut s = shape.as_ref().to_vec();
    s.push(d);
    let z = try_normal(key, &s)?;
    let l = crate::compose::linalg::try_cholesky(cov)?;
    mean.try_add(&z.try_matmul(&l.try_mt()?)?)
}

/// Proposal rounds of the gamma sampler: each accepts with probability above 0.95, so a draw
/// is still unaccepted after all of them with probability below 1e-15 (it then keeps its last
/// proposal).
const GAMMA_ROUNDS: u32 = 12;

/// Gamma(`a`, 1) draws of shape `shape` (`a` broadcasts to it), the distribution of
/// `jax.random.gamma`: Marsaglia and Tsang's method, every round drawn for every element in
/// parallel and the first accepted proposal kept; for `a < 1` the draw for `a + 1` times
/// `u^(1/a)`. Not differentiable in `a`.
///
/// ```
/// use wgrad::prelude::*;
/// use wgrad::random;
/// let g = random::gamma(random::key(0), &Tensor::scalar(3.0), [20_000]);
/// assert!((g.mean_all().item() - 3.0).abs() < 0.1); // mean a, variance a
/// ```
#[track_caller]
pub fn gamma(key: Key, a: &Tensor, shape: impl AsRef<[usize]>) -> Tensor {
    or_panic(try_gamma(key, a, shape))
}

/// Fallible [`gamma`]: an error when `a` does not broadcast to `shape`.
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::random::try_gamma(wgrad::random::key(0), &Tensor::ones([3]), [2]).is_err());
/// ```
pub fn try_gamma(key: Key, a: &Tensor, shape: impl AsRef<[usize]>) -> Result<Tensor> {
    let shape = shape.as_ref();
    let a = a.stop_gradient().try_broadcast_to(shape)?;
    let small = a.try_compare("<", &Tensor::scalar(1.0))?;
    let one = a.ones_like();
    let boosted = crate::prim::logic::try_where(&small, &a.try_add(&one)?, &a)?;
    let d = boosted.try_sub(Tensor::scalar(1.0 / 3.0))?;
    let c = Tensor::scalar(1.0).try_div(&d.try_mul(Tensor::scalar(9.0))?.try_sqrt()?)?;
    let f32_of = |m: &Tensor| m.try_cast(crate::DType::F32);
    // `out` holds each element's first accepted proposal; `done` is 1 once it has one.
    let mut out = d.zeros_like();
    let mut done = d.zeros_like();
    for round in 0..GAMMA_ROUNDS {
        let [kx, ku] = key.fold_in(round).split_n::<2>();
        let x = try_normal(kx, shape)?;
        let u = try_uniform(ku, shape)?;
        let cx = x.try_mul(&c)?.try_add(&one)?;
        let v = cx.try_mul(&cx)?.try_mul(&cx)?;
        let positive = v.try_compare(">", &Tensor::scalar(0.0))?;
        let safe_v = crate::prim::logic::try_where(&positive, &v, &one)?;
        // Accept when log u < x²/2 + d - d v + d log v.
        let bound = x
            .try_mul(&x)?
            .try_mul(Tensor::scalar(0.5))?
            .try_add(&d)?
            .try_sub(&d.try_mul(&safe_v)?)?
            .try_add(&d.try_mul(&safe_v.try_log()?)?)?;
        let accept =
            f32_of(&u.try_log()?.try_compare("<", &bound)?)?.try_mul(&f32_of(&positive)?)?;
        let open = one.try_sub(&done)?;
        // The rare draw never accepted keeps its final proposal.
        let take = if round + 1 == GAMMA_ROUNDS {
            open
        } else {
            accept.try_mul(&open)?
        };
        out = out.try_add(&take.try_mul(&d.try_mul(&safe_v)?)?)?;
        done = done.try_add(&take)?;
    }
    // a < 1: Gamma(a) = Gamma(a + 1) · u^(1/a).
    let u = try_uniform(key.fold_in(GAMMA_ROUNDS), shape)?;
    let scale = u.try_pow(&Tensor::scalar(1.0).try_div(&a)?)?;
    crate::prim::logic::try_where(&small, &out.try_mul(&scale)?, &out)
}

/// Beta(`a`, `b`) draws, as `jax.random.beta`'s distribution: `X / (X + Y)` for independent
/// gammas.
///
/// ```
/// use wgrad::prelude::*;
/// use wgrad::random;
/// let x = random::beta(random::key(1), &Tensor::scalar(2.0), &Tensor::scalar(6.0), [20_000]);
/// assert!((x.mean_all().item() - 0.25).abs() < 0.01);
/// ```
#[track_caller]
pub fn beta(key: Key, a: &Tensor, b: &Tensor, shape: impl AsRef<[usize]>) -> Tensor {
    or_panic(try_beta(key, a, b, shape))
}

/// Fallible [`beta`].
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::random::try_beta(wgrad::random::key(0), &Tensor::ones([3]), &Tensor::ones([3]), [2]).is_err());
/// ```
pub fn try_beta(key: Key, a: &Tensor, b: &Tensor, shape: impl AsRef<[usize]>) -> Result<Tensor> {
    let [ka, kb] = key.split_n::<2>();
    let x = try_gamma(ka, a, &shape)?;
    let y = try_gamma(kb, b, &shape)?;
    x.try_div(&x.try_add(&y)?)
}

/// Dirichlet(`alpha`) draws of shape `shape + [k]` (`alpha` is `[k]`), as
/// `jax.random.dirichlet`'s distribution: gammas normalized to sum to 1.
///
/// ```
/// use wgrad::prelude::*;
/// use wgrad::random;
/// let alpha = Tensor::from_vec(vec![1.0f32, 2.0, 5.0], [3]);
/// let p = random::dirichlet(random::key(2), &alpha, [4]);
/// assert_eq!(p.shape(), &[4, 3]);
/// assert!(p.sum_axes(-1).to_vec::<f32>().iter().all(|s| (s - 1.0).abs() < 1e-5));
/// ```
#[track_caller]
pub fn dirichlet(key: Key, alpha: &Tensor, shape: impl AsRef<[usize]>) -> Tensor {
    or_panic(try_dirichlet(key, alpha, shape))
}

/// Fallible [`dirichlet`]: an error unless `alpha` is 1-D.
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::random::try_dirichlet(wgrad::random::key(0), &Tensor::ones([2, 2]), [1]).is_err());
/// ```
pub fn try_dirichlet(key: Key, alpha: &Tensor, shape: impl AsRef<[usize]>) -> Result<Tensor> {
    if alpha.rank() != 1 {
        return shape_err(
            "dirichlet",
            format!("alpha must be 1-D, got shape {:?}", alpha.shape()),
        );
    }
    let mut s = shape.as_ref().to_vec();
    s.push(alpha.shape()[0]);
    let g = try_gamma(key, alpha, &s)?;
    g.try_div(&g.try_sum_keepdim(-1)?)
}

/// Student's t draws with `df` degrees of freedom, as `jax.random.t`'s distribution:
/// `z / sqrt(2 G / df)` with `G` ~ Gamma(df/2).
///
/// ```
/// use wgrad::prelude::*;
/// use wgrad::random;
/// let t = random::t(random::key(3), &Tensor::scalar(5.0), [40_000]);
/// assert!(t.mean_all().item().abs() < 0.03); // variance df/(df-2) = 5/3
/// assert!((t.square().mean_all().item() - 5.0 / 3.0).abs() < 0.15);
/// ```
#[track_caller]
pub fn t(key: Key, df: &Tensor, shape: impl AsRef<[usize]>) -> Tensor {
    or_panic(try_t(key, df, shape))
}

/// Fallible [`t`].
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::random::try_t(wgrad::random::key(0), &Tensor::ones([3]), [2]).is_err());
/// ```
pub fn try_t(key: Key, df: &Tensor, shape: impl AsRef<[usize]>) -> Result<Tensor> {
    let [kz, kg] = key.split_n::<2>();
    let z = try_normal(kz, &shape)?;
    let half = df.try_mul(Tensor::scalar(0.5))?;
    let g = try_gamma(kg, &half, &shape)?;
    z.try_div(&g.try_div(&half)?.try_sqrt()?)
}

/// Poisson(`lam`) counts (i32), as `jax.random.poisson`'s distribution: the number of arrivals
/// of a rate-one process before `lam` — partial sums of exponential draws, as many as the
/// count can reach with probability above 1e-30 (`lam + 12√lam + 30`), so `lam` is a host
/// value, at most 10⁴.
///
/// ```
/// use wgrad::random;
/// let k = random::poisson(random::key(4), 3.5, [20_000]).to_vec::<i32>();
/// let mean = k.iter().map(|&v| v as f64).sum::<f64>() / k.len() as f64;
/// assert!((mean - 3.5).abs() < 0.06);
/// ```
#[track_caller]
pub fn poisson(key: Key, lam: f32, shape: impl AsRef<[usize]>) -> Tensor {
    or_panic(try_poisson(key, lam, shape))
}

/// Fallible [`poisson`]: an error for `lam` negative, not finite or above 10⁴.
///
/// ```
/// assert!(wgrad::random::try_poisson(wgrad::random::key(0), -1.0, [2]).is_err());
/// ```
pub fn try_poisson(key: Key, lam: f32, shape: impl AsRef<[usize]>) -> Result<Tensor> {
    if !(0.0..=1e4).contains(&lam) {
        return shape_err("poisson", format!("lam must be in [0, 1e4], got {lam}"));
    }
    let rounds = (lam + 12.0 * lam.sqrt() + 30.0).ceil() as usize;
    let mut s = shape.as_ref().to_vec();
    s.push(rounds);
    let arrivals = try_exponential(key, &s)?.try_cumsum(-1)?;
    arrivals
        .try_compare("<", &Tensor::scalar(lam))?
        .try_cast(crate::DType::I32)?
        .try_sum_axes(-1)
}
