//! Computing tensors and reading their values back: [`Tensor::realize`], [`Tensor::to_vec`],
//! [`Tensor::item`] and the free [`realize`] over several tensors. The graph layer builds
//! tensors without a device; these are where a graph meets one.

use crate::base::dtype::DType;
use crate::base::error::{Result, or_panic};
use crate::ir::tensor::{Element, Tensor};
use crate::runtime::realize;

impl Tensor {
    /// Computes this tensor now (one submit for everything it still needs).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let y = Tensor::ones([3]).exp();
    /// y.realize();
    /// assert!(y.is_realized());
    /// ```
    pub fn realize(&self) -> &Tensor {
        realize::realize(std::slice::from_ref(self));
        self
    }
    /// Fallible [`Tensor::realize`]: a device error (no adapter, a tensor too large for it)
    /// comes back as an error, and the tensor stays unrealized.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert!(Tensor::ones([3]).exp().try_realize().is_ok());
    /// ```
    pub fn try_realize(&self) -> Result<&Tensor> {
        realize::try_realize(std::slice::from_ref(self))?;
        Ok(self)
    }

    /// Copies the values to the host, realizing first (blocking).
    ///
    /// The element type must match the dtype (`f32` for `F32`, `bool` for `Bool`, …).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0f32, 4.0], [2]).sqrt();
    /// assert_eq!(x.to_vec::<f32>(), vec![1.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn to_vec<T: Element>(&self) -> Vec<T> {
        or_panic(self.try_to_vec())
    }
    /// Fallible [`Tensor::to_vec`].
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert!(Tensor::zeros([2]).try_to_vec::<i32>().is_err());
    /// ```
    pub fn try_to_vec<T: Element>(&self) -> Result<Vec<T>> {
        self.check_element::<T>()?;
        let bytes = realize::read_bytes(self)?;
        Ok(T::read_bytes(&bytes, self.numel()))
    }
    /// Copies the values to the host without blocking (what the browser needs).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0], [2]);
    /// let v = pollster::block_on(x.to_vec_async::<f32>()).unwrap();
    /// assert_eq!(v, vec![1.0, 2.0]);
    /// ```
    pub async fn to_vec_async<T: Element>(&self) -> Result<Vec<T>> {
        self.check_element::<T>()?;
        let bytes = realize::read_bytes_async(self).await?;
        Ok(T::read_bytes(&bytes, self.numel()))
    }
    fn check_element<T: Element>(&self) -> Result<()> {
        if T::DTYPE != self.dtype() {
            return crate::base::error::dtype_err(
                "to_vec",
                format!(
                    "tensor of shape {:?} has dtype {}, asked for {}",
                    self.shape(),
                    self.dtype(),
                    T::DTYPE
                ),
            );
        }
        Ok(())
    }
    /// The values as `f32`, whatever the dtype (bools become 0 and 1).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let m = Tensor::from_vec(vec![1.0f32, -1.0], [2]).greater(&Tensor::scalar(0.0));
    /// assert_eq!(m.to_f32_vec(), vec![1.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn to_f32_vec(&self) -> Vec<f32> {
        or_panic(self.try_to_f32_vec())
    }
    /// Fallible [`Tensor::to_f32_vec`].
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(Tensor::from_slice(&[3i32], [1]).try_to_f32_vec().unwrap(), vec![3.0]);
    /// ```
    pub fn try_to_f32_vec(&self) -> Result<Vec<f32>> {
        Ok(match self.dtype() {
            DType::F32 => self.try_to_vec::<f32>()?,
            DType::F16 => self
                .try_to_vec::<half::f16>()?
                .into_iter()
                .map(f32::from)
                .collect(),
            DType::I32 => self
                .try_to_vec::<i32>()?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            DType::U32 => self
                .try_to_vec::<u32>()?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            DType::Bool => self
                .try_to_vec::<bool>()?
                .into_iter()
                .map(|v| v as u8 as f32)
                .collect(),
        })
    }
    /// The single value of a one-element tensor, as `f32`.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(Tensor::scalar(2.5).item(), 2.5);
    /// ```
    #[track_caller]
    pub fn item(&self) -> f32 {
        if self.numel() != 1 {
            panic!(
                "item: tensor of shape {:?} has {} elements, not 1",
                self.shape(),
                self.numel()
            );
        }
        self.to_f32_vec()[0]
    }
}

/// Realizes several tensors together: one schedule, one submit.
///
/// ```standalone_crate
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0], [2]);
/// let (a, b) = (x.exp(), x.sin());
/// let before = wgrad::counters();
/// wgrad::realize(&[a.clone(), b.clone()]);
/// assert_eq!(wgrad::counters().since(&before).submits, 1);
/// ```
pub fn realize(tensors: &[Tensor]) {
    realize::realize(tensors);
}

/// Fallible [`realize`].
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0], [2]);
/// assert!(wgrad::try_realize(&[x.exp(), x.sin()]).is_ok());
/// ```
pub fn try_realize(tensors: &[Tensor]) -> Result<()> {
    realize::try_realize(tensors)
}
