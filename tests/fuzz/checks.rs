//! What is checked of a program: its value, or a transform of it, computed on the device under
//! a scheduler policy, against an answer from the float64 reference interpreter — the
//! reference of the same graph (does the lowering compute what the graph says?) and central
//! differences of the reference (do the rules compute the derivative of the function?).

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::build::{build, values};
use crate::program::{Program, normal};
use wgrad::prelude::*;
use wgrad::{MatmulKernel, Policy};

/// A transform, or a stack of them, applied to a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Every value of the program realized together (one realize: multi-output and
    /// horizontal kernels), then the output alone twice with new inputs (the second time from a
    /// cached plan).
    Value,
    /// `grad` of `⟨w, f(x)⟩`: against the reference of its graph, and `⟨g, v⟩` against
    /// differences.
    Grad,
    /// `jvp` along `v`, against the reference of its graph and against differences.
    Jvp,
    /// `vmap` over a batch of three stacked at this axis, against each example's reference.
    Vmap(u8),
    /// `vmap(grad)` over a batch at this axis, against each example's gradient's reference.
    VmapGrad(u8),
    /// `jit`, called with three inputs, against the reference of the plain function.
    Jit,
    /// `jit(grad)`, called with two inputs.
    JitGrad,
    /// `grad` through `checkpoint`, against the reference of the plain gradient.
    Checkpoint,
    /// `jacfwd` and `jacrev` against a Jacobian of differences (small programs only).
    Jacobians,
    /// `jvp(grad)` (a Hessian-vector product) against differences of the gradient's reference.
    HessianVector,
}

/// One check of one program under one policy with one draw of data: everything a failure
/// needs to be reproduced.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub program: Program,
    pub check: Check,
    /// Policy bits (see [`policy_of`]).
    pub policy: u16,
    /// The seed of the inputs, directions and weights.
    pub data: u64,
}

impl Case {
    pub fn to_rust(&self) -> String {
        format!(
            "Case {{\n    program: {},\n    check: Check::{:?},\n    policy: {:#b},\n    data: {},\n}}",
            self.program.to_rust(),
            self.check,
            self.policy,
            self.data
        )
    }
}

/// How many policy bits there are.
pub const POLICY_BITS: u32 = 10;

/// The scheduler's knobs from bits: fusion off (depth 1) or on, matmul epilogues,
/// multi-output and horizontal kernels, loop nodes or unrolled loops, the plan cache, the
/// matmul kernel, the NaN sentinel, sort in workgroups, and small Jacobian chunks.
pub fn policy_of(bits: u16) -> Policy {
    let on = |k: u32| bits & (1 << k) != 0;
    Policy {
        max_fused_depth: if on(0) { 1 } else { 48 },
        epilogues: Some(on(1)),
        multi_output: on(2),
        horizontal: on(3),
        loops: !on(4),
        plan_cache: if on(5) { 0 } else { 32 },
        matmul: if on(6) {
            MatmulKernel::Tiled
        } else {
            MatmulKernel::Direct
        },
        sentinel: on(7),
        sort_in_workgroups: Some(on(8)),
        jacobian_chunk_bytes: if on(9) { 64 } else { 0 },
        ..wgrad::policy()
    }
}

/// A check that could not judge (the function is not smooth at the point, or not finite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    NotSmooth,
    NotFinite,
    /// The answer depends on rounding: the float64 reference and the reference rounded to
    /// float32 at every node disagree (a comparison or a sort of nearly equal values).
    Rounding,
}

type Outcome = Result<Option<Skip>, String>;

/// Runs a case; `Err` describes a disagreement (or a panic, or an error from wgrad).
pub fn run_case(c: &Case) -> Outcome {
    let caught = catch_unwind(AssertUnwindSafe(|| {
        wgrad::with_policy(policy_of(c.policy), || run(c))
    }));
    match caught {
        Ok(r) => r,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panic: {msg}"))
        }
    }
}

/// The reference's values of a graph (to be evaluated before the device realizes it).
fn reference(t: &Tensor) -> Result<Vec<f64>, String> {
    wgrad::reference::values(t).map_err(|e| format!("reference: {e}"))
}

/// The reference's values of a graph: in float64, rounded to float32 at every node
/// (`wgrad::reference::values_rounded`), and with every node's value moved by a relative
/// 1e-6 (`values_of_perturbed`: float32's errors, roughly): evaluated before the device
/// realizes the same graph.
#[derive(Default)]
struct Want {
    exact: Vec<f64>,
    rounded: Vec<f64>,
    perturbed: Vec<f64>,
}

impl Want {
    fn extend(&mut self, w: Want) {
        self.exact.extend(w.exact);
        self.rounded.extend(w.rounded);
        self.perturbed.extend(w.perturbed);
    }
}

fn want(t: &Tensor) -> Result<Want, String> {
    Ok(want_all(std::slice::from_ref(t))?.remove(0))
}

/// [`Want`] of pending tensors, from the very graph the device will realize afterwards.
fn want_all(ts: &[Tensor]) -> Result<Vec<Want>, String> {
    let fail = |e: wgrad::Error| format!("reference: {e}");
    let exact = wgrad::reference::values_of(ts).map_err(fail)?;
    let rounded = wgrad::reference::values_of_rounded(ts).map_err(fail)?;
    // Every node's value moved by up to 16 float32 ulps: what float32 arithmetic may do.
    let perturbed = wgrad::reference::values_of_perturbed(ts, 1e-6, 0x0FF5E7).map_err(fail)?;
    Ok(exact
        .into_iter()
        .zip(rounded)
        .zip(perturbed)
        .map(|((exact, rounded), perturbed)| Want {
            exact,
            rounded,
            perturbed,
        })
        .collect())
}

/// The device against the float64 reference; where they disagree, a reference rounded to
/// float32 that agrees with the device, or a rounded or perturbed reference that disagrees with
/// the float64 one, says that the answer depends on rounding: a skip, not a failure.
fn judge(what: &str, got: &[f64], w: &Want, tol: f64) -> Outcome {
    let exact = compare(what, got, &w.exact, tol);
    if exact.is_ok() {
        return exact;
    }
    // Rounding explains the device's answer, or moves the answer, or so do errors as small as
    // float32's: the answer hangs on a tie (a comparison, a sort, a max of nearly equal
    // values) or on a cancellation (a softmax of large, nearly equal logits), and float32 may
    // land anywhere near it.
    let sensitive = compare(what, got, &w.rounded, tol).is_ok()
        || compare(what, &w.rounded, &w.exact, tol).is_err()
        || compare(what, &w.perturbed, &w.exact, tol).is_err();
    if sensitive {
        Ok(Some(Skip::Rounding))
    } else {
        exact
    }
}

fn device(t: &Tensor) -> Result<Vec<f64>, String> {
    let v = t
        .try_cast(DType::F32)
        .and_then(|t| t.try_to_vec::<f32>())
        .map_err(|e| format!("device: {e}"))?;
    Ok(v.into_iter().map(f64::from).collect())
}

/// Tolerances, relative to the largest magnitude of the answer (at least 0.1).
const VALUE_TOL: f64 = 2e-4;
const FIRST_TOL: f64 = 2e-3;
const SECOND_TOL: f64 = 5e-3;

fn compare(what: &str, got: &[f64], want: &[f64], tol: f64) -> Outcome {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} values from the device, {} from the reference",
            got.len(),
            want.len()
        ));
    }
    // Values past float32's range (a product of many factors, say) cannot be compared.
    if want.iter().any(|w| w.is_nan() || w.abs() >= 1e30) {
        return Ok(Some(Skip::NotFinite));
    }
    let scale = want.iter().fold(0.1f64, |m, w| m.max(w.abs()));
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let close = (g - w).abs() <= tol * scale;
        if !close {
            return Err(format!(
                "{what}: element {k} of {}: device {g}, reference {w} (scale {scale:.3})",
                want.len()
            ));
        }
    }
    Ok(None)
}

/// Central differences of the reference of `g` along `v` in float64, at two steps; `None`
/// where they disagree (a kink or a jump near `x`: no derivative to compare with).
fn differences(
    g: &dyn Fn(&Tensor) -> Tensor,
    x: &Tensor,
    v: &Tensor,
    tol: f64,
) -> Result<Option<Vec<f64>>, String> {
    let at = |h: f32| -> Result<Vec<f64>, String> {
        let plus = reference(&g(&(x + &(v * h))))?;
        let minus = reference(&g(&(x - &(v * h))))?;
        Ok(plus
            .iter()
            .zip(&minus)
            .map(|(p, m)| (p - m) / (2.0 * f64::from(h)))
            .collect())
    };
    // The reference is float64, so small steps lose little to rounding (~1e-16·|f|/h) and
    // straddle few kinks (a sort's crossing, a max's tie).
    let coarse = at(1e-4)?;
    let fine = at(1e-5)?;
    let scale = fine.iter().fold(0.1f64, |m, w| m.max(w.abs()));
    let smooth = coarse
        .iter()
        .zip(&fine)
        .all(|(a, b)| (a - b).abs() <= 0.25 * tol * scale);
    Ok(smooth.then_some(fine))
}

fn merge(a: Outcome, b: Outcome) -> Outcome {
    match (a?, b?) {
        (Some(s), _) | (_, Some(s)) => Ok(Some(s)),
        _ => Ok(None),
    }
}

fn dot(a: &[f64], b: &[f64]) -> (f64, f64) {
    let d = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let size = a.iter().zip(b).map(|(x, y)| (x * y).abs()).sum();
    (d, size)
}

fn run(c: &Case) -> Outcome {
    let p = &c.program;
    let f = |x: &Tensor| build(p, x);
    let x = normal(&p.input, c.data);
    let v = normal(&p.input, c.data + 1);
    let out_shape = f(&x).shape().to_vec();
    let w = normal(&out_shape, c.data + 2);
    let loss = |x: &Tensor| (build(p, x) * &w).sum_all();
    match c.check {
        Check::Value => {
            let (all, _) = values(p, &x);
            let wants = want_all(&all)?;
            wgrad::try_realize(&all).map_err(|e| format!("device: {e}"))?;
            let mut out = Ok(None);
            for (k, (t, w)) in all.iter().zip(&wants).enumerate() {
                let what = format!("value {k} (all realized at once)");
                out = merge(out, judge(&what, &device(t)?, w, VALUE_TOL));
            }
            for k in 0..2 {
                let x = normal(&p.input, c.data + 10 + k);
                let y = f(&x);
                let w = want(&y)?;
                out = merge(out, judge("value", &device(&y)?, &w, VALUE_TOL));
            }
            out
        }
        Check::Grad => {
            let g = grad(loss)(&x);
            let w = want(&g)?;
            let got = device(&g)?;
            let lowered = judge("grad (its graph)", &got, &w, FIRST_TOL);
            if lowered != Ok(None) {
                // The device's decisions differ from float64's: no derivative to compare.
                return lowered;
            }
            let Some(fd) = differences(&loss, &x, &v, FIRST_TOL)? else {
                return Ok(Some(Skip::NotSmooth));
            };
            let (d, size) = dot(&got, &device(&v)?);
            let tol = FIRST_TOL * size.max(0.1);
            let close = (d - fd[0]).abs() <= tol;
            if !close {
                return Err(format!("grad: ⟨g, v⟩ = {d}, differences {}", fd[0]));
            }
            Ok(None)
        }
        Check::Jvp => {
            let (_, t) = jvp(f, &x, &v);
            let w = want(&t)?;
            let got = device(&t)?;
            let lowered = judge("jvp (its graph)", &got, &w, FIRST_TOL);
            if lowered != Ok(None) {
                return lowered;
            }
            match differences(&f, &x, &v, FIRST_TOL)? {
                Some(fd) => compare("jvp", &got, &fd, FIRST_TOL),
                None => Ok(Some(Skip::NotSmooth)),
            }
        }
        Check::Vmap(ax) | Check::VmapGrad(ax) => {
            let axis = (ax as usize % (p.input.len() + 1)) as isize;
            let xs: Vec<Tensor> = (0..3).map(|b| normal(&p.input, c.data + 20 + b)).collect();
            let batch = stack(&xs, axis);
            let per_example: &dyn Fn(&Tensor) -> Tensor = if c.check == Check::Vmap(ax) {
                &f
            } else {
                &|x: &Tensor| grad(loss)(x)
            };
            let mut w = Want::default();
            for x in &xs {
                w.extend(want(&per_example(x))?);
            }
            let got = vmap(per_example, axis)(&batch);
            judge("vmap", &device(&got)?, &w, FIRST_TOL)
        }
        Check::Jit | Check::JitGrad => {
            let per: &dyn Fn(&Tensor) -> Tensor = if c.check == Check::Jit {
                &f
            } else {
                &|x: &Tensor| grad(loss)(x)
            };
            let jitted = jit(per);
            let mut out = Ok(None);
            for k in 0..3 {
                let x = normal(&p.input, c.data + 30 + k);
                let w = want(&per(&x))?;
                out = merge(out, judge("jit", &device(&jitted(&x))?, &w, FIRST_TOL));
            }
            out
        }
        Check::Checkpoint => {
            let plain = want(&grad(loss)(&x))?;
            let q = p.clone();
            let remat = checkpoint(move |x: &Tensor| build(&q, x));
            let g = grad(|x: &Tensor| (remat(x) * &w).sum_all())(&x);
            judge("checkpoint", &device(&g)?, &plain, FIRST_TOL)
        }
        Check::Jacobians => jacobians(&f, &x, &out_shape),
        Check::HessianVector => {
            let g = |x: &Tensor| grad(loss)(x);
            let (_, hv) = jvp(g, &x, &v);
            let w = want(&hv)?;
            let got = device(&hv)?;
            let lowered = judge("hessian-vector (its graph)", &got, &w, SECOND_TOL);
            if lowered != Ok(None) {
                return lowered;
            }
            match differences(&g, &x, &v, SECOND_TOL)? {
                Some(fd) => compare("hessian-vector", &got, &fd, SECOND_TOL),
                None => Ok(Some(Skip::NotSmooth)),
            }
        }
    }
}

/// `jacfwd` and `jacrev` against columns of differences along each basis direction.
fn jacobians(f: &dyn Fn(&Tensor) -> Tensor, x: &Tensor, out_shape: &[usize]) -> Outcome {
    let n_in = x.numel();
    let n_out: usize = out_shape.iter().product();
    let mut fd = vec![0.0; n_out * n_in];
    for j in 0..n_in {
        let mut e = vec![0.0f32; n_in];
        e[j] = 1.0;
        let e = Tensor::from_vec(e, x.shape());
        let Some(col) = differences(f, x, &e, FIRST_TOL)? else {
            return Ok(Some(Skip::NotSmooth));
        };
        for (i, d) in col.into_iter().enumerate() {
            fd[i * n_in + j] = d;
        }
    }
    let (jf, jr) = (jacfwd(f)(x), jacrev(f)(x));
    let (wf, wr) = (want(&jf)?, want(&jr)?);
    let (fwd, rev) = (device(&jf)?, device(&jr)?);
    let lowered = merge(
        judge("jacfwd (its graph)", &fwd, &wf, FIRST_TOL),
        judge("jacrev (its graph)", &rev, &wr, FIRST_TOL),
    );
    if lowered != Ok(None) {
        return lowered;
    }
    merge(
        compare("jacfwd", &fwd, &fd, FIRST_TOL),
        compare("jacrev", &rev, &fd, FIRST_TOL),
    )
}
