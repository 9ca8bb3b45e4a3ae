//! Optimizers in the style of optax: an [`Optimizer`] is a chain of gradient
//! [`Transformation`]s; `init` makes its state from the parameters, `update` turns gradients
//! into updates (and advances the state), [`apply_updates`] adds them to the parameters.
//! Parameters, gradients, updates and states are plain trees ([`crate::Tree`]).
//!
//! ```
//! use wgrad::prelude::*;
//! use wgrad::optim;
//!
//! let mut params = (Tensor::from_vec(vec![1.0f32, -2.0], [2]), Tensor::scalar(0.5));
//! let loss = |p: &(Tensor, Tensor)| (&p.0 - &p.1).square().sum_all();
//! let opt = optim::chain([optim::clip_by_global_norm(10.0), optim::adam(0.1)]);
//! let mut state = opt.init(&params);
//! for _ in 0..50 {
//!     let g = grad(loss)(&params);
//!     params = opt.step(&params, &g, &mut state);
//!     wgrad::tree::realize(&[&params, &state]);
//! }
//! assert!(loss(&params).item() < 0.05);
//! assert_eq!(state.step(), 50);
//! ```
//!
//! Learning rates, decays and every other hyper-parameter reach the kernels as data, never as
//! code: a [`Schedule`] that changes the learning rate every step compiles no new kernel.
//! The step count lives on the host ([`OptState::step`]).

mod lbfgs;
mod optimizers;
mod schedule;
mod stages;

pub use lbfgs::{LbfgsOptions, LbfgsResult, LbfgsStop, lbfgs, try_lbfgs};
pub use optimizers::{
    adam, adam_with, adamw, adamw_with, rmsprop, rmsprop_with, sgd, sgd_momentum,
};
pub use schedule::{
    Schedule, constant_schedule, cosine_decay_schedule, exponential_decay, join_schedules,
    linear_schedule, warmup_cosine_decay_schedule,
};
pub use stages::{
    AdamConfig, add_decayed_weights, clip_by_global_norm, scale, scale_by_adam,
    scale_by_learning_rate, scale_by_rms, trace,
};

use std::fmt;
use std::rc::Rc;

use crate::base::error::{Result, shape_err};
use crate::ir::tensor::Tensor;
use crate::tree::Tree;

/// One stage of an optimizer, on the flat list of parameter leaves: optax's
/// `GradientTransformation`. Implement it to add your own; each slot is one tensor per
/// parameter (Adam has `mu` and `nu`).
///
/// ```
/// use wgrad::prelude::*;
/// use wgrad::optim::{self, Transformation};
///
/// /// Adds Gaussian-free "noise": a fixed fraction of the sign of each update.
/// struct SignNudge(f32);
/// impl Transformation for SignNudge {
///     fn name(&self) -> &str { "sign_nudge" }
///     fn update(&self, u: Vec<Tensor>, _: &mut [Vec<Tensor>], _: &[Tensor], _: u64) -> Vec<Tensor> {
///         u.iter().map(|u| u + u.sign() * self.0).collect()
///     }
/// }
/// let opt = optim::chain([optim::Optimizer::from_transformation(SignNudge(0.5)), optim::sgd(1.0)]);
/// let p = Tensor::from_vec(vec![2.0f32], [1]);
/// let mut s = opt.init(&p);
/// let p = opt.step(&p, &Tensor::from_vec(vec![1.0f32], [1]), &mut s);
/// assert_eq!(p.item(), 0.5);
/// ```
pub trait Transformation {
    /// A short name (checkpoint names of the state use it).
    fn name(&self) -> &str;
    /// The names of the per-parameter state slots (none by default).
    fn slots(&self) -> Vec<&'static str> {
        vec![]
    }
    /// The initial value of slot `slot` for `param` (zeros of its shape and dtype by default).
    fn init_slot(&self, slot: usize, param: &Tensor) -> Tensor {
        let _ = slot;
        param.zeros_like()
    }
    /// The transformed updates, given the incoming updates, this stage's slots (to be
    /// replaced in place: `slots[s][p]`), the parameters and the step count before this
    /// step (0 for the first).
    fn update(
        &self,
        updates: Vec<Tensor>,
        slots: &mut [Vec<Tensor>],
        params: &[Tensor],
        step: u64,
    ) -> Vec<Tensor>;
}

/// A chain of [`Transformation`]s applied in order.
///
/// ```
/// use wgrad::prelude::*;
/// let opt = wgrad::optim::sgd(0.5);
/// let p = Tensor::from_vec(vec![1.0f32], [1]);
/// let mut s = opt.init(&p);
/// assert_eq!(opt.step(&p, &Tensor::from_vec(vec![2.0f32], [1]), &mut s).item(), 0.0);
/// ```
#[derive(Clone)]
pub struct Optimizer {
    parts: Vec<Rc<dyn Transformation>>,
}

impl fmt::Debug for Optimizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.parts.iter().map(|p| p.name()).collect();
        write!(f, "Optimizer({})", names.join(" -> "))
    }
}

/// The state of an [`Optimizer`]: the step count and each stage's slots, one tensor per
/// parameter. It is a [`Tree`] (leaves: the slots), so it can be realized, saved and loaded;
/// its leaves are named `stage.slot.parameter_path` (e.g. `1.adam.mu.layers.0.w`).
///
/// ```
/// use wgrad::prelude::*;
/// struct P { w: Tensor }
/// wgrad::tree_struct!(P { w });
/// let s = wgrad::optim::adam(1e-3).init(&P { w: Tensor::zeros([2]) });
/// let names: Vec<String> = wgrad::tree::named_leaves(&s).into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.adam.mu.w", "0.adam.nu.w"]);
/// assert_eq!(s.step(), 0);
/// ```
#[derive(Clone)]
pub struct OptState {
    step: u64,
    param_names: Rc<Vec<String>>,
    param_shapes: Rc<Vec<Vec<usize>>>,
    parts: Vec<PartState>,
}

#[derive(Clone)]
struct PartState {
    name: String,
    slot_names: Vec<&'static str>,
    slots: Vec<Vec<Tensor>>,
}

impl OptState {
    /// How many updates this state has seen.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(wgrad::optim::sgd(0.1).init(&Tensor::zeros([1])).step(), 0);
    /// ```
    pub fn step(&self) -> u64 {
        self.step
    }
    /// The same state at another step count (when resuming from a checkpoint that stored it).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let s = wgrad::optim::adam(0.1).init(&Tensor::zeros([1])).with_step(100);
    /// assert_eq!(s.step(), 100);
    /// ```
    pub fn with_step(mut self, step: u64) -> OptState {
        self.step = step;
        self
    }
    /// Slot `slot` of the stage named `stage` (e.g. `("adam", "mu")`), one tensor per
    /// parameter leaf; `None` when there is no such stage or slot.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let s = wgrad::optim::adam(0.1).init(&Tensor::zeros([3]));
    /// assert_eq!(s.slot("adam", "nu").unwrap()[0].shape(), &[3]);
    /// assert!(s.slot("adam", "trace").is_none());
    /// ```
    pub fn slot(&self, stage: &str, slot: &str) -> Option<&[Tensor]> {
        self.parts.iter().find(|p| p.name == stage).and_then(|p| {
            let k = p.slot_names.iter().position(|s| *s == slot)?;
            Some(&p.slots[k][..])
        })
    }
}

impl Tree for OptState {
    fn flatten(&self, leaves: &mut Vec<Tensor>) {
        for p in &self.parts {
            for s in &p.slots {
                leaves.extend(s.iter().cloned());
            }
        }
    }
    fn unflatten(&self, leaves: &mut dyn Iterator<Item = Tensor>) -> Self {
        let mut out = self.clone();
        for p in &mut out.parts {
            for s in &mut p.slots {
                for t in s.iter_mut() {
                    *t = leaves
                        .next()
                        .expect("tree has fewer leaves than its structure");
                }
            }
        }
        out
    }
    fn flatten_named(&self, prefix: &str, leaves: &mut Vec<(String, Tensor)>) {
        use crate::tree::join_path;
        for (k, p) in self.parts.iter().enumerate() {
            for (name, s) in p.slot_names.iter().zip(&p.slots) {
                for (param, t) in self.param_names.iter().zip(s) {
                    let path = format!("{k}.{}.{name}", p.name);
                    let path = join_path(&join_path(prefix, &path), param);
                    leaves.push((path, t.clone()));
                }
            }
        }
    }
}

impl Optimizer {
    /// An optimizer of one transformation.
    ///
    /// ```
    /// use wgrad::optim::{Optimizer, scale};
    /// let opt = wgrad::optim::chain([scale(-0.1)]);
    /// # let _ = opt;
    /// ```
    pub fn from_transformation(t: impl Transformation + 'static) -> Optimizer {
        Optimizer {
            parts: vec![Rc::new(t)],
        }
    }

    /// This optimizer followed by `next` (optax's `chain`).
    ///
    /// ```
    /// let opt = wgrad::optim::clip_by_global_norm(1.0).then(wgrad::optim::sgd(0.1));
    /// assert_eq!(format!("{opt:?}"), "Optimizer(clip_by_global_norm -> scale_by_learning_rate)");
    /// ```
    pub fn then(mut self, next: Optimizer) -> Optimizer {
        self.parts.extend(next.parts);
        self
    }

    /// The initial state for parameters `params`.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let s = wgrad::optim::sgd_momentum(0.1, 0.9, false).init(&Tensor::ones([2]));
    /// assert_eq!(s.slot("trace", "trace").unwrap()[0].to_vec::<f32>(), vec![0.0, 0.0]);
    /// ```
    pub fn init<P: Tree>(&self, params: &P) -> OptState {
        let mut named = vec![];
        params.flatten_named("", &mut named);
        let leaves: Vec<Tensor> = named.iter().map(|(_, t)| t.clone()).collect();
        let parts = self
            .parts
            .iter()
            .map(|t| {
                let slot_names = t.slots();
                let slots = (0..slot_names.len())
                    .map(|s| leaves.iter().map(|p| t.init_slot(s, p)).collect())
                    .collect();
                PartState {
                    name: t.name().to_string(),
                    slot_names,
                    slots,
                }
            })
            .collect();
        OptState {
            step: 0,
            param_shapes: Rc::new(leaves.iter().map(|t| t.shape().to_vec()).collect()),
            param_names: Rc::new(named.into_iter().map(|(n, _)| n).collect()),
            parts,
        }
    }

    /// The updates for gradients `grads` (to be added to the parameters, see
    /// [`apply_updates`]); advances `state`. Panics on mismatched trees ([`Self::try_update`]
    /// returns the error).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let opt = wgrad::optim::sgd(0.1);
    /// let p = Tensor::ones([2]);
    /// let mut s = opt.init(&p);
    /// let u = opt.update(&Tensor::ones([2]), &mut s, &p);
    /// assert_eq!(u.to_vec::<f32>(), vec![-0.1, -0.1]);
    /// ```
    #[track_caller]
    pub fn update<P: Tree>(&self, grads: &P, state: &mut OptState, params: &P) -> P {
        self.try_update(grads, state, params)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Fallible [`Self::update`]: gradients or parameters that do not match the state's
    /// parameters (leaf count, shapes), or a state made by another optimizer, are an error
    /// naming the leaf, and `state` is left as it was.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let opt = wgrad::optim::adam(0.1);
    /// let p = Tensor::ones([2]);
    /// let mut s = opt.init(&p);
    /// let e = opt.try_update(&Tensor::ones([3]), &mut s, &p).unwrap_err();
    /// assert!(e.to_string().contains("[3]") && e.to_string().contains("[2]"));
    /// assert_eq!(s.step(), 0);
    /// ```
    pub fn try_update<P: Tree>(&self, grads: &P, state: &mut OptState, params: &P) -> Result<P> {
        let g = grads.leaves();
        let p = params.leaves();
        self.check(state, &g, "gradients")?;
        self.check(state, &p, "parameters")?;
        let mut parts = state.parts.clone();
        let mut u = g;
        for (t, part) in self.parts.iter().zip(&mut parts) {
            u = t.update(u, &mut part.slots, &p, state.step);
            if u.len() != p.len() {
                return shape_err(
                    "optim.update",
                    format!(
                        "transformation {} returned {} updates for {} parameters",
                        t.name(),
                        u.len(),
                        p.len()
                    ),
                );
            }
        }
        state.parts = parts;
        state.step += 1;
        Ok(grads.rebuild(u))
    }

    fn check(&self, state: &OptState, leaves: &[Tensor], what: &str) -> Result<()> {
        let err = |msg: String| shape_err("optim.update", msg);
        if state.parts.len() != self.parts.len()
            || state
                .parts
                .iter()
                .zip(&self.parts)
                .any(|(s, t)| s.name != t.name())
        {
            return err(format!(
                "the state was made by another optimizer ({}), not {self:?}",
                state
                    .parts
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" -> ")
            ));
        }
        if leaves.len() != state.param_shapes.len() {
            return err(format!(
                "{} leaves of {what}, but the state was made for {} parameters",
                leaves.len(),
                state.param_shapes.len()
            ));
        }
        for ((t, shape), name) in leaves
            .iter()
            .zip(state.param_shapes.iter())
            .zip(state.param_names.iter())
        {
            if t.shape() != &shape[..] {
                return err(format!(
                    "{what} leaf `{name}` has shape {:?}, the state's parameter {:?}",
                    t.shape(),
                    shape
                ));
            }
        }
        Ok(())
    }

    /// `params + update(grads)`: one optimizer step, lazily (realize the parameters and the
    /// state together, e.g. with [`crate::tree::realize`], to run it in one submit).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let opt = wgrad::optim::sgd(0.25);
    /// let p = Tensor::from_vec(vec![1.0f32], [1]);
    /// let mut s = opt.init(&p);
    /// assert_eq!(opt.step(&p, &Tensor::from_vec(vec![2.0f32], [1]), &mut s).item(), 0.5);
    /// ```
    #[track_caller]
    pub fn step<P: Tree>(&self, params: &P, grads: &P, state: &mut OptState) -> P {
        let u = self.update(grads, state, params);
        apply_updates(params, &u)
    }
}

/// `params + updates`, leaf by leaf.
///
/// ```
/// use wgrad::prelude::*;
/// let p = wgrad::optim::apply_updates(&Tensor::ones([2]), &Tensor::from_vec(vec![0.5f32, -1.0], [2]));
/// assert_eq!(p.to_vec::<f32>(), vec![1.5, 0.0]);
/// ```
#[track_caller]
pub fn apply_updates<P: Tree>(params: &P, updates: &P) -> P {
    crate::tree::tree_map2(params, updates, |p, u| {
        if u.dtype() == p.dtype() {
            p + u
        } else {
            p + u.cast(p.dtype())
        }
    })
}

/// Optimizers chained in order (optax's `chain`).
///
/// ```
/// use wgrad::optim;
/// let opt = optim::chain([optim::clip_by_global_norm(1.0), optim::adamw(1e-3, 1e-4)]);
/// assert!(format!("{opt:?}").starts_with("Optimizer(clip_by_global_norm -> adam"));
/// ```
pub fn chain(parts: impl IntoIterator<Item = Optimizer>) -> Optimizer {
    Optimizer {
        parts: parts.into_iter().flat_map(|o| o.parts).collect(),
    }
}

struct Closure<F> {
    name: &'static str,
    f: F,
}

impl<F: Fn(Vec<Tensor>, &[Tensor], u64) -> Vec<Tensor>> Transformation for Closure<F> {
    fn name(&self) -> &str {
        self.name
    }
    fn update(
        &self,
        u: Vec<Tensor>,
        _: &mut [Vec<Tensor>],
        p: &[Tensor],
        step: u64,
    ) -> Vec<Tensor> {
        (self.f)(u, p, step)
    }
}

fn stateless(
    name: &'static str,
    f: impl Fn(Vec<Tensor>, &[Tensor], u64) -> Vec<Tensor> + 'static,
) -> Optimizer {
    Optimizer::from_transformation(Closure { name, f })
}
