//! Element types and shape helpers.

use crate::base::error::{Result, axis_err};

/// The element type of a tensor.
///
/// ```
/// use wgrad::prelude::*;
/// assert_eq!(Tensor::zeros([2]).dtype(), DType::F32);
/// assert_eq!(Tensor::zeros([2]).greater(&Tensor::zeros([2])).dtype(), DType::Bool);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float: every op.
    F32,
    /// 16-bit float (needs the adapter's `shader-f16`): elementwise ops, reductions, matmul.
    F16,
    /// 32-bit signed integer: indices, `arange`, casts, arithmetic and comparisons.
    I32,
    /// 32-bit unsigned integer.
    U32,
    /// Boolean masks from comparisons (stored as one `u32` per element).
    Bool,
}

impl DType {
    /// Bytes per element in a buffer.
    pub fn size(self) -> usize {
        match self {
            DType::F16 => 2,
            _ => 4,
        }
    }
    /// The WGSL type of a value of this dtype inside a kernel.
    pub(crate) fn wgsl(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::I32 => "i32",
            DType::U32 => "u32",
            DType::Bool => "bool",
        }
    }
    /// The WGSL element type of a buffer holding this dtype.
    pub(crate) fn wgsl_storage(self) -> &'static str {
        match self {
            DType::Bool => "u32",
            d => d.wgsl(),
        }
    }
    /// Whether this is a floating-point dtype (differentiable).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16)
    }
    /// The name used in messages and printouts (`f32`, `bool`, …).
    pub fn name(self) -> &'static str {
        self.wgsl()
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Number of elements of a shape (shapes of existing tensors: checked when they were made).
pub(crate) fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Number of elements of a new shape; an error names the op when the product overflows.
pub(crate) fn checked_numel(op: &'static str, shape: &[usize]) -> Result<usize> {
    if shape.contains(&0) {
        return Ok(0);
    }
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| crate::Error::TooLarge {
            op,
            msg: format!("shape {shape:?} has more elements than a usize can count"),
        })
}

/// Row-major strides of a shape, in elements.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Resolves a possibly negative axis against a rank.
pub(crate) fn norm_axis(op: &'static str, axis: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    if axis < -r || axis >= r {
        return axis_err(
            op,
            format!("axis {axis} is out of range for a tensor of rank {rank}"),
        );
    }
    Ok(if axis < 0 {
        (axis + r) as usize
    } else {
        axis as usize
    })
}

/// Resolves a list of possibly negative axes; rejects repeats.
pub(crate) fn norm_axes(op: &'static str, axes: &[isize], shape: &[usize]) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let n = norm_axis(op, a, shape.len()).map_err(|_| crate::Error::Axis {
            op,
            msg: format!("axis {a} is out of range for shape {shape:?}"),
        })?;
        if out.contains(&n) {
            return axis_err(
                op,
                format!("axis {a} is repeated in {axes:?} (shape {shape:?})"),
            );
        }
        out.push(n);
    }
    Ok(out)
}

/// NumPy broadcasting of two shapes.
pub(crate) fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return crate::base::error::shape_err(
                op,
                format!("shapes {a:?} and {b:?} cannot be broadcast together"),
            );
        };
    }
    Ok(out)
}
