//! Indexing with integer tensors: `gather` along one axis and its transpose `scatter_add`.
//! `take`, `take_along_axis`, `one_hot`, `argmax` and `argmin` are built on them (and on
//! comparisons and reductions) in `compose/indexing.rs`.
//!
//! `gather(x, idx, axis)`: `out[p] = x[p with p[axis] := idx[p]]`, where `idx` has the output's
//! shape and `x` differs from it only along `axis` (take's broadcasting is done by the caller
//! with broadcasts, which fuse). `scatter_add(ct, idx, axis, n)` adds each `ct[p]` into
//! position `idx[p]` along `axis` of a zero tensor with `n` there: repeated indices add up.
//! Both are computed per output element inside whichever kernel reads them (a gather reads
//! its index, then the element; a scatter-add loops over the gathered axis, deterministic,
//! no atomics). Indices on the device are wrapped once if negative (as NumPy) and then
//! clamped into range (as JAX's gather); indices known on the host are checked instead.

use crate::base::dtype::DType;
use crate::base::error::{Result, dtype_err, shape_err};
use crate::base::host::{Host, strides, unravel};
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::kernel::Kernel;
use crate::kernel::wgsl::{compose, decompose, literal};
use crate::prim::Primitive;
use crate::prim::lower::{LowerCx, Lowered};
use crate::prim::with_batch;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Index {
    /// Reads `x` at the positions `idx` gives along `axis`.
    Gather { axis: usize },
    /// The transpose of a gather: sums into `n` positions along `axis`.
    ScatterAdd { axis: usize, n: usize },
}

impl Index {
    pub(crate) fn describe(&self) -> String {
        match self {
            Index::Gather { axis } => format!("gather[axis={axis}]"),
            Index::ScatterAdd { axis, n } => format!("scatter_add[axis={axis}, n={n}]"),
        }
    }
}

/// WGSL for the index `idx` (an i32 or u32 expression) wrapped once and clamped into `0..n`.
fn clamped(idx: &str, dtype: DType, n: usize) -> String {
    let last = n.saturating_sub(1);
    match dtype {
        DType::I32 => format!("u32(clamp(select({idx}, {idx} + {n}i, {idx} < 0i), 0i, {last}i))"),
        _ => format!("min({idx}, {last}u)"),
    }
}

/// An index wrapped once (negative counts from the end) and clamped into `0..n`, as `clamped`.
fn clamp_index(j: f64, n: usize) -> usize {
    let j = if j < 0.0 { j + n as f64 } else { j };
    j.clamp(0.0, n.saturating_sub(1) as f64) as usize
}

impl Index {
    /// The reference interpreter's value (see `Primitive::reference`).
    fn reference_value(&self, node: &Tensor, x: &[Host]) -> Host {
        let (src, idx) = (&x[0], &x[1]);
        match self {
            Index::Gather { axis } => Host::from_fn(node.shape(), node.dtype(), |i| {
                let mut d = unravel(i, node.shape());
                d[*axis] = clamp_index(idx.data[i], src.shape[*axis]);
                src.at(&d)
            }),
            Index::ScatterAdd { axis, n } => {
                let mut acc = vec![0.0; node.numel()];
                let st = strides(node.shape());
                for (q, v) in src.data.iter().enumerate() {
                    let mut d = unravel(q, &src.shape);
                    d[*axis] = clamp_index(idx.data[q], *n);
                    acc[d.iter().zip(&st).map(|(a, b)| a * b).sum::<usize>()] += v;
                }
                Host::from_fn(node.shape(), node.dtype(), |i| acc[i])
            }
        }
    }
    /// The node function's body, given the names of its inputs' functions.
    fn body(&self, node: &Tensor, args: &[String]) -> String {
        let ins = node.inputs();
        let (src, idx) = (&ins[0], &ins[1]);
        let out = node.shape();
        let mut body = decompose(out, "i", "d");
        match self {
            Index::Gather { axis } => {
                let n = src.shape()[*axis];
                body += &format!("    let j0 = {}(i);\n", args[1]);
                body += &format!("    let j = {};\n", clamped("j0", idx.dtype(), n));
                let pos: Vec<String> = (0..out.len())
                    .map(|k| {
                        if k == *axis {
                            "j".into()
                        } else {
                            format!("d{k}")
                        }
                    })
                    .collect();
                body += &format!("    return {}({});", args[0], compose(&pos, src.shape()));
            }
            Index::ScatterAdd { axis, n } => {
                let m = src.shape()[*axis];
                let pos: Vec<String> = (0..out.len())
                    .map(|k| {
                        if k == *axis {
                            "k".into()
                        } else {
                            format!("d{k}")
                        }
                    })
                    .collect();
                let q = compose(&pos, src.shape());
                body += &format!(
                    "    var acc = {};\n",
                    literal(0.0, node.dtype()).replace("bitcast<f32>(0u)", "0.0")
                );
                // Loops of at most 4096 trips (software drivers stop a loop after 65,535).
                body += &format!(
                    "    for (var k0 = 0u; k0 < {m}u; k0 = k0 + 4096u) {{\n        \
                     for (var k = k0; k < min(k0 + 4096u, {m}u); k = k + 1u) {{\n            \
                     let q = {q};\n            let j0 = {}(q);\n            \
                     if ({} == d{axis}) {{\n                acc = acc + {}(q);\n            }}\n        \
                     }}\n    }}\n    return acc;",
                    args[1],
                    clamped("j0", idx.dtype(), *n),
                    args[0],
                );
            }
        }
        body
    }
}

impl Primitive for Index {
    fn name(&self) -> &'static str {
        match self {
            Index::Gather { .. } => "gather",
            Index::ScatterAdd { .. } => "scatter_add",
        }
    }
    fn fusion(&self) -> Fusion {
        match self {
            Index::Gather { .. } => Fusion::Inline,
            // Its body loops over the gathered axis: inside a consumer's loop (a reduction's,
            // a matmul's) the iterations would multiply past what drivers allow.
            Index::ScatterAdd { .. } => Fusion::KernelRoot { epilogue: false },
        }
    }
    fn lower(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        Ok(match self {
            Index::Gather { .. } => {
                let args = [cx.arg(0).to_string(), cx.arg(1).to_string()];
                Lowered::Body(self.body(node, &args))
            }
            Index::ScatterAdd { axis, n }
                if bins_fit(node, *axis, *n, cx.kernel().limits.window_bytes()) =>
            {
                Lowered::Kernels(vec![scatter_bins(node, *axis, *n, cx)?])
            }
            Index::ScatterAdd { .. } => {
                Lowered::Kernels(vec![cx.pointwise_kernel(node, |a, _| self.body(node, a))?])
            }
        })
    }
    fn reference(&self, node: &Tensor, x: &[Host]) -> Result<Host> {
        Ok(self.reference_value(node, x))
    }
    fn jvp(&self, x: &[Tensor], _: &Tensor, t: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        t[0].as_ref()
            .map(|t| index_p(self.clone(), t, &x[1]))
            .transpose()
    }
    fn vjp(
        &self,
        x: &[Tensor],
        _: &Tensor,
        ct: &Tensor,
        _: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let back = match self {
            Index::Gather { axis } => Index::ScatterAdd {
                axis: *axis,
                n: x[0].shape()[*axis],
            },
            Index::ScatterAdd { axis, .. } => Index::Gather { axis: *axis },
        };
        Ok(vec![Some(index_p(back, ct, &x[1])?), None])
    }
    fn batch(&self, x: &[Tensor], _: &Tensor, batched: &[bool], size: usize) -> Result<Tensor> {
        let src = with_batch(&x[0], batched[0], size)?;
        let idx = with_batch(&x[1], batched[1], size)?;
        let op = match self {
            Index::Gather { axis } => Index::Gather { axis: axis + 1 },
            Index::ScatterAdd { axis, n } => Index::ScatterAdd {
                axis: axis + 1,
                n: *n,
            },
        };
        index_p(op, &src, &idx)
    }
}

/// The positions one invocation of [`scatter_bins`] owns (a group; `shaders/scatter_bins.wgsl`).
const GROUP: usize = 1024;

/// Whether a scatter-add is cheaper by rows of updates (M·⌈N/1024⌉ work per row) than by
/// outputs (M·N): enough positions and updates, a 32-bit dtype, an output in one binding.
fn bins_fit(node: &Tensor, axis: usize, n: usize, window_bytes: u64) -> bool {
    let m = node.inputs()[0].shape()[axis];
    n >= 8
        && m >= 64
        && matches!(node.dtype(), DType::F32 | DType::I32 | DType::U32)
        && ((crate::base::dtype::numel(node.shape()) * 4) as u64) <= window_bytes
}

/// The scatter-add as one invocation per (outer, inner) row of updates and group of 1,024
/// positions, each summing the row's updates of its group into its own outputs, in update
/// order (so the same sums as the per-output loop, in the same order). The output must be one
/// binding (it is read back).
fn scatter_bins(node: &Tensor, axis: usize, n: usize, cx: &mut LowerCx) -> Result<Kernel> {
    let (src, idx) = (&node.inputs()[0], &node.inputs()[1]);
    let shape = src.shape();
    let (outer, m) = (shape[..axis].iter().product::<usize>(), shape[axis]);
    let inner: usize = shape[axis + 1..].iter().product();
    let mut e = cx.kernel();
    let vs = e.value_fn(src)?;
    let vi = e.value_fn(idx)?;
    let ty = node.dtype().wgsl();
    e.alias("Acc", ty);
    e.push_fn(format!(
        "fn src(i: u32) -> Acc {{\n    return Acc({vs}(i));\n}}"
    ));
    e.push_fn(format!(
        "fn slot(i: u32) -> u32 {{\n    let j0 = {vi}(i);\n    return {};\n}}",
        clamped("j0", idx.dtype(), n)
    ));
    e.read_back_output("scatter_add", node)?;
    e.const_u32("N", n)?;
    e.const_u32("M", m)?;
    e.const_u32("OUTER", outer)?;
    e.const_u32("INNER", inner)?;
    let parts = n.div_ceil(GROUP);
    e.const_u32("GROUPS", parts)?;
    e.note_inlined(node);
    let groups = cx.grid(outer * inner * parts, 64)?;
    e.finish(
        &crate::kernel::templates::SCATTER_BINS,
        "scatter_add",
        cx.out(),
        node.dtype(),
        crate::base::dtype::numel(node.shape()),
        groups,
    )
}

/// The longest gathered axis one scatter-add loops over: software drivers stop an invocation's
/// loops after 65,535 iterations in all (100,000 lookups of 3 rows lost two thirds of the
/// gradient), so a longer one is split into chunks whose scatter-adds are summed.
pub(crate) const MAX_SCATTER: usize = 16_384;

/// A scatter-add along a long `axis`: `c` chunks (zero-padded; a padded index 0 adds 0) as a new
/// axis, scattered each, summed.
fn split_scatter(src: &Tensor, idx: &Tensor, axis: usize, n: usize) -> Result<Tensor> {
    let m = src.shape()[axis];
    let c = m.div_ceil(MAX_SCATTER);
    let mc = m.div_ceil(c);
    let mut hi = vec![0; src.rank()];
    hi[axis] = c * mc - m;
    let mut shape = src.shape()[..axis].to_vec();
    shape.extend([c, mc]);
    shape.extend_from_slice(&src.shape()[axis + 1..]);
    let chunked =
        |t: &Tensor| -> Result<Tensor> { t.try_pad(vec![0; t.rank()], &hi)?.try_reshape(&shape) };
    let parts = index_p(
        Index::ScatterAdd { axis: axis + 1, n },
        &chunked(src)?,
        &chunked(idx)?,
    )?;
    parts.try_sum_axes(axis as isize)
}

/// The primitive: `src` is the gathered tensor (gather) or the cotangent-shaped values
/// (scatter-add); `idx` is integer, shaped as `src` for scatter-add and as the output for
/// gather.
pub(crate) fn index_p(op: Index, src: &Tensor, idx: &Tensor) -> Result<Tensor> {
    let name = op.name();
    if !matches!(idx.dtype(), DType::I32 | DType::U32) {
        return dtype_err(
            name,
            format!(
                "indices must be i32 or u32, got {} of shape {:?}",
                idx.dtype(),
                idx.shape()
            ),
        );
    }
    if let Index::ScatterAdd { axis, n } = op {
        if axis < src.rank() && src.shape() == idx.shape() && src.shape()[axis] > MAX_SCATTER {
            return split_scatter(src, idx, axis, n);
        }
    }
    let (axis, shape) = match &op {
        Index::Gather { axis } => (*axis, idx.shape().to_vec()),
        Index::ScatterAdd { axis, n } => {
            let mut s = src.shape().to_vec();
            if *axis < s.len() {
                s[*axis] = *n;
            }
            (*axis, s)
        }
    };
    let (a, b) = (src.shape(), idx.shape());
    let fits = a.len() == b.len()
        && axis < a.len()
        && match op {
            // Gather: equal off the axis; something to gather from unless nothing is gathered.
            Index::Gather { .. } => {
                (0..a.len()).all(|k| k == axis || a[k] == b[k]) && (a[axis] > 0 || idx.numel() == 0)
            }
            Index::ScatterAdd { .. } => a == b,
        };
    if !fits {
        return shape_err(
            name,
            format!(
                "operand {:?} and indices {:?} must agree off axis {axis}",
                src.shape(),
                idx.shape()
            ),
        );
    }
    Tensor::from_op(
        Op::Index(op),
        vec![src.clone(), idx.clone()],
        shape,
        src.dtype(),
    )
}
