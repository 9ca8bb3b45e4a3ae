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

/// Options of [`Tensor::conv1d`] (as `jax.lax.conv_general_dilated` with NCH/OIH): stride,
/// symmetric zero padding, kernel dilation and feature groups.
///
/// ```
/// use wgrad::Conv1dOptions;
/// let o = Conv1dOptions::default().stride(2).padding(1);
/// assert_eq!((o.stride, o.padding, o.dilation, o.groups), (2, 1, 1, 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1dOptions {
    /// Step between windows.
    pub stride: usize,
    /// Zeros added at both ends.
    pub padding: usize,
    /// Spacing between kernel taps.
    pub dilation: usize,
    /// Feature groups.
    pub groups: usize,
}

impl Default for Conv1dOptions {
    fn default() -> Self {
        Conv1dOptions {
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
        }
    }
}

impl Conv1dOptions {
    /// With this stride.
    pub fn stride(self, s: usize) -> Self {
        Conv1dOptions { stride: s, ..self }
    }
    /// With this symmetric zero padding.
    pub fn padding(self, p: usize) -> Self {
        Conv1dOptions { padding: p, ..self }
    }
    /// With this dilation.
    pub fn dilation(self, d: usize) -> Self {
        Conv1dOptions {
            dilation: d,
            ..self
        }
    }
    /// With this many feature groups.
    pub fn groups(self, g: usize) -> Self {
        Conv1dOptions { groups: g, ..self }
    }
}

impl Tensor {
    /// 1-D convolution (cross-correlation): `self` is NCW `[N, C, W]`, `w` is OIW
    /// `[O, C / groups, k]`; the result is `[N, O, Wo]` with
    /// `Wo = (W + 2p - d (k - 1) - 1) / s + 1` — [`Tensor::conv2d`] on images one row high.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::arange(5).reshape([1, 1, 5]);
    /// let w = Tensor::from_vec(vec![1.0f32, -1.0], [1, 1, 2]);
    /// assert_eq!(x.conv1d(&w, Conv1dOptions::default()).to_vec::<f32>(), vec![-1.0; 4]);
    /// ```
    #[track_caller]
    pub fn conv1d(&self, w: &Tensor, opts: Conv1dOptions) -> Tensor {
        or_panic(self.try_conv1d(w, opts))
    }
    /// Fallible [`Tensor::conv1d`]: errors name both shapes.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let e = Tensor::zeros([1, 3, 8]).try_conv1d(&Tensor::zeros([4, 2, 3]), Conv1dOptions::default());
    /// assert!(e.unwrap_err().to_string().contains("[4, 2, 3]"));
    /// ```
    pub fn try_conv1d(&self, w: &Tensor, opts: Conv1dOptions) -> Result<Tensor> {
        let (xs, ws) = (self.shape(), w.shape());
        if xs.len() != 3 || ws.len() != 3 {
            return shape_err(
                "conv1d",
                format!(
                    "expected input [N, C, W] and weights [O, C/groups, k], got {xs:?} and {ws:?}"
                ),
            );
        }
        let x4 = self.try_reshape([xs[0], xs[1], 1, xs[2]])?;
        let w4 = w.try_reshape([ws[0], ws[1], 1, ws[2]])?;
        let o = Conv2dOptions {
            stride: [1, opts.stride],
            padding: [0, opts.padding],
            dilation: [1, opts.dilation],
            groups: opts.groups,
        };
        let y = x4.try_conv2d(&w4, o).map_err(|e| match e {
            crate::Error::Shape { msg, .. } => crate::Error::Shape {
                op: "conv1d",
                msg: format!("input {xs:?}, weights {ws:?}: {msg}"),
            },
            e => e,
        })?;
        let s = y.shape().to_vec();
        y.try_reshape([s[0], s[1], s[3]])
    }
    /// Transposed 2-D convolution (PyTorch's `ConvTranspose2d` with output padding 0; JAX's
    /// `conv_transpose(..., transpose_kernel=True)`): `self` is NCHW `[N, C, H, W]`, `w` is
    /// `[C, O, kh, kw]`; the result is `[N, O, (H-1)·sh + kh - 2ph, (W-1)·sw + kw - 2pw]`, the
    /// transpose of `conv2d` with the same weights, stride and padding (`0 <= p <= k - 1`).
    /// Computed as a convolution of the zero-dilated input with the flipped kernel.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0], [1, 1, 1, 2]);
    /// let w = Tensor::ones([1, 1, 1, 2]);
    /// let y = x.conv_transpose2d(&w, 2, 0);
    /// assert_eq!(y.to_vec::<f32>(), vec![1.0, 1.0, 2.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn conv_transpose2d(&self, w: &Tensor, stride: impl Pair, padding: impl Pair) -> Tensor {
        or_panic(self.try_conv_transpose2d(w, stride, padding))
    }
    /// Fallible [`Tensor::conv_transpose2d`]: errors name both shapes.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let e = Tensor::zeros([1, 3, 4, 4]).try_conv_transpose2d(&Tensor::zeros([2, 1, 3, 3]), 1, 0);
    /// assert!(e.unwrap_err().to_string().contains("[2, 1, 3, 3]"));
    /// ```
    pub fn try_conv_transpose2d(
        &self,
        w: &Tensor,
        stride: impl Pair,
        padding: impl Pair,
    ) -> Result<Tensor> {
        let (xs, ws) = (self.shape(), w.shape());
        let (s, p) = (stride.pair(), padding.pair());
        let ok = xs.len() == 4
            && ws.len() == 4
            && xs[1] == ws[0]
            && xs[2] > 0
            && xs[3] > 0
            && s.iter().all(|&v| v > 0)
            && (0..2).all(|k| ws[2 + k] > 0 && p[k] < ws[2 + k]);
        if !ok {
            return shape_err(
                "conv_transpose2d",
                format!(
                    "input {xs:?} (NCHW) and weights {ws:?} ([C, O, kh, kw]) with stride {s:?} and \
                     padding {p:?} do not fit: C must match and 0 <= padding < kernel"
                ),
            );
        }
        let (n, c, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
        let (kh, kw) = (ws[2], ws[3]);
        // Zeros between the input's elements: [N, C, H, 1, W, 1] padded to [.., sh, .., sw].
        let x6 = self.try_reshape([n, c, h, 1, wd, 1])?;
        let dil = x6
            .try_pad(vec![0, 0, 0, 0, 0, 0], vec![0, 0, 0, s[0] - 1, 0, s[1] - 1])?
            .try_reshape([n, c, h * s[0], wd * s[1]])?
            .try_slice(
                [0, 0, 0, 0],
                [n, c, (h - 1) * s[0] + 1, (wd - 1) * s[1] + 1],
            )?;
        let flipped = w
            .try_transpose([1, 0, 2, 3])?
            .try_flip(crate::prim::reduce::Axes::List(vec![2, 3]))?;
        let opts = Conv2dOptions::default().padding([kh - 1 - p[0], kw - 1 - p[1]]);
        dil.try_conv2d(&flipped, opts)
    }
}
