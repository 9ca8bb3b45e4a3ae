//! Binary arithmetic primitives on equal shapes: add sub mul div pow maximum minimum atan2
//! logaddexp xlogy (and `remainder`, composed from them).
//! The public methods broadcast (NumPy rules) before they build the primitive, so the VJP of
//! broadcasting lives in one place (`expand`'s rule), not in every binary rule.

use crate::base::dtype::DType;
use crate::base::error::{Result, dtype_err, or_panic};
use crate::base::host::Host;
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::prim::Primitive;
use crate::prim::lower::{LowerCx, Lowered};

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Maximum,
    Minimum,
    Atan2,
    LogAddExp,
    Xlogy,
}

/// `Some(a + b)` where absent means zero.
pub(crate) fn add_opt(a: Option<Tensor>, b: Option<Tensor>) -> Result<Option<Tensor>> {
    Ok(match (a, b) {
        (Some(a), Some(b)) => Some(a.try_add(&b)?),
        (a, None) => a,
        (None, b) => b,
    })
}

/// The weight of `a` in d max(a, b): 1 where a wins, ½ at ties (as JAX), else 0.
fn max_weight(a: &Tensor, b: &Tensor) -> Tensor {
    let win = a.greater(b).cast(a.dtype());
    let tie = a.equal(b).cast(a.dtype());
    win + tie * 0.5
}

/// A partial derivative as the linear map it is: a tangent (or cotangent) times ∂out/∂operand.
type Partial<'a> = Box<dyn Fn(&Tensor) -> Tensor + 'a>;

impl BinaryOp {
    /// The op on two float64 values (the reference interpreter's); `int` for integer dtypes
    /// (division truncates and `x / 0` is `x`, as WGSL; results wrap when stored).
    pub(crate) fn eval(self, a: f64, b: f64, int: bool) -> f64 {
        let nan_max = |a: f64, b: f64, max: bool| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else if max {
                a.max(b)
            } else {
                a.min(b)
            }
        };
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div if int && b == 0.0 => a,
            BinaryOp::Div if int => (a / b).trunc(),
            BinaryOp::Div => a / b,
            BinaryOp::Pow => a.powf(b),
            BinaryOp::Maximum => nan_max(a, b, true),
            BinaryOp::Minimum => nan_max(a, b, false),
            BinaryOp::Atan2 => a.atan2(b),
            BinaryOp::LogAddExp if a.is_nan() || b.is_nan() => f64::NAN,
            BinaryOp::LogAddExp if a == b => a + std::f64::consts::LN_2,
            BinaryOp::LogAddExp => a.max(b) + (-(a - b).abs()).exp().ln_1p(),
            BinaryOp::Xlogy if a == 0.0 => 0.0,
            BinaryOp::Xlogy => a * b.ln(),
        }
    }
    /// The partial derivatives (∂out/∂a, ∂out/∂b) as linear maps, each only when asked for.
    /// Elementwise, so the same map serves forward (tangents) and reverse (cotangents) mode.
    fn partials<'a>(
        self,
        a: &'a Tensor,
        b: &'a Tensor,
        y: &'a Tensor,
        want: [bool; 2],
    ) -> [Option<Partial<'a>>; 2] {
        let (pa, pb): (Partial<'a>, Partial<'a>) = match self {
            BinaryOp::Add => (Box::new(|t| t.clone()), Box::new(|t| t.clone())),
            BinaryOp::Sub => (Box::new(|t| t.clone()), Box::new(|t| -t)),
            BinaryOp::Mul => (Box::new(move |t| t * b), Box::new(move |t| t * a)),
            BinaryOp::Div => (Box::new(move |t| t / b), Box::new(move |t| -(t * y) / b)),
            BinaryOp::Pow => (
                Box::new(move |t| t * (b * a.pow(&(b - 1.0)))),
                Box::new(move |t| {
                    // log(a) with a = 0 replaced by 1, as JAX does (0^b has derivative 0 in b).
                    let safe =
                        crate::prim::logic::where_(&a.equal(&a.zeros_like()), &a.ones_like(), a);
                    t * (safe.log() * y)
                }),
            ),
            BinaryOp::Maximum => {
                let w = max_weight(a, b);
                let w2 = w.clone();
                (
                    Box::new(move |t| t * &w),
                    Box::new(move |t| t * (1.0 - &w2)),
                )
            }
            BinaryOp::Minimum => {
                let w = max_weight(b, a); // a is the minimum where b wins the maximum
                let w2 = w.clone();
                (
                    Box::new(move |t| t * &w),
                    Box::new(move |t| t * (1.0 - &w2)),
                )
            }
            BinaryOp::Atan2 => {
                // atan2(a, b) is the angle of (b, a): ∂/∂a = b / r², ∂/∂b = -a / r².
                let r2 = a.square() + b.square();
                let (wa, wb) = (b / &r2, -(a / &r2));
                (Box::new(move |t| t * &wa), Box::new(move |t| t * &wb))
            }
            BinaryOp::LogAddExp => {
                // e^(a - y), e^(b - y) with infinities read as 0 (as JAX), so two equal
                // infinities give finite weights instead of NaN.
                let finite =
                    |v: &Tensor| crate::prim::logic::where_(&v.is_inf(), &v.zeros_like(), v);
                let ry = finite(y);
                let (wa, wb) = ((finite(a) - &ry).exp(), (finite(b) - &ry).exp());
                (Box::new(move |t| t * &wa), Box::new(move |t| t * &wb))
            }
            // As JAX's rule: ∂/∂x = log y (also where x = 0), ∂/∂y = x / y.
            BinaryOp::Xlogy => (Box::new(move |t| t * b.log()), Box::new(move |t| t * a / b)),
        };
        [want[0].then_some(pa), want[1].then_some(pb)]
    }
}

impl Primitive for BinaryOp {
    fn name(&self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Atan2 => "atan2",
            BinaryOp::LogAddExp => "logaddexp",
            BinaryOp::Xlogy => "xlogy",
        }
    }
    fn jvp(&self, x: &[Tensor], y: &Tensor, t: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        let [pa, pb] = self.partials(&x[0], &x[1], y, [t[0].is_some(), t[1].is_some()]);
        add_opt(
            t[0].as_ref().zip(pa).map(|(t, p)| p(t)),
            t[1].as_ref().zip(pb).map(|(t, p)| p(t)),
        )
    }
    fn vjp(
        &self,
        x: &[Tensor],
        y: &Tensor,
        ct: &Tensor,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let [pa, pb] = self.partials(&x[0], &x[1], y, [needs[0], needs[1]]);
        Ok(vec![pa.map(|p| p(ct)), pb.map(|p| p(ct))])
    }
    fn batch(&self, x: &[Tensor], _: &Tensor, batched: &[bool], size: usize) -> Result<Tensor> {
        let a = crate::prim::with_batch(&x[0], batched[0], size)?;
        let b = crate::prim::with_batch(&x[1], batched[1], size)?;
        binary_same(*self, &a, &b)
    }
    fn fusion(&self) -> Fusion {
        Fusion::Inline
    }
    fn reference(&self, node: &Tensor, x: &[Host]) -> Result<Host> {
        let (op, int) = (*self, !node.dtype().is_float());
        Ok(Host::from_fn(node.shape(), node.dtype(), |i| {
            op.eval(x[0].data[i], x[1].data[i], int)
        }))
    }
    fn lower(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        let x = format!("{}(i)", cx.arg(0));
        let mut y = format!("{}(i)", cx.arg(1));
        if matches!(self, BinaryOp::Sub | BinaryOp::Div) && node.dtype() == DType::F32 {
            // `a - a` or `a / a` of one value (or of two equal expressions a compiler merges):
            // the drivers' compilers fold it to 0 or 1, where IEEE gives NaN for inf and NaN.
            // The second operand goes through the bits of a runtime zero (one XOR), which no
            // compiler can see through.
            let zero = cx.param(0);
            y = format!("bitcast<f32>(bitcast<u32>({y}) ^ {zero})");
        }
        let e = match self {
            BinaryOp::Add => format!("{x} + {y}"),
            BinaryOp::Sub => format!("{x} - {y}"),
            BinaryOp::Mul => format!("{x} * {y}"),
            BinaryOp::Div => format!("{x} / {y}"),
            BinaryOp::Maximum | BinaryOp::Minimum => {
                let f = if *self == BinaryOp::Maximum {
                    "max"
                } else {
                    "min"
                };
                match node.dtype() {
                    // NaN propagates (as JAX); the built-ins may return the other operand.
                    DType::F32 => format!("wg_{f}({x}, {y})"),
                    DType::F16 => format!("f16(wg_{f}(f32({x}), f32({y})))"),
                    _ => format!("{f}({x}, {y})"),
                }
            }
            BinaryOp::Pow | BinaryOp::Atan2 | BinaryOp::LogAddExp | BinaryOp::Xlogy => {
                let f = match self {
                    BinaryOp::Pow => "wg_pow",
                    BinaryOp::Atan2 => "wg_atan2",
                    BinaryOp::LogAddExp => "wg_logaddexp",
                    _ => "wg_xlogy",
                };
                match node.dtype() {
                    DType::F16 => format!("f16({f}(f32({x}), f32({y})))"),
                    _ => format!("{f}({x}, {y})"),
                }
            }
        };
        Ok(Lowered::Body(format!("    return {e};")))
    }
}

/// The primitive on equal shapes and dtypes.
pub(crate) fn binary_same(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let ok = match op {
        BinaryOp::Pow | BinaryOp::Atan2 | BinaryOp::LogAddExp | BinaryOp::Xlogy => {
            a.dtype().is_float()
        }
        _ => a.dtype() != DType::Bool,
    };
    if !ok {
        return dtype_err(
            op.name(),
            format!(
                "not defined for {} (shapes {:?} and {:?})",
                a.dtype(),
                a.shape(),
                b.shape()
            ),
        );
    }
    debug_assert_eq!(a.shape(), b.shape());
    Tensor::from_op(
        Op::Binary(op),
        vec![a.clone(), b.clone()],
        a.shape().to_vec(),
        a.dtype(),
    )
}

/// Broadcasts both operands to a common shape and dtype (a 0-d constant adopts the other
/// operand's dtype, like a Python literal), then applies `f`.
pub(crate) fn broadcast_pair(op: &'static str, a: &Tensor, b: &Tensor) -> Result<(Tensor, Tensor)> {
    let shape = crate::base::dtype::broadcast_shapes(op, a.shape(), b.shape())?;
    let (a, b) = unify_dtypes(op, a, b)?;
    Ok((a.try_broadcast_to(&shape)?, b.try_broadcast_to(&shape)?))
}

fn is_weak(t: &Tensor) -> bool {
    t.rank() == 0 && matches!(t.op(), Op::Source(crate::prim::source::Source::Full(_)))
}

pub(crate) fn unify_dtypes(op: &'static str, a: &Tensor, b: &Tensor) -> Result<(Tensor, Tensor)> {
    if a.dtype() == b.dtype() {
        return Ok((a.clone(), b.clone()));
    }
    // A weak (0-d constant, like a Python literal) operand adopts the other's dtype, except
    // that a float constant with an integer tensor makes the result float (as JAX: `i32 + 2.5`
    // is `f32`, never a silent truncation to 2).
    let float_with_int = |w: &Tensor, t: &Tensor| w.dtype().is_float() && !t.dtype().is_float();
    if is_weak(b) {
        if float_with_int(b, a) {
            return Ok((a.try_cast(b.dtype())?, b.clone()));
        }
        return Ok((a.clone(), b.try_cast(a.dtype())?));
    }
    if is_weak(a) {
        if float_with_int(a, b) {
            return Ok((a.clone(), b.try_cast(a.dtype())?));
        }
        return Ok((a.try_cast(b.dtype())?, b.clone()));
    }
    dtype_err(
        op,
        format!(
            "operands have dtypes {} and {} (shapes {:?} and {:?}); cast one first",
            a.dtype(),
            b.dtype(),
            a.shape(),
            b.shape()
        ),
    )
}

fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (a, b) = broadcast_pair(op.name(), a, b)?;
    binary_same(op, &a, &b)
}

/// What a binary op takes as its second operand: a tensor (by reference or value), or a
/// literal — `f32`, or `i32` — which is weakly typed (a 0-d constant that adopts the other
/// operand's dtype, as a Python number in JAX).
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![-1.0f32, 2.0], [2]);
/// assert_eq!(x.maximum(0.0).to_vec::<f32>(), vec![0.0, 2.0]);
/// assert_eq!(x.minimum(&Tensor::scalar(1.0)).to_vec::<f32>(), vec![-1.0, 1.0]);
/// assert_eq!(x.pow(2).to_vec::<f32>(), vec![1.0, 4.0]);
/// ```
pub trait Operand {
    /// The operand as a tensor.
    fn operand(self) -> Tensor;
}

impl Operand for &Tensor {
    fn operand(self) -> Tensor {
        self.clone()
    }
}
impl Operand for Tensor {
    fn operand(self) -> Tensor {
        self
    }
}
impl Operand for &&Tensor {
    fn operand(self) -> Tensor {
        (*self).clone()
    }
}
impl Operand for f32 {
    fn operand(self) -> Tensor {
        Tensor::scalar(self)
    }
}
impl Operand for i32 {
    fn operand(self) -> Tensor {
        or_panic(Tensor::try_full(
            [],
            f64::from(self),
            crate::base::dtype::DType::I32,
        ))
    }
}

macro_rules! binary_methods {
    ($($name:ident $try_name:ident $op:ident $doc:literal $ex:literal;)*) => {
        impl Tensor {
            $(
                #[doc = $doc]
                /// Operands broadcast as in NumPy.
                ///
                /// ```
                /// use wgrad::prelude::*;
                #[doc = $ex]
                /// ```
                #[track_caller]
                pub fn $name(&self, other: impl Operand) -> Tensor {
                    or_panic(self.$try_name(other))
                }
                #[doc = concat!("Fallible [`Tensor::", stringify!($name), "`]: an error names the op and both shapes.")]
                ///
                /// ```
                /// use wgrad::prelude::*;
                #[doc = concat!("let e = Tensor::zeros([2, 3]).", stringify!($try_name), "(&Tensor::zeros([4])).unwrap_err();")]
                /// assert!(e.to_string().contains("[2, 3]") && e.to_string().contains("[4]"));
                /// ```
                pub fn $try_name(&self, other: impl Operand) -> Result<Tensor> {
                    binary(BinaryOp::$op, self, &other.operand())
                }
            )*
        }
    };
}

binary_methods! {
    add try_add Add "Elementwise `a + b`." "assert_eq!(Tensor::scalar(2.0).add(&Tensor::scalar(3.0)).item(), 5.0);";
    sub try_sub Sub "Elementwise `a - b`." "assert_eq!(Tensor::scalar(2.0).sub(&Tensor::scalar(3.0)).item(), -1.0);";
    mul try_mul Mul "Elementwise `a * b`." "assert_eq!(Tensor::scalar(2.0).mul(&Tensor::scalar(3.0)).item(), 6.0);";
    div try_div Div "Elementwise `a / b`." "assert_eq!(Tensor::scalar(3.0).div(&Tensor::scalar(2.0)).item(), 1.5);";
    pow try_pow Pow "Elementwise `a ^ b` (negative bases with integer exponents as NumPy)." "assert_eq!(Tensor::scalar(-2.0).pow(&Tensor::scalar(3.0)).item(), -8.0);";
    maximum try_maximum Maximum "Elementwise maximum (derivative split ½–½ at ties, as JAX)." "assert_eq!(Tensor::scalar(2.0).maximum(&Tensor::scalar(3.0)).item(), 3.0);";
    minimum try_minimum Minimum "Elementwise minimum." "assert_eq!(Tensor::scalar(2.0).minimum(&Tensor::scalar(3.0)).item(), 2.0);";
    atan2 try_atan2 Atan2 "Elementwise `atan2(a, b)`: the angle of the point `(b, a)` in [-π, π] (`jnp.arctan2`; `self` is the y coordinate), with C's signed-zero and infinity cases." "assert!((Tensor::scalar(1.0).atan2(&Tensor::scalar(-1.0)).item() - 3.0 * std::f32::consts::FRAC_PI_4).abs() < 1e-6);";
    logaddexp try_logaddexp LogAddExp "Elementwise `log(e^a + e^b)` without overflow (`jnp.logaddexp`; two -infs give -inf)." "assert!((Tensor::scalar(1000.0).logaddexp(&Tensor::scalar(1000.0)).item() - (1000.0 + 2f32.ln())).abs() < 1e-3);";
    xlogy try_xlogy Xlogy "Elementwise `x · log y`, 0 where `x = 0` (`jax.scipy.special.xlogy`)." "assert_eq!(Tensor::scalar(0.0).xlogy(&Tensor::scalar(0.0)).item(), 0.0);";
}

impl Tensor {
    /// Elementwise `a - floor(a / b) · b`: the remainder with the sign of the divisor (Python's
    /// `%`, `jnp.remainder`). Operands broadcast as in NumPy. Its derivative is 1 in `a` and
    /// `-floor(a / b)` in `b`, as JAX's.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let r = Tensor::from_vec(vec![5.0f32, -5.0], [2]).remainder(&Tensor::scalar(3.0));
    /// assert_eq!(r.to_vec::<f32>(), vec![2.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn remainder(&self, other: &Tensor) -> Tensor {
        or_panic(self.try_remainder(other))
    }
    /// Fallible [`Tensor::remainder`]: an error names the op and both shapes.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert!(Tensor::zeros([2]).try_remainder(&Tensor::zeros([3])).is_err());
    /// ```
    pub fn try_remainder(&self, other: &Tensor) -> Result<Tensor> {
        let (a, b) = broadcast_pair("remainder", self, other)?;
        if !a.dtype().is_float() {
            return dtype_err(
                "remainder",
                format!("expected float tensors, got {}", a.dtype()),
            );
        }
        let q = a.try_div(&b)?.try_floor()?;
        a.try_sub(&q.try_mul(&b)?)
    }
}

// Operators on Tensor, &Tensor and f32, in every combination.
macro_rules! operator {
    ($tr:ident $m:ident $name:ident) => {
        impl std::ops::$tr<&Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: &Tensor) -> Tensor {
                Tensor::$name(&self, rhs)
            }
        }
        impl std::ops::$tr<Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: Tensor) -> Tensor {
                Tensor::$name(&self, &rhs)
            }
        }
        impl std::ops::$tr<&Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: &Tensor) -> Tensor {
                Tensor::$name(&self, rhs)
            }
        }
        impl std::ops::$tr<Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: Tensor) -> Tensor {
                Tensor::$name(&self, &rhs)
            }
        }
        impl std::ops::$tr<f32> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: f32) -> Tensor {
                Tensor::$name(&self, &Tensor::scalar(rhs))
            }
        }
        impl std::ops::$tr<f32> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: f32) -> Tensor {
                Tensor::$name(&self, &Tensor::scalar(rhs))
            }
        }
        impl std::ops::$tr<&Tensor> for f32 {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: &Tensor) -> Tensor {
                Tensor::scalar(self).$name(rhs)
            }
        }
        impl std::ops::$tr<Tensor> for f32 {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: Tensor) -> Tensor {
                Tensor::scalar(self).$name(&rhs)
            }
        }
    };
}
operator!(Add add add);
operator!(Sub sub sub);
operator!(Mul mul mul);
operator!(Div div div);

impl std::ops::Neg for &Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(self)
    }
}
impl std::ops::Neg for Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(&self)
    }
}
