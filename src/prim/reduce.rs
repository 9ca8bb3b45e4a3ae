//! Reductions: `sum`, `max`, `min` and `prod` over any set of axes (the primitive drops them; `keepdims` is a
//! reshape). Kernel: `shaders/reduce.wgsl`, with the elementwise producer of the input fused
//! into the read, and long reductions split into chunks plus a second pass.

use crate::base::dtype::{DType, norm_axes, numel};
use crate::base::error::{Result, dtype_err, or_panic};
use crate::base::host::Host;
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::kernel::wgsl::{compose, decompose, literal, store_expr};
use crate::kernel::{BufRef, Kernel, templates};
use crate::prim::Primitive;
use crate::prim::binary::BinaryOp;
use crate::prim::emit::Emitter;
use crate::prim::lower::{LowerCx, Lowered};

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ReduceOp {
    Sum,
    Max,
    Min,
    Prod,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Reduce {
    pub op: ReduceOp,
    pub axes: Vec<usize>,
}

/// Which axes to reduce: all of them, or a list (negative axes count from the end).
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::ones([2, 3]);
/// assert_eq!(x.sum_all().shape(), &[] as &[usize]);
/// assert_eq!(x.sum_axes(-1).shape(), &[2]);
/// assert_eq!(x.sum_keepdim([0, 1]).shape(), &[1, 1]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Axes {
    /// Every axis.
    All,
    /// These axes.
    List(Vec<isize>),
}

impl From<Option<isize>> for Axes {
    fn from(a: Option<isize>) -> Self {
        a.map_or(Axes::All, |a| Axes::List(vec![a]))
    }
}
impl From<isize> for Axes {
    fn from(a: isize) -> Self {
        Axes::List(vec![a])
    }
}
impl<const N: usize> From<[isize; N]> for Axes {
    fn from(a: [isize; N]) -> Self {
        Axes::List(a.to_vec())
    }
}
impl From<&[isize]> for Axes {
    fn from(a: &[isize]) -> Self {
        Axes::List(a.to_vec())
    }
}
impl From<Vec<isize>> for Axes {
    fn from(a: Vec<isize>) -> Self {
        Axes::List(a)
    }
}

impl Axes {
    pub(crate) fn resolve(&self, op: &'static str, shape: &[usize]) -> Result<Vec<usize>> {
        match self {
            Axes::All => Ok((0..shape.len()).collect()),
            Axes::List(l) => norm_axes(op, l, shape),
        }
    }
}

impl Primitive for Reduce {
    fn name(&self) -> &'static str {
        match self.op {
            ReduceOp::Sum => "sum",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
            ReduceOp::Prod => "prod",
        }
    }
    fn jvp(&self, x: &[Tensor], y: &Tensor, t: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        let Some(t) = t[0].as_ref() else {
            return Ok(None);
        };
        Ok(Some(match self.op {
            ReduceOp::Sum => reduce_p(ReduceOp::Sum, t, &self.axes)?,
            ReduceOp::Max | ReduceOp::Min => {
                let (mask, count) = self.argmax_mask(&x[0], y)?;
                reduce_p(ReduceOp::Sum, &(t * mask), &self.axes)? / count
            }
            ReduceOp::Prod => {
                reduce_p(ReduceOp::Sum, &(t * self.prod_partials(&x[0])?), &self.axes)?
            }
        }))
    }
    fn vjp(
        &self,
        x: &[Tensor],
        y: &Tensor,
        ct: &Tensor,
        _: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let spread = |v: &Tensor| self.unreduce(v, x[0].shape());
        Ok(vec![Some(match self.op {
            ReduceOp::Sum => spread(ct)?,
            ReduceOp::Max | ReduceOp::Min => {
                let (mask, count) = self.argmax_mask(&x[0], y)?;
                spread(&(ct / count))? * mask
            }
            ReduceOp::Prod => spread(ct)? * self.prod_partials(&x[0])?,
        })])
    }
    fn batch(&self, x: &[Tensor], _: &Tensor, _: &[bool], _: usize) -> Result<Tensor> {
        let axes: Vec<usize> = self.axes.iter().map(|a| a + 1).collect();
        reduce_p(self.op, &x[0], &axes)
    }
    fn fusion(&self) -> Fusion {
        Fusion::KernelRoot { epilogue: false }
    }
    fn lower(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        self.kernels(node, cx).map(Lowered::Kernels)
    }
    fn reference(&self, node: &Tensor, x: &[Host]) -> Result<Host> {
        // The same combination (NaN-propagating max/min) as the elementwise binary ops.
        let (init, op) = match self.op {
            ReduceOp::Sum => (0.0, BinaryOp::Add),
            ReduceOp::Prod => (1.0, BinaryOp::Mul),
            ReduceOp::Max => (f64::NEG_INFINITY, BinaryOp::Maximum),
            ReduceOp::Min => (f64::INFINITY, BinaryOp::Minimum),
        };
        let int = node.dtype() != DType::F32 && node.dtype() != DType::F16;
        let f = |a: f64, b: f64| op.eval(a, b, int);
        let init = match (self.op, node.dtype()) {
            (ReduceOp::Max, DType::I32) => i32::MIN as f64,
            (ReduceOp::Min, DType::I32) => i32::MAX as f64,
            (ReduceOp::Max, DType::U32) => 0.0,
            (ReduceOp::Min, DType::U32) => u32::MAX as f64,
            _ => init,
        };
        let mut acc = vec![init; node.numel()];
        let out_strides = crate::base::host::strides(node.shape());
        for (i, v) in x[0].data.iter().enumerate() {
            let idx = crate::base::host::unravel(i, &x[0].shape);
            let kept = (0..idx.len()).filter(|a| !self.axes.contains(a));
            let at: usize = kept.zip(&out_strides).map(|(a, s)| idx[a] * s).sum();
            acc[at] = f(acc[at], *v);
        }
        let dtype = node.dtype();
        Ok(Host::from_fn(node.shape(), dtype, |i| acc[i]))
    }
}

impl Reduce {
    /// `v` (reduced shape) broadcast back over the reduced axes of `shape`.
    fn unreduce(&self, v: &Tensor, shape: &[usize]) -> Result<Tensor> {
        let mut keep = shape.to_vec();
        for &a in &self.axes {
            keep[a] = 1;
        }
        v.try_reshape(keep)?.try_broadcast_to(shape)
    }
    /// ∂prod/∂x: the product of the other elements of each group, exact when some are zero
    /// (one zero: the product of the rest at that zero, 0 elsewhere; two or more: 0), and
    /// written with tensor ops, so it differentiates again.
    fn prod_partials(&self, x: &Tensor) -> Result<Tensor> {
        use crate::prim::logic::try_where;
        let zero = x.equal(&x.zeros_like());
        let nonzero = try_where(&zero, &x.ones_like(), x)?;
        let p = self.unreduce(&reduce_p(ReduceOp::Prod, &nonzero, &self.axes)?, x.shape())?;
        let zeros = self.unreduce(
            &reduce_p(ReduceOp::Sum, &zero.try_cast(x.dtype())?, &self.axes)?,
            x.shape(),
        )?;
        let none = zeros.equal(&zeros.zeros_like());
        let lone =
            zeros.equal(&zeros.ones_like()).try_cast(x.dtype())? * zero.try_cast(x.dtype())?;
        let at_lone_zero = try_where(&lone.greater(&Tensor::scalar(0.5)), &p, &p.zeros_like())?;
        try_where(&none, &(&p / &nonzero), &at_lone_zero)
    }
    /// Where `x` attains the max (or min, as floats), and how many times per output (ties
    /// share).
    fn argmax_mask(&self, x: &Tensor, y: &Tensor) -> Result<(Tensor, Tensor)> {
        let mask = x.equal(&self.unreduce(y, x.shape())?).try_cast(x.dtype())?;
        let count = reduce_p(ReduceOp::Sum, &mask, &self.axes)?;
        Ok((mask, count))
    }

    /// The kernels that compute `node` into its buffer.
    fn kernels(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Vec<Kernel>> {
        let x = &node.inputs()[0];
        let in_shape = x.shape();
        let kept: Vec<usize> = (0..in_shape.len())
            .filter(|a| !self.axes.contains(a))
            .collect();
        let kept_shape: Vec<usize> = kept.iter().map(|&a| in_shape[a]).collect();
        let red_shape: Vec<usize> = self.axes.iter().map(|&a| in_shape[a]).collect();
        let (outputs, r) = (numel(&kept_shape), numel(&red_shape));
        // No outputs, nothing to reduce (the reduced axes may still be huge).
        let r = if outputs == 0 { 0 } else { r };
        let acc = acc_dtype(node.dtype());
        let mut e = cx.kernel();
        let v = e.value_fn(x)?;
        let mut idx = vec![String::new(); in_shape.len()];
        for (p, &a) in kept.iter().enumerate() {
            idx[a] = format!("k{p}");
        }
        for (p, &a) in self.axes.iter().enumerate() {
            idx[a] = format!("r{p}");
        }
        e.push_fn(format!(
            "fn src(o: u32, r: u32) -> Acc {{\n{}{}    return Acc({v}({}));\n}}",
            decompose(&kept_shape, "o", "k"),
            decompose(&red_shape, "r", "r"),
            compose(&idx, in_shape)
        ));
        // One invocation per output when the loops are short or there are outputs enough to
        // fill the device; else a workgroup tree per output, in chunks when outputs are few.
        let per_thread = r <= 256 || (r <= 4096 && (outputs * r <= 1 << 16 || outputs >= 2048));
        if per_thread {
            e.note_inlined(node);
            return Ok(vec![self.thread_kernel(
                node,
                e,
                outputs,
                r,
                cx.out(),
                cx,
            )?]);
        }
        // Enough chunks to fill the device when outputs are few, and always enough that no
        // invocation loops more than 16,384 times.
        let chunks = r
            .div_ceil(4096)
            .clamp(1, 128usize.div_ceil(outputs.max(1)).max(1))
            .max(r.div_ceil(256 * 16_384));
        let (dest, dest_dtype) = if chunks == 1 {
            (cx.out(), node.dtype())
        } else {
            (cx.scratch(), acc)
        };
        self.declare(&mut e, acc, dest_dtype, outputs, r)?;
        e.const_u32("CHUNKS", chunks)?;
        e.const_u32("CHUNK", r.div_ceil(chunks))?;
        e.note_inlined(node);
        let groups = cx.grid(outputs * chunks * 256, 256)?;
        let first = e.finish(
            &templates::REDUCE_GROUP,
            format!("{}_chunks", self.name()),
            dest.clone(),
            dest_dtype,
            outputs * chunks,
            groups,
        )?;
        if chunks == 1 {
            return Ok(vec![first]);
        }
        // Second pass: combine the chunks of each output.
        let mut e2 = cx.kernel();
        let k = e2.bind(dest, dest_dtype, outputs * chunks);
        let partial = e2.read(k, &format!("o * {chunks}u + r"));
        e2.push_fn(format!(
            "fn src(o: u32, r: u32) -> Acc {{\n    return {partial};\n}}"
        ));
        let second = self.thread_kernel(node, e2, outputs, chunks, cx.out(), cx)?;
        Ok(vec![first, second])
    }

    fn thread_kernel(
        &self,
        node: &Tensor,
        mut e: Emitter,
        outputs: usize,
        r: usize,
        out: BufRef,
        cx: &LowerCx,
    ) -> Result<Kernel> {
        self.declare(&mut e, acc_dtype(node.dtype()), node.dtype(), outputs, r)?;
        let groups = cx.grid(outputs, 256)?;
        e.finish(
            &templates::REDUCE_THREAD,
            self.name(),
            out,
            node.dtype(),
            outputs,
            groups,
        )
    }

    /// The prelude a reduction template names: sizes, `Acc`, `identity`, `combine`, `finish`.
    fn declare(
        &self,
        e: &mut Emitter,
        acc: DType,
        out_dtype: DType,
        outputs: usize,
        r: usize,
    ) -> Result<()> {
        e.const_u32("OUTPUTS", outputs)?;
        e.const_u32("R", r)?;
        e.alias("Acc", acc.wgsl());
        // ±inf through the bits of a runtime value: no constant expression is non-finite.
        let identity = match (self.op, acc) {
            (ReduceOp::Sum, a) => literal(0.0, a).replace("bitcast<f32>(0u)", "0.0"),
            (ReduceOp::Max, DType::F32) => "bitcast<f32>(0xff800000u | (z & 0u))".to_string(),
            (ReduceOp::Max, DType::I32) => "bitcast<i32>(0x80000000u | (z & 0u))".to_string(),
            (ReduceOp::Max, _) => "0u".to_string(),
            (ReduceOp::Min, DType::F32) => "bitcast<f32>(0x7f800000u | (z & 0u))".to_string(),
            (ReduceOp::Min, DType::I32) => "2147483647i".to_string(),
            (ReduceOp::Min, _) => "4294967295u".to_string(),
            (ReduceOp::Prod, a) => literal(1.0, a),
        };
        e.push_fn(format!(
            "fn identity(z: u32) -> Acc {{\n    return {identity};\n}}"
        ));
        let float = acc == DType::F32;
        let combine = match self.op {
            ReduceOp::Sum => "a + b",
            ReduceOp::Max if float => "wg_max(a, b)",
            ReduceOp::Max => "max(a, b)",
            ReduceOp::Min if float => "wg_min(a, b)",
            ReduceOp::Min => "min(a, b)",
            ReduceOp::Prod => "a * b",
        };
        e.push_fn(format!(
            "fn combine(a: Acc, b: Acc) -> Acc {{\n    return {combine};\n}}"
        ));
        e.push_fn(format!(
            "fn finish(acc: Acc) -> {} {{\n    return {};\n}}",
            out_dtype.wgsl_storage(),
            store_expr(&format!("{}(acc)", out_dtype.wgsl()), out_dtype)
        ));
        Ok(())
    }
}

fn acc_dtype(d: DType) -> DType {
    match d {
        DType::F16 => DType::F32,
        d => d,
    }
}

pub(crate) fn reduce_p(op: ReduceOp, x: &Tensor, axes: &[usize]) -> Result<Tensor> {
    let r = Reduce {
        op,
        axes: axes.to_vec(),
    };
    if x.dtype() == DType::Bool {
        return dtype_err(
            r.name(),
            format!(
                "cannot reduce a bool tensor of shape {:?}; cast it first",
                x.shape()
            ),
        );
    }
    if axes.is_empty() {
        return Ok(x.clone());
    }
    if matches!(op, ReduceOp::Max | ReduceOp::Min) && axes.iter().any(|&a| x.shape()[a] == 0) {
        return crate::base::error::shape_err(
            r.name(),
            format!(
                "zero-size axis in shape {:?} has no {}imum",
                x.shape(),
                r.name()
            ),
        );
    }
    let mut sorted = axes.to_vec();
    sorted.sort_unstable();
    let shape: Vec<usize> = (0..x.rank())
        .filter(|a| !sorted.contains(a))
        .map(|a| x.shape()[a])
        .collect();
    Tensor::from_op(
        Op::Reduce(Reduce { op, axes: sorted }),
        vec![x.clone()],
        shape,
        x.dtype(),
    )
}

fn reduce(op: ReduceOp, x: &Tensor, axes: Axes, keepdims: bool) -> Result<Tensor> {
    let name = Reduce { op, axes: vec![] }.name();
    let axes = axes.resolve(name, x.shape())?;
    let y = reduce_p(op, x, &axes)?;
    if !keepdims {
        return Ok(y);
    }
    let mut keep = x.shape().to_vec();
    for &a in &axes {
        keep[a] = 1;
    }
    y.try_reshape(keep)
}

impl Tensor {
    #[allow(deprecated)]
    #[deprecated(note = "use `sum_all()`, `sum_axes(axes)` or `sum_keepdim(axes)`")]
    /// Sum over `axes` (`None`: all), keeping them as size 1 when `keepdims`.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]);
    /// assert_eq!(x.sum_axes(0).to_vec::<f32>(), vec![4.0, 6.0]);
    /// assert_eq!(x.sum_all().item(), 10.0);
    /// ```
    #[track_caller]
    pub fn sum(&self, axes: impl Into<Axes>, keepdims: bool) -> Tensor {
        or_panic(self.try_sum(axes, keepdims))
    }
    #[allow(deprecated)]
    #[deprecated(note = "use `try_sum_all()`, `try_sum_axes(axes)` or `try_sum_keepdim(axes)`")]
    /// Fallible [`Tensor::sum`]: an axis error names the axis and the shape.
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_sum_axes(3).is_err());
    /// ```
    pub fn try_sum(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        reduce(ReduceOp::Sum, self, axes.into(), keepdims)
    }
    #[allow(deprecated)]
    #[deprecated(note = "use `max_all()`, `max_axes(axes)` or `max_keepdim(axes)`")]
    /// Maximum over `axes` (`None`: all); the derivative is shared among ties.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0f32, 5.0, 3.0, 4.0], [2, 2]);
    /// assert_eq!(x.max_axes(-1).to_vec::<f32>(), vec![5.0, 4.0]);
    /// ```
    #[track_caller]
    pub fn max(&self, axes: impl Into<Axes>, keepdims: bool) -> Tensor {
        or_panic(self.try_max(axes, keepdims))
    }
    #[allow(deprecated)]
    #[deprecated(note = "use `try_max_all()`, `try_max_axes(axes)` or `try_max_keepdim(axes)`")]
    /// Fallible [`Tensor::max`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_max_axes(-2).is_err());
    /// ```
    pub fn try_max(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        reduce(ReduceOp::Max, self, axes.into(), keepdims)
    }
    #[allow(deprecated)]
    #[deprecated(note = "use `min_all()`, `min_axes(axes)` or `min_keepdim(axes)`")]
    /// Minimum over `axes` (`None`: all); the derivative is shared among ties.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0f32, 5.0, 3.0, 4.0], [2, 2]);
    /// assert_eq!(x.min_axes(-1).to_vec::<f32>(), vec![1.0, 3.0]);
    /// ```
    #[track_caller]
    pub fn min(&self, axes: impl Into<Axes>, keepdims: bool) -> Tensor {
        or_panic(self.try_min(axes, keepdims))
    }
    #[allow(deprecated)]
    #[deprecated(note = "use `try_min_all()`, `try_min_axes(axes)` or `try_min_keepdim(axes)`")]
    /// Fallible [`Tensor::min`].
    ///
    /// ```
    /// let e = wgrad::Tensor::zeros([2, 0]).try_min_axes(1).unwrap_err();
    /// assert!(e.to_string().contains("min"));
    /// ```
    pub fn try_min(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        reduce(ReduceOp::Min, self, axes.into(), keepdims)
    }
    #[allow(deprecated)]
    #[deprecated(note = "use `prod_all()`, `prod_axes(axes)` or `prod_keepdim(axes)`")]
    /// Product over `axes` (`None`: all); the derivative is exact where elements are zero.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]);
    /// assert_eq!(x.prod_axes(-1).to_vec::<f32>(), vec![2.0, 12.0]);
    /// let g = grad(|x: &Tensor| x.prod_all())(&Tensor::from_vec(vec![0.0f32, 2.0, 3.0], [3]));
    /// assert_eq!(g.to_vec::<f32>(), vec![6.0, 0.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn prod(&self, axes: impl Into<Axes>, keepdims: bool) -> Tensor {
        or_panic(self.try_prod(axes, keepdims))
    }
    #[allow(deprecated)]
    #[deprecated(note = "use `try_prod_all()`, `try_prod_axes(axes)` or `try_prod_keepdim(axes)`")]
    /// Fallible [`Tensor::prod`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_prod_axes(1).is_err());
    /// ```
    pub fn try_prod(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        reduce(ReduceOp::Prod, self, axes.into(), keepdims)
    }
}

impl From<i32> for Axes {
    fn from(a: i32) -> Self {
        Axes::List(vec![a as isize])
    }
}
impl<const N: usize> From<[i32; N]> for Axes {
    fn from(a: [i32; N]) -> Self {
        Axes::List(a.iter().map(|&v| v as isize).collect())
    }
}
