//! Sources: nodes without operands — uploaded data, constant fills, index ramps and counter-based
//! random numbers. The fills are computed inside whatever kernel reads them (no buffer).

use crate::base::dtype::DType;
use crate::base::error::internal;
use crate::base::error::{Result, or_panic};
use crate::base::host::{Host, unravel};
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::kernel::wgsl::{decompose, scalar_bits, scalar_read};
use crate::prim::Primitive;
use crate::prim::lower::{LowerCx, Lowered};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Source {
    /// Values uploaded from the host (always realized).
    Data,
    /// Every element equal to the value.
    Full(f64),
    /// The index along one axis.
    Iota(usize),
    /// Uniform in [0, 1) from Threefry-2x32 keyed by the two 32-bit halves of the key (high
    /// word first), counting flat indices: `jax.random.uniform`'s bits.
    Uniform(u64),
}

impl Source {
    pub(crate) fn describe(&self) -> String {
        match self {
            Source::Data => "data".into(),
            Source::Full(v) => format!("full[{v}]"),
            Source::Iota(a) => format!("iota[axis={a}]"),
            Source::Uniform(s) => format!("uniform[seed={s}]"),
        }
    }
}

impl Primitive for Source {
    fn name(&self) -> &'static str {
        match self {
            Source::Data => "data",
            Source::Full(_) => "full",
            Source::Iota(_) => "iota",
            Source::Uniform(_) => "uniform",
        }
    }
    fn jvp(&self, _: &[Tensor], _: &Tensor, _: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        Ok(None)
    }
    fn vjp(&self, _: &[Tensor], _: &Tensor, _: &Tensor, _: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![])
    }
    fn batch(&self, _: &[Tensor], out: &Tensor, _: &[bool], _: usize) -> Result<Tensor> {
        Ok(out.clone()) // no operands, so never batched
    }
    fn fusion(&self) -> Fusion {
        match self {
            // Random numbers are ~50 integer operations each (Threefry): computed once into a
            // buffer, not again in every consumer (and long generator chains inlined into
            // consumers send lavapipe's shader compiler into a hang).
            Source::Uniform(_) => Fusion::KernelRoot { epilogue: false },
            _ => Fusion::Inline,
        }
    }
    fn reference(&self, node: &Tensor, _: &[Host]) -> Result<Host> {
        let shape = node.shape();
        Ok(match *self {
            Source::Data => {
                return Err(internal(format!(
                    "data of shape {shape:?} reached the reference interpreter without its value"
                )));
            }
            Source::Full(v) => Host::from_fn(shape, node.dtype(), |_| v),
            Source::Iota(axis) => {
                Host::from_fn(shape, node.dtype(), |i| unravel(i, shape)[axis] as f64)
            }
            Source::Uniform(seed) => Host::from_fn(shape, node.dtype(), |i| {
                let key = [(seed >> 32) as u32, seed as u32];
                let t = crate::base::special::threefry2x32(key, [0, i as u32]);
                f32::from_bits(((t[0] ^ t[1]) >> 9) | 0x3f80_0000) as f64 - 1.0
            }),
        })
    }
    fn lower(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        if let Source::Uniform(seed) = self {
            let kernel = cx.pointwise_kernel(node, |_, e| {
                let hi = e.value_param(node, 0, (*seed >> 32) as u32);
                let lo = e.value_param(node, 1, *seed as u32);
                format!("    return wg_uniform({hi}, {lo}, i);")
            })?;
            return Ok(Lowered::Kernels(vec![kernel]));
        }
        Ok(Lowered::Body(match self {
            Source::Data => {
                return Err(internal(format!(
                    "data of shape {:?} reached a kernel before its upload",
                    node.shape()
                )));
            }
            Source::Full(v) => {
                // The value is data (the kernel's uniform block), not a literal.
                let slot = cx.value_param(node, 0, scalar_bits(*v, node.dtype()));
                format!("    return {};", scalar_read(&slot, node.dtype()))
            }
            Source::Iota(axis) => {
                let d = node.dtype();
                let idx = format!("d{axis}");
                let v = if d == DType::F16 {
                    format!("f16(f32({idx}))")
                } else {
                    format!("{}({idx})", d.wgsl())
                };
                format!("{}    return {v};", decompose(node.shape(), "i", "d"))
            }
            Source::Uniform(_) => {
                return Err(internal("random numbers are a kernel root".into()));
            }
        }))
    }
}

fn source(src: Source, shape: &[usize], dtype: DType) -> Result<Tensor> {
    if dtype == DType::F16 {
        crate::prim::logic::require_f16(src.name())?;
    }
    Tensor::from_op(Op::Source(src), vec![], shape.to_vec(), dtype)
}

impl Tensor {
    /// A 0-d `f32` tensor (a constant: it costs no buffer and no upload).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(Tensor::scalar(3.0).shape(), &[] as &[usize]);
    /// ```
    pub fn scalar(value: f32) -> Tensor {
        Tensor::full([], value)
    }
    /// A tensor of `shape` with every element `value` (`f32`).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(Tensor::full([2], 7.0).to_vec::<f32>(), vec![7.0, 7.0]);
    /// ```
    #[track_caller]
    pub fn full(shape: impl AsRef<[usize]>, value: f32) -> Tensor {
        or_panic(Tensor::try_full(shape.as_ref(), value as f64, DType::F32))
    }
    /// A tensor of `shape` and `dtype` with every element `value`.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let t = Tensor::try_full([2], 3.0, DType::I32).unwrap();
    /// assert_eq!(t.to_vec::<i32>(), vec![3, 3]);
    /// ```
    pub fn try_full(shape: impl AsRef<[usize]>, value: f64, dtype: DType) -> Result<Tensor> {
        source(Source::Full(value), shape.as_ref(), dtype)
    }
    /// Zeros (`f32`).
    ///
    /// ```
    /// assert_eq!(wgrad::Tensor::zeros([2]).to_vec::<f32>(), vec![0.0, 0.0]);
    /// ```
    pub fn zeros(shape: impl AsRef<[usize]>) -> Tensor {
        Tensor::full(shape, 0.0)
    }
    /// Ones (`f32`).
    ///
    /// ```
    /// assert_eq!(wgrad::Tensor::ones([2]).to_vec::<f32>(), vec![1.0, 1.0]);
    /// ```
    pub fn ones(shape: impl AsRef<[usize]>) -> Tensor {
        Tensor::full(shape, 1.0)
    }
    /// Zeros with this tensor's shape and dtype.
    ///
    /// ```
    /// let x = wgrad::Tensor::ones([3]);
    /// assert_eq!(x.zeros_like().to_vec::<f32>(), vec![0.0; 3]);
    /// ```
    pub fn zeros_like(&self) -> Tensor {
        or_panic(Tensor::try_full(self.shape(), 0.0, self.dtype()))
    }
    /// Ones with this tensor's shape and dtype.
    ///
    /// ```
    /// let x = wgrad::Tensor::zeros([3]);
    /// assert_eq!(x.ones_like().to_vec::<f32>(), vec![1.0; 3]);
    /// ```
    pub fn ones_like(&self) -> Tensor {
        or_panic(Tensor::try_full(self.shape(), 1.0, self.dtype()))
    }
    /// `0, 1, …, n-1` as `f32`.
    ///
    /// ```
    /// assert_eq!(wgrad::Tensor::arange(3).to_vec::<f32>(), vec![0.0, 1.0, 2.0]);
    /// ```
    pub fn arange(n: usize) -> Tensor {
        or_panic(Tensor::iota([n], 0, DType::F32))
    }
    /// The index along `axis` at every position of `shape`, as `dtype`.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let t = Tensor::iota([2, 2], 1, DType::I32).unwrap();
    /// assert_eq!(t.to_vec::<i32>(), vec![0, 1, 0, 1]);
    /// ```
    pub fn iota(shape: impl AsRef<[usize]>, axis: usize, dtype: DType) -> Result<Tensor> {
        let shape = shape.as_ref();
        if axis >= shape.len() {
            return crate::base::error::axis_err(
                "iota",
                format!("axis {axis} is out of range for shape {shape:?}"),
            );
        }
        source(Source::Iota(axis), shape, dtype)
    }
    /// The `n × n` identity matrix (`f32`).
    ///
    /// ```
    /// assert_eq!(wgrad::Tensor::eye(2).to_vec::<f32>(), vec![1.0, 0.0, 0.0, 1.0]);
    /// ```
    pub fn eye(n: usize) -> Tensor {
        let r = or_panic(Tensor::iota([n, n], 0, DType::I32));
        let c = or_panic(Tensor::iota([n, n], 1, DType::I32));
        r.equal(&c).cast(DType::F32)
    }
    /// Uniform bits in [0, 1) of the stream keyed `key` (its two words, high first).
    pub(crate) fn try_uniform_bits(shape: &[usize], key: [u32; 2]) -> Result<Tensor> {
        let packed = ((key[0] as u64) << 32) | key[1] as u64;
        source(Source::Uniform(packed), shape, DType::F32)
    }
}
