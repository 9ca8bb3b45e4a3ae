//! Layers: linear, convolution, layer norm, embedding, dropout.

use crate::compose::conv::{Conv1dOptions, Conv2dOptions};
use crate::ir::tensor::Tensor;
use crate::nn::init;
use crate::prim::logic::where_;
use crate::random::{self, Key};

/// A fully connected layer: `x @ w + b`, `w` of shape `[in, out]`.
///
/// ```
/// use wgrad::prelude::*;
/// let layer = wgrad::nn::Linear::new(wgrad::random::key(0), 3, 2);
/// assert_eq!(layer.forward(&Tensor::ones([5, 3])).shape(), &[5, 2]);
/// ```
#[derive(Clone, Debug)]
pub struct Linear {
    /// Weights `[in, out]`.
    pub w: Tensor,
    /// Bias `[out]`, if any.
    pub b: Option<Tensor>,
}
crate::tree_struct!(Linear { w, b });

impl Linear {
    /// LeCun-normal weights and zero bias (flax's `Dense`).
    ///
    /// ```
    /// let l = wgrad::nn::Linear::new(wgrad::random::key(1), 4, 8);
    /// assert_eq!((l.w.shape(), l.b.unwrap().shape()), (&[4usize, 8][..], &[8usize][..]));
    /// ```
    pub fn new(key: Key, d_in: usize, d_out: usize) -> Linear {
        Linear {
            w: init::lecun_normal(key, [d_in, d_out]),
            b: Some(Tensor::zeros([d_out])),
        }
    }
    /// The layer without a bias.
    ///
    /// ```
    /// assert!(wgrad::nn::Linear::new_no_bias(wgrad::random::key(1), 4, 8).b.is_none());
    /// ```
    pub fn new_no_bias(key: Key, d_in: usize, d_out: usize) -> Linear {
        Linear {
            w: init::lecun_normal(key, [d_in, d_out]),
            b: None,
        }
    }
    /// `x @ w + b` over the last axis of `x` (any leading axes).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let l = wgrad::nn::Linear { w: Tensor::ones([2, 1]), b: Some(Tensor::scalar(0.5).reshape([1])) };
    /// assert_eq!(l.forward(&Tensor::from_vec(vec![1.0f32, 2.0], [1, 2])).item(), 3.5);
    /// ```
    #[track_caller]
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let y = x.matmul(&self.w);
        match &self.b {
            Some(b) => y + b,
            None => y,
        }
    }
}

/// A 2-D convolution layer on NCHW inputs, weights OIHW.
///
/// ```
/// use wgrad::prelude::*;
/// let conv = wgrad::nn::Conv2d::new(wgrad::random::key(0), 3, 8, [3, 3], Conv2d { padding: [1, 1], ..Default::default() });
/// assert_eq!(conv.forward(&Tensor::ones([2, 3, 10, 10])).shape(), &[2, 8, 10, 10]);
/// ```
#[derive(Clone, Debug)]
pub struct Conv2d {
    /// Weights `[out, in / groups, kh, kw]`.
    pub w: Tensor,
    /// Bias `[out]`, if any.
    pub b: Option<Tensor>,
    /// Stride, padding, dilation and groups (not trained).
    pub options: Conv2dOptions,
}
crate::tree_struct!(Conv2d { w, b; static options });

impl Conv2d {
    /// LeCun-normal weights (fans over the input channels and the window) and zero bias.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let c = wgrad::nn::Conv2d::new(wgrad::random::key(0), 4, 6, [3, 3], Conv2d { groups: 2, ..Default::default() });
    /// assert_eq!(c.w.shape(), &[6, 2, 3, 3]);
    /// ```
    pub fn new(
        key: Key,
        c_in: usize,
        c_out: usize,
        kernel: [usize; 2],
        options: Conv2dOptions,
    ) -> Conv2d {
        let shape = [c_out, c_in / options.groups.max(1), kernel[0], kernel[1]];
        Conv2d {
            w: conv_init(key, &shape),
            b: Some(Tensor::zeros([c_out])),
            options,
        }
    }
    /// The convolution plus the bias (per output channel).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let c = wgrad::nn::Conv2d { w: Tensor::ones([1, 1, 2, 2]), b: Some(Tensor::ones([1])), options: Default::default() };
    /// assert_eq!(c.forward(&Tensor::ones([1, 1, 2, 2])).item(), 5.0);
    /// ```
    #[track_caller]
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let y = x.conv2d(&self.w, self.options);
        match &self.b {
            Some(b) => {
                let o = b.numel();
                y + b.reshape([o, 1, 1])
            }
            None => y,
        }
    }
}

/// A 1-D convolution layer over NCW inputs (flax's `Conv` with one spatial axis, PyTorch's
/// `Conv1d`): weights `[out, in / groups, k]` and a bias per output channel.
///
/// ```
/// use wgrad::prelude::*;
/// let c = wgrad::nn::Conv1d::new(wgrad::random::key(0), 4, 6, 3, Conv1dOptions::default().padding(1));
/// assert_eq!(c.forward(&Tensor::ones([2, 4, 10])).shape(), &[2, 6, 10]);
/// ```
#[derive(Clone, Debug)]
pub struct Conv1d {
    /// Weights `[out, in / groups, k]`.
    pub w: Tensor,
    /// Bias `[out]`, if any.
    pub b: Option<Tensor>,
    /// Stride, padding, dilation and groups (not trained).
    pub options: Conv1dOptions,
}
crate::tree_struct!(Conv1d { w, b; static options });

impl Conv1d {
    /// LeCun-normal weights (fans over the input channels and the window) and zero bias.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let c = wgrad::nn::Conv1d::new(wgrad::random::key(0), 4, 6, 5, Conv1dOptions::default().groups(2));
    /// assert_eq!(c.w.shape(), &[6, 2, 5]);
    /// ```
    pub fn new(
        key: Key,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        options: Conv1dOptions,
    ) -> Conv1d {
        let shape = [c_out, c_in / options.groups.max(1), kernel];
        Conv1d {
            w: conv_init(key, &shape),
            b: Some(Tensor::zeros([c_out])),
            options,
        }
    }
    /// The convolution plus the bias (per output channel).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let c = wgrad::nn::Conv1d { w: Tensor::ones([1, 1, 2]), b: Some(Tensor::ones([1])), options: Default::default() };
    /// assert_eq!(c.forward(&Tensor::ones([1, 1, 2])).item(), 3.0);
    /// ```
    #[track_caller]
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let y = x.conv1d(&self.w, self.options);
        match &self.b {
            Some(b) => y + b.reshape([b.numel(), 1]),
            None => y,
        }
    }
}

/// A transposed 2-D convolution layer (PyTorch's `ConvTranspose2d`, output padding 0): weights
/// `[in, out, kh, kw]`, a bias per output channel; it upsamples by the stride.
///
/// ```
/// use wgrad::prelude::*;
/// let up = wgrad::nn::ConvTranspose2d::new(wgrad::random::key(0), 8, 4, [2, 2], [2, 2], [0, 0]);
/// assert_eq!(up.forward(&Tensor::ones([1, 8, 5, 5])).shape(), &[1, 4, 10, 10]);
/// ```
#[derive(Clone, Debug)]
pub struct ConvTranspose2d {
    /// Weights `[in, out, kh, kw]`.
    pub w: Tensor,
    /// Bias `[out]`, if any.
    pub b: Option<Tensor>,
    /// Stride (not trained).
    pub stride: [usize; 2],
    /// Padding cropped from each side (not trained).
    pub padding: [usize; 2],
}
crate::tree_struct!(ConvTranspose2d { w, b; static stride, padding });

impl ConvTranspose2d {
    /// LeCun-normal weights (fans over the input channels and the window) and zero bias.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let up = wgrad::nn::ConvTranspose2d::new(wgrad::random::key(1), 3, 5, [3, 3], [1, 1], [1, 1]);
    /// assert_eq!(up.w.shape(), &[3, 5, 3, 3]);
    /// ```
    pub fn new(
        key: Key,
        c_in: usize,
        c_out: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> ConvTranspose2d {
        ConvTranspose2d {
            w: conv_init(key, &[c_in, c_out, kernel[0], kernel[1]]),
            b: Some(Tensor::zeros([c_out])),
            stride,
            padding,
        }
    }
    /// The transposed convolution plus the bias (per output channel).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let up = wgrad::nn::ConvTranspose2d { w: Tensor::ones([1, 1, 1, 1]), b: None, stride: [2, 2], padding: [0, 0] };
    /// assert_eq!(up.forward(&Tensor::ones([1, 1, 2, 2])).to_vec::<f32>().iter().sum::<f32>(), 4.0);
    /// ```
    #[track_caller]
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let y = x.conv_transpose2d(&self.w, self.stride, self.padding);
        match &self.b {
            Some(b) => y + b.reshape([b.numel(), 1, 1]),
            None => y,
        }
    }
}

/// LeCun-normal (truncated) weights with the fans of a convolution kernel.
fn conv_init(key: Key, shape: &[usize]) -> Tensor {
    init::variance_scaling(
        key,
        shape,
        1.0,
        init::FanMode::FanIn,
        init::Distribution::TruncatedNormal,
        1,
        0,
    )
}

/// Layer normalisation over the last axis: `(x - mean) / sqrt(var + eps) * scale + bias`
/// (flax's `LayerNorm`, `eps` 1e-6).
///
/// ```
/// use wgrad::prelude::*;
/// let ln = wgrad::nn::LayerNorm::new(3);
/// let y = ln.forward(&Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [1, 3]));
/// let v = y.to_vec::<f32>();
/// assert!((v[0] + 1.2247).abs() < 1e-3 && v[1].abs() < 1e-6);
/// ```
#[derive(Clone, Debug)]
pub struct LayerNorm {
    /// Per-feature scale (ones at first).
    pub scale: Tensor,
    /// Per-feature bias (zeros at first).
    pub bias: Tensor,
    /// Added to the variance.
    pub eps: f32,
}
crate::tree_struct!(LayerNorm { scale, bias; static eps });

impl LayerNorm {
    /// Scale ones, bias zeros, `eps` 1e-6, over features of size `d`.
    ///
    /// ```
    /// assert_eq!(wgrad::nn::LayerNorm::new(4).scale.to_vec::<f32>(), vec![1.0; 4]);
    /// ```
    pub fn new(d: usize) -> LayerNorm {
        LayerNorm {
            scale: Tensor::ones([d]),
            bias: Tensor::zeros([d]),
            eps: 1e-6,
        }
    }
    /// Normalises the last axis of `x`.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let y = wgrad::nn::LayerNorm::new(4).forward(&Tensor::rand([2, 4], 0));
    /// assert!(y.mean_axes(-1).to_vec::<f32>().iter().all(|m| m.abs() < 1e-5));
    /// ```
    #[track_caller]
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mean = x.mean_keepdim(-1);
        let centred = x - &mean;
        let var = centred.square().mean_keepdim(-1);
        centred * (var + self.eps).rsqrt() * &self.scale + &self.bias
    }
}

/// A lookup table of vectors: row `i` for token `i`.
///
/// ```
/// use wgrad::prelude::*;
/// let e = wgrad::nn::Embedding::new(wgrad::random::key(0), 10, 4);
/// let ids = Tensor::from_slice(&[3i32, 3, 7], [3]);
/// assert_eq!(e.forward(&ids).shape(), &[3, 4]);
/// ```
#[derive(Clone, Debug)]
pub struct Embedding {
    /// The table `[vocabulary, features]`.
    pub table: Tensor,
}
crate::tree_struct!(Embedding { table });

impl Embedding {
    /// A table of standard-normal values.
    ///
    /// ```
    /// assert_eq!(wgrad::nn::Embedding::new(wgrad::random::key(0), 5, 2).table.shape(), &[5, 2]);
    /// ```
    pub fn new(key: Key, vocabulary: usize, features: usize) -> Embedding {
        Embedding {
            table: random::normal(key, [vocabulary, features]),
        }
    }
    /// The rows for `ids` (an i32/u32 tensor of any shape): shape `ids.shape + [features]`.
    /// The gradient adds up over repeated ids.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let e = wgrad::nn::Embedding { table: Tensor::arange(6).reshape([3, 2]) };
    /// let ids = Tensor::from_slice(&[2i32, 0], [2]);
    /// assert_eq!(e.forward(&ids).to_vec::<f32>(), vec![4.0, 5.0, 0.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn forward(&self, ids: &Tensor) -> Tensor {
        self.table.take(ids, 0)
    }
}

/// Dropout: during training, each element is zeroed with probability `rate` and the rest are
/// scaled by `1 / (1 - rate)`; with `key` `None` (evaluation) `x` passes unchanged.
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::ones([1000]);
/// let y = wgrad::nn::dropout(&x, 0.25, Some(wgrad::random::key(0)));
/// let kept = y.to_vec::<f32>().iter().filter(|v| **v != 0.0).count();
/// assert!((700..800).contains(&kept));
/// assert_eq!(wgrad::nn::dropout(&x, 0.25, None).to_vec::<f32>(), x.to_vec::<f32>());
/// ```
#[track_caller]
pub fn dropout(x: &Tensor, rate: f32, key: Option<Key>) -> Tensor {
    assert!(
        (0.0..1.0).contains(&rate),
        "dropout: rate {rate} is not in [0, 1)"
    );
    match key {
        Some(k) if rate > 0.0 => {
            let keep = random::bernoulli(k, 1.0 - rate, x.shape());
            where_(&keep, &(x / (1.0 - rate)), &x.zeros_like())
        }
        _ => x.clone(),
    }
}
