//! Every primitive's rules, as a table (JAX's GradTestSpec): JVP against central finite
//! differences, VJP against JVP (⟨ct, J·t⟩ = ⟨Jᵀ·ct, t⟩), second order the same way, and vmap
//! against a loop over slices — two tests per row (`cargo test --test suite sin` runs the
//! sine's).

use crate::common;

use wgrad::prelude::*;

pub(super) type F = fn(&[Tensor]) -> Tensor;

/// Inputs: uniform in [lo, hi) with a seed.
pub(super) fn input(shape: &[usize], lo: f32, hi: f32, seed: u64) -> Tensor {
    let t = Tensor::rand(shape, seed) * (hi - lo) + lo;
    t.realize();
    t
}

pub(super) struct Spec {
    pub(super) name: &'static str,
    f: F,
    args: Vec<(Vec<usize>, f32, f32)>,
}

pub(super) fn spec(name: &'static str, f: F, args: &[(&[usize], f32, f32)]) -> Spec {
    Spec {
        name,
        f,
        args: args
            .iter()
            .map(|(s, lo, hi)| (s.to_vec(), *lo, *hi))
            .collect(),
    }
}

/// ±1 in a fixed pattern (3 × 4).
pub(super) fn signs() -> Tensor {
    Tensor::from_vec(
        vec![
            1.0f32, -1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0, 1.0, 1.0, -1.0, -1.0,
        ],
        [3, 4],
    )
}

/// Distinct offsets, a different argmax in every row and column (3 × 4).
pub(super) fn offsets() -> Tensor {
    Tensor::from_vec(
        vec![
            0.0f32, 1.5, 0.5, 1.0, 1.5, 0.0, 1.0, 0.5, 0.5, 1.0, 2.0, 0.0,
        ],
        [3, 4],
    )
}

/// Distinct values `step` apart in a scrambled order (no ties, so max/min/argmax have one
/// winner with a margin).
pub(super) fn distinct(shape: &[usize], step: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|k| ((k * 7919) % n) as f32 * step).collect();
    Tensor::from_vec(v, shape)
}

fn table() -> Vec<Spec> {
    let m = &[3usize, 4][..];
    vec![
        spec("neg", |a| a[0].neg(), &[(m, -2.0, 2.0)]),
        spec("exp", |a| a[0].exp(), &[(m, -2.0, 2.0)]),
        spec("log", |a| a[0].log(), &[(m, 0.5, 2.0)]),
        spec("sin", |a| a[0].sin(), &[(m, -2.0, 2.0)]),
        spec("cos", |a| a[0].cos(), &[(m, -2.0, 2.0)]),
        spec("tanh", |a| a[0].tanh(), &[(m, -2.0, 2.0)]),
        spec("sqrt", |a| a[0].sqrt(), &[(m, 0.5, 2.0)]),
        spec("abs", |a| a[0].abs(), &[(m, 0.2, 2.0)]),
        spec("sigmoid", |a| a[0].sigmoid(), &[(m, -3.0, 3.0)]),
        spec("sign", |a| a[0].sign() * &a[0], &[(m, 0.2, 2.0)]),
        spec(
            "add",
            |a| &a[0] + &a[1],
            &[(m, -1.0, 1.0), (&[4], -1.0, 1.0)],
        ),
        spec(
            "sub",
            |a| &a[0] - &a[1],
            &[(&[3, 1], -1.0, 1.0), (m, -1.0, 1.0)],
        ),
        spec("mul", |a| &a[0] * &a[1], &[(m, -1.0, 1.0), (m, -1.0, 1.0)]),
        spec(
            "div",
            |a| &a[0] / &a[1],
            &[(m, -1.0, 1.0), (&[4], 0.5, 2.0)],
        ),
        spec("pow", |a| a[0].pow(&a[1]), &[(m, 0.5, 2.0), (m, -1.5, 1.5)]),
        spec(
            "maximum",
            |a| a[0].maximum(&a[1]),
            &[(m, -1.0, 0.0), (m, 0.1, 1.0)],
        ),
        spec(
            "minimum",
            |a| a[0].minimum(&a[1]),
            &[(m, -1.0, 0.0), (m, 0.1, 1.0)],
        ),
        // Inputs keep a margin from every branch point, so finite differences see no jump.
        spec(
            "where",
            |a| {
                let signed = &a[1] * signs();
                where_(
                    &signed.greater(&Tensor::scalar(0.0)),
                    &(&a[0] * &signed),
                    &signed.sin(),
                )
            },
            &[(m, -1.0, 1.0), (m, 0.3, 1.0)],
        ),
        spec("sum", |a| a[0].square().sum_axes([0]), &[(m, -1.0, 1.0)]),
        spec(
            "sum_keepdims",
            |a| (a[0].sum_keepdim(-1) * &a[0]).sin(),
            &[(m, -1.0, 1.0)],
        ),
        spec(
            "max",
            |a| {
                let x = &a[0] + offsets();
                x.max_axes(1) * x.sum_axes(1) + x.max_axes(0).sum_all()
            },
            &[(m, 0.0, 0.2)],
        ),
        spec("reshape", |a| a[0].reshape([2, 6]).sin(), &[(m, -1.0, 1.0)]),
        spec(
            "broadcast_to",
            |a| a[0].broadcast_to([2, 3, 4]) * a[0].sum_all(),
            &[(&[3, 1], -1.0, 1.0)],
        ),
        spec(
            "transpose",
            |a| a[0].transpose([1, 0]).matmul(&a[0]),
            &[(m, -1.0, 1.0)],
        ),
        spec(
            "slice",
            |a| a[0].slice([1, 1], [3, 3]).square(),
            &[(m, -1.0, 1.0)],
        ),
        spec("pad", |a| a[0].pad([1, 0], [0, 2]).exp(), &[(m, -1.0, 1.0)]),
        spec(
            "concat",
            |a| concat(&[a[0].square(), a[1].clone(), a[0].clone()], 1),
            &[(m, -1.0, 1.0), (&[3, 2], -1.0, 1.0)],
        ),
        spec(
            "matmul",
            |a| a[0].matmul(&a[1]).tanh(),
            &[(m, -1.0, 1.0), (&[4, 2], -1.0, 1.0)],
        ),
        spec(
            "matmul_batched",
            |a| a[0].matmul(&a[1]),
            &[(&[2, 3, 4], -1.0, 1.0), (&[4, 5], -1.0, 1.0)],
        ),
        spec("softmax", |a| a[0].softmax(-1), &[(m, -2.0, 2.0)]),
        spec("logsumexp", |a| a[0].logsumexp(0), &[(m, -2.0, 2.0)]),
        spec(
            "cast",
            |a| a[0].cast(DType::F32) * a[0].greater(&Tensor::scalar(0.0)).cast(DType::F32),
            &[(m, 0.1, 1.0)],
        ),
        // Set 2: elementwise
        spec("log1p", |a| a[0].log1p(), &[(m, -0.5, 2.0)]),
        spec("expm1", |a| a[0].expm1(), &[(m, -2.0, 2.0)]),
        spec("erf", |a| a[0].erf(), &[(m, -2.0, 2.0)]),
        spec("erfc", |a| a[0].erfc(), &[(m, -2.0, 3.0)]),
        spec("erfinv", |a| a[0].erfinv(), &[(m, -0.8, 0.8)]),
        spec("gelu", |a| a[0].gelu(), &[(m, -3.0, 3.0)]),
        spec("gelu_tanh", |a| a[0].gelu_tanh(), &[(m, -3.0, 3.0)]),
        spec("silu", |a| a[0].silu(), &[(m, -3.0, 3.0)]),
        spec("softplus", |a| a[0].softplus(), &[(m, -3.0, 3.0)]),
        spec("rsqrt", |a| a[0].rsqrt(), &[(m, 0.5, 2.0)]),
        spec(
            "floor_round",
            |a| (&a[0] + distinct(&[3, 4], 1.0)).floor() * &a[0] + (&a[0] * 2.0).round().exp(),
            &[(m, 0.1, 0.2)],
        ),
        spec(
            "clip",
            |a| (&a[0] + (signs() * 1.5)).clip(-1.0, 1.0) * (&a[0] * 3.0).clip(-1.0, 1.0),
            &[(m, 0.05, 0.3)],
        ),
        // reductions and scans
        spec(
            "min",
            |a| (&a[0] + distinct(&[3, 4], 0.3)).min_axes(1) * a[0].sum_axes(1),
            &[(m, 0.0, 0.2)],
        ),
        spec("prod", |a| a[0].prod_axes(0), &[(m, 0.5, 1.5)]),
        spec("prod_all", |a| a[0].prod_keepdim(None), &[(m, 0.5, 1.5)]),
        spec(
            "var_std",
            |a| a[0].var_keepdim(1) + a[0].std_keepdim(0),
            &[(m, -1.0, 1.0)],
        ),
        spec("cumsum", |a| a[0].cumsum(-1).sin(), &[(m, -1.0, 1.0)]),
        spec(
            "cumsum_blocked",
            |a| a[0].cumsum(1).sin(),
            &[(&[2, 150], -0.2, 0.2)],
        ),
        spec("log_softmax", |a| a[0].log_softmax(0), &[(m, -2.0, 2.0)]),
        // indexing
        spec(
            "take",
            |a| a[0].take([2, 0, 2, -1], 0).square(),
            &[(m, -1.0, 1.0)],
        ),
        spec(
            "take_tensor_2d",
            |a| a[0].take(Tensor::from_slice(&[3i32, 1, 1, 0, 2, 3], [2, 3]), 1),
            &[(m, -1.0, 1.0)],
        ),
        spec(
            "take_along_axis",
            |a| {
                a[0].take_along_axis(Tensor::from_slice(&[1i32, 1, 0, 3, 2, 2], [3, 2]), 1)
                    .exp()
            },
            &[(m, -1.0, 1.0)],
        ),
        spec(
            "one_hot_mix",
            |a| one_hot([3, 0, 3], 4) * &a[0],
            &[(m, -1.0, 1.0)],
        ),
        // movement
        spec("flip", |a| a[0].flip([0, 1]) * &a[0], &[(m, -1.0, 1.0)]),
        spec(
            "stack",
            |a| stack(&[a[0].clone(), a[0].sin(), a[1].clone()], -1),
            &[(m, -1.0, 1.0), (m, -1.0, 1.0)],
        ),
        spec(
            "tril_triu",
            |a| a[0].tril(0) * 2.0 + a[0].triu(1).exp(),
            &[(m, -1.0, 1.0)],
        ),
        spec(
            "squeeze_expand",
            |a| {
                a[0].expand_dims(1)
                    .expand_dims(-1)
                    .squeeze([1, -1])
                    .square()
            },
            &[(m, -1.0, 1.0)],
        ),
        // convolution and pooling
        spec(
            "conv2d",
            |a| {
                a[0].conv2d(&a[1], Conv2dOptions::default().padding(1))
                    .tanh()
            },
            &[(&[2, 3, 5, 5], -1.0, 1.0), (&[4, 3, 3, 3], -0.5, 0.5)],
        ),
        spec(
            "conv2d_stride_dilation",
            |a| {
                a[0].conv2d(
                    &a[1],
                    Conv2dOptions::default()
                        .stride([2, 1])
                        .dilation(2)
                        .padding([1, 0]),
                )
            },
            &[(&[1, 2, 7, 6], -1.0, 1.0), (&[3, 2, 2, 2], -0.5, 0.5)],
        ),
        spec(
            "conv2d_groups",
            |a| {
                a[0].conv2d(&a[1], Conv2dOptions::default().groups(2))
                    .square()
            },
            &[(&[1, 4, 4, 4], -1.0, 1.0), (&[6, 2, 2, 2], -0.5, 0.5)],
        ),
        spec(
            "max_pool2d",
            |a| {
                (&a[0] + distinct(&[1, 2, 5, 5], 0.1))
                    .max_pool2d(2, Some([1, 2]))
                    .square()
            },
            &[(&[1, 2, 5, 5], 0.0, 0.04)],
        ),
        spec(
            "avg_pool2d",
            |a| a[0].avg_pool2d([3, 2], Some([2, 1])).sin(),
            &[(&[2, 1, 5, 4], -1.0, 1.0)],
        ),
    ]
}

pub(super) fn args_of(s: &Spec, seed: u64) -> Vec<Tensor> {
    s.args
        .iter()
        .enumerate()
        .map(|(k, (shape, lo, hi))| input(shape, *lo, *hi, seed * 10 + k as u64))
        .collect()
}

/// The table's row `name`.
fn row(name: &str) -> Spec {
    let name = name.trim_start_matches("r#");
    table()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no row {name} in the rules table"))
}

/// JVP, VJP and second order against finite differences, for a scalar of the output and for
/// the output itself.
pub(super) fn check_derivatives(s: Spec) {
    common::setup();
    let args = args_of(&s, 1);
    // A scalar of the output keeps finite differences cheap: sum(f(x) * w) for a fixed w.
    let out_shape = (s.f)(&args).shape().to_vec();
    let w = input(&out_shape, -1.0, 1.0, 99);
    let f = s.f;
    let g = move |a: &[Tensor]| (f(a) * &w).sum_all();
    if let Err(e) = check_grads(&g, &args, 2, &[Mode::Fwd, Mode::Rev], 2e-2) {
        panic!("{}: {e}", s.name);
    }
    // Non-scalar output too, first order.
    if let Err(e) = check_grads(|a: &[Tensor]| f(a), &args, 1, &[Mode::Fwd, Mode::Rev], 2e-2) {
        panic!("{} (tensor output): {e}", s.name);
    }
}

/// vmap against a loop over slices, batched along axis 0 and along axis 1 (out_axes -1).
pub(super) fn check_vmap(s: Spec) {
    common::setup();
    let args = args_of(&s, 2);
    let b = 3;
    // Batch the first argument along a new axis 0, the others unbatched.
    let slices: Vec<Tensor> = (0..b).map(|k| &args[0] * (1.0 + 0.1 * k as f32)).collect();
    let batched = concat(
        &slices.iter().map(|x| x.expand_dims(0)).collect::<Vec<_>>(),
        0,
    );
    let mut axes = vec![Some(0)];
    axes.extend(std::iter::repeat_n(None, args.len() - 1));
    let mut vargs = vec![batched];
    vargs.extend(args[1..].iter().cloned());
    let f = s.f;
    let got = vmap(|a: &Vec<Tensor>| f(a), axes)(&vargs);
    for (k, x) in slices.iter().enumerate() {
        let mut a = vec![x.clone()];
        a.extend(args[1..].iter().cloned());
        let want = f(&a).to_f32_vec();
        let mut stop = got.shape().to_vec();
        let mut start = vec![0; got.rank()];
        start[0] = k;
        stop[0] = k + 1;
        let row = got.slice(start, stop).to_f32_vec();
        if let Err(e) = common::close(&row, &want, 1e-5, 1e-5) {
            panic!("{} example {k}: {e}", s.name);
        }
    }
    // Batching along axis 1 of the first argument, with the batch moved to the end.
    let moved = vargs[0].moveaxis(0, 1);
    let mut margs = vec![moved];
    margs.extend(args[1..].iter().cloned());
    let mut axes1 = vec![Some(1)];
    axes1.extend(std::iter::repeat_n(None, args.len() - 1));
    let opts = VmapOptions {
        in_axes: axes1.into(),
        out_axes: (-1).into(),
        axis_size: None,
    };
    let got1 = vmap_with(|a: &Vec<Tensor>| f(a), opts)(&margs);
    if let Err(e) = common::close(
        &got1.moveaxis(-1, 0).to_f32_vec(),
        &got.to_f32_vec(),
        1e-5,
        1e-5,
    ) {
        panic!("{} (in_axes 1, out_axes -1): {e}", s.name);
    }
}

/// One module per row of the table, with its two tests: `cargo test --test suite sin` runs
/// the sine's.
/// One module per row, each with its two tests, and `COVERED`, the rows it made tests for:
/// the invoking module provides `row`, `check_derivatives` and `check_vmap`.
macro_rules! rule_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn derivatives() {
                    super::check_derivatives(super::row(stringify!($name)));
                }
                #[test]
                fn vmap() {
                    super::check_vmap(super::row(stringify!($name)));
                }
            }
        )*
        /// The rows the macro made tests for.
        const COVERED: &[&str] = &[$(stringify!($name)),*];
    };
}

rule_tests!(
    neg,
    exp,
    log,
    sin,
    cos,
    tanh,
    sqrt,
    abs,
    sigmoid,
    sign,
    add,
    sub,
    mul,
    div,
    pow,
    maximum,
    minimum,
    r#where,
    sum,
    sum_keepdims,
    max,
    reshape,
    broadcast_to,
    transpose,
    slice,
    pad,
    concat,
    matmul,
    matmul_batched,
    softmax,
    logsumexp,
    cast,
    log1p,
    expm1,
    erf,
    erfc,
    erfinv,
    gelu,
    gelu_tanh,
    silu,
    softplus,
    rsqrt,
    floor_round,
    clip,
    min,
    prod,
    prod_all,
    var_std,
    cumsum,
    cumsum_blocked,
    log_softmax,
    take,
    take_tensor_2d,
    take_along_axis,
    one_hot_mix,
    flip,
    stack,
    tril_triu,
    squeeze_expand,
    conv2d,
    conv2d_stride_dilation,
    conv2d_groups,
    max_pool2d,
    avg_pool2d,
);

#[test]
fn every_row_of_the_table_has_its_tests() {
    let rows: Vec<&str> = table().iter().map(|s| s.name).collect();
    let covered: Vec<&str> = COVERED.iter().map(|n| n.trim_start_matches("r#")).collect();
    for r in &rows {
        assert!(
            covered.contains(r),
            "row {r} has no tests: add it to rule_tests!"
        );
    }
    assert_eq!(
        rows.len(),
        covered.len(),
        "a test names no row, or a row is repeated"
    );
}
