//! Unary elementwise primitives: neg exp log sin cos tan tanh sqrt abs sigmoid sign log1p
//! expm1 erf erfc erfinv floor ceil round trunc, the inverse and hyperbolic trigonometric
//! functions, and lgamma digamma polygamma.
//! Kernel: one WGSL expression each (transcendentals computed in f32); rules: one derivative
//! each, `d(out)/d(x)`, used by both JVP (`t · d`) and VJP (`ct · d`).

use crate::base::dtype::DType;
use crate::base::error::{Result, dtype_err, or_panic};
use crate::base::host::Host;
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::prim::Primitive;
use crate::prim::lower::{LowerCx, Lowered};

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum UnaryOp {
    Neg,
    Exp,
    Log,
    Sin,
    Cos,
    Tanh,
    Sqrt,
    Abs,
    Sigmoid,
    Sign,
    Log1p,
    Expm1,
    Erf,
    Erfc,
    ErfInv,
    Floor,
    Round,
    Tan,
    Atan,
    Asin,
    Acos,
    Sinh,
    Cosh,
    Asinh,
    Acosh,
    Atanh,
    Ceil,
    Trunc,
    Lgamma,
    Digamma,
    /// ψ^(n), the n-th derivative of digamma (n >= 1).
    Polygamma(u32),
}

impl UnaryOp {
    /// The WGSL expression of `x` (an f32 or i32 value).
    fn wgsl(self, x: &str) -> String {
        match self {
            UnaryOp::Neg => format!("-({x})"),
            UnaryOp::Exp => format!("wg_exp({x})"),
            UnaryOp::Log => format!("wg_log({x})"),
            UnaryOp::Sin => format!("wg_sin({x})"),
            UnaryOp::Cos => format!("wg_cos({x})"),
            UnaryOp::Tanh => format!("wg_tanh({x})"),
            UnaryOp::Sqrt => format!("sqrt({x})"),
            UnaryOp::Abs => format!("abs({x})"),
            UnaryOp::Sigmoid => format!("wg_sigmoid({x})"),
            // sign(NaN) is NaN (the built-in may say 0).
            UnaryOp::Sign => format!("select(sign({x}), {x}, wg_isnan(f32({x})))"),
            UnaryOp::Log1p => format!("wg_log1p({x})"),
            UnaryOp::Expm1 => format!("wg_expm1({x})"),
            UnaryOp::Erf => format!("wg_erf({x})"),
            UnaryOp::Erfc => format!("wg_erfc({x})"),
            UnaryOp::ErfInv => format!("wg_erfinv({x})"),
            UnaryOp::Floor => format!("floor({x})"),
            // WGSL's round rounds half to even, as jnp.round.
            UnaryOp::Round => format!("round({x})"),
            UnaryOp::Tan => format!("wg_tan({x})"),
            UnaryOp::Atan => format!("wg_atan({x})"),
            UnaryOp::Asin => format!("wg_asin({x})"),
            UnaryOp::Acos => format!("wg_acos({x})"),
            UnaryOp::Sinh => format!("wg_sinh({x})"),
            UnaryOp::Cosh => format!("wg_cosh({x})"),
            UnaryOp::Asinh => format!("wg_asinh({x})"),
            UnaryOp::Acosh => format!("wg_acosh({x})"),
            UnaryOp::Atanh => format!("wg_atanh({x})"),
            UnaryOp::Ceil => format!("ceil({x})"),
            UnaryOp::Trunc => format!("trunc({x})"),
            UnaryOp::Lgamma => format!("wg_lgamma({x})"),
            UnaryOp::Digamma => format!("wg_digamma({x})"),
            UnaryOp::Polygamma(n) => format!("wg_polygamma({n}, {x})"),
        }
    }
    /// The op on one float64 value (the reference interpreter's).
    fn eval(self, x: f64) -> f64 {
        use crate::base::special as sp;
        match self {
            UnaryOp::Neg => -x,
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sin => x.sin(),
            UnaryOp::Cos => x.cos(),
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Abs => x.abs(),
            UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            UnaryOp::Sign if x == 0.0 || x.is_nan() => x,
            UnaryOp::Sign => x.signum(),
            UnaryOp::Log1p => x.ln_1p(),
            UnaryOp::Expm1 => x.exp_m1(),
            UnaryOp::Erf => sp::erf(x),
            UnaryOp::Erfc => sp::erfc(x),
            UnaryOp::ErfInv => sp::erfinv(x),
            UnaryOp::Floor => x.floor(),
            UnaryOp::Round => x.round_ties_even(),
            UnaryOp::Tan => x.tan(),
            UnaryOp::Atan => x.atan(),
            UnaryOp::Asin => x.asin(),
            UnaryOp::Acos => x.acos(),
            UnaryOp::Sinh => x.sinh(),
            UnaryOp::Cosh => x.cosh(),
            UnaryOp::Asinh => x.asinh(),
            UnaryOp::Acosh => x.acosh(),
            UnaryOp::Atanh => x.atanh(),
            UnaryOp::Ceil => x.ceil(),
            UnaryOp::Trunc => x.trunc(),
            UnaryOp::Lgamma => sp::lgamma(x),
            UnaryOp::Digamma => sp::digamma(x),
            UnaryOp::Polygamma(n) => sp::polygamma(n, x),
        }
    }
    fn allows_int(self) -> bool {
        matches!(self, UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign)
    }
    /// Piecewise constant: the derivative is zero wherever it exists (as JAX).
    fn is_step(self) -> bool {
        matches!(
            self,
            UnaryOp::Sign | UnaryOp::Floor | UnaryOp::Round | UnaryOp::Ceil | UnaryOp::Trunc
        )
    }
    /// d(out)/d(x), built from tensor ops (so it can be differentiated again).
    fn derivative(self, x: &Tensor, y: &Tensor) -> Option<Tensor> {
        Some(match self {
            UnaryOp::Neg => return None,
            UnaryOp::Log1p => (x + 1.0).reciprocal(),
            UnaryOp::Expm1 => y + 1.0,
            UnaryOp::Erf => (-x.square()).exp() * std::f32::consts::FRAC_2_SQRT_PI,
            UnaryOp::Erfc => (-x.square()).exp() * -std::f32::consts::FRAC_2_SQRT_PI,
            UnaryOp::ErfInv => y.square().exp() * (std::f32::consts::PI.sqrt() / 2.0),
            UnaryOp::Floor | UnaryOp::Round | UnaryOp::Ceil | UnaryOp::Trunc => x.zeros_like(),
            UnaryOp::Tan => y.square() + 1.0,
            UnaryOp::Atan => (x.square() + 1.0).reciprocal(),
            UnaryOp::Asin => (1.0 - x.square()).rsqrt(),
            UnaryOp::Acos => -(1.0 - x.square()).rsqrt(),
            UnaryOp::Sinh => x.cosh(),
            UnaryOp::Cosh => x.sinh(),
            UnaryOp::Asinh => (x.square() + 1.0).rsqrt(),
            UnaryOp::Acosh => ((x - 1.0) * (x + 1.0)).rsqrt(),
            UnaryOp::Atanh => ((1.0 - x) * (x + 1.0)).reciprocal(),
            UnaryOp::Lgamma => x.digamma(),
            UnaryOp::Digamma => x.polygamma(1),
            UnaryOp::Polygamma(n) => x.polygamma(n + 1),
            UnaryOp::Exp => y.clone(),
            UnaryOp::Log => x.reciprocal(),
            UnaryOp::Sin => x.cos(),
            UnaryOp::Cos => -x.sin(),
            UnaryOp::Tanh => 1.0 - y.square(),
            UnaryOp::Sqrt => (y * 2.0).reciprocal(),
            UnaryOp::Abs => x.sign(),
            UnaryOp::Sigmoid => y * (1.0 - y),
            UnaryOp::Sign => x.zeros_like(),
        })
    }
}

impl Primitive for UnaryOp {
    fn name(&self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Abs => "abs",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Sign => "sign",
            UnaryOp::Log1p => "log1p",
            UnaryOp::Expm1 => "expm1",
            UnaryOp::Erf => "erf",
            UnaryOp::Erfc => "erfc",
            UnaryOp::ErfInv => "erfinv",
            UnaryOp::Floor => "floor",
            UnaryOp::Round => "round",
            UnaryOp::Tan => "tan",
            UnaryOp::Atan => "atan",
            UnaryOp::Asin => "asin",
            UnaryOp::Acos => "acos",
            UnaryOp::Sinh => "sinh",
            UnaryOp::Cosh => "cosh",
            UnaryOp::Asinh => "asinh",
            UnaryOp::Acosh => "acosh",
            UnaryOp::Atanh => "atanh",
            UnaryOp::Ceil => "ceil",
            UnaryOp::Trunc => "trunc",
            UnaryOp::Lgamma => "lgamma",
            UnaryOp::Digamma => "digamma",
            UnaryOp::Polygamma(_) => "polygamma",
        }
    }
    fn jvp(&self, x: &[Tensor], y: &Tensor, t: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        let Some(t) = t[0].as_ref() else {
            return Ok(None);
        };
        Ok(match self {
            UnaryOp::Neg => Some(-t),
            op if op.is_step() => None,
            op => op.derivative(&x[0], y).map(|d| t * d),
        })
    }
    fn vjp(
        &self,
        x: &[Tensor],
        y: &Tensor,
        ct: &Tensor,
        _: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![match self {
            UnaryOp::Neg => Some(-ct),
            op if op.is_step() => None,
            op => op.derivative(&x[0], y).map(|d| ct * d),
        }])
    }
    fn batch(&self, x: &[Tensor], _: &Tensor, _: &[bool], _: usize) -> Result<Tensor> {
        unary(*self, &x[0])
    }
    fn fusion(&self) -> Fusion {
        Fusion::Inline
    }
    fn reference(&self, node: &Tensor, x: &[Host]) -> Result<Host> {
        let op = *self;
        Ok(Host::from_fn(node.shape(), node.dtype(), |i| {
            op.eval(x[0].data[i])
        }))
    }
    fn lower(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        let x = format!("{}(i)", cx.arg(0));
        Ok(Lowered::Body(match node.dtype() {
            DType::F16 => format!("    return f16({});", self.wgsl(&format!("f32({x})"))),
            _ => format!("    return {};", self.wgsl(&x)),
        }))
    }
}

pub(crate) fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor> {
    let ok = x.dtype().is_float() || (op.allows_int() && x.dtype() == DType::I32);
    if !ok {
        return dtype_err(
            op.name(),
            format!(
                "expected a float tensor, got {} of shape {:?}",
                x.dtype(),
                x.shape()
            ),
        );
    }
    Tensor::from_op(
        Op::Unary(op),
        vec![x.clone()],
        x.shape().to_vec(),
        x.dtype(),
    )
}

macro_rules! unary_methods {
    ($($name:ident $try_name:ident $op:ident $doc:literal $ex:literal;)*) => {
        impl Tensor {
            $(
                #[doc = $doc]
                ///
                /// ```
                /// use wgrad::prelude::*;
                #[doc = $ex]
                /// ```
                #[track_caller]
                pub fn $name(&self) -> Tensor {
                    or_panic(self.$try_name())
                }
                #[doc = concat!("Fallible [`Tensor::", stringify!($name), "`]: a dtype error for non-float input.")]
                ///
                /// ```
                /// use wgrad::prelude::*;
                /// assert!(Tensor::from_vec(vec![true], [1]).try_exp().is_err());
                /// ```
                pub fn $try_name(&self) -> Result<Tensor> {
                    unary(UnaryOp::$op, self)
                }
            )*
        }
    };
}

unary_methods! {
    neg try_neg Neg "Elementwise `-x`." "assert_eq!(Tensor::scalar(2.0).neg().item(), -2.0);";
    exp try_exp Exp "Elementwise `e^x`." "assert!((Tensor::scalar(1.0).exp().item() - std::f32::consts::E).abs() < 1e-6);";
    log try_log Log "Elementwise natural logarithm." "assert!(Tensor::scalar(1.0).log().item().abs() < 1e-7);";
    sin try_sin Sin "Elementwise sine." "assert!(Tensor::scalar(0.0).sin().item().abs() < 1e-7);";
    cos try_cos Cos "Elementwise cosine." "assert!((Tensor::scalar(0.0).cos().item() - 1.0).abs() < 1e-7);";
    tanh try_tanh Tanh "Elementwise hyperbolic tangent (no overflow for large inputs)." "assert_eq!(Tensor::scalar(100.0).tanh().item(), 1.0);";
    sqrt try_sqrt Sqrt "Elementwise square root." "assert_eq!(Tensor::scalar(9.0).sqrt().item(), 3.0);";
    abs try_abs Abs "Elementwise absolute value." "assert_eq!(Tensor::scalar(-2.0).abs().item(), 2.0);";
    sigmoid try_sigmoid Sigmoid "Elementwise logistic sigmoid `1 / (1 + e^-x)`, stable for large |x|." "assert_eq!(Tensor::scalar(0.0).sigmoid().item(), 0.5);";
    sign try_sign Sign "Elementwise sign: -1, 0 or 1 (its derivative is zero)." "assert_eq!(Tensor::scalar(-3.0).sign().item(), -1.0);";
    log1p try_log1p Log1p "Elementwise `log(1 + x)`, accurate for small `x`." "assert_eq!(Tensor::scalar(1e-10).log1p().item(), 1e-10);";
    expm1 try_expm1 Expm1 "Elementwise `e^x - 1`, accurate for small `x`." "assert_eq!(Tensor::scalar(1e-10).expm1().item(), 1e-10);";
    erf try_erf Erf "Elementwise error function (within a few ulp of the true value)." "assert!((Tensor::scalar(0.5).erf().item() - 0.520_499_9).abs() < 1e-6);";
    erfc try_erfc Erfc "Elementwise complementary error function `1 - erf(x)`, accurate far into the tail (relative error a few ulp while the result is a normal f32)." "assert!((Tensor::scalar(5.0).erfc().item() / 1.537_459_8e-12 - 1.0).abs() < 1e-5);";
    erfinv try_erfinv ErfInv "Elementwise inverse error function on (-1, 1) (Giles' approximation, as XLA's `erf_inv`); ±inf at ±1." "assert!((Tensor::scalar(0.5).erfinv().erf().item() - 0.5).abs() < 1e-6);";
    floor try_floor Floor "Elementwise floor (its derivative is zero)." "assert_eq!(Tensor::scalar(-1.5).floor().item(), -2.0);";
    tan try_tan Tan "Elementwise tangent (about 2 ulp over the whole range)." "assert!((Tensor::scalar(1.0).tan().item() - 1.557_407_7).abs() < 1e-6);";
    atan try_atan Atan "Elementwise arctangent, in (-π/2, π/2) (`jnp.arctan`)." "assert!((Tensor::scalar(1.0).atan().item() - std::f32::consts::FRAC_PI_4).abs() < 1e-7);";
    asin try_asin Asin "Elementwise arcsine on [-1, 1] (NaN outside, as `jnp.arcsin`)." "assert!((Tensor::scalar(1.0).asin().item() - std::f32::consts::FRAC_PI_2).abs() < 1e-7);";
    acos try_acos Acos "Elementwise arccosine on [-1, 1] (NaN outside, as `jnp.arccos`)." "assert!((Tensor::scalar(-1.0).acos().item() - std::f32::consts::PI).abs() < 1e-6);";
    sinh try_sinh Sinh "Elementwise hyperbolic sine, accurate near 0 and finite up to where it overflows." "assert_eq!(Tensor::scalar(1e-10).sinh().item(), 1e-10);";
    cosh try_cosh Cosh "Elementwise hyperbolic cosine." "assert_eq!(Tensor::scalar(0.0).cosh().item(), 1.0);";
    asinh try_asinh Asinh "Elementwise inverse hyperbolic sine (`jnp.arcsinh`)." "assert!((Tensor::scalar(1.0).asinh().item() - 0.881_373_6).abs() < 1e-6);";
    acosh try_acosh Acosh "Elementwise inverse hyperbolic cosine on [1, ∞) (NaN below, as `jnp.arccosh`)." "assert_eq!(Tensor::scalar(1.0).acosh().item(), 0.0);";
    atanh try_atanh Atanh "Elementwise inverse hyperbolic tangent on (-1, 1); ±inf at ±1, NaN beyond (as `jnp.arctanh`)." "assert_eq!(Tensor::scalar(1.0).atanh().item(), f32::INFINITY);";
    ceil try_ceil Ceil "Elementwise ceiling (its derivative is zero)." "assert_eq!(Tensor::scalar(-1.5).ceil().item(), -1.0);";
    trunc try_trunc Trunc "Elementwise rounding toward zero (its derivative is zero)." "assert_eq!(Tensor::scalar(-1.5).trunc().item(), -1.0);";
    lgamma try_lgamma Lgamma "Elementwise `log |Γ(x)|` (`jax.scipy.special.gammaln`); +inf at 0, -1, -2, …" "assert!((Tensor::scalar(5.0).lgamma().item() - 24f32.ln()).abs() < 1e-6);";
    digamma try_digamma Digamma "Elementwise digamma `ψ(x) = d/dx log Γ(x)`; NaN at 0, -1, -2, … (as JAX)." "assert!((Tensor::scalar(1.0).digamma().item() + 0.577_215_7).abs() < 1e-6);";
    round try_round Round "Elementwise rounding to the nearest integer, halves to even (as `jnp.round`); its derivative is zero." "assert_eq!(Tensor::from_vec(vec![0.5f32, 1.5, -2.5], [3]).round().to_vec::<f32>(), vec![0.0, 2.0, -2.0]);";
}

impl Tensor {
    /// Elementwise polygamma `ψ^(n)(x)`, the `n`-th derivative of [`Tensor::digamma`]
    /// (`jax.scipy.special.polygamma(n, x)`), for `n >= 1` and `x > 0` (NaN at and below 0).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// // ψ'(1) = π²/6
    /// let v = Tensor::scalar(1.0).polygamma(1).item();
    /// assert!((v - std::f32::consts::PI.powi(2) / 6.0).abs() < 1e-5);
    /// ```
    #[track_caller]
    pub fn polygamma(&self, n: u32) -> Tensor {
        or_panic(self.try_polygamma(n))
    }
    /// Fallible [`Tensor::polygamma`]: an error for `n = 0` (use `digamma`) or non-float input.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert!(Tensor::scalar(1.0).try_polygamma(0).is_err());
    /// ```
    pub fn try_polygamma(&self, n: u32) -> Result<Tensor> {
        if n == 0 {
            return crate::base::error::shape_err(
                "polygamma",
                "order 0 is digamma: call `digamma`; polygamma takes n >= 1",
            );
        }
        unary(UnaryOp::Polygamma(n), self)
    }
}
