//! Discrete Fourier transforms along the last axis (`wgrad::fft`), complex values as
//! `(re, im)` pairs of f32 tensors, NumPy's normalization (none forward, `1/n` inverse).
//!
//! Any length: a length with a factor of at most 64 is split by the four-step (Cooley–Tukey)
//! decomposition `n = n1·n2` — a DFT of `n1` as a batched matmul by the `n1 × n1` DFT matrix,
//! the twiddles, then the DFT of `n2` recursively — so the work is `O(n Σ factors)` in
//! `O(log₆₄ n)` levels of matmul kernels; lengths whose remaining factor is a prime above 64
//! go through Bluestein's chirp-z convolution on a power-of-two FFT. Everything is built from
//! matmuls, products and reshapes, so the transforms differentiate (their derivatives are the
//! transposed transforms, as JAX's) and batch like any composite. Constants (DFT matrices,
//! twiddles, chirps) are computed on the host in float64.

use crate::base::error::{Result, or_panic, shape_err};
use crate::ir::tensor::Tensor;
use std::f64::consts::PI;

/// The largest DFT done directly, as one matmul.
const DIRECT: usize = 64;

/// A complex tensor as its real and imaginary parts; `im: None` is a real tensor (an rfft's
/// input), whose products skip the zero half.
#[derive(Clone)]
struct Complex {
    re: Tensor,
    im: Option<Tensor>,
}

impl Complex {
    fn new(re: Tensor, im: Tensor) -> Complex {
        Complex { re, im: Some(im) }
    }
    /// The imaginary part, zeros for a real tensor.
    fn imag(&self) -> Tensor {
        self.im.clone().unwrap_or_else(|| self.re.zeros_like())
    }
    /// `self · o` elementwise, `o` complex.
    fn mul(&self, o: &Complex) -> Result<Complex> {
        let oi = o.imag();
        Ok(match &self.im {
            None => Complex::new(self.re.try_mul(&o.re)?, self.re.try_mul(&oi)?),
            Some(im) => Complex::new(
                self.re.try_mul(&o.re)?.try_sub(&im.try_mul(&oi)?)?,
                self.re.try_mul(&oi)?.try_add(&im.try_mul(&o.re)?)?,
            ),
        })
    }
    /// `self @ m` along the last axis for a constant complex matrix `m`.
    fn right_matmul(&self, m: &Complex) -> Result<Complex> {
        let mi = m.imag();
        Ok(match &self.im {
            None => Complex::new(self.re.try_matmul(&m.re)?, self.re.try_matmul(&mi)?),
            Some(im) => Complex::new(
                self.re.try_matmul(&m.re)?.try_sub(&im.try_matmul(&mi)?)?,
                self.re.try_matmul(&mi)?.try_add(&im.try_matmul(&m.re)?)?,
            ),
        })
    }
    fn map(&self, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Complex> {
        Ok(Complex {
            re: f(&self.re)?,
            im: self.im.as_ref().map(&f).transpose()?,
        })
    }
    fn conj(&self) -> Result<Complex> {
        Ok(Complex {
            re: self.re.clone(),
            im: self.im.as_ref().map(|t| t.try_neg()).transpose()?,
        })
    }
}

/// A constant complex tensor of `shape` with entries `e^{i θ(k)}` at flat index `k`.
fn phases(shape: &[usize], theta: impl Fn(usize) -> f64) -> Complex {
    let n: usize = shape.iter().product();
    let (re, im): (Vec<f32>, Vec<f32>) = (0..n)
        .map(|k| {
            let t = theta(k);
            (t.cos() as f32, t.sin() as f32)
        })
        .unzip();
    Complex::new(Tensor::from_vec(re, shape), Tensor::from_vec(im, shape))
}

/// The `n × n` DFT matrix `F[t, k] = e^{-2πi tk/n}` (symmetric).
fn dft_matrix(n: usize) -> Complex {
    phases(&[n, n], |i| {
        -2.0 * PI * ((i / n) * (i % n) % n) as f64 / n as f64
    })
}

/// The smallest factor of `n` above 1 that is at most [`DIRECT`], preferring the largest such
/// divisor (fewest levels).
fn split(n: usize) -> Option<usize> {
    (2..=DIRECT.min(n - 1)).rev().find(|d| n % d == 0)
}

/// The forward DFT of `z` along its last axis.
fn dft(z: &Complex) -> Result<Complex> {
    let r = z.re.rank();
    let n = z.re.shape()[r - 1];
    if n <= 1 {
        return Ok(z.clone());
    }
    if n <= DIRECT {
        // X = z F.
        return z.right_matmul(&dft_matrix(n));
    }
    match split(n) {
        Some(n1) => four_step(z, n1, n / n1),
        None => bluestein(z),
    }
}

/// `n = n1·n2`: DFTs of `n1` over the strided columns, twiddles, DFTs of `n2`, transpose.
fn four_step(z: &Complex, n1: usize, n2: usize) -> Result<Complex> {
    let r = z.re.rank();
    let n = n1 * n2;
    let mut shape = z.re.shape()[..r - 1].to_vec();
    shape.extend([n1, n2]);
    // t = n2·t1 + t2 → [.., t1, t2]; the DFT of n1 along t1 as Zᵀ F_{n1} (F symmetric, a 2-D
    // right operand: no broadcast copies of it), giving [.., t2, k1].
    let zz = z.map(|t| t.try_reshape(&shape)?.try_mt())?;
    let a = zz.right_matmul(&dft_matrix(n1))?; // [.., t2, k1]
    let tw = phases(&[n2, n1], |i| {
        -2.0 * PI * ((i / n1) * (i % n1) % n) as f64 / n as f64
    });
    let b = a.mul(&tw)?.map(|t| t.try_mt())?; // [.., k1, t2]
    let c = dft(&b)?; // [.., k1, k2]
    // k = k1 + n1·k2: [.., k2, k1] flattened.
    let mut flat = z.re.shape()[..r - 1].to_vec();
    flat.push(n);
    c.map(|t| t.try_mt()?.try_reshape(&flat))
}

/// Bluestein: `X_k = b̄_k Σ_t (z_t b̄_t) b_{k-t}` with `b_t = e^{iπ t²/n}`, the convolution by a
/// power-of-two FFT of length `m >= 2n - 1`.
fn bluestein(z: &Complex) -> Result<Complex> {
    let r = z.re.rank();
    let n = z.re.shape()[r - 1];
    let m = (2 * n - 1).next_power_of_two();
    let chirp = |t: usize| PI * ((t * t) % (2 * n)) as f64 / n as f64;
    let b_conj = phases(&[n], |t| -chirp(t));
    let a = z.mul(&b_conj)?;
    let mut hi = vec![0; r];
    hi[r - 1] = m - n;
    let a_pad = a.map(|t| t.try_pad(vec![0; r], hi.clone()))?;
    // b at offsets 0..n and, wrapped, -(n-1)..-1; zero between.
    let (re, im): (Vec<f32>, Vec<f32>) = (0..m)
        .map(|k| {
            let t = if k < n {
                chirp(k)
            } else if k > m - n {
                chirp(m - k)
            } else {
                return (0.0, 0.0);
            };
            (t.cos() as f32, t.sin() as f32)
        })
        .unzip();
    let b = Complex::new(Tensor::from_vec(re, [m]), Tensor::from_vec(im, [m]));
    let fa = dft(&a_pad)?;
    let fb = dft(&b)?;
    let conv = inverse(&fa.mul(&fb)?)?;
    let y = conv.map(|t| t.try_slice_axis(-1, 0..n))?;
    y.mul(&b_conj)
}

/// The inverse DFT (with the `1/n`): `conj(DFT(conj z)) / n`.
fn inverse(z: &Complex) -> Result<Complex> {
    let n = z.re.shape()[z.re.rank() - 1];
    let y = dft(&z.conj()?)?.conj()?;
    let s = Tensor::scalar(1.0 / n.max(1) as f32);
    y.map(|t| t.try_mul(&s))
}

fn check(op: &'static str, re: &Tensor, im: Option<&Tensor>) -> Result<()> {
    let ok = re.rank() >= 1
        && re.dtype() == crate::base::dtype::DType::F32
        && im.is_none_or(|i| i.shape() == re.shape() && i.dtype() == re.dtype());
    if !ok {
        return shape_err(
            op,
            format!(
                "expected f32 real and imaginary parts of one shape (rank >= 1), got {:?}{}",
                re.shape(),
                im.map(|i| format!(" and {:?}", i.shape()))
                    .unwrap_or_default()
            ),
        );
    }
    if re.shape()[re.rank() - 1] == 0 {
        return shape_err(
            op,
            format!("the last axis is empty (shape {:?})", re.shape()),
        );
    }
    Ok(())
}

/// The DFT of `(re, im)` along the last axis (`jnp.fft.fft`), any length ≥ 1.
///
/// ```
/// use wgrad::prelude::*;
/// let re = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [4]);
/// let (r, i) = wgrad::fft::fft(&re, &re.zeros_like());
/// assert_eq!(r.to_vec::<f32>(), vec![10.0, -2.0, -2.0, -2.0]);
/// assert!((i.to_vec::<f32>()[1] - 2.0).abs() < 1e-6);
/// ```
#[track_caller]
pub fn fft(re: &Tensor, im: &Tensor) -> (Tensor, Tensor) {
    or_panic(try_fft(re, im))
}

/// Fallible [`fft`]: an error for parts of different shapes or an empty last axis.
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::fft::try_fft(&Tensor::zeros([0]), &Tensor::zeros([0])).is_err());
/// ```
pub fn try_fft(re: &Tensor, im: &Tensor) -> Result<(Tensor, Tensor)> {
    check("fft", re, Some(im))?;
    let y = dft(&Complex::new(re.clone(), im.clone()))?;
    let im = y.imag();
    Ok((y.re, im))
}

/// The inverse DFT along the last axis (`jnp.fft.ifft`, with the `1/n`).
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3]);
/// let (r, i) = wgrad::fft::fft(&x, &x.zeros_like());
/// let (back, _) = wgrad::fft::ifft(&r, &i);
/// assert!(back.to_vec::<f32>().iter().zip([1.0, 2.0, 3.0]).all(|(a, b)| (a - b).abs() < 1e-5));
/// ```
#[track_caller]
pub fn ifft(re: &Tensor, im: &Tensor) -> (Tensor, Tensor) {
    or_panic(try_ifft(re, im))
}

/// Fallible [`ifft`].
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::fft::try_ifft(&Tensor::zeros([2]), &Tensor::zeros([3])).is_err());
/// ```
pub fn try_ifft(re: &Tensor, im: &Tensor) -> Result<(Tensor, Tensor)> {
    check("ifft", re, Some(im))?;
    let y = inverse(&Complex::new(re.clone(), im.clone()))?;
    let im = y.imag();
    Ok((y.re, im))
}

/// The DFT of a real signal along the last axis (`jnp.fft.rfft`): the `n/2 + 1` non-negative
/// frequencies, as `(re, im)`.
///
/// ```
/// use wgrad::prelude::*;
/// let (r, i) = wgrad::fft::rfft(&Tensor::from_vec(vec![1.0f32, 0.0, -1.0, 0.0], [4]));
/// assert_eq!(r.to_vec::<f32>(), vec![0.0, 2.0, 0.0]);
/// assert!(i.to_vec::<f32>().iter().all(|v| v.abs() < 1e-6));
/// ```
#[track_caller]
pub fn rfft(x: &Tensor) -> (Tensor, Tensor) {
    or_panic(try_rfft(x))
}

/// Fallible [`rfft`]: an error for an empty last axis or a scalar.
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::fft::try_rfft(&Tensor::scalar(1.0)).is_err());
/// ```
pub fn try_rfft(x: &Tensor) -> Result<(Tensor, Tensor)> {
    check("rfft", x, None)?;
    let n = x.shape()[x.rank() - 1];
    let y = dft(&Complex {
        re: x.clone(),
        im: None,
    })?;
    let h = n / 2 + 1;
    Ok((
        y.re.try_slice_axis(-1, 0..h)?,
        y.imag().try_slice_axis(-1, 0..h)?,
    ))
}

/// The inverse of [`rfft`] for a signal of length `n` (`jnp.fft.irfft(re + 1j·im, n)`): the
/// first `n/2 + 1` frequencies are used (zeros when fewer are given); the imaginary parts of the
/// zero frequency and, for even `n`, of `n/2` do not enter.
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 0.5, -1.0, 3.0], [5]);
/// let (r, i) = wgrad::fft::rfft(&x);
/// let y = wgrad::fft::irfft(&r, &i, 5).to_vec::<f32>();
/// assert!(y.iter().zip(x.to_vec::<f32>()).all(|(a, b)| (a - b).abs() < 1e-5));
/// ```
#[track_caller]
pub fn irfft(re: &Tensor, im: &Tensor, n: usize) -> Tensor {
    or_panic(try_irfft(re, im, n))
}

/// Fallible [`irfft`]: an error for `n = 0` or parts of different shapes.
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::fft::try_irfft(&Tensor::zeros([3]), &Tensor::zeros([3]), 0).is_err());
/// ```
pub fn try_irfft(re: &Tensor, im: &Tensor, n: usize) -> Result<Tensor> {
    check("irfft", re, Some(im))?;
    if n == 0 {
        return shape_err(
            "irfft",
            format!("n must be positive (input {:?})", re.shape()),
        );
    }
    let r = re.rank();
    let h = n / 2 + 1;
    let have = re.shape()[r - 1];
    let fit = |t: &Tensor| -> Result<Tensor> {
        if have >= h {
            t.try_slice_axis(-1, 0..h)
        } else {
            let mut hi = vec![0; r];
            hi[r - 1] = h - have;
            t.try_pad(vec![0; r], hi)
        }
    };
    // The imaginary parts that a real signal's spectrum cannot have are dropped.
    let keep: Vec<f32> = (0..h)
        .map(|k| {
            if k == 0 || (n % 2 == 0 && k == n / 2) {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    let (re, im) = (fit(re)?, fit(im)?.try_mul(Tensor::from_vec(keep, [h]))?);
    // The full Hermitian spectrum: Z_{n-k} = conj(Z_k) for the upper half.
    let upper = n - h;
    let mirror = |t: &Tensor| -> Result<Tensor> {
        t.try_slice_axis(-1, 1..1 + upper)?
            .try_flip(crate::prim::reduce::Axes::List(vec![-1]))
    };
    let full_re = crate::compose::shape::try_concat(&[re.clone(), mirror(&re)?], -1)?;
    let full_im = crate::compose::shape::try_concat(&[im.clone(), mirror(&im)?.try_neg()?], -1)?;
    let y = inverse(&Complex::new(full_re, full_im))?;
    Ok(y.re)
}
