//! Matrix multiplication: the primitive multiplies `[..., M, K]` by `[..., K, N]` with equal
//! batch axes; the public `matmul` adds NumPy's 1-D and batch-broadcasting rules on top.
//! Kernel: `shaders/matmul.wgsl` (tiled, register-blocked); transposes and broadcasts of
//! the operands are folded into its loads, never copied. Bilinear rules.

use super::{Op, Primitive};
use crate::dtype::{DType, broadcast_shapes, numel};
use crate::error::{Result, dtype_err, or_panic, shape_err};
use crate::runtime::codegen::{BufRef, Emitter, Kernel};
use crate::tensor::Tensor;
use crate::transforms::vmap::with_batch;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};

const MATMUL_WGSL: &str = include_str!("../../shaders/matmul.wgsl");
/// Workgroup shape of the direct kernel (`{{WG}}` in its template).
const DIRECT_WG_X: usize = 8;
const DIRECT_WG_Y: usize = 8;

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Matmul;

impl Primitive for Matmul {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn jvp(&self, x: &[Tensor], _: &Tensor, t: &[Option<Tensor>]) -> Option<Tensor> {
        let left = t[0].as_ref().map(|ta| mm(ta, &x[1]));
        let right = t[1].as_ref().map(|tb| mm(&x[0], tb));
        super::binary::add_opt(left, right)
    }
    fn vjp(&self, x: &[Tensor], _: &Tensor, ct: &Tensor, needs: &[bool]) -> Vec<Option<Tensor>> {
        vec![
            needs[0].then(|| mm(ct, &x[1].mt())),
            needs[1].then(|| mm(&x[0].mt(), ct)),
        ]
    }
    fn batch(&self, x: &[Tensor], _: &Tensor, batched: &[bool], size: usize) -> Tensor {
        let (a, b) = (&x[0], &x[1]);
        // One matrix against a batch: fold the batch into the rows of A or the columns of B,
        // one bigger product instead of broadcasting the unbatched operand `size` times.
        match (batched[0], batched[1]) {
            (true, false) if b.rank() == 2 => {
                let r = a.rank();
                let rows: usize = a.shape()[..r - 1].iter().product();
                let y = mm(&a.reshape([rows, a.shape()[r - 1]]), b);
                let mut shape = a.shape().to_vec();
                shape[r - 1] = b.shape()[1];
                y.reshape(shape)
            }
            (false, true) if a.rank() == 2 && b.rank() == 3 => {
                let (k, n) = (b.shape()[1], b.shape()[2]);
                let cols = b.moveaxis(0, 1).reshape([k, size * n]);
                mm(a, &cols).reshape([a.shape()[0], size, n]).moveaxis(1, 0)
            }
            _ => mm(
                &with_batch(a, batched[0], size),
                &with_batch(b, batched[1], size),
            ),
        }
    }
    fn emit(&self, _: &Tensor, _: &[String], _: &mut Emitter) -> String {
        unreachable!("matmul is a kernel root")
    }
}

fn mm(a: &Tensor, b: &Tensor) -> Tensor {
    or_panic(matmul_p(a, b))
}

impl Matmul {
    pub(crate) fn kernels(
        &self,
        node: &Tensor,
        computed: &HashMap<u64, BufRef>,
        out: BufRef,
    ) -> (Vec<Kernel>, Vec<Tensor>) {
        let ins = node.inputs();
        let (a, b) = (&ins[0], &ins[1]);
        let r = a.rank();
        let (m, k, n) = (a.shape()[r - 2], a.shape()[r - 1], b.shape()[r - 1]);
        let batch = numel(&a.shape()[..r - 2]);
        let mut e = Emitter::new(computed);
        let va = e.value_fn(a);
        let vb = e.value_fn(b);
        let f32_of = |v: String, d: DType| {
            if d == DType::F32 {
                v
            } else {
                format!("f32({v})")
            }
        };
        e.push_fn(format!(
            "fn load_a(b: u32, m: u32, k: u32) -> f32 {{\n    return {};\n}}",
            f32_of(format!("{va}(b * {}u + m * {k}u + k)", m * k), a.dtype())
        ));
        e.push_fn(format!(
            "fn load_b(b: u32, k: u32, n: u32) -> f32 {{\n    return {};\n}}",
            f32_of(format!("{vb}(b * {}u + k * {n}u + n)", k * n), b.dtype())
        ));
        let direct = use_direct_kernel();
        // Rows per invocation of the direct kernel: more rows reuse each read of B more (32
        // measured best on lavapipe for 256..1024), fewer waste less on short matrices.
        let rows = (m.next_power_of_two() / DIRECT_WG_Y).clamp(4, 32);
        let mut variants = MATMUL_WGSL.split("//--- direct ---");
        let (tiled, plain) = (variants.next().unwrap_or(""), variants.next().unwrap_or(""));
        if direct {
            // vec4 reads straight from the buffer when the operand is one (contiguous, f32,
            // rows a multiple of 4); else four scalar reads through whatever was fused.
            let a4 = match e.buffer_of(a) {
                Some(buf) if a.dtype() == DType::F32 && k % 4 == 0 => {
                    let q = e.bind_vec4(buf);
                    format!("b{q}[(b * {}u + m * {k}u + k) / 4u]", m * k)
                }
                _ => "vec4<f32>(load_a(b, m, k), load_a(b, m, k + 1u), load_a(b, m, k + 2u), load_a(b, m, k + 3u))".into(),
            };
            e.push_fn(format!(
                "fn load_a4(b: u32, m: u32, k: u32) -> vec4<f32> {{\n    return {a4};\n}}"
            ));
            let b4 = match e.buffer_of(b) {
                Some(buf) if b.dtype() == DType::F32 && n % 4 == 0 => {
                    let q = e.bind_vec4(buf);
                    format!("b{q}[(b * {}u + k * {n}u + n) / 4u]", k * n)
                }
                _ => format!(
                    "vec4<f32>(load_b(b, k, n), load_b(b, k, min(n + 1u, {l}u)), load_b(b, k, min(n + 2u, {l}u)), load_b(b, k, min(n + 3u, {l}u)))",
                    l = n - 1
                ),
            };
            e.push_fn(format!(
                "fn load_b4(b: u32, k: u32, n: u32) -> vec4<f32> {{\n    return {b4};\n}}"
            ));
        }
        let store = if node.dtype() == DType::F32 {
            "v[c]".to_string()
        } else {
            format!("{}(v[c])", node.dtype().wgsl())
        };
        let source = e
            .fill(if direct { plain } else { tiled }, node.dtype())
            .replace("{{M}}", &m.to_string())
            .replace("{{N}}", &n.to_string())
            .replace("{{K}}", &k.to_string())
            .replace("{{STORE}}", &store)
            .replace("{{WG}}", &format!("{DIRECT_WG_X}, {DIRECT_WG_Y}"))
            .replace("{{ROW_DECLS}}", &row_lines(rows, |j| {
                format!("    let r{j} = min(row0 + {j}u, M - 1u);\n    var acc{j} = vec4<f32>(0.0);")
            }))
            .replace("{{STEP4}}", &row_lines(rows, |j| {
                format!(
                    "        let a{j} = load_a4(batch, r{j}, k);\n        acc{j} = fma(vec4<f32>(a{j}.x), b0, \
                     fma(vec4<f32>(a{j}.y), b1, fma(vec4<f32>(a{j}.z), b2, fma(vec4<f32>(a{j}.w), b3, acc{j}))));"
                )
            }))
            .replace("{{STEP1}}", &row_lines(rows, |j| format!("        acc{j} = fma(vec4<f32>(load_a(batch, r{j}, k)), b, acc{j});")))
            .replace("{{STORES}}", &row_lines(rows, |j| format!("    store_row(batch, row0 + {j}u, col0, acc{j});")))
            .replace("{{ROWS}}", &rows.to_string());
        // Outputs per workgroup (columns, rows): the direct kernel's 64×1 invocations take 4×4
        // blocks side by side; the tiled kernel's 16×16 take 64×64.
        let (tile_n, tile_m) = if direct {
            (DIRECT_WG_X * 4, DIRECT_WG_Y * rows)
        } else {
            (64, 64)
        };
        let kernel = Kernel {
            source,
            inputs: e.inputs(),
            out,
            out_bytes: (batch * m * n * node.dtype().size()) as u64,
            groups: [
                n.div_ceil(tile_n) as u32,
                m.div_ceil(tile_m) as u32,
                batch as u32,
            ],
            label: "matmul".into(),
        };
        (vec![kernel], e.inlined)
    }
}

/// One generated line (or group of lines) per row of the direct kernel's block.
fn row_lines(rows: usize, line: impl Fn(usize) -> String) -> String {
    (0..rows).map(line).collect::<Vec<_>>().join("\n")
}

/// The matmul kernel in use (see [`set_matmul_kernel`]).
///
/// ```
/// assert_eq!(wgrad::MatmulKernel::Auto, wgrad::MatmulKernel::default());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatmulKernel {
    /// Tiled with workgroup memory on GPUs, barrier-free vec4 on CPU adapters (the default;
    /// `WGRAD_MATMUL=tiled|direct` in the environment overrides it).
    #[default]
    Auto,
    /// 64×64 tiles through workgroup memory, 4×4 register blocks.
    Tiled,
    /// No workgroup memory: 4×4 blocks from vec4 reads (fast on CPU adapters).
    Direct,
}

static MATMUL_KERNEL: AtomicU8 = AtomicU8::new(0);

/// Chooses the matmul kernel for the kernels generated from now on (tests use it to cover
/// both variants on one adapter).
///
/// ```
/// wgrad::set_matmul_kernel(wgrad::MatmulKernel::Tiled);
/// let c = wgrad::Tensor::eye(3).matmul(&wgrad::Tensor::ones([3, 2]));
/// assert_eq!(c.to_vec::<f32>(), vec![1.0; 6]);
/// wgrad::set_matmul_kernel(wgrad::MatmulKernel::Auto);
/// ```
pub fn set_matmul_kernel(k: MatmulKernel) {
    MATMUL_KERNEL.store(k as u8, Ordering::Relaxed);
}

/// Whether the matmul kernel in use wants its operands in buffers of their own (the CPU
/// kernel's vec4 reads) rather than fused producers.
pub(crate) fn wants_buffers() -> bool {
    use_direct_kernel()
}

fn use_direct_kernel() -> bool {
    match MATMUL_KERNEL.load(Ordering::Relaxed) {
        1 => return false,
        2 => return true,
        _ => {}
    }
    match std::env::var("WGRAD_MATMUL").as_deref() {
        Ok("direct") => true,
        Ok("tiled") => false,
        _ => crate::runtime::device::gpu_or_panic().info.device_type == "Cpu",
    }
}

pub(crate) fn matmul_p(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let r = a.rank();
    if !a.dtype().is_float() || a.dtype() != b.dtype() {
        return dtype_err(
            "matmul",
            format!(
                "needs two float tensors of one dtype, got {} and {}",
                a.dtype(),
                b.dtype()
            ),
        );
    }
    let ok = r >= 2
        && b.rank() == r
        && a.shape()[..r - 2] == b.shape()[..r - 2]
        && a.shape()[r - 1] == b.shape()[r - 2];
    if !ok {
        return shape_err(
            "matmul",
            format!("shapes {:?} and {:?} do not multiply", a.shape(), b.shape()),
        );
    }
    let batch = numel(&a.shape()[..r - 2]);
    let max = crate::runtime::device::gpu()?
        .info
        .max_compute_workgroups_per_dimension as usize;
    if batch > max {
        return Err(crate::Error::TooLarge {
            op: "matmul",
            msg: format!("{batch} batched products exceed {max} per dispatch"),
        });
    }
    let mut shape = a.shape().to_vec();
    shape[r - 1] = b.shape()[r - 1];
    Tensor::from_op(
        Op::Matmul(Matmul),
        vec![a.clone(), b.clone()],
        shape,
        a.dtype(),
    )
}

impl Tensor {
    /// NumPy `matmul`: 2-D products, batched products with broadcast batch axes, and 1-D
    /// operands (a vector is promoted to a matrix and the added axis removed).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]);
    /// let b = Tensor::eye(2);
    /// assert_eq!(a.matmul(&b).to_vec::<f32>(), vec![1.0, 2.0, 3.0, 4.0]);
    /// ```
    #[track_caller]
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        or_panic(self.try_matmul(other))
    }
    /// Fallible [`Tensor::matmul`]: the error names both shapes.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let e = Tensor::zeros([2, 3]).try_matmul(&Tensor::zeros([4, 5])).unwrap_err();
    /// assert!(e.to_string().contains("[2, 3]") && e.to_string().contains("[4, 5]"));
    /// ```
    pub fn try_matmul(&self, other: &Tensor) -> Result<Tensor> {
        let (a, b) = (self, other);
        if a.rank() == 0 || b.rank() == 0 {
            return shape_err(
                "matmul",
                format!(
                    "operands must have rank >= 1, got {:?} and {:?}",
                    a.shape(),
                    b.shape()
                ),
            );
        }
        let a2 = if a.rank() == 1 {
            a.try_reshape([1, a.shape()[0]])?
        } else {
            a.clone()
        };
        let b2 = if b.rank() == 1 {
            b.try_reshape([b.shape()[0], 1])?
        } else {
            b.clone()
        };
        let (ra, rb) = (a2.rank(), b2.rank());
        if a2.shape()[ra - 1] != b2.shape()[rb - 2] {
            return shape_err(
                "matmul",
                format!(
                    "shapes {:?} and {:?}: inner dimensions {} and {} differ",
                    a.shape(),
                    b.shape(),
                    a2.shape()[ra - 1],
                    b2.shape()[rb - 2]
                ),
            );
        }
        let batch = broadcast_shapes("matmul", &a2.shape()[..ra - 2], &b2.shape()[..rb - 2])
            .map_err(|_| crate::Error::Shape {
                op: "matmul",
                msg: format!(
                    "batch axes of {:?} and {:?} cannot be broadcast together",
                    a.shape(),
                    b.shape()
                ),
            })?;
        let full = |x: &Tensor, r: usize| -> Result<Tensor> {
            let mut s = batch.clone();
            s.extend_from_slice(&x.shape()[r - 2..]);
            x.try_broadcast_to(s)
        };
        let mut y = matmul_p(&full(&a2, ra)?, &full(&b2, rb)?)?;
        let mut shape = y.shape().to_vec();
        if b.rank() == 1 {
            shape.pop();
        }
        if a.rank() == 1 {
            shape.remove(shape.len() - if b.rank() == 1 { 1 } else { 2 });
        }
        if shape != y.shape() {
            y = y.try_reshape(shape)?;
        }
        Ok(y)
    }
}
