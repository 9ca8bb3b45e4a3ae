//! Host arrays for the reference interpreter: a shape, a dtype and every element as an `f64`
//! (integers and booleans exactly, floats without rounding to the dtype), in row-major order.

use crate::base::dtype::DType;

/// A tensor's value on the host, for the reference interpreter (`crate::reference`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Host {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: Vec<f64>,
}

impl Host {
    pub(crate) fn new(shape: &[usize], dtype: DType, data: Vec<f64>) -> Host {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Host {
            shape: shape.to_vec(),
            dtype,
            data,
        }
    }
    /// Element `i` of the result is `f(i)` (flat, row-major), as `dtype` rounds it.
    pub(crate) fn from_fn(shape: &[usize], dtype: DType, f: impl FnMut(usize) -> f64) -> Host {
        let n: usize = shape.iter().product();
        let data = (0..n).map(f).map(|v| fit(v, dtype)).collect();
        Host::new(shape, dtype, data)
    }
    /// Row-major strides of the shape.
    pub(crate) fn strides(&self) -> Vec<usize> {
        strides(&self.shape)
    }
    /// The element at multi-index `idx`.
    pub(crate) fn at(&self, idx: &[usize]) -> f64 {
        let s = self.strides();
        self.data[idx.iter().zip(&s).map(|(i, s)| i * s).sum::<usize>()]
    }
}

/// Row-major strides of `shape`.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1];
    }
    s
}

/// The multi-index of flat position `i` in `shape`.
pub(crate) fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for k in (0..shape.len()).rev() {
        if shape[k] > 0 {
            idx[k] = i % shape[k];
            i /= shape[k];
        }
    }
    idx
}

/// `v` as a value of `dtype` holds it: integers wrap as 32-bit two's complement, booleans are
/// 0 or 1; floats stay as computed (the reference keeps float64 precision).
pub(crate) fn fit(v: f64, dtype: DType) -> f64 {
    match dtype {
        DType::F32 | DType::F16 => v,
        DType::I32 => (v as i64 as i32) as f64,
        DType::U32 => (v as i64 as u32) as f64,
        DType::Bool => (v != 0.0) as u8 as f64,
    }
}
