//! The reference interpreter: evaluates a pending graph node by node on the host, in float64,
//! with each primitive's own `reference` (plain loops, written apart from its WGSL), so that
//! whatever the GPU computes for a graph can be checked against an independent answer.
//! Realized tensors are leaves: their values are read back from the device.

use std::collections::HashMap;

use crate::base::dtype::DType;
use crate::base::error::Result;
use crate::base::host::Host;
use crate::ir::tensor::Tensor;

/// The values of `outputs`, with the nodes in `bound` (by id) taking the given values instead
/// of their own (a loop body's placeholders and captured tensors).
pub(crate) fn evaluate(outputs: &[Tensor], bound: &HashMap<u64, Host>) -> Result<Vec<Host>> {
    let mut memo: HashMap<u64, Host> = HashMap::new();
    for out in outputs {
        // Iterative post-order: a node after all of its inputs.
        let mut stack: Vec<(Tensor, bool)> = vec![(out.clone(), false)];
        while let Some((t, expanded)) = stack.pop() {
            let id = t.id();
            if memo.contains_key(&id) {
                continue;
            }
            if let Some(v) = bound.get(&id) {
                memo.insert(id, v.clone());
                continue;
            }
            if t.has_value() {
                memo.insert(id, read_leaf(&t)?);
                continue;
            }
            let inputs = t.inputs();
            if !expanded {
                stack.push((t.clone(), true));
                for x in inputs.iter().rev() {
                    stack.push((x.clone(), false));
                }
                continue;
            }
            let values: Vec<Host> = inputs.iter().map(|x| memo[&x.id()].clone()).collect();
            let mut v = t.op().prim().reference(&t, &values)?;
            match crate::base::scope::innermost(&MODES).unwrap_or(Mode::Exact) {
                Mode::Exact => {}
                Mode::Rounded => round_to_dtype(&mut v),
                Mode::Perturbed(relative, seed) => perturb(&mut v, relative, seed ^ id),
            }
            memo.insert(id, v);
        }
    }
    Ok(outputs.iter().map(|o| memo[&o.id()].clone()).collect())
}

/// How the reference treats each node's value.
#[derive(Clone, Copy)]
enum Mode {
    /// As computed, in float64.
    Exact,
    /// Rounded to the node's dtype (see [`values_rounded`]).
    Rounded,
    /// Float values times `1 + relative·r`, `r` uniform in [-1, 1] per element from the seed
    /// (see [`values_of_perturbed`]).
    Perturbed(f64, u64),
}

thread_local! {
    /// The modes of the enclosing `values_*_rounded`/`values_of_perturbed` calls, innermost last.
    static MODES: std::cell::RefCell<Vec<Mode>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Rounds a float32 or float16 value to what its dtype holds (integers and bools are exact).
fn round_to_dtype(v: &mut Host) {
    match v.dtype {
        DType::F32 => v.data.iter_mut().for_each(|x| *x = f64::from(*x as f32)),
        DType::F16 => v
            .data
            .iter_mut()
            .for_each(|x| *x = half::f16::from_f64(*x).to_f64()),
        _ => {}
    }
}

/// Multiplies every element of a float value by `1 + relative·r`, `r` in [-1, 1] drawn from
/// `seed` (SplitMix64) and the element's position.
fn perturb(v: &mut Host, relative: f64, seed: u64) {
    if !matches!(v.dtype, DType::F32 | DType::F16) {
        return;
    }
    for (k, x) in v.data.iter_mut().enumerate() {
        let mut z = seed
            .wrapping_add((k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let r = (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0;
        *x *= 1.0 + relative * r;
    }
}

/// Runs `f` with every node's value treated as `mode` says (panic-safe).
fn with_mode<R>(mode: Mode, f: impl FnOnce() -> R) -> R {
    crate::base::scope::with_pushed(&MODES, mode, f)
}

/// A realized tensor's value, read from the device.
fn read_leaf(t: &Tensor) -> Result<Host> {
    let data: Vec<f64> = match t.dtype() {
        DType::F32 => t.try_to_vec::<f32>()?.into_iter().map(f64::from).collect(),
        DType::F16 => {
            let v = t.try_to_vec::<half::f16>()?;
            v.into_iter().map(|x| x.to_f64()).collect()
        }
        DType::I32 => t.try_to_vec::<i32>()?.into_iter().map(f64::from).collect(),
        DType::U32 => t.try_to_vec::<u32>()?.into_iter().map(f64::from).collect(),
        DType::Bool => t
            .try_to_vec::<bool>()?
            .into_iter()
            .map(|b| b as u8 as f64)
            .collect(),
    };
    Ok(Host::new(t.shape(), t.dtype(), data))
}

/// The value of `t` computed by the reference interpreter, as float64 in row-major order:
/// every pending node evaluated on the host with plain loops, independently of the kernels
/// (realized tensors are read back and taken as they are). For checking what the GPU
/// computes: evaluate before realizing, since a realized tensor is its own answer.
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3]);
/// let y = (x.exp() * 2.0).sum_all();
/// let r = wgrad::reference::values(&y).unwrap();
/// let want: f64 = [1.0f64, 2.0, 3.0].iter().map(|v| v.exp() * 2.0).sum();
/// assert!((r[0] - want).abs() < 1e-12 * want);
/// assert!((y.item() as f64 - r[0]).abs() < 1e-5 * want);
/// ```
pub fn values(t: &Tensor) -> Result<Vec<f64>> {
    let mut v = evaluate(std::slice::from_ref(t), &HashMap::new())?;
    Ok(v.pop().map(|h| h.data).unwrap_or_default())
}

/// [`values`] of several tensors at once (shared subgraphs evaluated once).
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::arange(4);
/// let v = wgrad::reference::values_of(&[x.clone(), &x * 2.0]).unwrap();
/// assert_eq!(v[1], vec![0.0, 2.0, 4.0, 6.0]);
/// ```
pub fn values_of(ts: &[Tensor]) -> Result<Vec<Vec<f64>>> {
    Ok(evaluate(ts, &HashMap::new())?
        .into_iter()
        .map(|h| h.data)
        .collect())
}

/// [`values`] with every node's value rounded to its dtype as the device stores it (each
/// float32 result to float32), still computed in float64 within each node. Where this and
/// [`values`] disagree, the answer depends on rounding (a comparison of nearly equal values,
/// `x > tanh(x)` for tiny `x`, say): the device may take either branch.
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![1e-6f32], [1]);
/// let picked = where_(&x.greater(&x.tanh()), &Tensor::ones([1]), &Tensor::zeros([1]));
/// assert_eq!(wgrad::reference::values(&picked).unwrap(), vec![1.0]); // float64: x > tanh x
/// assert_eq!(wgrad::reference::values_rounded(&picked).unwrap(), vec![0.0]); // float32: equal
/// ```
pub fn values_rounded(t: &Tensor) -> Result<Vec<f64>> {
    with_mode(Mode::Rounded, || values(t))
}

/// [`values_of`] with every node's value rounded to its dtype (see [`values_rounded`]).
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![0.1f32], [1]);
/// let v = wgrad::reference::values_of_rounded(&[&x * 3.0]).unwrap();
/// assert_eq!(v[0], vec![f64::from(0.1f32 * 3.0)]);
/// ```
pub fn values_of_rounded(ts: &[Tensor]) -> Result<Vec<Vec<f64>>> {
    with_mode(Mode::Rounded, || values_of(ts))
}

/// [`values_of`] with every float node's value multiplied by `1 + relative·r`, `r` uniform in
/// [-1, 1] per element (drawn from `seed`): the errors a float32 computation makes, as a
/// stochastic-arithmetic check. Where the result moves much more than `relative`, it is
/// ill-conditioned in float32 (a softmax of large, nearly equal logits, say), and a device's
/// answer may differ from [`values_of`] by as much without a bug.
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0], [2]);
/// let calm = wgrad::reference::values_of_perturbed(&[x.exp().sum_all()], 1e-6, 7).unwrap();
/// let want = 1f64.exp() + 2f64.exp();
/// assert!((calm[0][0] - want).abs() < 1e-5 * want); // a well-conditioned sum moves ~1e-6
/// let big = Tensor::from_vec(vec![3000.0f32, 3000.001], [2]);
/// let touchy = (&big - &big.max_keepdim([0])).exp();
/// let moved = wgrad::reference::values_of_perturbed(&[touchy.clone()], 1e-6, 7).unwrap();
/// let exact = wgrad::reference::values_of(&[touchy]).unwrap();
/// assert!((moved[0][0] - exact[0][0]).abs() > 1e-4); // a difference of large numbers moves a lot
/// ```
pub fn values_of_perturbed(ts: &[Tensor], relative: f64, seed: u64) -> Result<Vec<Vec<f64>>> {
    with_mode(Mode::Perturbed(relative, seed), || values_of(ts))
}
