//! Blocks built from layers: multi-head attention, activations, the MLP.

use crate::base::dtype::DType;
use crate::ir::tensor::Tensor;
use crate::nn::layers::Linear;
use crate::prim::logic::where_;
use crate::random::Key;

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
    /// let d = (ya.slice_axis(0, 0..1) - yb.slice_axis(0, 0..1)).abs().max_all().item();
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
