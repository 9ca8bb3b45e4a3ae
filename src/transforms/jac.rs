//! Jacobians and Hessians: `jacrev` is vmap over the pullback (one cotangent per output
//! element), `jacfwd` is vmap over jvp (one tangent per input element). When the basis would
//! not fit the device's buffers, the rows are computed in chunks and joined.

use super::jvp::jvp_flat;
use super::tree::Tree;
use super::vjp::vjp_flat;
use super::vmap::vmap_flat;
use crate::error::{Result, or_panic, transform_err};
use crate::tensor::Tensor;

/// Rows of the identity in the shape of `shape`: `[n, *shape]` with rows `start..start+len`.
fn basis(shape: &[usize], start: usize, len: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let rows = crate::Tensor::iota([len, n], 0, crate::DType::I32).expect("small iota");
    let cols = crate::Tensor::iota([len, n], 1, crate::DType::I32).expect("small iota");
    let shifted = rows + Tensor::try_full([], start as f64, crate::DType::I32).expect("scalar");
    let eye = shifted.equal(&cols).cast(crate::DType::F32);
    let mut s = vec![len];
    s.extend_from_slice(shape);
    eye.reshape(s)
}

/// Splits `n` basis rows into chunks whose results (`row_bytes` each) fit the device.
fn chunks(n: usize, row_bytes: usize) -> Vec<(usize, usize)> {
    let limit = match crate::runtime::policy::policy().jacobian_chunk_bytes {
        0 => {
            let limits = crate::runtime::device::opened()
                .map(|g| g.limits.clone())
                .unwrap_or_else(crate::runtime::device::Limits::webgpu_default);
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

/// `g` vmapped over the rows of the identity basis of `shape`, in chunks whose `row_bytes`
/// results fit the device: each of g's `n_results` outputs with a leading axis of
/// `numel(shape)`.
fn over_basis(
    g: &dyn Fn(&[Tensor]) -> Vec<Tensor>,
    shape: &[usize],
    row_bytes: usize,
    n_results: usize,
) -> Result<Vec<Tensor>> {
    let n: usize = shape.iter().product();
    let mut parts: Vec<Vec<Tensor>> = vec![vec![]; n_results];
    for (start, len) in chunks(n, row_bytes) {
        let zeros = |k: usize| Ok(vec![Some(0); k]);
        let rows = vmap_flat(g, &[basis(shape, start, len)], &[Some(0)], &zeros, None)?;
        for (k, r) in rows.into_iter().enumerate() {
            parts[k].push(r);
        }
    }
    Ok(parts.into_iter().map(|p| crate::concat(&p, 0)).collect())
}

/// Reverse-mode Jacobians `[out][selected arg]`, each of shape `(*out_shape, *arg_shape)`.
pub(crate) fn jacrev_flat(
    f: &dyn Fn(&[Tensor]) -> Vec<Tensor>,
    primals: &[Tensor],
    argnums: &Option<Vec<usize>>,
) -> Result<Vec<Vec<Tensor>>> {
    let sel = select(argnums, primals.len(), "jacrev")?;
    let (outs, pb) = vjp_flat(f, primals, true);
    let row_bytes: usize = sel.iter().map(|&a| primals[a].numel() * 4).sum();
    let mut jac = vec![];
    for (o, out) in outs.iter().enumerate() {
        // One cotangent per output element: the rows of the Jacobian.
        let pull = |ct: &[Tensor]| -> Vec<Tensor> {
            let mut cts: Vec<Option<Tensor>> = vec![None; outs.len()];
            cts[o] = Some(ct[0].clone());
            let g = or_panic(pb.call(&cts));
            sel.iter().map(|&a| g[a].clone()).collect()
        };
        let rows = over_basis(&pull, out.shape(), row_bytes, sel.len())?;
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
    let row_bytes: usize = probe.iter().map(|o| o.numel() * 4).sum();
    let mut by_arg: Vec<Vec<Tensor>> = vec![];
    for &a in &sel {
        // One tangent per input element: the columns of the Jacobian.
        let push = |t: &[Tensor]| -> Vec<Tensor> {
            let mut ts: Vec<Option<Tensor>> = vec![None; primals.len()];
            ts[a] = Some(t[0].clone());
            or_panic(jvp_flat(f, primals, &ts, true)).1
        };
        let cols = over_basis(&push, primals[a].shape(), row_bytes, probe.len())?;
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
    let g = |leaves: &[Tensor]| vec![f(&args.rebuild(leaves.to_vec()))];
    let jac = or_panic(flat_jac(&g, &args.leaves(), &None));
    args.rebuild(jac.into_iter().next().expect("one output"))
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
/// let j = jacfwd(|x: &Tensor| x.square().sum(None, false))(&x);
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
/// let (j, n) = jacfwd_aux(|x: &Tensor| (x.sum(None, false), 3))(&Tensor::ones([2]));
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
/// let h = hessian(|x: &Tensor| x.square().sum(None, false) * 0.5)(&Tensor::ones([2]));
/// assert_eq!(h.to_vec::<f32>(), vec![1.0, 0.0, 0.0, 1.0]);
/// ```
pub fn hessian<F: Fn(&Tensor) -> Tensor>(f: F) -> impl Fn(&Tensor) -> Tensor {
    jacfwd(jacrev(f))
}
