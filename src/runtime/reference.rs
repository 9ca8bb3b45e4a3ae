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
            let v = t.op().prim().reference(&t, &values)?;
            memo.insert(id, v);
        }
    }
    Ok(outputs.iter().map(|o| memo[&o.id()].clone()).collect())
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
