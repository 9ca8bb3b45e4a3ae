//! Matrix multiplication: the primitive multiplies `[..., M, K]` by `[..., K, N]` with equal
//! batch axes; the public `matmul` adds NumPy's 1-D and batch-broadcasting rules on top.
//! Kernel: `shaders/matmul.wgsl` (tiled, register-blocked); transposes and broadcasts of
//! the operands are folded into its loads, never copied. Bilinear rules.

use crate::base::dtype::{DType, broadcast_shapes, numel};
use crate::base::error::{Result, dtype_err, or_panic, shape_err};
use crate::base::host::Host;
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::kernel::{Kernel, templates};
use crate::prim::Primitive;
use crate::prim::lower::{LowerCx, Lowered};
use crate::prim::with_batch;

/// Invocations per workgroup of the direct kernel.
const DIRECT_WG: usize = 64;

/// The direct kernel's blocking for an `m`-row product of `macs` multiply-adds: rows per
/// invocation (more rows reuse each read of B more: 32 measured best on lavapipe), and the
/// workgroup's shape (invocations along columns, along rows). A large product gets the rows
/// it has, up to 32, with fewer invocations along rows for a short matrix (a convolution's
/// 32 output channels: 1.5× faster than 4-row blocks); a small one keeps 8 × 8 invocations
/// of at most M/8 rows, since every unrolled row lengthens shader compilation, which is what
/// small products pay for.
fn direct_blocking(m: usize, macs: usize) -> (usize, usize, usize) {
    let p = m.next_power_of_two();
    if macs < 1 << 22 {
        return ((p / 8).clamp(4, 32), 8, 8);
    }
    let rows = p.clamp(4, 32);
    let wg_y = (p / rows).clamp(1, 8);
    (rows, DIRECT_WG / wg_y, wg_y)
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Matmul;

impl Primitive for Matmul {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn jvp(&self, x: &[Tensor], _: &Tensor, t: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        let left = t[0].as_ref().map(|ta| mm(ta, &x[1])).transpose()?;
        let right = t[1].as_ref().map(|tb| mm(&x[0], tb)).transpose()?;
        crate::prim::binary::add_opt(left, right)
    }
    fn vjp(
        &self,
        x: &[Tensor],
        _: &Tensor,
        ct: &Tensor,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![
            needs[0].then(|| mm(ct, &x[1].try_mt()?)).transpose()?,
            needs[1].then(|| mm(&x[0].try_mt()?, ct)).transpose()?,
        ])
    }
    fn batch(&self, x: &[Tensor], _: &Tensor, batched: &[bool], size: usize) -> Result<Tensor> {
        let (a, b) = (&x[0], &x[1]);
        // One matrix against a batch: fold the batch into the rows of A or the columns of B,
        // one bigger product instead of broadcasting the unbatched operand `size` times.
        match (batched[0], batched[1]) {
            (true, false) if b.rank() == 2 => {
                let r = a.rank();
                let rows: usize = a.shape()[..r - 1].iter().product();
                let y = matmul_p(&a.try_reshape([rows, a.shape()[r - 1]])?, b)?;
                let mut shape = a.shape().to_vec();
                shape[r - 1] = b.shape()[1];
                y.try_reshape(shape)
            }
            (false, true) if a.rank() == 2 && b.rank() == 3 => {
                let (k, n) = (b.shape()[1], b.shape()[2]);
                let cols = b.try_moveaxis(0, 1)?.try_reshape([k, size * n])?;
                matmul_p(a, &cols)?
                    .try_reshape([a.shape()[0], size, n])?
                    .try_moveaxis(1, 0)
            }
            _ => matmul_p(
                &with_batch(a, batched[0], size)?,
                &with_batch(b, batched[1], size)?,
            ),
        }
    }
    fn fusion(&self) -> Fusion {
        Fusion::KernelRoot { epilogue: true }
    }
    fn lower(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        self.kernels(node, cx).map(Lowered::Kernels)
    }
    fn reference(&self, node: &Tensor, x: &[Host]) -> Result<Host> {
        let r = node.rank();
        let (m, n) = (node.shape()[r - 2], node.shape()[r - 1]);
        let k = x[0].shape[r - 1];
        Ok(Host::from_fn(node.shape(), node.dtype(), |i| {
            let (batch, row, col) = (i / (m * n), i / n % m, i % n);
            let a = &x[0].data[(batch * m + row) * k..][..k];
            let b = &x[1].data[batch * k * n..];
            (0..k).map(|p| a[p] * b[p * n + col]).sum()
        }))
    }
}

fn mm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    matmul_p(a, b)
}

impl Matmul {
    fn kernels(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Vec<Kernel>> {
        let ins = node.inputs();
        let (a, b) = (&ins[0], &ins[1]);
        let r = a.rank();
        let (m, k, n) = (a.shape()[r - 2], a.shape()[r - 1], b.shape()[r - 1]);
        let batch = numel(&a.shape()[..r - 2]);
        let direct = cx.policy.direct_matmul(cx.limits.cpu);
        let (rows, wg_x, wg_y) = direct_blocking(m, batch * m * n * k);
        let mut e = cx.kernel();
        let mut kernels = vec![];
        if direct {
            // The CPU kernel reads vec4s straight from buffers: an f32 operand whose rows are
            // a multiple of 4 and that has no buffer yet gets one first, unless it is large and
            // read only once (A is read once per block of 4 columns, B once per block of rows):
            // a convolution's patches against few output channels stay fused (an implicit GEMM,
            // no copy of the patches). Small operands are always copied: inlining their
            // producers into the unrolled block only lengthens shader compilation.
            // A small operand that is only a remapping of a buffer (a transposed weight) is
            // read through the remapping instead: a copy would cost a kernel launch, more than
            // the scalar reads.
            let reads = [n.div_ceil(4), m.div_ceil(rows)];
            for ((x, inner), reads) in [(a, k), (b, n)].into_iter().zip(reads) {
                let small = x.numel() < 1 << 16;
                if x.dtype() == DType::F32
                    && inner % 4 == 0
                    && (reads > 1 || small)
                    && !(small && remaps_a_buffer(x, &e))
                    && e.buffer_of(x).is_none()
                {
                    let (buf, kernel) = cx.materialize(x)?;
                    e.provide(x, buf);
                    kernels.push(kernel);
                }
            }
        }
        // Both kernels read each element of an operand many times (the tiled one once per
        // 64 columns or rows, the direct one once per block): a producer computed in the loads
        // is recomputed as often. Index maps and a little arithmetic are cheaper so; a chain
        // with a transcendental (or, tiled, of many nodes) gets a kernel of its own first. It
        // also keeps shader compilers off their cliffs: SwiftShader took minutes on an
        // inverse error function inlined into the direct kernel's unrolled block.
        for x in [a, b] {
            if e.buffer_of(x).is_none() && !remaps_a_buffer(x, &e) {
                let (nodes, helpers) = e.fused_cost(x);
                if helpers || (!direct && nodes > 16) {
                    let (buf, kernel) = cx.materialize(x)?;
                    e.provide(x, buf);
                    kernels.push(kernel);
                }
            }
        }
        let va = e.value_fn(a)?;
        let vb = e.value_fn(b)?;
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
        e.const_u32("M", m)?;
        e.const_u32("N", n)?;
        e.const_u32("K", k)?;
        // What is stored: the product, or a fused elementwise consumer of it (an epilogue: a
        // bias, an activation, an update), which reads the product through `mm_acc`.
        let result = match cx.epilogue() {
            Some(r) => {
                e.provide_private(node, "mm_acc");
                e.push_fn("var<private> mm_acc: f32;".into());
                e.value_fn(r)?;
                e.note_inlined(r);
                r.clone()
            }
            None => node.clone(),
        };
        let store = match cx.epilogue() {
            Some(r) => {
                let vr = e.value_fn(r)?;
                format!(
                    "mm_acc = v;\n    return {};",
                    crate::kernel::wgsl::store_expr(&format!("{vr}(i)"), r.dtype())
                )
            }
            None if node.dtype() == DType::F32 => "return v;".to_string(),
            None => format!("return {}(v);", node.dtype().wgsl()),
        };
        e.push_fn(format!(
            "fn store_value(v: f32, i: u32) -> {} {{\n    {store}\n}}",
            result.dtype().wgsl_storage()
        ));
        if direct {
            // vec4 reads straight from the buffer when the operand is one (contiguous, f32,
            // rows a multiple of 4); else four scalar reads through whatever was fused.
            let a4 = match e.buffer_of(a) {
                Some(buf) if a.dtype() == DType::F32 && k % 4 == 0 => {
                    let q = e.bind_vec4(buf, a.numel());
                    e.read(q, &format!("(b * {}u + m * {k}u + k) / 4u", m * k))
                }
                _ => "vec4<f32>(load_a(b, m, k), load_a(b, m, k + 1u), load_a(b, m, k + 2u), load_a(b, m, k + 3u))".into(),
            };
            e.push_fn(format!(
                "fn load_a4(b: u32, m: u32, k: u32) -> vec4<f32> {{\n    return {a4};\n}}"
            ));
            let b4 = match e.buffer_of(b) {
                Some(buf) if b.dtype() == DType::F32 && n % 4 == 0 => {
                    let q = e.bind_vec4(buf, b.numel());
                    e.read(q, &format!("(b * {}u + k * {n}u + n) / 4u", k * n))
                }
                _ => format!(
                    "vec4<f32>(load_b(b, k, n), load_b(b, k, min(n + 1u, {l}u)), load_b(b, k, min(n + 2u, {l}u)), load_b(b, k, min(n + 3u, {l}u)))",
                    l = n - 1
                ),
            };
            e.push_fn(format!(
                "fn load_b4(b: u32, k: u32, n: u32) -> vec4<f32> {{\n    return {b4};\n}}"
            ));
            e.const_u32("ROWS", rows)?;
            e.const_u32("WG_X", wg_x)?;
            e.const_u32("WG_Y", wg_y)?;
            e.push_fn(direct_block(rows));
        }
        // Outputs per workgroup (columns, rows): the direct kernel's invocations take blocks
        // of 4 columns × `rows` rows; the tiled kernel's 16×16 take 64×64.
        let (tile_n, tile_m) = if direct {
            (wg_x * 4, wg_y * rows)
        } else {
            (64, 64)
        };
        e.note_inlined(node);
        let template = if direct {
            &templates::MATMUL_DIRECT
        } else {
            &templates::MATMUL_TILED
        };
        // One workgroup per (column block, row block, product), numbered flat and folded into
        // a 2-D grid: no dimension exceeds the device's limit, however wide or batched.
        let (cb, rb) = (n.div_ceil(tile_n), m.div_ceil(tile_m));
        let groups = cb * rb * batch;
        e.const_u32("CB", cb)?;
        e.const_u32("RB", rb)?;
        e.const_u32("GROUPS", groups)?;
        let grid = cx.grid(groups, 1)?;
        let label = if cx.epilogue().is_some() {
            "matmul+epilogue"
        } else {
            "matmul"
        };
        kernels.push(e.finish(
            template,
            label,
            cx.out(),
            result.dtype(),
            batch * m * n,
            grid,
        )?);
        Ok(kernels)
    }
}

/// Whether `x` is only index remappings (transposes, broadcasts, slices, views) of something
/// with a buffer.
fn remaps_a_buffer(x: &Tensor, e: &crate::prim::emit::Emitter) -> bool {
    let mut cur = x.clone();
    loop {
        if e.buffer_of(&cur).is_some() {
            return true;
        }
        match cur.op().fusion() {
            Fusion::IndexMap | Fusion::View if cur.inputs().len() == 1 => {
                cur = cur.inputs()[0].clone();
            }
            _ => return false,
        }
    }
}

/// The direct kernel's `mm_block`: `rows` accumulators, unrolled (a CPU adapter keeps them in
/// registers), each read of B serving every row of the block.
fn direct_block(rows: usize) -> String {
    let decls = row_lines(rows, |j| {
        format!("    let r{j} = min(row0 + {j}u, M - 1u);\n    var acc{j} = vec4<f32>(0.0);")
    });
    let step4 = row_lines(rows, |j| {
        format!(
            "        let a{j} = load_a4(batch, r{j}, k);\n        acc{j} = fma(vec4<f32>(a{j}.x), b0, \
             fma(vec4<f32>(a{j}.y), b1, fma(vec4<f32>(a{j}.z), b2, fma(vec4<f32>(a{j}.w), b3, acc{j}))));"
        )
    });
    let step1 = row_lines(rows, |j| {
        format!("        acc{j} = fma(vec4<f32>(load_a(batch, r{j}, k)), b, acc{j});")
    });
    let stores = row_lines(rows, |j| {
        format!("    store_row(batch, row0 + {j}u, col0, acc{j});")
    });
    format!(
        "// Rows past the edge repeat the last row; their results are not stored.\n\
         fn mm_block(batch: u32, row0: u32, col0: u32) {{\n{decls}\n    let k4 = K - K % 4u;\n    \
         for (var k = 0u; k < k4; k = k + 4u) {{\n        let b0 = load_b4(batch, k, col0);\n        \
         let b1 = load_b4(batch, k + 1u, col0);\n        let b2 = load_b4(batch, k + 2u, col0);\n        \
         let b3 = load_b4(batch, k + 3u, col0);\n{step4}\n    }}\n    \
         for (var k = k4; k < K; k = k + 1u) {{\n        let b = load_b4(batch, k, col0);\n{step1}\n    }}\n{stores}\n}}"
    )
}

/// One generated line (or group of lines) per row of the direct kernel's block.
fn row_lines(rows: usize, line: impl Fn(usize) -> String) -> String {
    (0..rows).map(line).collect::<Vec<_>>().join("\n")
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
    let k = a.shape()[r - 1];
    if k > MAX_K {
        return split_k(a, b);
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

/// The longest inner axis one matmul kernel sums. Software drivers stop an invocation's loops
/// after 65,535 iterations in all (a K of 300,000 lost a fifth of its terms); a longer K is
/// split into chunks, multiplied as one batched product, and the chunks' products summed.
pub(crate) const MAX_K: usize = 16_384;

/// `a · b` with a long inner axis: `[.., M, K]` and `[.., K, N]` as `c` chunks of `kc`
/// (zero-padded), `[.., c, M, kc] · [.., c, kc, N]` summed over the chunks.
fn split_k(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let r = a.rank();
    let (m, k, n) = (a.shape()[r - 2], a.shape()[r - 1], b.shape()[r - 1]);
    let c = k.div_ceil(MAX_K);
    let kc = k.div_ceil(c);
    let mut hi = vec![0; r];
    hi[r - 1] = c * kc - k;
    let mut sa = a.shape()[..r - 2].to_vec();
    sa.extend([m, c, kc]);
    let mut perm: Vec<usize> = (0..r - 2).collect();
    perm.extend([r - 1, r - 2, r]);
    let a3 = a
        .try_pad(vec![0; r], &hi)?
        .try_reshape(sa)?
        .try_transpose(perm)?;
    hi.swap(r - 2, r - 1);
    let mut sb = b.shape()[..r - 2].to_vec();
    sb.extend([c, kc, n]);
    let b3 = b.try_pad(vec![0; r], &hi)?.try_reshape(sb)?;
    matmul_p(&a3, &b3)?.try_sum_axes((r - 2) as isize)
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
