//! Reductions without positional booleans: for each of `sum`, `mean`, `max`, `min`, `prod`,
//! `var` and `std`, `x.sum_all()` (every element, a scalar), `x.sum_axes(axes)` (the axes
//! dropped) and `x.sum_keepdim(axes)` (kept as size 1), each with its `try_` twin — candle's
//! `sum_keepdim` style. The two-argument forms (`x.sum(axes, keepdims)`) are deprecated.

use crate::base::error::{Result, or_panic};
use crate::ir::tensor::Tensor;
use crate::prim::reduce::Axes;

macro_rules! reduction_forms {
    ($what:literal, $old:ident,
     $all:ident, $try_all:ident, $axes:ident, $try_axes:ident, $keep:ident, $try_keep:ident,
     $v_all:literal, $v_axes:literal, $v_keep:literal) => {
        impl Tensor {
            #[doc = concat!($what, " of every element: a scalar (shape `[]`).\n\n```\n",
                "use wgrad::prelude::*;\n",
                "let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]);\n",
                "assert!((x.", stringify!($all), "().item() - ", $v_all, ").abs() < 1e-6);\n```")]
            #[track_caller]
            pub fn $all(&self) -> Tensor {
                or_panic(self.$try_all())
            }
            #[doc = concat!("Fallible [`Tensor::", stringify!($all), "`].\n\n```\n",
                "assert_eq!(wgrad::Tensor::ones([2, 3]).", stringify!($try_all),
                "().unwrap().shape(), &[] as &[usize]);\n```")]
            pub fn $try_all(&self) -> Result<Tensor> {
                #[allow(deprecated)]
                let r = self.$old(None, false);
                r
            }
            #[doc = concat!($what, " over `axes` (an axis, several, or `None` for all; negative ",
                "axes count from the end), which are dropped.\n\n```\n",
                "use wgrad::prelude::*;\n",
                "let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]);\n",
                "let y = x.", stringify!($axes), "(0).to_vec::<f32>();\n",
                "assert!(y.iter().zip(", $v_axes, ").all(|(a, b): (&f32, f32)| (a - b).abs() < 1e-6));\n```")]
            #[track_caller]
            pub fn $axes(&self, axes: impl Into<Axes>) -> Tensor {
                or_panic(self.$try_axes(axes))
            }
            #[doc = concat!("Fallible [`Tensor::", stringify!($axes),
                "`]: an axis error names the axis and the shape.\n\n```\n",
                "assert!(wgrad::Tensor::zeros([2]).", stringify!($try_axes), "(3).is_err());\n```")]
            pub fn $try_axes(&self, axes: impl Into<Axes>) -> Result<Tensor> {
                #[allow(deprecated)]
                let r = self.$old(axes, false);
                r
            }
            #[doc = concat!($what, " over `axes`, which are kept as size 1 (so the result ",
                "broadcasts against `self`).\n\n```\n",
                "use wgrad::prelude::*;\n",
                "let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]);\n",
                "let y = x.", stringify!($keep), "(-1);\n",
                "assert_eq!(y.shape(), &[2, 1]);\n",
                "let y = y.to_vec::<f32>();\n",
                "assert!(y.iter().zip(", $v_keep, ").all(|(a, b): (&f32, f32)| (a - b).abs() < 1e-6));\n```")]
            #[track_caller]
            pub fn $keep(&self, axes: impl Into<Axes>) -> Tensor {
                or_panic(self.$try_keep(axes))
            }
            #[doc = concat!("Fallible [`Tensor::", stringify!($keep), "`].\n\n```\n",
                "assert!(wgrad::Tensor::zeros([2]).", stringify!($try_keep), "(-2).is_err());\n```")]
            pub fn $try_keep(&self, axes: impl Into<Axes>) -> Result<Tensor> {
                #[allow(deprecated)]
                let r = self.$old(axes, true);
                r
            }
        }
    };
}

reduction_forms!(
    "Sum",
    try_sum,
    sum_all,
    try_sum_all,
    sum_axes,
    try_sum_axes,
    sum_keepdim,
    try_sum_keepdim,
    "10.0",
    "[4.0, 6.0]",
    "[3.0, 7.0]"
);
reduction_forms!(
    "Mean",
    try_mean,
    mean_all,
    try_mean_all,
    mean_axes,
    try_mean_axes,
    mean_keepdim,
    try_mean_keepdim,
    "2.5",
    "[2.0, 3.0]",
    "[1.5, 3.5]"
);
reduction_forms!(
    "Maximum (the derivative is shared among ties)",
    try_max,
    max_all,
    try_max_all,
    max_axes,
    try_max_axes,
    max_keepdim,
    try_max_keepdim,
    "4.0",
    "[3.0, 4.0]",
    "[2.0, 4.0]"
);
reduction_forms!(
    "Minimum (the derivative is shared among ties)",
    try_min,
    min_all,
    try_min_all,
    min_axes,
    try_min_axes,
    min_keepdim,
    try_min_keepdim,
    "1.0",
    "[1.0, 2.0]",
    "[1.0, 3.0]"
);
reduction_forms!(
    "Product (the derivative is exact where elements are zero)",
    try_prod,
    prod_all,
    try_prod_all,
    prod_axes,
    try_prod_axes,
    prod_keepdim,
    try_prod_keepdim,
    "24.0",
    "[3.0, 8.0]",
    "[2.0, 12.0]"
);
reduction_forms!(
    "Variance, the population version (`ddof = 0`, as `jnp.var`),",
    try_var,
    var_all,
    try_var_all,
    var_axes,
    try_var_axes,
    var_keepdim,
    try_var_keepdim,
    "1.25",
    "[1.0, 1.0]",
    "[0.25, 0.25]"
);
reduction_forms!(
    "Standard deviation, the population version (`ddof = 0`),",
    try_std,
    std_all,
    try_std_all,
    std_axes,
    try_std_axes,
    std_keepdim,
    try_std_keepdim,
    "1.25f32.sqrt()",
    "[1.0, 1.0]",
    "[0.5, 0.5]"
);
