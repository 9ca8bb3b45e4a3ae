//! Initialisers: `jax.nn.initializers`' variance scaling and its named cases, on the same keys
//! giving the same numbers (up to the last bits of the transcendental functions).

use crate::ir::tensor::Tensor;
use crate::random::{self, Key};

/// Which fan the variance is divided by.
///
/// ```
/// use wgrad::nn::init::{variance_scaling, FanMode, Distribution};
/// let w = variance_scaling(wgrad::random::key(0), [4, 8], 1.0, FanMode::FanOut, Distribution::Uniform, -2, -1);
/// assert!(w.abs().max_all().item() <= (3.0f32 / 8.0).sqrt());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// The inputs to a unit.
    FanIn,
    /// The outputs of a unit.
    FanOut,
    /// Their mean.
    FanAvg,
}

/// The distribution samples are drawn from.
///
/// ```
/// use wgrad::nn::init::{variance_scaling, FanMode, Distribution};
/// // Truncated at two standard deviations of the rescaled normal.
/// let w = variance_scaling(wgrad::random::key(1), [100, 100], 1.0, FanMode::FanIn, Distribution::TruncatedNormal, -2, -1);
/// assert!(w.abs().max_all().item() <= 2.0 * 0.1 / 0.879_625_7 + 1e-6);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// A normal truncated to two standard deviations, rescaled to the variance.
    TruncatedNormal,
    /// A normal.
    Normal,
    /// A uniform on `[-sqrt(3 var), sqrt(3 var))`.
    Uniform,
}

/// `(fan_in, fan_out)` of a weight shape: `shape[in_axis]` and `shape[out_axis]` times the
/// receptive field (the product of the other axes), as JAX computes them.
///
/// ```
/// use wgrad::nn::init::fans;
/// assert_eq!(fans(&[3, 4], -2, -1), (3, 4));
/// assert_eq!(fans(&[8, 3, 5, 5], 1, 0), (75, 200)); // OIHW conv weights
/// ```
#[track_caller]
pub fn fans(shape: &[usize], in_axis: isize, out_axis: isize) -> (usize, usize) {
    let r = shape.len() as isize;
    let ax = |a: isize| {
        let k = if a < 0 { a + r } else { a };
        assert!(
            (0..r).contains(&k),
            "init: axis {a} out of range for shape {shape:?}"
        );
        k as usize
    };
    let (i, o) = (ax(in_axis), ax(out_axis));
    let total: usize = shape.iter().product();
    let field = if shape[i] * shape[o] == 0 {
        0
    } else {
        total / shape[i] / shape[o]
    };
    (shape[i] * field, shape[o] * field)
}

/// `jax.nn.initializers.variance_scaling`: samples whose variance is `scale / fan`.
///
/// ```
/// use wgrad::nn::init::{variance_scaling, FanMode, Distribution};
/// let w = variance_scaling(wgrad::random::key(0), [300, 200], 2.0, FanMode::FanIn, Distribution::Normal, -2, -1);
/// let v = w.square().mean_all().item();
/// assert!((v - 2.0 / 300.0).abs() < 2e-4);
/// ```
pub fn variance_scaling(
    key: Key,
    shape: impl AsRef<[usize]>,
    scale: f32,
    mode: FanMode,
    distribution: Distribution,
    in_axis: isize,
    out_axis: isize,
) -> Tensor {
    let shape = shape.as_ref();
    let (fi, fo) = fans(shape, in_axis, out_axis);
    let fan = match mode {
        FanMode::FanIn => fi as f32,
        FanMode::FanOut => fo as f32,
        FanMode::FanAvg => (fi + fo) as f32 / 2.0,
    };
    let variance = scale / fan.max(1.0);
    match distribution {
        Distribution::TruncatedNormal => {
            let std = variance.sqrt() / 0.879_625_7; // JAX: .87962566103423978
            random::truncated_normal(key, -2.0, 2.0, shape) * std
        }
        Distribution::Normal => random::normal(key, shape) * variance.sqrt(),
        Distribution::Uniform => {
            random::uniform_range(key, shape, -1.0, 1.0) * (3.0 * variance).sqrt()
        }
    }
}

macro_rules! named_init {
    ($($name:ident $scale:literal $mode:ident $dist:ident $doc:literal;)*) => {$(
        #[doc = $doc]
        ///
        /// Fans from the last two axes; [`variance_scaling`] takes others (conv weights).
        ///
        /// ```
        #[doc = concat!("let w = wgrad::nn::init::", stringify!($name), "(wgrad::random::key(0), [64, 32]);")]
        /// assert_eq!(w.shape(), &[64, 32]);
        /// ```
        pub fn $name(key: Key, shape: impl AsRef<[usize]>) -> Tensor {
            variance_scaling(key, shape, $scale, FanMode::$mode, Distribution::$dist, -2, -1)
        }
    )*};
}

named_init! {
    he_normal 2.0 FanIn TruncatedNormal "He (Kaiming) normal: variance `2 / fan_in`, truncated normal (for ReLU layers).";
    he_uniform 2.0 FanIn Uniform "He (Kaiming) uniform: variance `2 / fan_in`.";
    glorot_normal 1.0 FanAvg TruncatedNormal "Glorot (Xavier) normal: variance `2 / (fan_in + fan_out)`, truncated normal.";
    glorot_uniform 1.0 FanAvg Uniform "Glorot (Xavier) uniform: variance `2 / (fan_in + fan_out)`.";
    lecun_normal 1.0 FanIn TruncatedNormal "LeCun normal: variance `1 / fan_in`, truncated normal (flax's default for weights).";
    lecun_uniform 1.0 FanIn Uniform "LeCun uniform: variance `1 / fan_in`.";
}
