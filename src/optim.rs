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
//! let loss = |p: &(Tensor, Tensor)| (&p.0 - &p.1).square().sum(None, false);
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

use std::fmt;
use std::rc::Rc;

use crate::base::error::{Result, shape_err};
use crate::ir::tensor::Tensor;
use crate::tree::Tree;

/// A learning rate (or any hyper-parameter) as a function of the step count, evaluated on the
/// host each step: optax's schedules.
///
/// ```
/// use wgrad::optim::{Schedule, cosine_decay_schedule};
/// let s = cosine_decay_schedule(1.0, 100, 0.0);
/// assert_eq!(s.at(0), 1.0);
/// assert!((s.at(50) - 0.5).abs() < 1e-6);
/// assert_eq!(s.at(200), 0.0);
/// let constant: Schedule = 0.1.into();
/// assert_eq!(constant.at(7), 0.1);
/// let custom = Schedule::new(|step| 1.0 / (1.0 + step as f32));
/// assert_eq!(custom.at(1), 0.5);
/// ```
#[derive(Clone)]
pub struct Schedule(Rc<dyn Fn(u64) -> f32>);

impl Schedule {
    /// A schedule from any function of the step count.
    ///
    /// ```
    /// let s = wgrad::optim::Schedule::new(|t| if t < 10 { 1.0 } else { 0.1 });
    /// assert_eq!(s.at(10), 0.1);
    /// ```
    pub fn new(f: impl Fn(u64) -> f32 + 'static) -> Schedule {
        Schedule(Rc::new(f))
    }
    /// The value at step `step` (counting from 0).
    ///
    /// ```
    /// assert_eq!(wgrad::optim::Schedule::from(0.3).at(1000), 0.3);
    /// ```
    pub fn at(&self, step: u64) -> f32 {
        (self.0)(step)
    }
}

impl From<f32> for Schedule {
    fn from(v: f32) -> Schedule {
        Schedule::new(move |_| v)
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule(at 0: {})", self.at(0))
    }
}

/// The same value at every step.
///
/// ```
/// assert_eq!(wgrad::optim::constant_schedule(0.5).at(99), 0.5);
/// ```
pub fn constant_schedule(value: f32) -> Schedule {
    value.into()
}

/// From `init` to `end` linearly over `transition_steps` steps, starting at `transition_begin`
/// (optax's `linear_schedule`).
///
/// ```
/// let s = wgrad::optim::linear_schedule(0.0, 1.0, 10, 5);
/// assert_eq!((s.at(0), s.at(10), s.at(15), s.at(100)), (0.0, 0.5, 1.0, 1.0));
/// ```
pub fn linear_schedule(
    init: f32,
    end: f32,
    transition_steps: u64,
    transition_begin: u64,
) -> Schedule {
    Schedule::new(move |step| {
        if transition_steps == 0 {
            return init;
        }
        let count = step.saturating_sub(transition_begin).min(transition_steps);
        let frac = 1.0 - count as f64 / transition_steps as f64;
        ((init as f64 - end as f64) * frac + end as f64) as f32
    })
}

/// Cosine decay from `init` to `init * alpha` over `decay_steps`, then constant (optax's
/// `cosine_decay_schedule`).
///
/// ```
/// let s = wgrad::optim::cosine_decay_schedule(2.0, 10, 0.1);
/// assert_eq!(s.at(0), 2.0);
/// assert!((s.at(10) - 0.2).abs() < 1e-6);
/// ```
pub fn cosine_decay_schedule(init: f32, decay_steps: u64, alpha: f32) -> Schedule {
    Schedule::new(move |step| {
        if decay_steps == 0 {
            return init;
        }
        let count = step.min(decay_steps) as f64;
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * count / decay_steps as f64).cos());
        (init as f64 * ((1.0 - alpha as f64) * cosine + alpha as f64)) as f32
    })
}

/// `init * decay_rate^((step - transition_begin) / transition_steps)`, the exponent floored
/// when `staircase`; `init` before `transition_begin` (optax's `exponential_decay`).
///
/// ```
/// let s = wgrad::optim::exponential_decay(1.0, 10, 0.5, 0, false);
/// assert!((s.at(10) - 0.5).abs() < 1e-7 && (s.at(5) - 0.5f32.sqrt()).abs() < 1e-6);
/// let stairs = wgrad::optim::exponential_decay(1.0, 10, 0.5, 0, true);
/// assert_eq!(stairs.at(19), 0.5);
/// ```
pub fn exponential_decay(
    init: f32,
    transition_steps: u64,
    decay_rate: f32,
    transition_begin: u64,
    staircase: bool,
) -> Schedule {
    Schedule::new(move |step| {
        if transition_steps == 0 || step <= transition_begin {
            return init;
        }
        let mut p = (step - transition_begin) as f64 / transition_steps as f64;
        if staircase {
            p = p.floor();
        }
        (init as f64 * (decay_rate as f64).powf(p)) as f32
    })
}

/// Linear warm-up from `init` to `peak` over `warmup_steps`, then cosine decay to `end` at
/// `decay_steps` (counted from the start, warm-up included), as optax's
/// `warmup_cosine_decay_schedule`.
///
/// ```
/// let s = wgrad::optim::warmup_cosine_decay_schedule(0.0, 1.0, 10, 110, 0.0);
/// assert_eq!((s.at(0), s.at(5), s.at(10)), (0.0, 0.5, 1.0));
/// assert!((s.at(60) - 0.5).abs() < 1e-6 && s.at(110) == 0.0);
/// ```
pub fn warmup_cosine_decay_schedule(
    init: f32,
    peak: f32,
    warmup_steps: u64,
    decay_steps: u64,
    end: f32,
) -> Schedule {
    let alpha = if peak == 0.0 { 0.0 } else { end / peak };
    join_schedules(
        vec![
            linear_schedule(init, peak, warmup_steps, 0),
            cosine_decay_schedule(peak, decay_steps.saturating_sub(warmup_steps), alpha),
        ],
        vec![warmup_steps],
    )
}

/// Schedule `k` from `boundaries[k-1]` on, its step counted from that boundary (optax's
/// `join_schedules`; `boundaries` has one fewer element than `schedules`).
///
/// ```
/// use wgrad::optim::{join_schedules, constant_schedule, linear_schedule};
/// let s = join_schedules(vec![constant_schedule(1.0), linear_schedule(1.0, 0.0, 10, 0)], vec![5]);
/// assert_eq!((s.at(4), s.at(5), s.at(10)), (1.0, 1.0, 0.5));
/// ```
#[track_caller]
pub fn join_schedules(schedules: Vec<Schedule>, boundaries: Vec<u64>) -> Schedule {
    assert!(
        !schedules.is_empty() && schedules.len() == boundaries.len() + 1,
        "join_schedules: {} schedules need {} boundaries, got {}",
        schedules.len(),
        schedules.len().saturating_sub(1),
        boundaries.len()
    );
    Schedule::new(move |step| {
        let k = boundaries.iter().take_while(|b| step >= **b).count();
        let start = if k == 0 { 0 } else { boundaries[k - 1] };
        schedules[k].at(step - start)
    })
}

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
