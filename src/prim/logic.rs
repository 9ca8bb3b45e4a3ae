//! Comparisons (`greater less equal` → bool masks), `select` (the `where` primitive) and
//! `cast` between dtypes. Comparisons are not differentiable; `select` routes tangents and
//! cotangents by its mask; `cast` between floats passes them through.

use crate::base::dtype::DType;
use crate::base::error::{Result, dtype_err, or_panic, shape_err};
use crate::base::host::Host;
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::prim::Primitive;
use crate::prim::lower::{LowerCx, Lowered};
use crate::prim::with_batch;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Compare {
    Greater,
    Less,
    Equal,
}

/// A floating-point class test, from the bits (so no compiler can fold it away).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Class {
    Nan,
    Inf,
    Finite,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Logic {
    Compare(Compare),
    Classify(Class),
    Select,
    Cast(DType),
}

impl Logic {
    pub(crate) fn describe(&self) -> String {
        match self {
            Logic::Cast(d) => format!("cast[{d}]"),
            other => other.name().into(),
        }
    }
}

/// An error when the open device cannot hold f16 tensors (without a device yet, the check
/// happens when the graph is realized).
pub(crate) fn require_f16(op: &'static str) -> Result<()> {
    match crate::device::opened() {
        Some(g) if !g.limits.shader_f16 => dtype_err(
            op,
            "f16 needs the adapter feature `shader-f16`, which this adapter lacks; use f32",
        ),
        _ => Ok(()),
    }
}

impl Primitive for Logic {
    fn name(&self) -> &'static str {
        match self {
            Logic::Compare(Compare::Greater) => "greater",
            Logic::Compare(Compare::Less) => "less",
            Logic::Compare(Compare::Equal) => "equal",
            Logic::Classify(Class::Nan) => "isnan",
            Logic::Classify(Class::Inf) => "isinf",
            Logic::Classify(Class::Finite) => "isfinite",
            Logic::Select => "where",
            Logic::Cast(_) => "cast",
        }
    }
    fn jvp(&self, x: &[Tensor], y: &Tensor, t: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        Ok(match self {
            Logic::Compare(_) | Logic::Classify(_) => None,
            Logic::Select => {
                if t[1].is_none() && t[2].is_none() {
                    return Ok(None);
                }
                let zero = || y.zeros_like();
                let a = t[1].clone().unwrap_or_else(zero);
                let b = t[2].clone().unwrap_or_else(zero);
                Some(select(&x[0], &a, &b)?)
            }
            Logic::Cast(d) => {
                if x[0].dtype().is_float() && d.is_float() {
                    t[0].as_ref().map(|t| t.try_cast(*d)).transpose()?
                } else {
                    None
                }
            }
        })
    }
    fn vjp(
        &self,
        x: &[Tensor],
        _: &Tensor,
        ct: &Tensor,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        Ok(match self {
            Logic::Compare(_) => vec![None, None],
            Logic::Classify(_) => vec![None],
            Logic::Select => {
                let zero = ct.zeros_like();
                vec![
                    None,
                    needs[1].then(|| select(&x[0], ct, &zero)).transpose()?,
                    needs[2].then(|| select(&x[0], &zero, ct)).transpose()?,
                ]
            }
            Logic::Cast(d) => {
                let back = x[0].dtype().is_float() && d.is_float();
                vec![back.then(|| ct.try_cast(x[0].dtype())).transpose()?]
            }
        })
    }
    fn batch(&self, x: &[Tensor], _: &Tensor, batched: &[bool], size: usize) -> Result<Tensor> {
        let x = x
            .iter()
            .zip(batched)
            .map(|(t, &b)| with_batch(t, b, size))
            .collect::<Result<Vec<Tensor>>>()?;
        match self {
            Logic::Compare(c) => compare(*c, &x[0], &x[1]),
            Logic::Classify(c) => classify(*c, &x[0]),
            Logic::Select => select(&x[0], &x[1], &x[2]),
            Logic::Cast(d) => cast(&x[0], *d),
        }
    }
    fn fusion(&self) -> Fusion {
        Fusion::Inline
    }
    fn reference(&self, node: &Tensor, x: &[Host]) -> Result<Host> {
        let from = x[0].dtype;
        Ok(Host::from_fn(node.shape(), node.dtype(), |i| {
            let a = x[0].data[i];
            let truth = |b: bool| b as u8 as f64;
            match self {
                Logic::Compare(Compare::Greater) => truth(a > x[1].data[i]),
                Logic::Compare(Compare::Less) => truth(a < x[1].data[i]),
                Logic::Compare(Compare::Equal) => truth(a == x[1].data[i]),
                Logic::Classify(Class::Nan) => truth(a.is_nan()),
                Logic::Classify(Class::Inf) => truth(a.is_infinite()),
                Logic::Classify(Class::Finite) => truth(a.is_finite()),
                Logic::Select if a != 0.0 => x[1].data[i],
                Logic::Select => x[2].data[i],
                Logic::Cast(DType::Bool) => truth(a != 0.0),
                // Float to integer rounds toward zero and saturates (NaN is 0), as WGSL.
                Logic::Cast(DType::I32) if from.is_float() => a as i32 as f64,
                Logic::Cast(DType::U32) if from.is_float() => a as u32 as f64,
                Logic::Cast(_) => a,
            }
        }))
    }
    fn lower(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        let arg = |k: usize| format!("{}(i)", cx.arg(k));
        let e = match self {
            Logic::Compare(Compare::Greater) => format!("{} > {}", arg(0), arg(1)),
            Logic::Compare(Compare::Less) => format!("{} < {}", arg(0), arg(1)),
            Logic::Compare(Compare::Equal) => format!("{} == {}", arg(0), arg(1)),
            Logic::Classify(c) => {
                let bits = format!("(bitcast<u32>(f32({})) & 0x7fffffffu)", arg(0));
                match c {
                    Class::Nan => format!("{bits} > 0x7f800000u"),
                    Class::Inf => format!("{bits} == 0x7f800000u"),
                    Class::Finite => format!("{bits} < 0x7f800000u"),
                }
            }
            Logic::Select => format!("select({}, {}, {})", arg(2), arg(1), arg(0)),
            Logic::Cast(to) => {
                let from = node.inputs()[0].dtype();
                match (from, to) {
                    (DType::Bool, t) => {
                        let ty = t.wgsl();
                        format!("select({ty}(0), {ty}(1), {})", arg(0))
                    }
                    (_, DType::Bool) => format!("{} != {}(0)", arg(0), from.wgsl()),
                    (f, t) if f == *t => arg(0),
                    (DType::F16, t) => format!("{}(f32({}))", t.wgsl(), arg(0)),
                    (_, t) => format!("{}({})", t.wgsl(), arg(0)),
                }
            }
        };
        Ok(Lowered::Body(format!("    return {e};")))
    }
}

pub(crate) fn compare(c: Compare, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let op = Logic::Compare(c);
    let (a, b) = crate::prim::binary::broadcast_pair(op.name(), a, b)?;
    Tensor::from_op(
        Op::Logic(op),
        vec![a.clone(), b],
        a.shape().to_vec(),
        DType::Bool,
    )
}

/// The class test `c` of a float tensor, as a bool mask.
pub(crate) fn classify(c: Class, x: &Tensor) -> Result<Tensor> {
    let name = Logic::Classify(c).name();
    if !x.dtype().is_float() {
        return dtype_err(
            name,
            format!(
                "expected a float tensor, got {} of shape {:?}",
                x.dtype(),
                x.shape()
            ),
        );
    }
    Tensor::from_op(
        Op::Logic(Logic::Classify(c)),
        vec![x.clone()],
        x.shape().to_vec(),
        DType::Bool,
    )
}

pub(crate) fn select(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if cond.dtype() != DType::Bool {
        return dtype_err(
            "where",
            format!(
                "the condition must be bool, got {} of shape {:?}",
                cond.dtype(),
                cond.shape()
            ),
        );
    }
    let shape = crate::base::dtype::broadcast_shapes("where", cond.shape(), a.shape())
        .and_then(|s| crate::base::dtype::broadcast_shapes("where", &s, b.shape()))
        .or_else(|_| {
            shape_err(
                "where",
                format!(
                    "condition {:?}, x {:?} and y {:?} cannot be broadcast together",
                    cond.shape(),
                    a.shape(),
                    b.shape()
                ),
            )
        })?;
    let (a, b) = crate::prim::binary::unify_dtypes("where", a, b)?;
    let inputs = vec![
        cond.try_broadcast_to(&shape)?,
        a.try_broadcast_to(&shape)?,
        b.try_broadcast_to(&shape)?,
    ];
    Tensor::from_op(Op::Logic(Logic::Select), inputs, shape, a.dtype())
}

pub(crate) fn cast(x: &Tensor, to: DType) -> Result<Tensor> {
    if x.dtype() == to {
        return Ok(x.clone());
    }
    if to == DType::F16 {
        require_f16("cast")?;
    }
    Tensor::from_op(
        Op::Logic(Logic::Cast(to)),
        vec![x.clone()],
        x.shape().to_vec(),
        to,
    )
}

impl Tensor {
    /// Elementwise `a > b` as a bool mask (broadcasting).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let m = Tensor::from_vec(vec![1.0f32, 3.0], [2]).greater(&Tensor::scalar(2.0));
    /// assert_eq!(m.to_vec::<bool>(), vec![false, true]);
    /// ```
    #[track_caller]
    pub fn greater(&self, other: &Tensor) -> Tensor {
        or_panic(compare(Compare::Greater, self, other))
    }
    /// Elementwise `a < b` as a bool mask (broadcasting).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let m = Tensor::from_vec(vec![1.0f32, 3.0], [2]).less(&Tensor::scalar(2.0));
    /// assert_eq!(m.to_vec::<bool>(), vec![true, false]);
    /// ```
    #[track_caller]
    pub fn less(&self, other: &Tensor) -> Tensor {
        or_panic(compare(Compare::Less, self, other))
    }
    /// Elementwise `a == b` as a bool mask (broadcasting).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let m = Tensor::from_vec(vec![1.0f32, 2.0], [2]).equal(&Tensor::scalar(2.0));
    /// assert_eq!(m.to_vec::<bool>(), vec![false, true]);
    /// ```
    #[track_caller]
    pub fn equal(&self, other: &Tensor) -> Tensor {
        or_panic(compare(Compare::Equal, self, other))
    }
    /// Where the elements are NaN (a bool mask; `jnp.isnan`).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let m = Tensor::from_vec(vec![1.0f32, f32::NAN], [2]).is_nan();
    /// assert_eq!(m.to_vec::<bool>(), vec![false, true]);
    /// ```
    #[track_caller]
    pub fn is_nan(&self) -> Tensor {
        or_panic(self.try_is_nan())
    }
    /// Fallible [`Tensor::is_nan`]: a dtype error for non-float input.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert!(Tensor::from_vec(vec![1i32], [1]).try_is_nan().is_err());
    /// ```
    pub fn try_is_nan(&self) -> Result<Tensor> {
        classify(Class::Nan, self)
    }
    /// Where the elements are +inf or -inf (a bool mask; `jnp.isinf`).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let m = Tensor::from_vec(vec![f32::NEG_INFINITY, f32::NAN], [2]).is_inf();
    /// assert_eq!(m.to_vec::<bool>(), vec![true, false]);
    /// ```
    #[track_caller]
    pub fn is_inf(&self) -> Tensor {
        or_panic(self.try_is_inf())
    }
    /// Fallible [`Tensor::is_inf`]: a dtype error for non-float input.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert!(Tensor::from_vec(vec![1i32], [1]).try_is_inf().is_err());
    /// ```
    pub fn try_is_inf(&self) -> Result<Tensor> {
        classify(Class::Inf, self)
    }
    /// Where the elements are neither infinite nor NaN (a bool mask; `jnp.isfinite`).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let m = Tensor::from_vec(vec![1.0f32, f32::INFINITY, f32::NAN], [3]).is_finite();
    /// assert_eq!(m.to_vec::<bool>(), vec![true, false, false]);
    /// ```
    #[track_caller]
    pub fn is_finite(&self) -> Tensor {
        or_panic(self.try_is_finite())
    }
    /// Fallible [`Tensor::is_finite`]: a dtype error for non-float input.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert!(Tensor::from_vec(vec![1i32], [1]).try_is_finite().is_err());
    /// ```
    pub fn try_is_finite(&self) -> Result<Tensor> {
        classify(Class::Finite, self)
    }
    /// Fallible comparisons: `try_compare(">", b)`, `"<"` or `"=="`.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert!(Tensor::zeros([2]).try_compare(">", &Tensor::zeros([3])).is_err());
    /// ```
    pub fn try_compare(&self, how: &str, other: &Tensor) -> Result<Tensor> {
        let c = match how {
            ">" => Compare::Greater,
            "<" => Compare::Less,
            "==" => Compare::Equal,
            _ => {
                return crate::base::error::transform_err(
                    "compare",
                    format!("unknown comparison {how:?}"),
                );
            }
        };
        compare(c, self, other)
    }
    /// Converts to another dtype (bool → 0/1, float → int truncates).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let i = Tensor::from_vec(vec![1.7f32, -2.2], [2]).cast(DType::I32);
    /// assert_eq!(i.to_vec::<i32>(), vec![1, -2]);
    /// ```
    #[track_caller]
    pub fn cast(&self, to: DType) -> Tensor {
        or_panic(cast(self, to))
    }
    /// Fallible [`Tensor::cast`] (f16 needs `shader-f16`).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert!(Tensor::zeros([1]).try_cast(DType::I32).is_ok());
    /// ```
    pub fn try_cast(&self, to: DType) -> Result<Tensor> {
        cast(self, to)
    }
}

/// `where(cond, a, b)`: elements of `a` where `cond` holds, else of `b` (broadcasting all three).
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![-1.0f32, 2.0], [2]);
/// let y = where_(&x.greater(&Tensor::scalar(0.0)), &x, &Tensor::scalar(0.0));
/// assert_eq!(y.to_vec::<f32>(), vec![0.0, 2.0]);
/// ```
#[track_caller]
pub fn where_(cond: &Tensor, a: &Tensor, b: &Tensor) -> Tensor {
    or_panic(try_where(cond, a, b))
}

/// Fallible [`where_`]: the condition must be bool and the shapes must broadcast.
///
/// ```
/// use wgrad::prelude::*;
/// assert!(try_where(&Tensor::zeros([2]), &Tensor::zeros([2]), &Tensor::zeros([2])).is_err());
/// ```
pub fn try_where(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    select(cond, a, b)
}
