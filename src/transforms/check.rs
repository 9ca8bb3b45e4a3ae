//! `check_grads`, like `jax.test_util.check_grads`: JVPs against central finite differences and
//! VJPs against JVPs (⟨ct, J·v⟩ = ⟨Jᵀ·ct, v⟩), recursively up to the requested order.

use crate::base::error::{Result, transform_err};
use crate::ir::tensor::Tensor;
use crate::transforms::jvp::jvp_flat;
use crate::transforms::vjp::vjp_flat;

/// Which derivatives [`check_grads`] checks.
///
/// ```
/// let modes = [wgrad::Mode::Fwd, wgrad::Mode::Rev];
/// assert_eq!(modes.len(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward mode: JVPs against finite differences.
    Fwd,
    /// Reverse mode: VJPs against JVPs.
    Rev,
}

/// What [`check_grads`] found: the worst relative error and where.
#[derive(Debug, Clone, PartialEq)]
pub struct GradCheck {
    /// Largest `|got - want| / max(1, |want|)` seen.
    pub worst_error: f32,
    /// The check that produced it (`jvp` or `vjp`).
    pub check: &'static str,
    /// Derivative order at which it was seen (1 = first derivatives).
    pub order: usize,
    /// The argument.
    pub arg: usize,
    /// Flat index into the output (for `jvp`; 0 for `vjp`, which compares inner products).
    pub index: usize,
}

type Flat<'a> = Box<dyn Fn(&[Tensor]) -> Tensor + 'a>;

fn direction(t: &Tensor, seed: u64) -> Tensor {
    Tensor::randn(t.shape(), seed)
}

fn worse(a: GradCheck, b: GradCheck) -> GradCheck {
    if b.worst_error > a.worst_error || a.worst_error.is_nan() {
        b
    } else {
        a
    }
}

fn check_once(
    f: &Flat,
    args: &[Tensor],
    order: usize,
    modes: &[Mode],
    eps: f32,
    seed: u64,
) -> Result<GradCheck> {
    let mut worst = GradCheck {
        worst_error: 0.0,
        check: "jvp",
        order,
        arg: 0,
        index: 0,
    };
    let flat = |x: &[Tensor]| vec![f(x)];
    for (a, x) in args.iter().enumerate() {
        let v = direction(x, seed + a as u64);
        let mut ts: Vec<Option<Tensor>> = vec![None; args.len()];
        ts[a] = Some(v.clone());
        let (_, tout) = jvp_flat(&flat, args, &ts, true)?;
        let jv = tout[0].to_f32_vec();
        if modes.contains(&Mode::Fwd) {
            let at = |s: f32| {
                let mut moved = args.to_vec();
                moved[a] = x + &v * s;
                f(&moved).to_f32_vec()
            };
            let (hi, lo) = (at(eps), at(-eps));
            for (k, ((h, l), g)) in hi.iter().zip(&lo).zip(&jv).enumerate() {
                let want = (h - l) / (2.0 * eps);
                let err = (g - want).abs() / want.abs().max(1.0);
                worst = worse(
                    worst,
                    GradCheck {
                        worst_error: err,
                        check: "jvp",
                        order,
                        arg: a,
                        index: k,
                    },
                );
            }
        }
        if modes.contains(&Mode::Rev) {
            let (out, pb) = vjp_flat(&flat, args, true);
            let ct = direction(&out[0], seed + 1000 + a as u64);
            let g = pb.call(&[Some(ct.clone())])?;
            let lhs = (&ct * &tout[0]).sum_all().item();
            let rhs = (&g[a] * &v).sum_all().item();
            let err = (lhs - rhs).abs() / rhs.abs().max(1.0);
            worst = worse(
                worst,
                GradCheck {
                    worst_error: err,
                    check: "vjp",
                    order,
                    arg: a,
                    index: 0,
                },
            );
        }
    }
    Ok(worst)
}

/// Checks the derivatives of `f` at `args` up to `order`, in the given modes, and returns the
/// worst error; an error when it exceeds `tol` (it names the check, the order, the argument and
/// the index). Finite differences use a step of `1e-2` in a random direction (float32).
///
/// ```
/// use wgrad::prelude::*;
/// let f = |a: &[Tensor]| (a[0].sin() * &a[1]).sum_all();
/// let args = [Tensor::from_vec(vec![0.3f32, -0.7], [2]), Tensor::from_vec(vec![1.5f32, 0.5], [2])];
/// let report = check_grads(f, &args, 2, &[Mode::Fwd, Mode::Rev], 1e-2).unwrap();
/// assert!(report.worst_error < 1e-2);
/// ```
pub fn check_grads<F: Fn(&[Tensor]) -> Tensor>(
    f: F,
    args: &[Tensor],
    order: usize,
    modes: &[Mode],
    tol: f32,
) -> Result<GradCheck> {
    let mut worst = GradCheck {
        worst_error: 0.0,
        check: "jvp",
        order: 1,
        arg: 0,
        index: 0,
    };
    let mut fun: Flat = Box::new(f);
    for o in 1..=order.max(1) {
        worst = worse(
            worst,
            check_once(&fun, args, o, modes, 1e-2, 17 * o as u64)?,
        );
        if o == order {
            break;
        }
        // The next order checks the derivative map itself: x ↦ J(x)·v (forward) or x ↦ Jᵀ(x)·ct.
        let prev = fun;
        let seeds = 31 * o as u64;
        let dirs: Vec<Tensor> = args
            .iter()
            .enumerate()
            .map(|(a, x)| direction(x, seeds + a as u64))
            .collect();
        fun = if modes.contains(&Mode::Fwd) {
            Box::new(move |x: &[Tensor]| {
                let ts: Vec<Option<Tensor>> = dirs.iter().cloned().map(Some).collect();
                let flat = |y: &[Tensor]| vec![prev(y)];
                jvp_flat(&flat, x, &ts, true)
                    .expect("checked shapes")
                    .1
                    .remove(0)
            })
        } else {
            Box::new(move |x: &[Tensor]| {
                let flat = |y: &[Tensor]| vec![prev(y)];
                let (out, pb) = vjp_flat(&flat, x, true);
                let ct = direction(&out[0], seeds + 99);
                let gs = pb.call(&[Some(ct)]).expect("matching cotangent");
                let parts: Vec<Tensor> = gs.iter().map(|g| g.reshape([g.numel()])).collect();
                crate::concat(&parts, 0)
            })
        };
    }
    if worst.worst_error.is_nan() || worst.worst_error > tol {
        return transform_err(
            "check_grads",
            format!(
                "{} check failed at order {}: relative error {:.3e} > {tol:e} for argument {} at index {}",
                worst.check, worst.order, worst.worst_error, worst.arg, worst.index
            ),
        );
    }
    Ok(worst)
}
