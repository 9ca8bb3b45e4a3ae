//! Hyper-parameters as functions of the step count (optax's schedules).

use std::fmt;
use std::rc::Rc;

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
