//! Neural-network building blocks as plain parameter trees: each layer is a struct of tensors
//! (a [`crate::Tree`], so `grad` returns the same struct and [`crate::optim`] updates it) with
//! a constructor from a [`Key`] and a `forward`. Initialisers are `jax.nn.initializers`' (same
//! numbers for the same key); layers follow flax's formulas; losses are optax's.
//!
//! ```
//! use wgrad::prelude::*;
//! use wgrad::{nn, optim, random};
//!
//! let [k1, k2] = random::key(0).split_n();
//! let mut model = nn::Mlp::new(k1, &[2, 16, 1], nn::Activation::Tanh);
//! let x = random::normal(k2, [32, 2]);
//! let y = (x.slice_axis(1, 0..1) * x.slice_axis(1, 1..2)).sign(); // XOR-like labels
//! let y01 = (y + 1.0) * 0.5;
//! let loss = |m: &nn::Mlp| nn::sigmoid_binary_cross_entropy(&m.forward(&x), &y01).mean(None, false);
//! let opt = optim::adam(0.05);
//! let mut state = opt.init(&model);
//! let first = loss(&model).item();
//! for _ in 0..60 {
//!     let g = grad(loss)(&model);
//!     model = opt.step(&model, &g, &mut state);
//! }
//! assert!(loss(&model).item() < first * 0.7);
//! ```

use crate::base::dtype::DType;
use crate::compose::conv::Conv2d as ConvOptions;
use crate::ir::tensor::Tensor;
use crate::prim::logic::where_;
use crate::random::{self, Key};

/// Initialisers: `jax.nn.initializers`' variance scaling and its named cases, on the same keys
/// giving the same numbers (up to the last bits of the transcendental functions).
pub mod init {
    use super::*;

    /// Which fan the variance is divided by.
    ///
    /// ```
    /// use wgrad::nn::init::{variance_scaling, FanMode, Distribution};
    /// let w = variance_scaling(wgrad::random::key(0), [4, 8], 1.0, FanMode::FanOut, Distribution::Uniform, -2, -1);
    /// assert!(w.abs().max(None, false).item() <= (3.0f32 / 8.0).sqrt());
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
    /// assert!(w.abs().max(None, false).item() <= 2.0 * 0.1 / 0.879_625_7 + 1e-6);
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
    /// let v = w.square().mean(None, false).item();
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
}

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
    pub options: ConvOptions,
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
        options: ConvOptions,
    ) -> Conv2d {
        let shape = [c_out, c_in / options.groups.max(1), kernel[0], kernel[1]];
        Conv2d {
            w: init::variance_scaling(
                key,
                shape,
                1.0,
                init::FanMode::FanIn,
                init::Distribution::TruncatedNormal,
                1,
                0,
            ),
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
    /// assert!(y.mean(-1, false).to_vec::<f32>().iter().all(|m| m.abs() < 1e-5));
    /// ```
    #[track_caller]
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mean = x.mean(-1, true);
        let centred = x - &mean;
        let var = centred.square().mean(-1, true);
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

/// Multi-head self-attention (flax's `MultiHeadDotProductAttention` on one input): queries,
/// keys and values are linear maps of `x`, split into `heads`; scores scaled by
/// `1/sqrt(head size)`, optionally causal (position `t` sees positions `≤ t`); the heads'
/// outputs concatenated and mapped by `o`.
///
/// ```
/// use wgrad::prelude::*;
/// let att = wgrad::nn::MultiHeadAttention::new(wgrad::random::key(0), 8, 2);
/// let x = Tensor::rand([3, 5, 8], 1); // batch 3, length 5, features 8
/// assert_eq!(att.forward(&x, true).shape(), &[3, 5, 8]);
/// ```
#[derive(Clone, Debug)]
pub struct MultiHeadAttention {
    /// Query projection.
    pub q: Linear,
    /// Key projection.
    pub k: Linear,
    /// Value projection.
    pub v: Linear,
    /// Output projection.
    pub o: Linear,
    /// Number of heads (divides the feature size).
    pub heads: usize,
}
crate::tree_struct!(MultiHeadAttention { q, k, v, o; static heads });

impl MultiHeadAttention {
    /// Four `d × d` linear layers; `heads` must divide `d`.
    ///
    /// ```
    /// let a = wgrad::nn::MultiHeadAttention::new(wgrad::random::key(0), 6, 3);
    /// assert_eq!(wgrad::tree::size(&a), 4 * (36 + 6));
    /// ```
    #[track_caller]
    pub fn new(key: Key, d: usize, heads: usize) -> MultiHeadAttention {
        assert!(
            heads > 0 && d % heads == 0,
            "MultiHeadAttention: {heads} heads do not divide {d} features"
        );
        let [kq, kk, kv, ko] = key.split_n();
        MultiHeadAttention {
            q: Linear::new(kq, d, d),
            k: Linear::new(kk, d, d),
            v: Linear::new(kv, d, d),
            o: Linear::new(ko, d, d),
            heads,
        }
    }
    /// Self-attention over `x` of shape `[batch, length, features]` (or `[length, features]`).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let att = wgrad::nn::MultiHeadAttention::new(wgrad::random::key(0), 4, 1);
    /// // Causal: the first position sees only itself, so changing later ones leaves it alone.
    /// let a = Tensor::rand([3, 4], 1);
    /// let b = concat(&[a.slice_axis(0, 0..1), Tensor::rand([2, 4], 2)], 0);
    /// let (ya, yb) = (att.forward(&a, true), att.forward(&b, true));
    /// let d = (ya.slice_axis(0, 0..1) - yb.slice_axis(0, 0..1)).abs().max(None, false).item();
    /// assert!(d < 1e-6);
    /// ```
    #[track_caller]
    pub fn forward(&self, x: &Tensor, causal: bool) -> Tensor {
        if x.rank() == 2 {
            return self.forward(&x.expand_dims(0), causal).squeeze(0);
        }
        let s = x.shape();
        assert!(
            s.len() == 3 && s[2] == self.q.w.shape()[0],
            "MultiHeadAttention: input {s:?} is not [batch, length, {}]",
            self.q.w.shape()[0]
        );
        let (b, t, d, h) = (s[0], s[1], s[2], self.heads);
        let dh = d / h;
        let split = |y: Tensor| y.reshape([b, t, h, dh]).transpose([0, 2, 1, 3]);
        let q = split(self.q.forward(x));
        let k = split(self.k.forward(x));
        let v = split(self.v.forward(x));
        let mut scores = q.matmul(&k.transpose([0, 1, 3, 2])) * (1.0 / (dh as f32).sqrt());
        if causal {
            let allowed = Tensor::ones([t, t]).tril(0).cast(DType::Bool);
            scores = where_(&allowed, &scores, &Tensor::scalar(f32::MIN));
        }
        let att = scores.softmax(-1);
        let o = att.matmul(&v).transpose([0, 2, 1, 3]).reshape([b, t, d]);
        self.o.forward(&o)
    }
}

/// An activation function between layers.
///
/// ```
/// use wgrad::prelude::*;
/// use wgrad::nn::Activation;
/// let x = Tensor::from_vec(vec![-1.0f32, 2.0], [2]);
/// assert_eq!(Activation::Identity.apply(&x).to_vec::<f32>(), vec![-1.0, 2.0]);
/// assert_eq!(Activation::Relu.apply(&x).to_vec::<f32>(), vec![0.0, 2.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// The exact GELU, `x Φ(x)`.
    Gelu,
    /// `x σ(x)`.
    Silu,
    /// `σ(x)`.
    Sigmoid,
    /// `x`.
    Identity,
}

impl Activation {
    /// The activation applied elementwise.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(wgrad::nn::Activation::Relu.apply(&Tensor::scalar(-1.0)).item(), 0.0);
    /// ```
    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::Relu => x.relu(),
            Activation::Tanh => x.tanh(),
            Activation::Gelu => x.gelu(),
            Activation::Silu => x.silu(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Identity => x.clone(),
        }
    }
}

/// A multi-layer perceptron: linear layers with an activation between them (none after the
/// last).
///
/// ```
/// use wgrad::prelude::*;
/// let m = wgrad::nn::Mlp::new(wgrad::random::key(0), &[3, 16, 16, 2], wgrad::nn::Activation::Relu);
/// assert_eq!(m.layers.len(), 3);
/// assert_eq!(m.forward(&Tensor::ones([5, 3])).shape(), &[5, 2]);
/// ```
#[derive(Clone, Debug)]
pub struct Mlp {
    /// The layers, input first.
    pub layers: Vec<Linear>,
    /// Between layers.
    pub activation: Activation,
}
crate::tree_struct!(Mlp { layers; static activation });

impl Mlp {
    /// Layers of sizes `sizes[0] → sizes[1] → …`, each from its own key.
    ///
    /// ```
    /// let m = wgrad::nn::Mlp::new(wgrad::random::key(0), &[2, 4], wgrad::nn::Activation::Tanh);
    /// assert_eq!(m.layers[0].w.shape(), &[2, 4]);
    /// ```
    #[track_caller]
    pub fn new(key: Key, sizes: &[usize], activation: Activation) -> Mlp {
        assert!(
            sizes.len() >= 2,
            "Mlp: needs at least two sizes, got {sizes:?}"
        );
        let keys = key.split(sizes.len() - 1);
        Mlp {
            layers: sizes
                .windows(2)
                .zip(keys)
                .map(|(s, k)| Linear::new(k, s[0], s[1]))
                .collect(),
            activation,
        }
    }
    /// The network's output.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let m = wgrad::nn::Mlp::new(wgrad::random::key(0), &[2, 3, 1], wgrad::nn::Activation::Relu);
    /// assert_eq!(m.forward(&Tensor::ones([4, 2])).shape(), &[4, 1]);
    /// ```
    #[track_caller]
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.clone();
        for (k, l) in self.layers.iter().enumerate() {
            h = l.forward(&h);
            if k + 1 < self.layers.len() {
                h = self.activation.apply(&h);
            }
        }
        h
    }
}

/// Per-example cross-entropy of `logits [..., classes]` against integer `labels [...]`
/// (i32/u32): `logsumexp(logits) - logits[label]` (optax's
/// `softmax_cross_entropy_with_integer_labels`).
///
/// ```
/// use wgrad::prelude::*;
/// let logits = Tensor::from_vec(vec![0.0f32, 0.0, 10.0, 0.0], [2, 2]);
/// let labels = Tensor::from_slice(&[0i32, 0], [2]);
/// let l = wgrad::nn::softmax_cross_entropy_with_integer_labels(&logits, &labels).to_vec::<f32>();
/// assert!((l[0] - 2f32.ln()).abs() < 1e-6 && l[1].abs() < 1e-4);
/// ```
#[track_caller]
pub fn softmax_cross_entropy_with_integer_labels(logits: &Tensor, labels: &Tensor) -> Tensor {
    let picked = logits
        .take_along_axis(labels.expand_dims(-1), -1)
        .squeeze(-1);
    logits.logsumexp(-1) - picked
}

/// Per-example cross-entropy against label distributions `labels` (same shape as `logits`):
/// `-sum(labels * log_softmax(logits))` (optax's `softmax_cross_entropy`).
///
/// ```
/// use wgrad::prelude::*;
/// let l = wgrad::nn::softmax_cross_entropy(&Tensor::zeros([1, 4]), &Tensor::full([1, 4], 0.25));
/// assert!((l.item() - 4f32.ln()).abs() < 1e-6);
/// ```
#[track_caller]
pub fn softmax_cross_entropy(logits: &Tensor, labels: &Tensor) -> Tensor {
    -(labels * logits.log_softmax(-1)).sum(-1, false)
}

/// Elementwise binary cross-entropy of `logits` against targets in `[0, 1]`, computed stably
/// for large `|logits|` (optax's `sigmoid_binary_cross_entropy`).
///
/// ```
/// use wgrad::prelude::*;
/// let l = wgrad::nn::sigmoid_binary_cross_entropy(&Tensor::scalar(0.0), &Tensor::scalar(1.0));
/// assert!((l.item() - 2f32.ln()).abs() < 1e-6);
/// ```
#[track_caller]
pub fn sigmoid_binary_cross_entropy(logits: &Tensor, labels: &Tensor) -> Tensor {
    // -y log σ(x) - (1 - y) log σ(-x) = softplus(x) - y x, with softplus(x) = -log σ(-x).
    logits.softplus() - labels * logits
}

/// Mean squared error, a scalar.
///
/// ```
/// use wgrad::prelude::*;
/// let e = wgrad::nn::mse(&Tensor::from_vec(vec![1.0f32, 3.0], [2]), &Tensor::zeros([2]));
/// assert_eq!(e.item(), 5.0);
/// ```
#[track_caller]
pub fn mse(predictions: &Tensor, targets: &Tensor) -> Tensor {
    (predictions - targets).square().mean(None, false)
}

/// The fraction of rows whose largest logit is at the label (a scalar, not differentiable).
///
/// ```
/// use wgrad::prelude::*;
/// let logits = Tensor::from_vec(vec![2.0f32, 1.0, 0.0, 3.0], [2, 2]);
/// let labels = Tensor::from_slice(&[0i32, 0], [2]);
/// assert_eq!(wgrad::nn::accuracy(&logits, &labels).item(), 0.5);
/// ```
#[track_caller]
pub fn accuracy(logits: &Tensor, labels: &Tensor) -> Tensor {
    let predicted = logits.argmax(-1);
    predicted
        .equal(&labels.cast(predicted.dtype()))
        .cast(DType::F32)
        .mean(None, false)
}
