//! NumPy-like printing: `tensor([[1., 2.], [3., 4.]], shape=[2, 2], dtype=f32)`. Printing
//! realizes the tensor; large tensors show their first and last three entries per axis.

use crate::base::dtype::{DType, strides};
use crate::ir::tensor::Tensor;
use std::fmt;

const EDGE: usize = 3;
const SUMMARIZE_ABOVE: usize = 1000;

fn fmt_value(v: f32, dtype: DType) -> String {
    match dtype {
        DType::Bool => (if v != 0.0 { "true" } else { "false" }).into(),
        DType::I32 | DType::U32 => format!("{}", v as i64),
        _ => {
            if v.is_finite() && v == v.trunc() && v.abs() < 1e16 {
                format!("{v:.0}.")
            } else if v.is_finite() && (v.abs() >= 1e5 || (v != 0.0 && v.abs() < 1e-4)) {
                format!("{v:.4e}")
            } else {
                format!("{}", (v * 1e6).round() / 1e6)
            }
        }
    }
}

fn write_axis(
    out: &mut String,
    vals: &[String],
    shape: &[usize],
    st: &[usize],
    offset: usize,
    depth: usize,
    summarize: bool,
) {
    if shape.is_empty() {
        out.push_str(&vals[offset]);
        return;
    }
    out.push('[');
    let n = shape[0];
    let mut first = true;
    for k in 0..n {
        if summarize && n > 2 * EDGE && k == EDGE {
            out.push_str(if shape.len() > 1 { ",\n ...," } else { ", ..." });
            continue;
        }
        if summarize && n > 2 * EDGE && k > EDGE && k < n - EDGE {
            continue;
        }
        if !first {
            out.push(',');
            if shape.len() > 1 {
                out.push('\n');
                out.push_str(&" ".repeat(depth + 8));
            } else {
                out.push(' ');
            }
        }
        first = false;
        write_axis(
            out,
            vals,
            &shape[1..],
            &st[1..],
            offset + k * st[0],
            depth + 1,
            summarize,
        );
    }
    out.push(']');
}

impl fmt::Display for Tensor {
    /// The values (realizing the tensor first); where they cannot be had (no device, a value
    /// being traced by a transform, the browser, which cannot block) the error, never a panic.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = match self.try_to_f32_vec() {
            Ok(raw) => raw,
            Err(e) => {
                return write!(
                    f,
                    "tensor(<values unavailable: {e}>, shape={:?}, dtype={})",
                    self.shape(),
                    self.dtype()
                );
            }
        };
        let vals: Vec<String> = raw
            .into_iter()
            .map(|v| fmt_value(v, self.dtype()))
            .collect();
        let mut body = String::new();
        let summarize = self.numel() > SUMMARIZE_ABOVE;
        write_axis(
            &mut body,
            &vals,
            self.shape(),
            &strides(self.shape()),
            0,
            0,
            summarize,
        );
        write!(
            f,
            "tensor({body}, shape={:?}, dtype={})",
            self.shape(),
            self.dtype()
        )
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
