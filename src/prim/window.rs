//! Sliding windows over the last two axes: `unfold` (im2col: every window's elements as axes
//! of their own) and its transpose `fold` (col2im: each window element added back to its
//! position). Convolution and pooling are built on them (`compose/conv.rs`): a convolution is
//! a matmul of the weights with the unfolded input, and the unfold, an index map, is computed
//! inside the matmul's loads (an implicit GEMM; on CPU adapters the matmul reads it from a
//! buffer instead). Both are linear, each the other's transpose, and act on the last axes
//! only, so batching adds a leading axis and nothing else.

use crate::base::error::{Result, shape_err};
use crate::base::host::{Host, strides, unravel};
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::kernel::wgsl::{compose, decompose, literal};
use crate::prim::Primitive;
use crate::prim::lower::{LowerCx, Lowered};

/// The geometry of a window over the last two axes `(H, W)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Window {
    /// Window size `(kh, kw)`.
    pub size: [usize; 2],
    pub stride: [usize; 2],
    /// Zeros before each axis (after is implied by the output size).
    pub pad: [usize; 2],
    pub dilation: [usize; 2],
}

impl Window {
    /// The number of window positions along axis `k` of extent `n`, with `hi` zeros after.
    pub(crate) fn out_len(&self, k: usize, n: usize, hi: usize) -> Option<usize> {
        let span = self.dilation[k] * (self.size[k] - 1) + 1;
        let padded = n + self.pad[k] + hi;
        (padded >= span).then(|| (padded - span) / self.stride[k] + 1)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Patches {
    /// `[..., H, W]` → `[..., kh, kw, Ho, Wo]`: element `(a, b)` of window `(i, j)`.
    Unfold(Window),
    /// `[..., kh, kw, Ho, Wo]` → `[..., H, W]`: the sum of the window elements over each
    /// position.
    Fold(Window),
}

impl Patches {
    pub(crate) fn describe(&self) -> String {
        let w = match self {
            Patches::Unfold(w) | Patches::Fold(w) => w,
        };
        format!(
            "{}[size={:?}, stride={:?}, pad={:?}, dilation={:?}]",
            self.name(),
            w.size,
            w.stride,
            w.pad,
            w.dilation
        )
    }
}

impl Patches {
    /// The node function's body, given the name of its input's function.
    fn body(&self, node: &Tensor, arg: &str) -> String {
        let out = node.shape();
        let x = &node.inputs()[0];
        let r = out.len();
        let zero = literal(0.0, node.dtype()).replace("bitcast<f32>(0u)", "0.0");
        let mut body = decompose(out, "i", "d");
        match self {
            Patches::Unfold(w) => {
                // d[r-4], d[r-3]: the window element (a, b); d[r-2], d[r-1]: the window (i, j).
                for k in 0..2 {
                    body += &format!(
                        "    let p{k} = i32(d{} * {}u + d{} * {}u) - {}i;\n",
                        r - 2 + k,
                        w.stride[k],
                        r - 4 + k,
                        w.dilation[k],
                        w.pad[k]
                    );
                    body += &format!(
                        "    if (p{k} < 0i || p{k} >= {}i) {{ return {zero}; }}\n",
                        x.shape()[x.rank() - 2 + k]
                    );
                }
                let mut pos: Vec<String> = (0..r - 4).map(|k| format!("d{k}")).collect();
                pos.extend(["u32(p0)".to_string(), "u32(p1)".to_string()]);
                body += &format!("    return {}({});", arg, compose(&pos, x.shape()));
            }
            Patches::Fold(w) => {
                // d[r-2], d[r-1]: the position (h, w); sum over the window elements covering it.
                let (ho, wo) = (x.shape()[x.rank() - 2], x.shape()[x.rank() - 1]);
                let mut pos: Vec<String> = (0..r - 2).map(|k| format!("d{k}")).collect();
                pos.extend(["a", "b", "u32(q0)", "u32(q1)"].map(String::from));
                body += &format!("    var acc = {zero};\n");
                body += &format!(
                    "    for (var a = 0u; a < {kh}u; a = a + 1u) {{\n        \
                     let t0 = i32(d{h}) + {ph}i - i32(a * {dh}u);\n        \
                     if (t0 < 0i || t0 % {sh}i != 0i || t0 / {sh}i >= {ho}i) {{ continue; }}\n        \
                     let q0 = t0 / {sh}i;\n        \
                     for (var b = 0u; b < {kw}u; b = b + 1u) {{\n            \
                     let t1 = i32(d{wd}) + {pw}i - i32(b * {dw}u);\n            \
                     if (t1 < 0i || t1 % {sw}i != 0i || t1 / {sw}i >= {wo}i) {{ continue; }}\n            \
                     let q1 = t1 / {sw}i;\n            \
                     acc = acc + {f}({idx});\n        }}\n    }}\n    return acc;",
                    kh = w.size[0],
                    kw = w.size[1],
                    h = r - 2,
                    wd = r - 1,
                    ph = w.pad[0],
                    pw = w.pad[1],
                    dh = w.dilation[0],
                    dw = w.dilation[1],
                    sh = w.stride[0],
                    sw = w.stride[1],
                    f = arg,
                    idx = compose(&pos, x.shape()),
                );
            }
        }
        body
    }
}

impl Primitive for Patches {
    fn name(&self) -> &'static str {
        match self {
            Patches::Unfold(_) => "unfold",
            Patches::Fold(_) => "fold",
        }
    }
    fn fusion(&self) -> Fusion {
        match self {
            Patches::Unfold(_) => Fusion::IndexMap,
            // A sum over the window elements covering each position: it loops, so it gets a
            // kernel of its own (inside a consumer's loop the iterations would multiply).
            Patches::Fold(_) => Fusion::KernelRoot { epilogue: false },
        }
    }
    fn reference(&self, node: &Tensor, x: &[Host]) -> Result<Host> {
        // Element (a, b) of window (i, j) of the image: position i·stride + a·dilation - pad.
        let at = |w: &Window, k: usize, i: usize, a: usize| {
            (i * w.stride[k] + a * w.dilation[k]) as isize - w.pad[k] as isize
        };
        match self {
            Patches::Unfold(w) => {
                let out = node.shape();
                let r = out.len();
                let (h, wd) = (x[0].shape[r - 4], x[0].shape[r - 3]);
                Ok(Host::from_fn(out, node.dtype(), |i| {
                    let d = unravel(i, out);
                    let (p0, p1) = (at(w, 0, d[r - 2], d[r - 4]), at(w, 1, d[r - 1], d[r - 3]));
                    if p0 < 0 || p1 < 0 || p0 >= h as isize || p1 >= wd as isize {
                        return 0.0;
                    }
                    let mut src = d[..r - 4].to_vec();
                    src.extend([p0 as usize, p1 as usize]);
                    x[0].at(&src)
                }))
            }
            Patches::Fold(w) => {
                let out = node.shape();
                let r = x[0].shape.len();
                let (h, wd) = (out[out.len() - 2], out[out.len() - 1]);
                let mut acc = vec![0.0; node.numel()];
                let st = strides(out);
                for (q, v) in x[0].data.iter().enumerate() {
                    let d = unravel(q, &x[0].shape);
                    let (p0, p1) = (at(w, 0, d[r - 2], d[r - 4]), at(w, 1, d[r - 1], d[r - 3]));
                    if p0 < 0 || p1 < 0 || p0 >= h as isize || p1 >= wd as isize {
                        continue;
                    }
                    let mut pos = d[..r - 4].to_vec();
                    pos.extend([p0 as usize, p1 as usize]);
                    acc[pos.iter().zip(&st).map(|(a, b)| a * b).sum::<usize>()] += v;
                }
                Ok(Host::from_fn(out, node.dtype(), |i| acc[i]))
            }
        }
    }
    fn lower(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        Ok(match self {
            Patches::Unfold(_) => Lowered::Body(self.body(node, cx.arg(0))),
            Patches::Fold(_) => Lowered::Kernels(vec![
                cx.pointwise_kernel(node, |a, _| self.body(node, &a[0]))?,
            ]),
        })
    }
    fn jvp(&self, _: &[Tensor], y: &Tensor, t: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        t[0].as_ref()
            .map(|t| patches_p(self.clone(), t, y.shape()))
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
            Patches::Unfold(w) => Patches::Fold(*w),
            Patches::Fold(w) => Patches::Unfold(*w),
        };
        Ok(vec![Some(patches_p(back, ct, x[0].shape())?)])
    }
    fn batch(&self, x: &[Tensor], y: &Tensor, _: &[bool], size: usize) -> Result<Tensor> {
        let mut shape = vec![size];
        shape.extend_from_slice(y.shape());
        patches_p(self.clone(), &x[0], &shape)
    }
}

/// The primitive, producing `shape` (which fixes the number of windows for an unfold, and the
/// size of the image for a fold).
pub(crate) fn patches_p(op: Patches, x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let (w, lead_in, lead_out) = match &op {
        Patches::Unfold(w) => (w, x.rank().checked_sub(2), shape.len().checked_sub(4)),
        Patches::Fold(w) => (w, x.rank().checked_sub(4), shape.len().checked_sub(2)),
    };
    let ok = match (lead_in, lead_out) {
        (Some(a), Some(b)) => a == b && x.shape()[..a] == shape[..a],
        _ => false,
    } && w.stride.iter().all(|&s| s > 0)
        && w.dilation.iter().all(|&d| d > 0);
    if !ok {
        return shape_err(
            op.name(),
            format!("{:?} cannot become {shape:?} with {w:?}", x.shape()),
        );
    }
    Tensor::from_op(Op::Patches(op), vec![x.clone()], shape.to_vec(), x.dtype())
}
