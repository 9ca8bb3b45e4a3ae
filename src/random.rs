//! Random numbers from keys, as `jax.random`: a [`Key`] is two 32-bit words; [`Key::split`]
//! and [`Key::fold_in`] derive independent keys (on the host, at once); the samplers draw on
//! the device from Threefry-2x32 (20 rounds), counter-based, so every adapter — lavapipe,
//! llvmpipe GL, a browser, a GPU — gives the same bits, and the same bits as JAX's
//! (partitionable) Threefry: `uniform(key(42), [5])` equals
//! `jax.random.uniform(jax.random.PRNGKey(42), (5,))` exactly. Ranges, `normal`,
//! `truncated_normal` and `gumbel` match JAX to a few ulp (XLA fuses some of their arithmetic
//! into FMAs; `normal` goes through the inverse error function).
//!
//! ```
//! use wgrad::prelude::*;
//! use wgrad::random;
//! let k = random::key(42);
//! let [k1, k2] = k.split_n::<2>();
//! let w = random::normal(k1, [3, 4]) * 0.1;
//! let mask = random::bernoulli(k2, 0.9, [3, 4]);
//! assert_eq!((w.shape(), mask.dtype()), (&[3usize, 4][..], DType::Bool));
//! ```
//!
//! Keys are host values: they are not traced by transforms (a `vmap` over keys is written
//! as a loop over `split`).

mod distributions;
use crate::base::error::{Result, or_panic};
use crate::ir::tensor::Tensor;
pub use distributions::{
    beta, dirichlet, exponential, gamma, laplace, multivariate_normal, poisson, t, try_beta,
    try_dirichlet, try_exponential, try_gamma, try_laplace, try_multivariate_normal, try_poisson,
    try_t,
};

/// A PRNG key: two 32-bit words (JAX's raw Threefry key, high word first).
///
/// ```
/// assert_eq!(wgrad::random::key(42).words(), [0, 42]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key([u32; 2]);

/// The key of a 64-bit seed: its high and low words (`jax.random.PRNGKey(seed)`; JAX without
/// `jax_enable_x64` keeps only the low 32 bits of a seed).
///
/// ```
/// assert_eq!(wgrad::random::key(1 << 40 | 5).words(), [256, 5]);
/// ```
pub fn key(seed: u64) -> Key {
    Key([(seed >> 32) as u32, seed as u32])
}

pub(crate) use crate::base::special::threefry2x32;

/// Seeded shorthands: a seed instead of a key.
impl Tensor {
    /// Uniform random numbers in [0, 1), reproducible from `seed` on every adapter: the same
    /// numbers as `jax.random.uniform(jax.random.PRNGKey(seed), shape)` (Threefry-2x32, so
    /// different seeds give independent streams). See [`crate::random`] for keys.
    ///
    /// ```
    /// let u = wgrad::Tensor::rand([1000], 7).to_vec::<f32>();
    /// assert!(u.iter().all(|&v| (0.0..1.0).contains(&v)));
    /// assert_eq!(wgrad::Tensor::rand([1], 42).item(), 0.488_709_57); // as JAX
    /// ```
    #[track_caller]
    pub fn rand(shape: impl AsRef<[usize]>, seed: u64) -> Tensor {
        uniform(key(seed), shape)
    }

    /// Standard normal random numbers, reproducible from `seed`: those of
    /// `jax.random.normal(jax.random.PRNGKey(seed), shape)`, to a few ulp.
    ///
    /// ```
    /// let z = wgrad::Tensor::randn([4096], 1);
    /// let mean = z.mean_all().item();
    /// assert!(mean.abs() < 0.1);
    /// ```
    #[track_caller]
    pub fn randn(shape: impl AsRef<[usize]>, seed: u64) -> Tensor {
        normal(key(seed), shape)
    }
}

impl Key {
    /// The key's two words.
    ///
    /// ```
    /// assert_eq!(wgrad::random::key(7).words(), [0, 7]);
    /// ```
    pub fn words(self) -> [u32; 2] {
        self.0
    }
    /// `n` new keys, independent of each other and of this one (`jax.random.split`).
    ///
    /// ```
    /// let keys = wgrad::random::key(42).split(3);
    /// assert_eq!(keys[0].words(), [1832780943, 270669613]); // as JAX
    /// ```
    pub fn split(self, n: usize) -> Vec<Key> {
        (0..n)
            .map(|j| Key(threefry2x32(self.0, [(j as u64 >> 32) as u32, j as u32])))
            .collect()
    }
    /// [`Key::split`] into an array, for destructuring: `let [a, b] = k.split_n::<2>();`.
    ///
    /// ```
    /// let [a, b] = wgrad::random::key(0).split_n::<2>();
    /// assert_ne!(a, b);
    /// ```
    pub fn split_n<const N: usize>(self) -> [Key; N] {
        std::array::from_fn(|j| Key(threefry2x32(self.0, [0, j as u32])))
    }
    /// A new key from this one and `data` (a step count, a layer index), as
    /// `jax.random.fold_in`.
    ///
    /// ```
    /// assert_eq!(wgrad::random::key(42).fold_in(7).words(), [2547012911, 1371500959]); // as JAX
    /// ```
    pub fn fold_in(self, data: u32) -> Key {
        Key(threefry2x32(self.0, [0, data]))
    }
}

/// Uniform in `[0, 1)`, as `jax.random.uniform(key, shape)` (bit for bit).
///
/// ```
/// use wgrad::random;
/// let u = random::uniform(random::key(42), [2]).to_vec::<f32>();
/// assert_eq!(u, vec![0.488_709_57, 0.679_797_2]);
/// ```
#[track_caller]
pub fn uniform(key: Key, shape: impl AsRef<[usize]>) -> Tensor {
    or_panic(try_uniform(key, shape))
}

/// Fallible [`uniform`].
///
/// ```
/// assert!(wgrad::random::try_uniform(wgrad::random::key(0), [1 << 62, 8]).is_err());
/// ```
pub fn try_uniform(key: Key, shape: impl AsRef<[usize]>) -> Result<Tensor> {
    Tensor::try_uniform_bits(shape.as_ref(), key.0)
}

/// Uniform in `[minval, maxval)`, as `jax.random.uniform(key, shape, minval=, maxval=)`.
///
/// ```
/// use wgrad::random;
/// let u = random::uniform_range(random::key(1), [100], -2.0, 3.0).to_vec::<f32>();
/// assert!(u.iter().all(|&v| (-2.0..3.0).contains(&v)));
/// ```
#[track_caller]
pub fn uniform_range(key: Key, shape: impl AsRef<[usize]>, minval: f32, maxval: f32) -> Tensor {
    or_panic(try_uniform_range(key, shape, minval, maxval))
}

/// Fallible [`uniform_range`].
///
/// ```
/// assert!(wgrad::random::try_uniform_range(wgrad::random::key(0), [2], 0.0, 1.0).is_ok());
/// ```
pub fn try_uniform_range(
    key: Key,
    shape: impl AsRef<[usize]>,
    minval: f32,
    maxval: f32,
) -> Result<Tensor> {
    let u = try_uniform(key, shape)?;
    let lo = Tensor::scalar(minval);
    (u * (maxval - minval) + &lo).try_maximum(&lo)
}

/// Standard normal, as `jax.random.normal(key, shape)` (to a few ulp): the inverse error
/// function of a uniform draw on (-1, 1), times √2.
///
/// ```
/// use wgrad::random;
/// let z = random::normal(random::key(42), [1]).item();
/// assert!((z - -0.028_304_616).abs() < 1e-6);
/// ```
#[track_caller]
pub fn normal(key: Key, shape: impl AsRef<[usize]>) -> Tensor {
    or_panic(try_normal(key, shape))
}

/// Fallible [`normal`].
///
/// ```
/// assert!(wgrad::random::try_normal(wgrad::random::key(0), [3]).is_ok());
/// ```
pub fn try_normal(key: Key, shape: impl AsRef<[usize]>) -> Result<Tensor> {
    // The smallest float above -1, as JAX's `nextafter(-1, 0)`.
    let lo = f32::from_bits((-1.0f32).to_bits() - 1);
    let u = try_uniform_range(key, shape, lo, 1.0)?;
    Ok(u.try_erfinv()? * std::f32::consts::SQRT_2)
}

/// `true` with probability `p`, as `jax.random.bernoulli(key, p, shape)`.
///
/// ```
/// use wgrad::random;
/// let b = random::bernoulli(random::key(42), 0.3, [8]).to_vec::<bool>();
/// assert_eq!(b, vec![false, false, false, false, false, false, true, false]); // as JAX
/// ```
#[track_caller]
pub fn bernoulli(key: Key, p: f32, shape: impl AsRef<[usize]>) -> Tensor {
    or_panic(try_bernoulli(key, p, shape))
}

/// Fallible [`bernoulli`].
///
/// ```
/// assert!(wgrad::random::try_bernoulli(wgrad::random::key(0), 0.5, [2]).is_ok());
/// ```
pub fn try_bernoulli(key: Key, p: f32, shape: impl AsRef<[usize]>) -> Result<Tensor> {
    try_uniform(key, shape)?.try_compare("<", &Tensor::scalar(p))
}

/// Standard Gumbel, as `jax.random.gumbel(key, shape)`: `-log(-log(u))` with `u` uniform in
/// `[tiny, 1)`.
///
/// ```
/// use wgrad::random;
/// let g = random::gumbel(random::key(42), [1]).item();
/// assert!((g - 0.334_093_4).abs() < 1e-5);
/// ```
#[track_caller]
pub fn gumbel(key: Key, shape: impl AsRef<[usize]>) -> Tensor {
    or_panic(try_gumbel(key, shape))
}

/// Fallible [`gumbel`].
///
/// ```
/// assert!(wgrad::random::try_gumbel(wgrad::random::key(0), [2]).is_ok());
/// ```
pub fn try_gumbel(key: Key, shape: impl AsRef<[usize]>) -> Result<Tensor> {
    let u = try_uniform_range(key, shape, f32::MIN_POSITIVE, 1.0)?;
    Ok(-(-u.try_log()?).try_log()?)
}

/// A category per row of `logits` along `axis` (which is removed), drawn with probabilities
/// `softmax(logits)`, as `jax.random.categorical` (the Gumbel-max trick); `i32`.
///
/// ```
/// use wgrad::prelude::*;
/// use wgrad::random;
/// let logits = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0, -1.0, 0.5], [2, 3]);
/// assert_eq!(random::categorical(random::key(42), &logits, -1).to_vec::<i32>(), vec![2, 0]);
/// ```
#[track_caller]
pub fn categorical(key: Key, logits: &Tensor, axis: isize) -> Tensor {
    or_panic(try_categorical(key, logits, axis))
}

/// Fallible [`categorical`].
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::random::try_categorical(wgrad::random::key(0), &Tensor::zeros([3]), 1).is_err());
/// ```
pub fn try_categorical(key: Key, logits: &Tensor, axis: isize) -> Result<Tensor> {
    let noise = try_gumbel(key, logits.shape())?;
    (logits.stop_gradient() + noise).try_argmax(axis)
}

/// Normal truncated to `[lower, upper]`, as `jax.random.truncated_normal` (to a few ulp): the
/// inverse error function of a uniform draw between the bounds' error functions.
///
/// ```
/// use wgrad::random;
/// let t = random::truncated_normal(random::key(3), -1.0, 2.0, [1000]).to_vec::<f32>();
/// assert!(t.iter().all(|&v| (-1.0..=2.0).contains(&v)));
/// ```
#[track_caller]
pub fn truncated_normal(key: Key, lower: f32, upper: f32, shape: impl AsRef<[usize]>) -> Tensor {
    or_panic(try_truncated_normal(key, lower, upper, shape))
}

/// Fallible [`truncated_normal`]: `lower` must not exceed `upper`.
///
/// ```
/// assert!(wgrad::random::try_truncated_normal(wgrad::random::key(0), 1.0, -1.0, [2]).is_err());
/// ```
pub fn try_truncated_normal(
    key: Key,
    lower: f32,
    upper: f32,
    shape: impl AsRef<[usize]>,
) -> Result<Tensor> {
    if lower > upper {
        return crate::base::error::shape_err(
            "truncated_normal",
            format!("lower {lower} exceeds upper {upper}"),
        );
    }
    let s2 = std::f32::consts::SQRT_2;
    let a = libm_erf(lower / s2);
    let b = libm_erf(upper / s2);
    let u = try_uniform_range(key, shape, a, b)?;
    let out = u.try_erfinv()? * s2;
    // Inside the bounds strictly, as JAX (its `nextafter` towards the inside).
    let lo = next_toward(lower, f32::INFINITY);
    let hi = next_toward(upper, f32::NEG_INFINITY);
    out.try_clip(lo, hi)
}

/// A random permutation of `0..n` as an i32 tensor `[n]`: `jax.random.permutation(key, n)`,
/// the same permutation for the same key (JAX sorts by random 32-bit keys, in
/// `ceil(3 ln n / ln(2^32 - 1))` rounds; so does this, on the host: the result is a small
/// index tensor, ready for [`Tensor::take`] to shuffle a dataset's rows).
///
/// ```
/// let p = wgrad::random::permutation(wgrad::random::key(0), 10);
/// assert_eq!(p.to_vec::<i32>(), vec![0, 1, 8, 5, 6, 4, 3, 2, 7, 9]); // as JAX
/// ```
#[track_caller]
pub fn permutation(key: Key, n: usize) -> Tensor {
    or_panic(try_permutation(key, n))
}

/// Fallible [`permutation`]: `n` must fit an i32.
///
/// ```
/// assert!(wgrad::random::try_permutation(wgrad::random::key(0), 1 << 31).is_err());
/// ```
pub fn try_permutation(key: Key, n: usize) -> Result<Tensor> {
    if n > i32::MAX as usize {
        return Err(crate::base::error::Error::TooLarge {
            op: "permutation",
            msg: format!("{n} elements do not fit i32 indices"),
        });
    }
    let mut x: Vec<i32> = (0..n as i32).collect();
    let rounds = (3.0 * (n.max(1) as f64).ln() / (u32::MAX as f64).ln()).ceil() as usize;
    let mut key = key;
    for _ in 0..rounds {
        let [next, sub] = key.split_n::<2>();
        key = next;
        let bits: Vec<u32> = (0..n as u64)
            .map(|i| {
                let [a, b] = threefry2x32(sub.0, [(i >> 32) as u32, i as u32]);
                a ^ b
            })
            .collect();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| bits[i]);
        x = order.iter().map(|&i| x[i]).collect();
    }
    Tensor::try_from_slice(&x, [n])
}

/// erf of a bound of `truncated_normal`, on the host in f64 (rounded to f32): the Taylor
/// series below 2, erfc's continued fraction above.
fn libm_erf(x: f32) -> f32 {
    let x = x as f64;
    let e = if x.abs() < 2.0 {
        // Taylor series: 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1)).
        let mut sum = 0.0;
        let mut term = x;
        for n in 0..60 {
            sum += term / (2 * n + 1) as f64;
            term *= -x * x / (n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // Continued fraction for erfc (Lentz), then the sign.
        let a = x.abs();
        let mut f = a;
        let mut c = a;
        let mut d = 0.0;
        for k in 1..200 {
            let an = k as f64 / 2.0;
            d = a + an * d;
            d = 1.0 / d;
            c = a + an / c;
            f *= c * d;
        }
        let erfc = (-a * a).exp() / (f * std::f64::consts::PI.sqrt());
        (1.0 - erfc) * x.signum()
    };
    e as f32
}

fn next_toward(x: f32, toward: f32) -> f32 {
    if x == toward || x.is_nan() {
        return x;
    }
    if x == 0.0 {
        let tiny = f32::from_bits(1);
        return if toward > 0.0 { tiny } else { -tiny };
    }
    let up = (toward > x) == (x > 0.0);
    f32::from_bits(if up { x.to_bits() + 1 } else { x.to_bits() - 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_jax() {
        let k = key(42);
        let s: Vec<[u32; 2]> = k.split(3).into_iter().map(Key::words).collect();
        assert_eq!(
            s,
            vec![
                [1832780943, 270669613],
                [64467757, 2916123636],
                [2465931498, 255383827]
            ]
        );
        assert_eq!(k.fold_in(7).words(), [2547012911, 1371500959]);
        assert_eq!(k.split_n::<3>().map(Key::words).to_vec(), s);
    }

    #[test]
    fn host_erf_and_nextafter() {
        for (x, want) in [
            (0.5f32, 0.520_499_9f32),
            (-1.0, -0.842_700_8),
            (2.5, 0.999_593),
        ] {
            assert!((libm_erf(x) - want).abs() < 1e-6, "{x}");
        }
        assert_eq!(next_toward(1.0, 2.0), f32::from_bits(1.0f32.to_bits() + 1));
        assert_eq!(
            next_toward(-1.0, 0.0),
            f32::from_bits((-1.0f32).to_bits() - 1)
        );
        assert!(next_toward(0.0, -1.0) < 0.0);
    }
}
