//! WGSL text helpers: literals and scalar slots of each dtype, loads and stores, index
//! arithmetic, workgroup grids, and the shared helpers of `common.wgsl` a kernel calls.

use crate::base::dtype::{DType, strides};
use crate::base::error::{Error, Result};
use crate::base::limits::Limits;
use crate::kernel::templates;

/// The helpers of `common.wgsl` that `code` calls, directly or through each other (every
/// helper in every kernel would only lengthen shader compilation).
pub(crate) fn helpers_called(code: &str) -> String {
    static HELPERS: std::sync::LazyLock<Vec<(String, String)>> = std::sync::LazyLock::new(|| {
        // Top-level blocks: comment lines, then `fn name(...) { ... }` closed by `}` in column 0.
        let mut blocks = vec![];
        let mut text = String::new();
        for line in templates::COMMON.lines() {
            text.push_str(line);
            text.push('\n');
            if line == "}" {
                let name = text
                    .lines()
                    .find_map(|l| l.strip_prefix("fn "))
                    .and_then(|l| l.split('(').next())
                    .unwrap_or_default()
                    .to_string();
                blocks.push((format!("{name}("), std::mem::take(&mut text)));
            }
        }
        blocks
    });
    let mut used = vec![false; HELPERS.len()];
    let mut search = code.to_string();
    loop {
        let mut grew = false;
        for (k, (call, text)) in HELPERS.iter().enumerate() {
            if !used[k] && search.contains(call.as_str()) {
                used[k] = true;
                search.push_str(text);
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    HELPERS
        .iter()
        .zip(used)
        .filter(|(_, u)| *u)
        .map(|((_, text), _)| format!("{text}\n"))
        .collect()
}

/// The expression reading scalar `bits` from a new slot of a kernel's uniform block. Slots are
/// never shared by value: the kernel's text must depend on the graph only, so that changed
/// values reuse its pipeline.
pub(crate) fn param_expr(params: &mut Vec<u32>, bits: u32) -> String {
    params.push(bits);
    let k = params.len() - 1;
    format!("params[{}][{}]", k / 4, k % 4)
}

/// The bits a uniform slot holds for a scalar of `dtype` with value `v`.
pub(crate) fn scalar_bits(v: f64, dtype: DType) -> u32 {
    match dtype {
        DType::F32 | DType::F16 => (v as f32).to_bits(),
        DType::I32 => (v as i64 as i32) as u32,
        DType::U32 => v as u64 as u32,
        DType::Bool => (v != 0.0) as u32,
    }
}

/// The kernel value of `dtype` from a uniform slot's `u32` expression.
pub(crate) fn scalar_read(slot: &str, dtype: DType) -> String {
    match dtype {
        DType::F32 => format!("bitcast<f32>({slot})"),
        DType::F16 => format!("f16(bitcast<f32>({slot}))"),
        DType::I32 => format!("bitcast<i32>({slot})"),
        DType::U32 => slot.to_string(),
        DType::Bool => format!("({slot} != 0u)"),
    }
}

/// The value read from a buffer element, as the dtype's kernel type.
pub(crate) fn load_expr(elem: &str, dtype: DType) -> String {
    match dtype {
        DType::Bool => format!("({elem} != 0u)"),
        _ => elem.to_string(),
    }
}

/// A kernel value converted for storing into a buffer of `dtype`.
pub(crate) fn store_expr(value: &str, dtype: DType) -> String {
    match dtype {
        DType::Bool => format!("select(0u, 1u, {value})"),
        _ => value.to_string(),
    }
}

/// A WGSL literal of `dtype` holding `v` exactly (f32 through its bits).
pub(crate) fn literal(v: f64, dtype: DType) -> String {
    match dtype {
        DType::F32 => {
            let f = v as f32;
            if f.is_finite() {
                format!("bitcast<f32>({}u)", f.to_bits())
            } else {
                format!(
                    "bitcast<f32>(select({}u, 0u, i == 0xffffffffu))",
                    f.to_bits()
                )
            }
        }
        DType::F16 => format!("f16({})", literal(v, DType::F32)),
        DType::I32 => format!("i32({})", v as i64 as i32),
        DType::U32 => format!("{}u", v as u64 as u32),
        DType::Bool => (if v != 0.0 { "true" } else { "false" }).to_string(),
    }
}

/// Code that splits flat index `var` of `shape` into per-axis indices `{prefix}0..`. (An axis
/// of size 0 divides by 1: such code never runs, but must still be valid WGSL.)
pub(crate) fn decompose(shape: &[usize], var: &str, prefix: &str) -> String {
    let mut s = format!("    var {prefix}r = {var};\n");
    for k in (0..shape.len()).rev() {
        if k == 0 {
            s += &format!("    let {prefix}{k} = {prefix}r;\n");
        } else {
            let d = shape[k].max(1);
            s += &format!(
                "    let {prefix}{k} = {prefix}r % {d}u;\n    {prefix}r = {prefix}r / {d}u;\n"
            );
        }
    }
    s
}

/// The flat row-major index of per-axis index expressions in `shape`.
pub(crate) fn compose(idx: &[String], shape: &[usize]) -> String {
    let st = strides(shape);
    let terms: Vec<String> = idx
        .iter()
        .zip(&st)
        .zip(shape)
        .filter(|(_, d)| **d != 1)
        .map(|((e, s), _)| {
            if *s == 1 {
                format!("({e})")
            } else {
                format!("({e}) * {s}u")
            }
        })
        .collect();
    if terms.is_empty() {
        "0u".into()
    } else {
        terms.join(" + ")
    }
}

/// Workgroup grid for `threads` invocations of a `per_group`-wide kernel, folded into 2-D.
pub(crate) fn grid_1d(threads: usize, per_group: usize, limits: &Limits) -> Result<[u32; 3]> {
    let groups = threads.div_ceil(per_group).max(1);
    let max = limits.max_workgroups.max(1) as usize;
    let x = groups.min(max);
    let y = groups.div_ceil(x);
    if y > max {
        return Err(Error::TooLarge {
            op: "kernel",
            msg: format!("{threads} invocations need more than {max}×{max} workgroups"),
        });
    }
    Ok([x as u32, y as u32, 1])
}
