//! Convolution and pooling over NCHW images, built on `unfold` (the windows as axes of their
//! own, an index map) and the batched matmul or a reduction: a convolution is the weights
//! times the unfolded input per group, a pooling a max or mean over each window. The unfold
//! fuses into the matmul's loads on GPUs (an implicit GEMM), into the reduction's reads for
//! pooling; derivatives and batching come from the matmul, the reductions and the unfold's
//! transpose (`fold`). vmap over the input folds into the matmul's batch; vmap over the
//! weights (one kernel per example) makes the weights a batched operand of the same matmul.

use crate::base::error::{Result, or_panic, shape_err};
use crate::ir::tensor::Tensor;
use crate::prim::window::{Patches, Window, patches_p};

/// Options of [`Tensor::conv2d`] (as `jax.lax.conv_general_dilated` with NCHW/OIHW): stride,
/// symmetric zero padding, dilation of the kernel, and feature groups (`groups = C` with one
/// input channel per group is a depthwise convolution).
///
/// ```
/// use wgrad::Conv2dOptions;
/// let o = Conv2dOptions::default().stride(2).padding(1);
/// assert_eq!((o.stride, o.padding, o.dilation, o.groups), ([2, 2], [1, 1], [1, 1], 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Step between windows, `(sh, sw)`.
    pub stride: [usize; 2],
    /// Zeros added on both sides, `(ph, pw)`.
    pub padding: [usize; 2],
    /// Spacing between kernel taps, `(dh, dw)`.
    pub dilation: [usize; 2],
    /// Feature groups: input and output channels are split into this many independent parts.
    pub groups: usize,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// Either one value for both axes or a pair.
pub trait Pair {
    /// The pair `(h, w)`.
    fn pair(self) -> [usize; 2];
}
impl Pair for usize {
    fn pair(self) -> [usize; 2] {
        [self, self]
    }
}
impl Pair for [usize; 2] {
    fn pair(self) -> [usize; 2] {
        self
    }
}
impl Pair for (usize, usize) {
    fn pair(self) -> [usize; 2] {
        [self.0, self.1]
    }
}

impl Conv2dOptions {
    /// With this stride (one value or a pair).
    pub fn stride(self, s: impl Pair) -> Self {
        Conv2dOptions {
            stride: s.pair(),
            ..self
        }
    }
    /// With this symmetric zero padding (one value or a pair).
    pub fn padding(self, p: impl Pair) -> Self {
        Conv2dOptions {
            padding: p.pair(),
            ..self
        }
    }
    /// With this dilation (one value or a pair).
    pub fn dilation(self, d: impl Pair) -> Self {
        Conv2dOptions {
            dilation: d.pair(),
            ..self
        }
    }
    /// With this many feature groups.
    pub fn groups(self, g: usize) -> Self {
        Conv2dOptions { groups: g, ..self }
    }
}

/// The unfolded windows of the last two axes of `x`, `[..., kh, kw, Ho, Wo]`.
fn unfold(op: &'static str, x: &Tensor, w: Window) -> Result<Tensor> {
    let r = x.rank();
    if r < 2 {
        return shape_err(
            op,
            format!("needs an image of rank >= 2, got {:?}", x.shape()),
        );
    }
    if w.size.contains(&0) || w.stride.contains(&0) || w.dilation.contains(&0) {
        return shape_err(
            op,
            format!(
                "window {:?}, stride {:?} and dilation {:?} must be positive (input {:?})",
                w.size,
                w.stride,
                w.dilation,
                x.shape()
            ),
        );
    }
    let (h, wd) = (x.shape()[r - 2], x.shape()[r - 1]);
    let (Some(ho), Some(wo)) = (w.out_len(0, h, w.pad[0]), w.out_len(1, wd, w.pad[1])) else {
        return shape_err(
            op,
            format!(
                "a window of {:?} (dilation {:?}) does not fit the input {:?} padded by {:?}",
                w.size,
                w.dilation,
                x.shape(),
                w.pad
            ),
        );
    };
    let mut shape = x.shape()[..r - 2].to_vec();
    shape.extend([w.size[0], w.size[1], ho, wo]);
    patches_p(Patches::Unfold(w), x, &shape)
}

impl Tensor {
    /// 2-D convolution (cross-correlation, as `jax.lax.conv_general_dilated`): `self` is NCHW
    /// `[N, C, H, W]`, `w` is OIHW `[O, C / groups, kh, kw]`; the result is `[N, O, Ho, Wo]`
    /// with `Ho = (H + 2 ph - dh (kh - 1) - 1) / sh + 1`.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::arange(16).reshape([1, 1, 4, 4]);
    /// let w = Tensor::ones([1, 1, 2, 2]);
    /// let y = x.conv2d(&w, Conv2dOptions::default().stride(2));
    /// assert_eq!(y.to_vec::<f32>(), vec![10.0, 18.0, 42.0, 50.0]);
    /// ```
    #[track_caller]
    pub fn conv2d(&self, w: &Tensor, opts: Conv2dOptions) -> Tensor {
        or_panic(self.try_conv2d(w, opts))
    }
    /// Fallible [`Tensor::conv2d`]: errors name both shapes.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let e = Tensor::zeros([1, 3, 8, 8]).try_conv2d(&Tensor::zeros([4, 2, 3, 3]), Conv2dOptions::default()).unwrap_err();
    /// assert!(e.to_string().contains("[1, 3, 8, 8]") && e.to_string().contains("[4, 2, 3, 3]"));
    /// ```
    pub fn try_conv2d(&self, w: &Tensor, opts: Conv2dOptions) -> Result<Tensor> {
        let (xs, ws, g) = (self.shape(), w.shape(), opts.groups);
        let ok = xs.len() == 4
            && ws.len() == 4
            && g > 0
            && xs[1] == ws[1] * g
            && ws[0] % g == 0
            && ws[0] > 0;
        if !ok {
            return shape_err(
                "conv2d",
                format!(
                    "input {xs:?} (NCHW) and weights {ws:?} (OIHW) do not fit {g} group(s): \
                     C must be groups × the weights' input channels, O a multiple of groups"
                ),
            );
        }
        let (n, c) = (xs[0], xs[1]);
        let (o, kh, kw) = (ws[0], ws[2], ws[3]);
        let window = Window {
            size: [kh, kw],
            stride: opts.stride,
            pad: opts.padding,
            dilation: opts.dilation,
        };
        let cols = unfold("conv2d", self, window).map_err(|e| match e {
            crate::Error::Shape { msg, .. } => crate::Error::Shape {
                op: "conv2d",
                msg: format!("{msg}; weights {ws:?}"),
            },
            e => e,
        })?;
        let (ho, wo) = (cols.shape()[4], cols.shape()[5]);
        let k = (c / g) * kh * kw;
        // Per group: [O/g, K] × [K, Ho·Wo], batched over N and the groups.
        let cols = cols.try_reshape([n, g, k, ho * wo])?;
        let wm = w.try_reshape([g, o / g, k])?;
        wm.try_matmul(&cols)?.try_reshape([n, o, ho, wo])
    }
    /// Max pooling over `window` of the last two axes (`[..., H, W]`, NCHW for images), with
    /// `stride` (`None`: the window) and no padding; windows that do not fit are dropped.
    /// The derivative goes to the window's maximum (shared at ties).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::arange(16).reshape([1, 1, 4, 4]);
    /// assert_eq!(x.max_pool2d(2, None).to_vec::<f32>(), vec![5.0, 7.0, 13.0, 15.0]);
    /// ```
    #[track_caller]
    pub fn max_pool2d(&self, window: impl Pair, stride: Option<[usize; 2]>) -> Tensor {
        or_panic(self.try_max_pool2d(window, stride))
    }
    /// Fallible [`Tensor::max_pool2d`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([1, 1, 2, 2]).try_max_pool2d(3, None).is_err());
    /// ```
    pub fn try_max_pool2d(&self, window: impl Pair, stride: Option<[usize; 2]>) -> Result<Tensor> {
        let cols = self.pool_windows("max_pool2d", window.pair(), stride)?;
        cols.try_max_axes([-4, -3])
    }
    /// Average pooling over `window` of the last two axes, with `stride` (`None`: the window)
    /// and no padding; windows that do not fit are dropped.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::arange(16).reshape([1, 1, 4, 4]);
    /// assert_eq!(x.avg_pool2d(2, None).to_vec::<f32>(), vec![2.5, 4.5, 10.5, 12.5]);
    /// ```
    #[track_caller]
    pub fn avg_pool2d(&self, window: impl Pair, stride: Option<[usize; 2]>) -> Tensor {
        or_panic(self.try_avg_pool2d(window, stride))
    }
    /// Fallible [`Tensor::avg_pool2d`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([4]).try_avg_pool2d(2, None).is_err());
    /// ```
    pub fn try_avg_pool2d(&self, window: impl Pair, stride: Option<[usize; 2]>) -> Result<Tensor> {
        let cols = self.pool_windows("avg_pool2d", window.pair(), stride)?;
        cols.try_mean_axes([-4, -3])
    }
    fn pool_windows(
        &self,
        op: &'static str,
        size: [usize; 2],
        stride: Option<[usize; 2]>,
    ) -> Result<Tensor> {
        let window = Window {
            size,
            stride: stride.unwrap_or(size),
            pad: [0, 0],
            dilation: [1, 1],
        };
        unfold(op, self, window)
    }
}
