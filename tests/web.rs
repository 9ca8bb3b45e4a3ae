//! The browser subset of the suite (wasm32 only): every primitive's forward value, the
//! transforms on public conformance cases, and the demo's training loop, in headless Chromium
//! on WebGPU. Run by `.ci/run` through `wasm-bindgen-test-runner`.
#![cfg(target_arch = "wasm32")]
// Reference values are JAX's, as it prints them (more digits than an f32 holds).
#![allow(clippy::excessive_precision)]

mod common;
#[path = "../web/src/digits.rs"]
mod digits;
#[path = "../web/src/model.rs"]
mod model;

use common::{Case, close, json_tensor, parse_json, to_tensor};
use wasm_bindgen_test::*;
use wgrad::prelude::*;

wasm_bindgen_test_configure!(run_in_browser);

async fn setup() {
    let info = wgrad::init_async()
        .await
        .expect("the browser found no WebGPU adapter");
    assert_eq!(info.backend, "browserwebgpu", "{info}");
}

async fn values(t: &Tensor) -> Vec<f32> {
    match t.dtype() {
        DType::Bool => t
            .to_vec_async::<bool>()
            .await
            .unwrap()
            .into_iter()
            .map(|b| b as u8 as f32)
            .collect(),
        DType::I32 => t
            .to_vec_async::<i32>()
            .await
            .unwrap()
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        _ => t.to_vec_async::<f32>().await.unwrap(),
    }
}

async fn expect(name: &str, t: &Tensor, shape: &[usize], want: &[f32], tol: f32) {
    assert_eq!(t.shape(), shape, "{name}: shape");
    let got = values(t).await;
    if let Err(e) = close(&got, want, tol, tol) {
        panic!("{name}: {e}: got {got:?}");
    }
}

#[wasm_bindgen_test]
async fn every_primitive_forward() {
    setup().await;
    let x = Tensor::from_vec(vec![0.5f32, -1.0, 2.0, 0.25], [2, 2]);
    let p = Tensor::from_vec(vec![0.25f32, 1.0, 4.0, 2.0], [2, 2]);
    let cases: Vec<(&str, Tensor, Vec<f32>)> = vec![
        ("neg", x.neg(), vec![-0.5, 1.0, -2.0, -0.25]),
        (
            "exp",
            x.exp(),
            vec![1.6487213, 0.36787945, 7.389056, 1.2840254],
        ),
        (
            "log",
            p.log(),
            vec![-1.3862944, 0.0, 1.3862944, std::f32::consts::LN_2],
        ),
        (
            "sin",
            x.sin(),
            vec![0.47942555, -0.84147096, 0.9092974, 0.24740396],
        ),
        (
            "cos",
            x.cos(),
            vec![0.87758255, 0.5403023, -0.41614684, 0.9689124],
        ),
        (
            "tanh",
            x.tanh(),
            vec![0.46211717, -0.7615942, 0.9640276, 0.24491866],
        ),
        (
            "sqrt",
            p.sqrt(),
            vec![0.5, 1.0, 2.0, std::f32::consts::SQRT_2],
        ),
        ("abs", x.abs(), vec![0.5, 1.0, 2.0, 0.25]),
        (
            "sigmoid",
            x.sigmoid(),
            vec![0.62245935, 0.26894143, 0.8807971, 0.5621765],
        ),
        ("sign", x.sign(), vec![1.0, -1.0, 1.0, 1.0]),
        ("add", &x + &p, vec![0.75, 0.0, 6.0, 2.25]),
        ("sub", &x - &p, vec![0.25, -2.0, -2.0, -1.75]),
        ("mul", &x * &p, vec![0.125, -1.0, 8.0, 0.5]),
        ("div", &x / &p, vec![2.0, -1.0, 0.5, 0.125]),
        (
            "pow",
            p.pow(Tensor::scalar(1.5)),
            vec![0.125, 1.0, 8.0, 2.828427],
        ),
        ("maximum", x.maximum(&p), vec![0.5, 1.0, 4.0, 2.0]),
        ("minimum", x.minimum(&p), vec![0.25, -1.0, 2.0, 0.25]),
        ("greater", x.greater(&p), vec![1.0, 0.0, 0.0, 0.0]),
        ("less", x.less(&p), vec![0.0, 1.0, 1.0, 1.0]),
        ("equal", x.equal(&x), vec![1.0; 4]),
        (
            "where",
            where_(&x.greater(&Tensor::scalar(0.0)), &x, &p),
            vec![0.5, 1.0, 2.0, 0.25],
        ),
        (
            "cast",
            x.greater(&Tensor::scalar(0.0)).cast(DType::F32),
            vec![1.0, 0.0, 1.0, 1.0],
        ),
        ("sum", x.sum_axes(0), vec![2.5, -0.75]),
        ("max", x.max_axes(1), vec![0.5, 2.0]),
        ("reshape", x.reshape([4]), vec![0.5, -1.0, 2.0, 0.25]),
        ("transpose", x.transpose([1, 0]), vec![0.5, 2.0, -1.0, 0.25]),
        (
            "broadcast_to",
            x.slice([0, 0], [1, 2]).broadcast_to([2, 2]),
            vec![0.5, -1.0, 0.5, -1.0],
        ),
        ("slice", x.slice([1, 0], [2, 2]), vec![2.0, 0.25]),
        (
            "pad",
            x.slice([0, 0], [1, 1]).pad([1, 0], [0, 1]),
            vec![0.0, 0.0, 0.5, 0.0],
        ),
        (
            "concat",
            concat(&[x.slice([0, 0], [1, 2]), p.slice([1, 0], [2, 2])], 0),
            vec![0.5, -1.0, 4.0, 2.0],
        ),
        ("matmul", x.matmul(&p), vec![-3.875, -1.5, 1.5, 2.5]),
        (
            "softmax",
            Tensor::from_vec(vec![1.0f32, 1.0], [2]).softmax(0),
            vec![0.5, 0.5],
        ),
        (
            "stop_gradient",
            x.stop_gradient(),
            vec![0.5, -1.0, 2.0, 0.25],
        ),
        ("iota", Tensor::arange(4), vec![0.0, 1.0, 2.0, 3.0]),
        ("full", Tensor::full([2], 3.5), vec![3.5, 3.5]),
    ];
    for (name, t, want) in cases {
        let shape = t.shape().to_vec();
        expect(name, &t, &shape, &want, 1e-4).await;
    }
    // More buffers than the browser lets one kernel bind: the fused sum is split.
    let xs: Vec<Tensor> = (0..20)
        .map(|k| Tensor::from_vec(vec![k as f32; 3], [3]))
        .collect();
    let total = xs.iter().skip(1).fold(xs[0].clone(), |acc, x| acc + x);
    expect("20 fused inputs", &total, &[3], &[190.0; 3], 0.0).await;
    // Sizes past one workgroup and a long reduction, under the browser's limits.
    let big = Tensor::ones([70_000]);
    expect("long sum", &(&big * 2.0).sum_all(), &[], &[140_000.0], 0.0).await;
}

const PICK: [&str; 8] = [
    "matmul_batched_tanh_sum",
    "mul_scalar_matrix",
    "softmax",
    "mean_sin_cos_two_args",
    "logsumexp_middle_axis_sum",
    "linear_regression_mse",
    "rosenbrock",
    "three_scalar_args",
];

/// Runs every check a conformance case has (value, grad, jvp, vjp, jacfwd, jacrev, vmap);
/// returns how many ran.
async fn run_case(c: &common::Json) -> usize {
    let case = Case::from_json(c);
    let checks = c.get("checks").unwrap();
    let xs = case.inputs();
    let f = |a: &[Tensor]| case.call(a);
    let mut ran = 0;
    let mut check = async |what: &str, got: &Tensor, want: &common::Json| {
        let (shape, data) = json_tensor(want);
        assert_eq!(got.shape(), shape.as_slice(), "{} {what}: shape", case.name);
        if want.get("dtype").is_some() {
            assert_eq!(got.dtype(), DType::I32, "{} {what}: dtype", case.name);
        }
        let g = values(got).await;
        if let Err(e) = close(&g, &data, case.rtol, case.atol) {
            panic!("{} {what}: {e}", case.name);
        }
        ran += 1;
    };
    check("value", &f(&xs), checks.get("value").unwrap()).await;
    if let Some(g) = checks.get("grad") {
        for (k, (got, want)) in grad_argnums(f, Argnums::All)(&xs)
            .iter()
            .zip(g.arr())
            .enumerate()
        {
            check(&format!("grad {k}"), got, want).await;
        }
    }
    if let Some(j) = checks.get("jvp") {
        let ts: Vec<Tensor> = j
            .get("tangents")
            .unwrap()
            .arr()
            .iter()
            .map(to_tensor)
            .collect();
        let (_, t) = jvp(|a: &Vec<Tensor>| f(a), &xs, &ts);
        check("jvp", &t, j.get("out").unwrap()).await;
    }
    if let Some(v) = checks.get("vjp") {
        let (_, pb) = vjp(|a: &Vec<Tensor>| f(a), &xs);
        let gs = pb.call(&to_tensor(v.get("cotangent").unwrap()));
        for (k, (got, want)) in gs.iter().zip(v.get("grads").unwrap().arr()).enumerate() {
            check(&format!("vjp {k}"), got, want).await;
        }
    }
    if let Some(jw) = checks.get("jacfwd") {
        let jf = jacfwd_argnums(|a: &[Tensor]| vec![f(a)], Argnums::All)(&xs);
        let jr = jacrev_argnums(|a: &[Tensor]| vec![f(a)], Argnums::All)(&xs);
        for (k, want) in jw.arr().iter().enumerate() {
            check(&format!("jacfwd {k}"), &jf[0][k], want).await;
            check(&format!("jacrev {k}"), &jr[0][k], want).await;
        }
    }
    if let Some(vm) = checks.get("vmap") {
        let (axes, bx) = case.vmap_args(vm);
        let y = vmap(|a: &Vec<Tensor>| f(a), axes)(&bx);
        check("vmap", &y, vm.get("out").unwrap()).await;
    }
    ran
}

#[wasm_bindgen_test]
async fn transforms_on_public_conformance_cases() {
    setup().await;
    let data = parse_json(include_str!("data/conformance/public.json"));
    let mut ran = 0;
    for c in data.get("cases").unwrap().arr() {
        if PICK.contains(&c.get("name").unwrap().str()) {
            ran += run_case(c).await;
        }
    }
    assert!(ran >= 40, "only {ran} checks ran");
}

/// One or more cases of every family of the version-2 ops.
const PICK2: [&str; 22] = [
    "p2_log1p",
    "p2_erf",
    "p2_gelu",
    "p2_round",
    "p2_clip",
    "p2_min_axis",
    "p2_prod_all",
    "p2_std_keepdims",
    "p2_cumsum_neg_axis_3d",
    "p2_argmax_last_axis",
    "p2_take_rows_repeated",
    "p2_take_along_axis_last",
    "p2_one_hot_mask",
    "p2_flip_two_axes_3d",
    "p2_stack_axis0",
    "p2_tril",
    "p2_squeeze",
    "p2_pad",
    "p2_conv2d_groups",
    "p2_conv2d_vmap_weights_only",
    "p2_max_pool2d",
    "p2_avg_pool2d",
];

#[wasm_bindgen_test]
async fn version_2_ops_on_public_conformance_cases() {
    setup().await;
    let data = parse_json(include_str!("data/conformance/public2.json"));
    let mut seen = vec![];
    let mut ran = 0;
    for c in data.get("cases").unwrap().arr() {
        let name = c.get("name").unwrap().str();
        if PICK2.contains(&name) {
            ran += run_case(c).await;
            seen.push(name.to_string());
        }
    }
    assert_eq!(seen.len(), PICK2.len(), "cases missing: ran {seen:?}");
    assert!(ran >= 100, "only {ran} checks ran");
}

/// Set-3 cases the browser runs: linear algebra, einsum, special functions, sorting, scans,
/// scatter, FFT and the new convolutions.
const PICK3: [&str; 14] = [
    "p3_cholesky",
    "p3_eigh_vecs_squared",
    "p3_sort_last_axis",
    "p3_argsort_last_axis",
    "p3_cumprod",
    "p3_gnn_message_passing_scatter",
    "p3_spectral_filter_roundtrip",
    "p3_triangular_solve_upper_batched",
    "p3_solve_batched_energy",
    "p3_det",
    "p3_mahalanobis_cholesky",
    "p3_two_head_attention_einsum",
    "p3_log_multivariate_beta_lgamma",
    "p3_conv_transpose2d",
];

#[wasm_bindgen_test]
async fn numerics_of_set_3_in_the_browser() {
    setup().await;
    let data = parse_json(include_str!("data/conformance/public3.json"));
    let mut seen = vec![];
    let mut ran = 0;
    for c in data.get("cases").unwrap().arr() {
        let name = c.get("name").unwrap().str();
        if PICK3.contains(&name) {
            ran += run_case(c).await;
            seen.push(name.to_string());
        }
    }
    assert_eq!(seen.len(), PICK3.len(), "cases missing: ran {seen:?}");
    assert!(ran >= 60, "only {ran} checks ran");
}

#[wasm_bindgen_test]
async fn random_bits_are_the_same_in_the_browser() {
    setup().await;
    // jax.random.uniform(jax.random.PRNGKey(42), (5,)), bit for bit, as on lavapipe and GL.
    let u = wgrad::random::uniform(wgrad::random::key(42), [5]);
    let got = u.to_vec_async::<f32>().await.unwrap();
    let jax = [
        0.48870956897735596f32,
        0.6797971725463867,
        0.6162714958190918,
        0.5610160827636719,
        0.4506446123123169,
    ];
    assert_eq!(got, jax);
    let z = wgrad::random::normal(wgrad::random::key(42), [2]);
    let z = z.to_vec_async::<f32>().await.unwrap();
    close(&z, &[-0.02830461598932743, 0.4671318531036377], 2e-6, 2e-7).unwrap();
}

#[wasm_bindgen_test]
async fn the_demo_trains() {
    setup().await;
    let (_, x, y) = model::moons(100);
    let mut p = model::init(&[2, 16, 16, 1], 7);
    let first = model::loss(&p, &x, &y).to_vec_async::<f32>().await.unwrap()[0];
    for _ in 0..30 {
        p = model::step(&p, &x, &y, 0.5).0;
    }
    let last = model::loss(&p, &x, &y).to_vec_async::<f32>().await.unwrap()[0];
    assert!(last < first * 0.9, "loss {first} -> {last}");
    let probs = values(&model::logits(&p, &model::grid(8)).sigmoid()).await;
    assert!(probs.len() == 64 && probs.iter().all(|v| (0.0..=1.0).contains(v)));
    let h = model::rosenbrock_hessian(1.0, 1.0)
        .to_vec_async::<f32>()
        .await
        .unwrap();
    assert!(
        close(&h, &[802.0, -400.0, -400.0, 200.0], 1e-4, 1e-3).is_ok(),
        "{h:?}"
    );
}

#[wasm_bindgen_test]
async fn the_digits_cnn_learns_in_the_browser() {
    setup().await;
    // The page's CNN (convolutions, pooling, Adam over a tree), 20 steps: 0.83 held out on
    // lavapipe and GL.
    let data = digits::load();
    let mut t = digits::Trainer::new(20);
    let (_, before) = t.evaluate(&data);
    let before = before.to_vec_async::<f32>().await.unwrap()[0];
    let mut losses = vec![];
    for step in 0..20 {
        let l = t.step(&data, 0, step);
        losses.push(l.to_vec_async::<f32>().await.unwrap()[0]);
    }
    let (guess, after) = t.evaluate(&data);
    let after = after.to_vec_async::<f32>().await.unwrap()[0];
    let guess = guess.to_vec_async::<i32>().await.unwrap();
    assert!(guess.iter().all(|g| (0..10).contains(g)));
    assert!(losses[19] < losses[0] * 0.7, "{losses:?}");
    assert!(
        after > 0.7 && after > before + 0.4,
        "accuracy {before} -> {after}"
    );
}

#[wasm_bindgen_test]
async fn control_flow_and_custom_rules_in_the_browser() {
    setup().await;
    let xs = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [4]);
    let (total, partial) = wgrad::scan(
        |c: &Tensor, x: &Tensor| {
            let c = c + x;
            (c.clone(), c)
        },
        &Tensor::scalar(0.0),
        &xs,
        false,
    );
    assert_eq!(values(&total).await, vec![10.0]);
    assert_eq!(values(&partial).await, vec![1.0, 3.0, 6.0, 10.0]);
    // d/dx of x^8 by fori_loop, and cond (selected here: no blocking reads).
    let x = Tensor::from_vec(vec![1.5f32], [1]);
    let g = grad(|x: &Tensor| wgrad::fori_loop(0, 3, |_i, c: &Tensor| c.square(), x).sum_all())(&x);
    let g = values(&g).await[0];
    assert!((g - 8.0 * 1.5f32.powi(7)).abs() < 1e-2, "{g}");
    let y = wgrad::cond(
        &Tensor::scalar(2.0).greater(&Tensor::scalar(0.0)),
        |x: &Tensor| x * 10.0,
        |x: &Tensor| -x,
        &x,
    );
    assert_eq!(values(&y).await, vec![15.0]);
    // custom_vjp's rule is what runs.
    let f = wgrad::custom_vjp(
        |x: &Tensor| (x.square(), x.clone()),
        |x: &Tensor, ct: &Tensor| ct * x * 10.0,
    );
    let g = grad(|x: &Tensor| f(x).sum_all())(&x);
    assert_eq!(values(&g).await, vec![15.0]);
}
