//! The usual optimizers, each a chain of stages ending in the learning rate.

use crate::optim::Optimizer;
use crate::optim::schedule::Schedule;
use crate::optim::stages::{
    AdamConfig, add_decayed_weights, scale_by_adam, scale_by_learning_rate, scale_by_rms, trace,
};

/// Stochastic gradient descent: `p -= lr * g`.
///
/// ```
/// use wgrad::prelude::*;
/// let opt = wgrad::optim::sgd(0.1);
/// let p = Tensor::ones([1]);
/// let mut s = opt.init(&p);
/// assert!((opt.step(&p, &Tensor::ones([1]), &mut s).item() - 0.9).abs() < 1e-7);
/// ```
pub fn sgd(learning_rate: impl Into<Schedule>) -> Optimizer {
    scale_by_learning_rate(learning_rate)
}

/// SGD with (heavy-ball or Nesterov) momentum, as optax's `sgd(lr, momentum, nesterov)`.
///
/// ```
/// use wgrad::prelude::*;
/// let opt = wgrad::optim::sgd_momentum(1.0, 0.9, true);
/// let p = Tensor::zeros([1]);
/// let mut s = opt.init(&p);
/// assert!((opt.update(&Tensor::ones([1]), &mut s, &p).item() + 1.9).abs() < 1e-6);
/// ```
pub fn sgd_momentum(
    learning_rate: impl Into<Schedule>,
    momentum: f32,
    nesterov: bool,
) -> Optimizer {
    trace(momentum, nesterov).then(scale_by_learning_rate(learning_rate))
}

/// Adam (Kingma & Ba) with optax's defaults (b1 0.9, b2 0.999, eps 1e-8).
///
/// ```
/// use wgrad::prelude::*;
/// let opt = wgrad::optim::adam(0.1);
/// let p = Tensor::from_vec(vec![1.0f32], [1]);
/// let mut s = opt.init(&p);
/// assert!((opt.step(&p, &Tensor::from_vec(vec![5.0f32], [1]), &mut s).item() - 0.9).abs() < 1e-6);
/// ```
pub fn adam(learning_rate: impl Into<Schedule>) -> Optimizer {
    adam_with(learning_rate, AdamConfig::default())
}

/// Adam with its constants chosen.
///
/// ```
/// use wgrad::optim::{adam_with, AdamConfig};
/// let opt = adam_with(1e-3, AdamConfig { b2: 0.99, ..Default::default() });
/// # let _ = opt;
/// ```
pub fn adam_with(learning_rate: impl Into<Schedule>, config: AdamConfig) -> Optimizer {
    scale_by_adam(config).then(scale_by_learning_rate(learning_rate))
}

/// AdamW: Adam with decoupled weight decay, `p -= lr * (adam(g) + weight_decay * p)`
/// (optax's `adamw`; its default `weight_decay` is 1e-4).
///
/// ```
/// use wgrad::prelude::*;
/// let opt = wgrad::optim::adamw(0.1, 0.5);
/// let p = Tensor::from_vec(vec![2.0f32], [1]);
/// let mut s = opt.init(&p);
/// // adam's first step is sign(g) = 1; decay adds 0.5 * 2: 2 - 0.1 * 2 = 1.8
/// assert!((opt.step(&p, &Tensor::ones([1]), &mut s).item() - 1.8).abs() < 1e-6);
/// ```
pub fn adamw(learning_rate: impl Into<Schedule>, weight_decay: impl Into<Schedule>) -> Optimizer {
    adamw_with(learning_rate, weight_decay, AdamConfig::default())
}

/// AdamW with Adam's constants chosen.
///
/// ```
/// let opt = wgrad::optim::adamw_with(1e-3, 1e-2, wgrad::optim::AdamConfig { b1: 0.8, ..Default::default() });
/// # let _ = opt;
/// ```
pub fn adamw_with(
    learning_rate: impl Into<Schedule>,
    weight_decay: impl Into<Schedule>,
    config: AdamConfig,
) -> Optimizer {
    scale_by_adam(config)
        .then(add_decayed_weights(weight_decay))
        .then(scale_by_learning_rate(learning_rate))
}

/// RMSProp with optax's defaults (decay 0.9, eps 1e-8 inside the root, no momentum).
///
/// ```
/// use wgrad::prelude::*;
/// let opt = wgrad::optim::rmsprop(0.01);
/// let p = Tensor::zeros([1]);
/// let mut s = opt.init(&p);
/// let u = opt.update(&Tensor::ones([1]), &mut s, &p).item();
/// assert!((u + 0.01 / 0.1f32.sqrt()).abs() < 1e-6);
/// ```
pub fn rmsprop(learning_rate: impl Into<Schedule>) -> Optimizer {
    rmsprop_with(learning_rate, 0.9, 1e-8, None)
}

/// RMSProp with its decay, epsilon and optional (heavy-ball) momentum.
///
/// ```
/// let opt = wgrad::optim::rmsprop_with(1e-3, 0.99, 1e-6, Some(0.9));
/// assert_eq!(format!("{opt:?}"), "Optimizer(rms -> scale_by_learning_rate -> trace)");
/// ```
pub fn rmsprop_with(
    learning_rate: impl Into<Schedule>,
    decay: f32,
    eps: f32,
    momentum: Option<f32>,
) -> Optimizer {
    let opt = scale_by_rms(decay, eps, 0.0).then(scale_by_learning_rate(learning_rate));
    match momentum {
        Some(m) => opt.then(trace(m, false)),
        None => opt,
    }
}
