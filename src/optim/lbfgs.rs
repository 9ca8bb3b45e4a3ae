//! L-BFGS with a strong-Wolfe line search (optax's `lbfgs` with its zoom line search, as
//! `jax.scipy.optimize.minimize(method="L-BFGS")` users expect): the tool for smooth
//! deterministic fits (Gaussian-process hyperparameters, physical models) where Adam wanders.
//! Values and gradients come from wgrad on the device; the two-loop recursion and the line
//! search run on the host in float64 over the flattened parameters.

use crate::base::error::{Result, shape_err};
use crate::ir::tensor::Tensor;
use crate::tree::Tree;

/// Options of [`lbfgs`].
///
/// ```
/// let o = wgrad::optim::LbfgsOptions { max_iters: 50, ..Default::default() };
/// assert_eq!((o.memory, o.max_iters), (10, 50));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LbfgsOptions {
    /// Pairs `(s, y)` kept for the inverse-Hessian estimate.
    pub memory: usize,
    /// Iterations at most.
    pub max_iters: usize,
    /// Stop when the largest gradient entry is at most this.
    pub gtol: f64,
    /// Stop when a step lowers the value by at most this, relative to `max(|f|, 1)` (about the
    /// resolution of an f32 objective).
    pub ftol: f64,
    /// Function evaluations per line search at most.
    pub max_linesearch: usize,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        LbfgsOptions {
            memory: 10,
            max_iters: 200,
            gtol: 1e-5,
            ftol: 1e-7,
            max_linesearch: 25,
        }
    }
}

/// Why [`lbfgs`] stopped.
///
/// ```
/// use wgrad::prelude::*;
/// use wgrad::optim::{LbfgsStop, lbfgs};
/// let r = lbfgs(|x: &Tensor| x.square().sum_all(), &Tensor::zeros([2]), Default::default());
/// assert_eq!(r.stop, LbfgsStop::Gradient); // already at the minimum
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbfgsStop {
    /// The largest gradient entry reached `gtol`.
    Gradient,
    /// A step lowered the value by at most `ftol` (relative).
    Value,
    /// The line search found no step that lowers the value enough: typically the objective's
    /// own rounding (an f32 value) is as large as the decrease left.
    LineSearch,
    /// `max_iters` ran out.
    Iterations,
}

/// What [`lbfgs`] found.
///
/// ```
/// use wgrad::prelude::*;
/// let f = |x: &Tensor| (x - 3.0).square().sum_all();
/// let r = wgrad::optim::lbfgs(f, &Tensor::zeros([1]), Default::default());
/// assert!(r.converged && (r.params.item() - 3.0).abs() < 1e-4 && r.evaluations >= 2);
/// ```
#[derive(Clone, Debug)]
pub struct LbfgsResult<P> {
    /// The parameters at the end.
    pub params: P,
    /// The value there.
    pub value: f64,
    /// The largest gradient entry there.
    pub grad_max: f64,
    /// Iterations run.
    pub iterations: usize,
    /// Function (and gradient) evaluations.
    pub evaluations: usize,
    /// Whether a tolerance was met (not the iteration limit or a failed line search).
    pub converged: bool,
    /// Why it stopped.
    pub stop: LbfgsStop,
}

/// The objective on flat host vectors: rebuilds the tree, evaluates value and gradient on the
/// device, reads them back.
struct Flat<'a, P: Tree> {
    f: &'a dyn Fn(&P) -> Tensor,
    template: &'a P,
    shapes: Vec<Vec<usize>>,
    evaluations: usize,
}

impl<P: Tree + Clone> Flat<'_, P> {
    fn params(&self, x: &[f64]) -> P {
        let mut at = 0;
        let leaves = self
            .shapes
            .iter()
            .map(|s| {
                let n: usize = s.iter().product();
                let v: Vec<f32> = x[at..at + n].iter().map(|&v| v as f32).collect();
                at += n;
                Tensor::from_vec(v, s.as_slice())
            })
            .collect();
        self.template.rebuild(leaves)
    }
    fn eval(&mut self, x: &[f64]) -> Result<(f64, Vec<f64>)> {
        self.evaluations += 1;
        let p = self.params(x);
        let vg = crate::transforms::api::try_value_and_grad_aux(
            |p: &P| ((self.f)(p), ()),
            crate::transforms::api::GradOptions::default(),
        );
        let (v, g, ()) = vg(&p)?;
        let mut both = vec![v.clone()];
        both.extend(g.leaves());
        crate::runtime::read::try_realize(&both)?;
        let mut flat = Vec::with_capacity(x.len());
        for leaf in g.leaves() {
            flat.extend(leaf.try_to_vec::<f32>()?.into_iter().map(f64::from));
        }
        Ok((v.try_to_vec::<f32>()?[0] as f64, flat))
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(x: &[f64], t: f64, d: &[f64]) -> Vec<f64> {
    x.iter().zip(d).map(|(a, b)| a + t * b).collect()
}

/// The two-loop recursion: `-H g` for the inverse-Hessian estimate of the pairs.
fn direction(g: &[f64], pairs: &[(Vec<f64>, Vec<f64>, f64)]) -> Vec<f64> {
    let mut q = g.to_vec();
    let mut alphas = vec![0.0; pairs.len()];
    for (k, (s, y, rho)) in pairs.iter().enumerate().rev() {
        alphas[k] = rho * dot(s, &q);
        q = axpy(&q, -alphas[k], y);
    }
    if let Some((s, y, _)) = pairs.last() {
        let gamma = dot(s, y) / dot(y, y);
        q.iter_mut().for_each(|v| *v *= gamma);
    }
    for (k, (s, y, rho)) in pairs.iter().enumerate() {
        let beta = rho * dot(y, &q);
        q = axpy(&q, alphas[k] - beta, s);
    }
    q.iter().map(|v| -v).collect()
}

/// A step length satisfying the strong Wolfe conditions along `d` (Nocedal & Wright's
/// Algorithm 3.5 with its zoom, bisection inside the bracket), or `None`.
#[allow(clippy::too_many_arguments)]
fn line_search<P: Tree + Clone>(
    obj: &mut Flat<'_, P>,
    x: &[f64],
    f0: f64,
    g0: &[f64],
    d: &[f64],
    t0: f64,
    max_evals: usize,
) -> Result<Option<(f64, f64, Vec<f64>)>> {
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    let slope0 = dot(g0, d);
    let at = |t: f64, obj: &mut Flat<'_, P>| -> Result<(f64, Vec<f64>, f64)> {
        let (f, g) = obj.eval(&axpy(x, t, d))?;
        let f = if f.is_finite() { f } else { f64::INFINITY };
        let slope = dot(&g, d);
        Ok((f, g, slope))
    };
    let (mut lo, mut f_lo) = (0.0, f0);
    let mut hi: Option<f64> = None;
    let mut t = t0;
    for _ in 0..max_evals {
        let (f, g, slope) = at(t, obj)?;
        if f > f0 + C1 * t * slope0 || f >= f_lo && hi.is_some() || !f.is_finite() {
            hi = Some(t);
        } else if slope.abs() <= -C2 * slope0 {
            return Ok(Some((t, f, g)));
        } else if slope >= 0.0 {
            hi = Some(lo);
            (lo, f_lo) = (t, f);
        } else {
            (lo, f_lo) = (t, f);
        }
        t = match hi {
            Some(h) => 0.5 * (lo + h),
            None => 2.0 * t,
        };
    }
    Ok(None)
}

/// Minimizes `f` over a parameter tree with L-BFGS from `init` (as optax's `lbfgs` driven to
/// convergence, or `jax.scipy.optimize.minimize(..., method="L-BFGS")`): at most
/// `max_iters` iterations, each a two-loop direction and a strong-Wolfe line search; stops at
/// `gtol` on the largest gradient entry or `ftol` on the relative decrease.
///
/// ```
/// use wgrad::prelude::*;
/// // Rosenbrock's valley, from the classic start (-1.2, 1).
/// let f = |p: &Tensor| {
///     let (x, y) = (p.index(0), p.index(1));
///     (1.0 - &x).square() + (y - x.square()).square() * 100.0
/// };
/// let r = wgrad::optim::lbfgs(f, &Tensor::from_vec(vec![-1.2f32, 1.0], [2]), Default::default());
/// let p = r.params.to_vec::<f32>();
/// assert!(r.converged && (p[0] - 1.0).abs() < 1e-3 && (p[1] - 1.0).abs() < 2e-3);
/// ```
#[track_caller]
pub fn lbfgs<P: Tree + Clone>(
    f: impl Fn(&P) -> Tensor,
    init: &P,
    options: LbfgsOptions,
) -> LbfgsResult<P> {
    crate::base::error::or_panic(try_lbfgs(f, init, options))
}

/// Fallible [`lbfgs`]: an error from the objective (a shape error, a refused transform), or for
/// a non-finite value at the start.
///
/// ```
/// use wgrad::prelude::*;
/// let r = wgrad::optim::try_lbfgs(|p: &Tensor| p.log().sum_all(), &Tensor::from_vec(vec![-1.0f32], [1]), Default::default());
/// assert!(r.is_err());
/// ```
pub fn try_lbfgs<P: Tree + Clone>(
    f: impl Fn(&P) -> Tensor,
    init: &P,
    options: LbfgsOptions,
) -> Result<LbfgsResult<P>> {
    let leaves = init.leaves();
    let mut x = vec![];
    for leaf in &leaves {
        x.extend(leaf.try_to_vec::<f32>()?.into_iter().map(f64::from));
    }
    let mut obj = Flat {
        f: &f,
        template: init,
        shapes: leaves.iter().map(|l| l.shape().to_vec()).collect(),
        evaluations: 0,
    };
    let (mut fx, mut g) = obj.eval(&x)?;
    if !fx.is_finite() {
        return shape_err(
            "lbfgs",
            format!("the objective is {fx} at the initial parameters"),
        );
    }
    let gmax = |g: &[f64]| g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut pairs: Vec<(Vec<f64>, Vec<f64>, f64)> = vec![];
    let mut stop = (gmax(&g) <= options.gtol).then_some(LbfgsStop::Gradient);
    let mut iterations = 0;
    while stop.is_none() && iterations < options.max_iters {
        iterations += 1;
        let mut d = direction(&g, &pairs);
        if dot(&d, &g) >= 0.0 {
            // Not a descent direction (a poor estimate): restart from steepest descent.
            pairs.clear();
            d = g.iter().map(|v| -v).collect();
        }
        // The first step of a fresh estimate is scaled to move the parameters by about 1.
        let t0 = if pairs.is_empty() {
            1.0 / gmax(&g).max(1.0)
        } else {
            1.0
        };
        let Some((t, f_new, g_new)) =
            line_search(&mut obj, &x, fx, &g, &d, t0, options.max_linesearch)?
        else {
            stop = Some(LbfgsStop::LineSearch);
            break;
        };
        let x_new = axpy(&x, t, &d);
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&y, &y).sqrt() * dot(&s, &s).sqrt() {
            pairs.push((s, y, 1.0 / sy));
            if pairs.len() > options.memory {
                pairs.remove(0);
            }
        }
        let decrease = fx - f_new;
        (x, fx, g) = (x_new, f_new, g_new);
        if gmax(&g) <= options.gtol {
            stop = Some(LbfgsStop::Gradient);
        } else if decrease <= options.ftol * fx.abs().max(1.0) {
            stop = Some(LbfgsStop::Value);
        }
    }
    let stop = stop.unwrap_or(LbfgsStop::Iterations);
    Ok(LbfgsResult {
        params: obj.params(&x),
        value: fx,
        grad_max: gmax(&g),
        iterations,
        evaluations: obj.evaluations,
        converged: matches!(stop, LbfgsStop::Gradient | LbfgsStop::Value),
        stop,
    })
}
