//! Jacobians and Hessians: `jacrev` is vmap over the pullback (one cotangent per output
//! element), `jacfwd` is vmap over jvp (one tangent per input element). When the basis would
//! not fit the device's buffers, the rows are computed in chunks and joined.

use crate::base::error::{Result, or_panic, transform_err};
use crate::ir::tensor::Tensor;
use crate::transforms::Caught;
use crate::transforms::jvp::jvp_flat;
use crate::transforms::vjp::vjp_flat;
use crate::transforms::vmap::vmap_flat;
use crate::tree::Tree;

/// Rows of the identity in the shape of `shape`: `[n, *shape]` with rows `start..start+len`.
fn basis(shape: &[usize], start: usize, len: usize) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let rows = crate::Tensor::iota([len, n], 0, crate::DType::I32)?;
    let cols = crate::Tensor::iota([len, n], 1, crate::DType::I32)?;
    let shifted = rows + Tensor::try_full([], start as f64, crate::DType::I32)?;
    let eye = shifted.equal(&cols).cast(crate::DType::F32);
    let mut s = vec![len];
    s.extend_from_slice(shape);
    eye.try_reshape(s)
}

/// The most elements any node of the graph behind `outs` holds (the basis rows are batched
/// through every one of them, so each must fit the device once per row of a chunk).
fn largest_node(outs: &[Tensor]) -> usize {
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<Tensor> = outs.to_vec();
    let mut most = 1;
    while let Some(t) = stack.pop() {
        if !seen.insert(t.id()) {
            continue;
        }
        most = most.max(t.numel());
        stack.extend(t.inputs());
    }
    most
}

/// Splits `n` basis rows into chunks whose rows (`row_bytes` each: the largest intermediate
/// per row) fit the device.
fn chunks(n: usize, row_bytes: usize) -> Vec<(usize, usize)> {
    let limit = match crate::base::policy::policy().jacobian_chunk_bytes {
        0 => {
            let limits = crate::device::opened()
                .map(|g| g.limits.clone())
                .unwrap_or_else(crate::base::limits::Limits::webgpu_default);
            (limits.max_tensor_bytes() / 2) as usize
        }
        cap => cap,
    };
    let per = (limit / row_bytes.max(1)).clamp(1, n.max(1));
    (0..n).step_by(per).map(|s| (s, per.min(n - s))).collect()
}

fn select(argnums: &Option<Vec<usize>>, n: usize, transform: &'static str) -> Result<Vec<usize>> {
    match argnums {
        None => Ok((0..n).collect()),
        Some(v) => {
            for &a in v {
                if a >= n {
                    return transform_err(
                        transform,
                        format!("argnums {a} is out of range for a function of {n} arguments"),
                    );
                }
            }
            Ok(v.clone())
        }
    }
}

/// `g` vmapped over the rows of the identity basis of `shape`, in chunks whose rows
/// (`row_bytes` each) fit the device: each of g's results (one per shape in `row_shapes`)
/// with a leading axis of `numel(shape)`. An empty basis gives empty results.
fn over_basis(
    g: &dyn Fn(&[Tensor]) -> Vec<Tensor>,
    shape: &[usize],
    row_bytes: usize,
    row_shapes: &[Vec<usize>],
) -> Result<Vec<Tensor>> {
    let n: usize = shape.iter().product();
    if n == 0 || row_shapes.iter().any(|s| s.contains(&0)) {
        return row_shapes
            .iter()
            .map(|s| {
                let mut full = vec![n];
                full.extend_from_slice(s);
                Tensor::try_full(full, 0.0, crate::DType::F32)
            })
            .collect();
    }
    let mut parts: Vec<Vec<Tensor>> = vec![vec![]; row_shapes.len()];
    for (start, len) in chunks(n, row_bytes) {
        let zeros = |k: usize| Ok(vec![Some(0); k]);
        let rows = vmap_flat(g, &[basis(shape, start, len)?], &[Some(0)], &zeros, None)?;
        for (k, r) in rows.into_iter().enumerate() {
            parts[k].push(r);
        }
    }
    parts
        .into_iter()
        .map(|p| crate::try_concat(&p, 0))
        .collect()
}

/// Reverse-mode Jacobians `[out][selected arg]`, each of shape `(*out_shape, *arg_shape)`.
pub(crate) fn jacrev_flat(
    f: &dyn Fn(&[Tensor]) -> Vec<Tensor>,
    primals: &[Tensor],
    argnums: &Option<Vec<usize>>,
) -> Result<Vec<Vec<Tensor>>> {
    let sel = select(argnums, primals.len(), "jacrev")?;
    let (outs, pb) = vjp_flat(f, primals, true);
    let results: usize = sel.iter().map(|&a| primals[a].numel()).sum();
    let mut jac = vec![];
    for (o, out) in outs.iter().enumerate() {
        // One cotangent per output element: the rows of the Jacobian.
        let caught = Caught::default();
        let pull = caught.wrap(|ct: &[Tensor]| -> Result<Vec<Tensor>> {
            let mut cts: Vec<Option<Tensor>> = vec![None; outs.len()];
            cts[o] = Some(ct[0].clone());
            let g = pb.call(&cts)?;
            Ok(sel.iter().map(|&a| g[a].clone()).collect())
        });
        // Per basis row: the cotangent (an output's size), the gradients, and every
        // intermediate of the pullback.
        let row_bytes = 4 * results.max(largest_node(&outs));
        let row_shapes: Vec<Vec<usize>> =
            sel.iter().map(|&a| primals[a].shape().to_vec()).collect();
        let rows = caught.check(over_basis(&pull, out.shape(), row_bytes, &row_shapes))?;
        let row = rows
            .into_iter()
            .zip(&sel)
            .map(|(r, &a)| {
                let mut shape = out.shape().to_vec();
                shape.extend_from_slice(primals[a].shape());
                r.reshape(shape)
            })
            .collect();
        jac.push(row);
    }
    Ok(jac)
}

/// Forward-mode Jacobians `[out][selected arg]`, each of shape `(*out_shape, *arg_shape)`.
pub(crate) fn jacfwd_flat(
    f: &dyn Fn(&[Tensor]) -> Vec<Tensor>,
    primals: &[Tensor],
    argnums: &Option<Vec<usize>>,
) -> Result<Vec<Vec<Tensor>>> {
    let sel = select(argnums, primals.len(), "jacfwd")?;
    let probe = f(primals); // output shapes (graph only, nothing runs)
    let results: usize = probe.iter().map(|o| o.numel()).sum();
    // Per basis row: the tangent (an input's size), the outputs, and every intermediate.
    let row_bytes = 4 * results.max(largest_node(&probe));
    let row_shapes: Vec<Vec<usize>> = probe.iter().map(|o| o.shape().to_vec()).collect();
    let mut by_arg: Vec<Vec<Tensor>> = vec![];
    for &a in &sel {
        // One tangent per input element: the columns of the Jacobian.
        let caught = Caught::default();
        let push = caught.wrap(|t: &[Tensor]| -> Result<Vec<Tensor>> {
            let mut ts: Vec<Option<Tensor>> = vec![None; primals.len()];
            ts[a] = Some(t[0].clone());
            Ok(jvp_flat(f, primals, &ts, true)?.1)
        });
        let cols = caught.check(over_basis(
            &push,
            primals[a].shape(),
            row_bytes,
            &row_shapes,
        ))?;
        let cols = cols
            .into_iter()
            .zip(&probe)
            .map(|(c, out)| {
                let mut shape = out.shape().to_vec();
                shape.extend_from_slice(primals[a].shape());
                c.moveaxis(0, -1).reshape(shape)
            })
            .collect();
        by_arg.push(cols);
    }
    Ok((0..probe.len())
        .map(|o| by_arg.iter().map(|c| c[o].clone()).collect())
        .collect())
}

/// A flat Jacobian routine: `jacrev_flat` or `jacfwd_flat`.
type FlatJac = fn(
    &dyn Fn(&[Tensor]) -> Vec<Tensor>,
    &[Tensor],
    &Option<Vec<usize>>,
) -> Result<Vec<Vec<Tensor>>>;

fn typed_jac<A: Tree>(flat_jac: FlatJac, f: &dyn Fn(&A) -> Tensor, args: &A) -> A {
    or_panic(try_typed_jac(flat_jac, f, args))
}

fn try_typed_jac<A: Tree>(flat_jac: FlatJac, f: &dyn Fn(&A) -> Tensor, args: &A) -> Result<A> {
    let g = |leaves: &[Tensor]| vec![f(&args.rebuild(leaves.to_vec()))];
    let jac = flat_jac(&g, &args.leaves(), &None)?;
    Ok(args.rebuild(jac.into_iter().next().expect("one output")))
}

/// Fallible [`jacrev`]: a device or size error comes back as an error.
///
/// ```
/// use wgrad::prelude::*;
/// let j = wgrad::try_jacrev(|x: &Tensor| x * 2.0)(&Tensor::ones([2])).unwrap();
/// assert_eq!(j.to_vec::<f32>(), vec![2.0, 0.0, 0.0, 2.0]);
/// ```
pub fn try_jacrev<A: Tree, F: Fn(&A) -> Tensor>(f: F) -> impl Fn(&A) -> Result<A> {
    move |args: &A| try_typed_jac(jacrev_flat, &f, args)
}

/// Fallible [`jacfwd`].
///
/// ```
/// use wgrad::prelude::*;
/// let j = wgrad::try_jacfwd(|x: &Tensor| x.sum_all())(&Tensor::ones([2])).unwrap();
/// assert_eq!(j.to_vec::<f32>(), vec![1.0, 1.0]);
/// ```
pub fn try_jacfwd<A: Tree, F: Fn(&A) -> Tensor>(f: F) -> impl Fn(&A) -> Result<A> {
    move |args: &A| try_typed_jac(jacfwd_flat, &f, args)
}

/// Fallible [`hessian`].
///
/// ```
/// use wgrad::prelude::*;
/// let h = wgrad::try_hessian(|x: &Tensor| x.square().sum_all())(&Tensor::ones([1])).unwrap();
/// assert_eq!(h.to_vec::<f32>(), vec![2.0]);
/// ```
pub fn try_hessian<F: Fn(&Tensor) -> Tensor>(f: F) -> impl Fn(&Tensor) -> Result<Tensor> {
    try_jacfwd(jacrev(f))
}

/// The Jacobian by reverse mode: for `f: A -> Tensor`, a tree shaped like `A` whose leaves have
/// shape `(*out_shape, *leaf_shape)`.
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0], [2]);
/// let j = jacrev(|x: &Tensor| x.square())(&x);
/// assert_eq!(j.to_vec::<f32>(), vec![2.0, 0.0, 0.0, 4.0]);
/// ```
pub fn jacrev<A: Tree, F: Fn(&A) -> Tensor>(f: F) -> impl Fn(&A) -> A {
    move |args: &A| typed_jac(jacrev_flat, &f, args)
}

/// The Jacobian by forward mode (cheaper when inputs are fewer than outputs).
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0], [2]);
/// let j = jacfwd(|x: &Tensor| x.square().sum_all())(&x);
/// assert_eq!(j.to_vec::<f32>(), vec![2.0, 4.0]);
/// ```
pub fn jacfwd<A: Tree, F: Fn(&A) -> Tensor>(f: F) -> impl Fn(&A) -> A {
    move |args: &A| typed_jac(jacfwd_flat, &f, args)
}

/// `jacrev` with `has_aux`: `f` returns `(output, aux)`; returns `(jacobian, aux)`.
///
/// ```
/// use wgrad::prelude::*;
/// let (j, aux) = jacrev_aux(|x: &Tensor| (x * 2.0, "aux"))(&Tensor::ones([1]));
/// assert_eq!((j.to_vec::<f32>(), aux), (vec![2.0], "aux"));
/// ```
pub fn jacrev_aux<A: Tree, X, F: Fn(&A) -> (Tensor, X)>(f: F) -> impl Fn(&A) -> (A, X) {
    move |args: &A| {
        let aux = std::cell::RefCell::new(None);
        let g = |a: &A| {
            let (y, x) = f(a);
            aux.borrow_mut().get_or_insert(x);
            y
        };
        let j = typed_jac(jacrev_flat, &g, args);
        let aux = aux.borrow_mut().take().expect("function ran");
        (j, aux)
    }
}

/// `jacfwd` with `has_aux`.
///
/// ```
/// use wgrad::prelude::*;
/// let (j, n) = jacfwd_aux(|x: &Tensor| (x.sum_all(), 3))(&Tensor::ones([2]));
/// assert_eq!((j.to_vec::<f32>(), n), (vec![1.0, 1.0], 3));
/// ```
pub fn jacfwd_aux<A: Tree, X, F: Fn(&A) -> (Tensor, X)>(f: F) -> impl Fn(&A) -> (A, X) {
    move |args: &A| {
        let aux = std::cell::RefCell::new(None);
        let g = |a: &A| {
            let (y, x) = f(a);
            aux.borrow_mut().get_or_insert(x);
            y
        };
        let j = typed_jac(jacfwd_flat, &g, args);
        let aux = aux.borrow_mut().take().expect("function ran");
        (j, aux)
    }
}

/// The Hessian of a scalar function of one tensor, as `jacfwd(jacrev(f))`: shape
/// `(*x_shape, *x_shape)`.
///
/// ```
/// use wgrad::prelude::*;
/// let h = hessian(|x: &Tensor| x.square().sum_all() * 0.5)(&Tensor::ones([2]));
/// assert_eq!(h.to_vec::<f32>(), vec![1.0, 0.0, 0.0, 1.0]);
/// ```
pub fn hessian<F: Fn(&Tensor) -> Tensor>(f: F) -> impl Fn(&Tensor) -> Tensor {
    jacfwd(jacrev(f))
}
