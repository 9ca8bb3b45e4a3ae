//! Losses (optax's formulas) and accuracy.

use crate::base::dtype::DType;
use crate::ir::tensor::Tensor;

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
    -(labels * logits.log_softmax(-1)).sum_axes(-1)
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
    (predictions - targets).square().mean_all()
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
        .mean_all()
}
