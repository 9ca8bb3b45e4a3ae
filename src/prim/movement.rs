//! Movement primitives: reshape, expand (broadcast of size-1 axes), transpose, slice, pad,
//! concat and flip. None has an arithmetic kernel of its own: each is an index map that the code
//! generator fuses into whichever kernel reads it (see `shaders/elementwise.wgsl`); a target
//! that is only a movement of a buffer is computed by that same gather kernel. All are linear,
//! so each JVP is the op itself applied to the tangent and each VJP its transpose.

use crate::base::dtype::{DType, numel};
use crate::base::error::{Result, axis_err, shape_err};
use crate::base::host::{Host, unravel};
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::kernel::wgsl::{compose, decompose, literal};
use crate::prim::Primitive;
use crate::prim::lower::{LowerCx, Lowered};
use crate::prim::with_batch;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Movement {
    Reshape,
    /// Same rank; axes of size 1 repeated to the node's shape.
    Expand,
    Transpose(Vec<usize>),
    /// Start per axis; the stop is start + the node's shape.
    Slice(Vec<usize>),
    /// Zeros before each axis; the node's shape says how many after.
    Pad(Vec<usize>),
    Concat(usize),
    /// Reverses these axes.
    Flip(Vec<usize>),
}

impl Movement {
    pub(crate) fn describe(&self) -> String {
        match self {
            Movement::Transpose(p) => format!("transpose[perm={p:?}]"),
            Movement::Slice(s) => format!("slice[start={s:?}]"),
            Movement::Pad(l) => format!("pad[lo={l:?}]"),
            Movement::Concat(a) => format!("concat[axis={a}]"),
            Movement::Flip(a) => format!("flip[axes={a:?}]"),
            other => other.name().into(),
        }
    }
    fn apply(&self, x: &[Tensor], shape: &[usize]) -> Result<Tensor> {
        match self {
            Movement::Reshape => reshape_p(&x[0], shape),
            Movement::Expand => expand_p(&x[0], shape),
            Movement::Transpose(p) => transpose_p(&x[0], p),
            Movement::Slice(s) => slice_p(&x[0], s, shape),
            Movement::Pad(lo) => pad_p(&x[0], lo, shape),
            Movement::Concat(a) => concat_p(x, *a),
            Movement::Flip(axes) => flip_p(&x[0], axes),
        }
    }
}

fn shifted(v: &[usize], first: usize) -> Vec<usize> {
    std::iter::once(first).chain(v.iter().copied()).collect()
}

impl Primitive for Movement {
    fn name(&self) -> &'static str {
        match self {
            Movement::Reshape => "reshape",
            Movement::Expand => "broadcast_to",
            Movement::Transpose(_) => "transpose",
            Movement::Slice(_) => "slice",
            Movement::Pad(_) => "pad",
            Movement::Concat(_) => "concat",
            Movement::Flip(_) => "flip",
        }
    }
    fn jvp(&self, x: &[Tensor], y: &Tensor, t: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        if t.iter().all(|t| t.is_none()) {
            return Ok(None);
        }
        let ts: Vec<Tensor> = t
            .iter()
            .zip(x)
            .map(|(t, x)| t.clone().unwrap_or_else(|| x.zeros_like()))
            .collect();
        Ok(Some(self.apply(&ts, y.shape())?))
    }
    fn vjp(
        &self,
        x: &[Tensor],
        y: &Tensor,
        ct: &Tensor,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let in_shape = x[0].shape();
        Ok(match self {
            Movement::Reshape => vec![Some(ct.try_reshape(in_shape)?)],
            Movement::Expand => {
                let axes: Vec<isize> = (0..in_shape.len())
                    .filter(|&k| in_shape[k] != y.shape()[k])
                    .map(|k| k as isize)
                    .collect();
                vec![Some(ct.try_sum_keepdim(axes)?)]
            }
            Movement::Transpose(p) => {
                let mut inv = vec![0; p.len()];
                for (k, &pk) in p.iter().enumerate() {
                    inv[pk] = k;
                }
                vec![Some(transpose_p(ct, &inv)?)]
            }
            Movement::Slice(start) => {
                let hi: Vec<usize> = (0..in_shape.len())
                    .map(|k| in_shape[k] - start[k] - y.shape()[k])
                    .collect();
                vec![Some(pad_lo_hi(ct, start, &hi)?)]
            }
            Movement::Pad(lo) => vec![Some(slice_p(ct, lo, in_shape)?)],
            Movement::Flip(axes) => vec![Some(flip_p(ct, axes)?)],
            Movement::Concat(axis) => {
                let mut off = 0;
                x.iter()
                    .zip(needs)
                    .map(|(xi, &need)| {
                        let mut start = vec![0; xi.rank()];
                        start[*axis] = off;
                        off += xi.shape()[*axis];
                        need.then(|| slice_p(ct, &start, xi.shape())).transpose()
                    })
                    .collect::<Result<_>>()?
            }
        })
    }
    fn batch(&self, x: &[Tensor], y: &Tensor, batched: &[bool], size: usize) -> Result<Tensor> {
        let shape = shifted(y.shape(), size);
        match self {
            Movement::Reshape => reshape_p(&x[0], &shape),
            Movement::Expand => expand_p(&x[0], &shape),
            Movement::Transpose(p) => {
                let perm: Vec<usize> = std::iter::once(0).chain(p.iter().map(|k| k + 1)).collect();
                transpose_p(&x[0], &perm)
            }
            Movement::Slice(s) => slice_p(&x[0], &shifted(s, 0), &shape),
            Movement::Pad(lo) => pad_p(&x[0], &shifted(lo, 0), &shape),
            Movement::Flip(axes) => flip_p(&x[0], &axes.iter().map(|a| a + 1).collect::<Vec<_>>()),
            Movement::Concat(a) => {
                let xs = x
                    .iter()
                    .zip(batched)
                    .map(|(t, &b)| with_batch(t, b, size))
                    .collect::<Result<Vec<Tensor>>>()?;
                concat_p(&xs, a + 1)
            }
        }
    }
    fn fusion(&self) -> Fusion {
        match self {
            Movement::Reshape => Fusion::View,
            // A concat reads several operands: computed once, not in every consumer.
            Movement::Concat(_) => Fusion::Inline,
            _ => Fusion::IndexMap,
        }
    }
    fn lower(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        let a: Vec<String> = (0..node.inputs().len())
            .map(|k| cx.arg(k).to_string())
            .collect();
        Ok(Lowered::Body(self.body(node, &a)))
    }
    fn reference(&self, node: &Tensor, x: &[Host]) -> Result<Host> {
        Ok(self.reference_value(node, x))
    }
}

impl Movement {
    /// The reference interpreter's value: each output element read from its source index.
    fn reference_value(&self, node: &Tensor, x: &[Host]) -> Host {
        let out = node.shape();
        let in_shape = &x[0].shape;
        Host::from_fn(out, node.dtype(), |i| {
            let d = unravel(i, out);
            let read = |k: usize, src: &[usize]| x[k].at(src);
            match self {
                Movement::Reshape => x[0].data[i],
                Movement::Expand => {
                    let src: Vec<usize> = (0..d.len())
                        .map(|k| if in_shape[k] == 1 { 0 } else { d[k] })
                        .collect();
                    read(0, &src)
                }
                Movement::Transpose(p) => {
                    let mut src = vec![0; p.len()];
                    for (k, &pk) in p.iter().enumerate() {
                        src[pk] = d[k];
                    }
                    read(0, &src)
                }
                Movement::Slice(start) => {
                    let src: Vec<usize> = d.iter().zip(start).map(|(a, b)| a + b).collect();
                    read(0, &src)
                }
                Movement::Pad(lo) => {
                    let inside = (0..d.len()).all(|k| d[k] >= lo[k] && d[k] < lo[k] + in_shape[k]);
                    if !inside {
                        return 0.0;
                    }
                    let src: Vec<usize> = d.iter().zip(lo).map(|(a, b)| a - b).collect();
                    read(0, &src)
                }
                Movement::Flip(axes) => {
                    let src: Vec<usize> = (0..d.len())
                        .map(|k| {
                            if axes.contains(&k) {
                                out[k] - 1 - d[k]
                            } else {
                                d[k]
                            }
                        })
                        .collect();
                    read(0, &src)
                }
                Movement::Concat(axis) => {
                    let mut src = d.clone();
                    for (k, xk) in x.iter().enumerate() {
                        if src[*axis] < xk.shape[*axis] {
                            return read(k, &src);
                        }
                        src[*axis] -= xk.shape[*axis];
                    }
                    f64::NAN
                }
            }
        })
    }
    /// The node function's body: the output index mapped to the operands' indices.
    fn body(&self, node: &Tensor, a: &[String]) -> String {
        let out = node.shape();
        let inputs = node.inputs();
        let in_shape = inputs[0].shape();
        let d = |k: usize| format!("d{k}");
        let idx: Vec<String> = (0..out.len()).map(d).collect();
        let split = decompose(out, "i", "d");
        match self {
            Movement::Reshape => format!("    return {}(i);", a[0]),
            Movement::Expand => format!("{split}    return {}({});", a[0], compose(&idx, in_shape)),
            Movement::Transpose(p) => {
                let mut src = vec![String::new(); p.len()];
                for (k, &pk) in p.iter().enumerate() {
                    src[pk] = d(k);
                }
                format!("{split}    return {}({});", a[0], compose(&src, in_shape))
            }
            Movement::Slice(start) => {
                let src: Vec<String> = (0..out.len())
                    .map(|k| format!("d{k} + {}u", start[k]))
                    .collect();
                format!("{split}    return {}({});", a[0], compose(&src, in_shape))
            }
            Movement::Pad(lo) => {
                let mut s = split;
                for k in 0..out.len() {
                    if out[k] != in_shape[k] {
                        s += &format!(
                            "    if (d{k} < {}u || d{k} >= {}u) {{ return {}; }}\n",
                            lo[k],
                            lo[k] + in_shape[k],
                            literal(0.0, node.dtype())
                        );
                    }
                }
                let src: Vec<String> = (0..out.len())
                    .map(|k| format!("d{k} - {}u", lo[k]))
                    .collect();
                s + &format!("    return {}({});", a[0], compose(&src, in_shape))
            }
            Movement::Flip(axes) => {
                let src: Vec<String> = (0..out.len())
                    .map(|k| {
                        if axes.contains(&k) {
                            format!("{}u - d{k}", out[k].saturating_sub(1))
                        } else {
                            d(k)
                        }
                    })
                    .collect();
                format!("{split}    return {}({});", a[0], compose(&src, in_shape))
            }
            Movement::Concat(axis) => {
                let mut s = split;
                let mut off = 0;
                for (k, xk) in inputs.iter().enumerate() {
                    let mut src = idx.clone();
                    src[*axis] = format!("d{axis} - {off}u");
                    off += xk.shape()[*axis];
                    let call = format!("{}({})", a[k], compose(&src, xk.shape()));
                    if k + 1 == inputs.len() {
                        s += &format!("    return {call};");
                    } else {
                        s += &format!("    if (d{axis} < {off}u) {{ return {call}; }}\n");
                    }
                }
                s
            }
        }
    }
}

fn node(m: Movement, x: Vec<Tensor>, shape: Vec<usize>, dtype: DType) -> Result<Tensor> {
    Tensor::from_op(Op::Movement(m), x, shape, dtype)
}

pub(crate) fn reshape_p(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if numel(shape) != x.numel() {
        return shape_err(
            "reshape",
            format!(
                "cannot reshape {:?} ({} elements) to {shape:?} ({} elements)",
                x.shape(),
                x.numel(),
                numel(shape)
            ),
        );
    }
    if shape == x.shape() {
        return Ok(x.clone());
    }
    node(
        Movement::Reshape,
        vec![x.clone()],
        shape.to_vec(),
        x.dtype(),
    )
}

pub(crate) fn expand_p(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if shape == x.shape() {
        return Ok(x.clone());
    }
    let ok =
        shape.len() == x.rank() && x.shape().iter().zip(shape).all(|(&a, &b)| a == b || a == 1);
    if !ok {
        return shape_err(
            "broadcast_to",
            format!("cannot broadcast {:?} to {shape:?}", x.shape()),
        );
    }
    node(Movement::Expand, vec![x.clone()], shape.to_vec(), x.dtype())
}

pub(crate) fn transpose_p(x: &Tensor, perm: &[usize]) -> Result<Tensor> {
    let mut seen = vec![false; x.rank()];
    let valid = perm.len() == x.rank()
        && perm
            .iter()
            .all(|&p| p < x.rank() && !std::mem::replace(&mut seen[p], true));
    if !valid {
        return axis_err(
            "transpose",
            format!(
                "{perm:?} is not a permutation of the axes of {:?}",
                x.shape()
            ),
        );
    }
    if perm.iter().enumerate().all(|(k, &p)| k == p) {
        return Ok(x.clone());
    }
    let shape = perm.iter().map(|&p| x.shape()[p]).collect();
    node(
        Movement::Transpose(perm.to_vec()),
        vec![x.clone()],
        shape,
        x.dtype(),
    )
}

pub(crate) fn slice_p(x: &Tensor, start: &[usize], shape: &[usize]) -> Result<Tensor> {
    if shape == x.shape() {
        return Ok(x.clone());
    }
    node(
        Movement::Slice(start.to_vec()),
        vec![x.clone()],
        shape.to_vec(),
        x.dtype(),
    )
}

pub(crate) fn pad_p(x: &Tensor, lo: &[usize], shape: &[usize]) -> Result<Tensor> {
    if shape == x.shape() {
        return Ok(x.clone());
    }
    node(
        Movement::Pad(lo.to_vec()),
        vec![x.clone()],
        shape.to_vec(),
        x.dtype(),
    )
}

pub(crate) fn pad_lo_hi(x: &Tensor, lo: &[usize], hi: &[usize]) -> Result<Tensor> {
    if lo.len() != x.rank() || hi.len() != x.rank() {
        return shape_err(
            "pad",
            format!(
                "padding lo {lo:?}, hi {hi:?} does not match the rank of {:?}",
                x.shape()
            ),
        );
    }
    let shape: Vec<usize> = (0..x.rank())
        .map(|k| {
            lo[k]
                .checked_add(x.shape()[k])
                .and_then(|n| n.checked_add(hi[k]))
        })
        .collect::<Option<_>>()
        .map_or_else(
            || {
                shape_err(
                    "pad",
                    format!(
                        "padding lo {lo:?}, hi {hi:?} of shape {:?} overflows the size of an axis",
                        x.shape()
                    ),
                )
            },
            Ok,
        )?;
    pad_p(x, lo, &shape)
}

pub(crate) fn flip_p(x: &Tensor, axes: &[usize]) -> Result<Tensor> {
    let axes: Vec<usize> = axes.iter().copied().filter(|&a| x.shape()[a] > 1).collect();
    if axes.is_empty() {
        return Ok(x.clone());
    }
    node(
        Movement::Flip(axes),
        vec![x.clone()],
        x.shape().to_vec(),
        x.dtype(),
    )
}

pub(crate) fn concat_p(xs: &[Tensor], axis: usize) -> Result<Tensor> {
    if xs.len() == 1 {
        return Ok(xs[0].clone());
    }
    let mut shape = xs[0].shape().to_vec();
    shape[axis] = xs.iter().map(|x| x.shape()[axis]).sum();
    node(Movement::Concat(axis), xs.to_vec(), shape, xs[0].dtype())
}
