//! The stages optimizers are chained from: scaling, learning rate, weight decay, clipping,
//! momentum, Adam's and RMSProp's moment estimates.

use crate::ir::tensor::Tensor;
use crate::optim::schedule::Schedule;
use crate::optim::{Optimizer, Transformation, stateless};

/// Multiplies the updates by `factor` (optax's `scale`).
///
/// ```
/// use wgrad::prelude::*;
/// let opt = wgrad::optim::scale(-2.0);
/// let mut s = opt.init(&Tensor::ones([1]));
/// assert_eq!(opt.update(&Tensor::ones([1]), &mut s, &Tensor::ones([1])).item(), -2.0);
/// ```
pub fn scale(factor: f32) -> Optimizer {
    stateless("scale", move |u, _, _| {
        u.iter().map(|u| u * factor).collect()
    })
}

/// Multiplies the updates by `-learning_rate(step)`: the last stage of every optimizer here.
///
/// ```
/// use wgrad::prelude::*;
/// let opt = wgrad::optim::scale_by_learning_rate(wgrad::optim::Schedule::new(|t| 1.0 + t as f32));
/// let p = Tensor::ones([1]);
/// let mut s = opt.init(&p);
/// assert_eq!(opt.update(&p, &mut s, &p).item(), -1.0);
/// assert_eq!(opt.update(&p, &mut s, &p).item(), -2.0);
/// ```
pub fn scale_by_learning_rate(learning_rate: impl Into<Schedule>) -> Optimizer {
    let lr = learning_rate.into();
    stateless("scale_by_learning_rate", move |u, _, step| {
        let a = -lr.at(step);
        u.iter().map(|u| u * a).collect()
    })
}

/// Adds `weight_decay(step) * params` to the updates (decoupled weight decay, optax's
/// `add_decayed_weights`).
///
/// ```
/// use wgrad::prelude::*;
/// let opt = wgrad::optim::add_decayed_weights(0.5);
/// let p = Tensor::from_vec(vec![4.0f32], [1]);
/// let mut s = opt.init(&p);
/// assert_eq!(opt.update(&Tensor::zeros([1]), &mut s, &p).item(), 2.0);
/// ```
pub fn add_decayed_weights(weight_decay: impl Into<Schedule>) -> Optimizer {
    let wd = weight_decay.into();
    stateless("add_decayed_weights", move |u, p, step| {
        let w = wd.at(step);
        if w == 0.0 {
            return u;
        }
        u.iter().zip(p).map(|(u, p)| u + p * w).collect()
    })
}

/// Scales all updates down together when their global norm exceeds `max_norm`:
/// `u * max_norm / norm` (optax's `clip_by_global_norm`); NaN norms pass NaN through.
///
/// ```
/// use wgrad::prelude::*;
/// let opt = wgrad::optim::clip_by_global_norm(1.0);
/// let g = Tensor::from_vec(vec![3.0f32, 4.0], [2]);
/// let mut s = opt.init(&g);
/// assert_eq!(opt.update(&g, &mut s, &g).to_vec::<f32>(), vec![0.6, 0.8]);
/// ```
pub fn clip_by_global_norm(max_norm: f32) -> Optimizer {
    stateless("clip_by_global_norm", move |u, _, _| {
        let norm = crate::tree::global_norm(&u);
        let keep = norm.less(&Tensor::scalar(max_norm));
        u.iter()
            .map(|t| {
                let clipped = t / norm.cast(t.dtype()) * max_norm;
                crate::prim::logic::where_(&keep, t, &clipped)
            })
            .collect()
    })
}

struct Trace {
    decay: f32,
    nesterov: bool,
}

impl Transformation for Trace {
    fn name(&self) -> &str {
        "trace"
    }
    fn slots(&self) -> Vec<&'static str> {
        vec!["trace"]
    }
    fn update(&self, u: Vec<Tensor>, s: &mut [Vec<Tensor>], _: &[Tensor], _: u64) -> Vec<Tensor> {
        let mut out = Vec::with_capacity(u.len());
        for (g, tr) in u.iter().zip(s[0].iter_mut()) {
            let new = g + &*tr * self.decay;
            out.push(if self.nesterov {
                g + &new * self.decay
            } else {
                new.clone()
            });
            *tr = new;
        }
        out
    }
}

/// Momentum: `trace = g + decay * trace`, the update `trace` (or `g + decay * trace` with
/// `nesterov`) — optax's `trace`.
///
/// ```
/// use wgrad::prelude::*;
/// let opt = wgrad::optim::trace(0.5, false);
/// let p = Tensor::ones([1]);
/// let mut s = opt.init(&p);
/// opt.update(&p, &mut s, &p);
/// assert_eq!(opt.update(&p, &mut s, &p).item(), 1.5);
/// ```
pub fn trace(decay: f32, nesterov: bool) -> Optimizer {
    Optimizer::from_transformation(Trace { decay, nesterov })
}

/// Adam's moment estimates and bias correction, without the learning rate (optax's
/// `scale_by_adam`).
///
/// ```
/// let c = wgrad::optim::AdamConfig { b1: 0.8, ..Default::default() };
/// assert_eq!((c.b1, c.b2, c.eps), (0.8, 0.999, 1e-8));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Decay of the first moment (0.9).
    pub b1: f32,
    /// Decay of the second moment (0.999).
    pub b2: f32,
    /// Added to the denominator's square root (1e-8).
    pub eps: f32,
    /// Added inside the square root (0).
    pub eps_root: f32,
}

impl Default for AdamConfig {
    fn default() -> AdamConfig {
        AdamConfig {
            b1: 0.9,
            b2: 0.999,
            eps: 1e-8,
            eps_root: 0.0,
        }
    }
}

impl Transformation for AdamConfig {
    fn name(&self) -> &str {
        "adam"
    }
    fn slots(&self) -> Vec<&'static str> {
        vec!["mu", "nu"]
    }
    fn update(
        &self,
        u: Vec<Tensor>,
        s: &mut [Vec<Tensor>],
        _: &[Tensor],
        step: u64,
    ) -> Vec<Tensor> {
        let t = (step + 1).min(i32::MAX as u64) as i32;
        let c1 = (1.0 - (self.b1 as f64).powi(t)) as f32;
        let c2 = (1.0 - (self.b2 as f64).powi(t)) as f32;
        let (mus, nus) = s.split_at_mut(1);
        let mut out = Vec::with_capacity(u.len());
        for ((g, mu), nu) in u.iter().zip(mus[0].iter_mut()).zip(nus[0].iter_mut()) {
            let m = &*mu * self.b1 + g * (1.0 - self.b1);
            let v = &*nu * self.b2 + g.square() * (1.0 - self.b2);
            let v_hat = &v / c2;
            let denom = if self.eps_root == 0.0 {
                v_hat.sqrt()
            } else {
                (v_hat + self.eps_root).sqrt()
            } + self.eps;
            out.push(&m / c1 / denom);
            *mu = m;
            *nu = v;
        }
        out
    }
}

/// Adam's scaling stage alone (compose it with a learning rate yourself).
///
/// ```
/// use wgrad::prelude::*;
/// let opt = wgrad::optim::scale_by_adam(Default::default());
/// let g = Tensor::from_vec(vec![0.5f32, -3.0], [2]);
/// let mut s = opt.init(&g);
/// let u = opt.update(&g, &mut s, &g).to_vec::<f32>();
/// assert!((u[0] - 1.0).abs() < 1e-6 && (u[1] + 1.0).abs() < 1e-6); // first step: sign(g)
/// ```
pub fn scale_by_adam(config: AdamConfig) -> Optimizer {
    Optimizer::from_transformation(config)
}

struct Rms {
    decay: f32,
    eps: f32,
    initial_scale: f32,
}

impl Transformation for Rms {
    fn name(&self) -> &str {
        "rms"
    }
    fn slots(&self) -> Vec<&'static str> {
        vec!["nu"]
    }
    fn init_slot(&self, _: usize, param: &Tensor) -> Tensor {
        param.zeros_like() + self.initial_scale
    }
    fn update(&self, u: Vec<Tensor>, s: &mut [Vec<Tensor>], _: &[Tensor], _: u64) -> Vec<Tensor> {
        let mut out = Vec::with_capacity(u.len());
        for (g, nu) in u.iter().zip(s[0].iter_mut()) {
            let v = &*nu * self.decay + g.square() * (1.0 - self.decay);
            out.push(g * (&v + self.eps).rsqrt());
            *nu = v;
        }
        out
    }
}

/// Divides the updates by the root of a moving average of their squares,
/// `g / sqrt(nu + eps)` (optax's `scale_by_rms`, epsilon inside the root).
///
/// ```
/// use wgrad::prelude::*;
/// let opt = wgrad::optim::scale_by_rms(0.75, 0.0, 0.0);
/// let g = Tensor::from_vec(vec![2.0f32], [1]);
/// let mut s = opt.init(&g);
/// assert!((opt.update(&g, &mut s, &g).item() - 2.0).abs() < 1e-6); // 2 / sqrt(0.25 * 4)
/// ```
pub fn scale_by_rms(decay: f32, eps: f32, initial_scale: f32) -> Optimizer {
    Optimizer::from_transformation(Rms {
        decay,
        eps,
        initial_scale,
    })
}
