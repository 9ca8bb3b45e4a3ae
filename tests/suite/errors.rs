//! Every shape, axis and dtype mistake names the op and the shapes; failed calls change
//! nothing; too-large tensors and a missing adapter say what is wrong.

use crate::common;

use wgrad::prelude::*;

fn err(r: wgrad::Result<Tensor>) -> String {
    r.map(|_| ()).unwrap_err().to_string()
}

#[test]
fn shape_axis_and_dtype_errors_name_op_and_shapes() {
    common::setup();
    let a = Tensor::ones([2, 3]);
    let cases: Vec<(String, &[&str])> = vec![
        (err(a.try_add(Tensor::ones([4]))), &["add", "[2, 3]", "[4]"]),
        (
            err(a.try_mul(Tensor::ones([3, 2]))),
            &["mul", "[2, 3]", "[3, 2]"],
        ),
        (
            err(a.try_matmul(&Tensor::ones([4, 5]))),
            &["matmul", "[2, 3]", "[4, 5]"],
        ),
        (
            err(Tensor::ones([2, 2, 3]).try_matmul(&Tensor::ones([3, 3, 1]))),
            &["matmul", "batch", "[2, 2, 3]", "[3, 3, 1]"],
        ),
        (err(a.try_reshape([4])), &["reshape", "[2, 3]", "[4]"]),
        (
            err(a.try_broadcast_to([4, 3])),
            &["broadcast_to", "[2, 3]", "[4, 3]"],
        ),
        (
            err(a.try_transpose([0, 0])),
            &["transpose", "[0, 0]", "[2, 3]"],
        ),
        (err(a.try_slice([0, 2], [2, 4])), &["slice", "[2, 3]"]),
        (err(a.try_sum_axes(2)), &["sum", "axis 2", "[2, 3]"]),
        (err(a.try_sum_axes([0, -2])), &["sum", "repeated", "[2, 3]"]),
        (err(a.try_max_keepdim(-3)), &["max", "axis -3", "[2, 3]"]),
        (err(a.try_mean_axes(5)), &["mean", "axis 5"]),
        (err(a.try_softmax(2)), &["max", "axis 2"]),
        (err(a.try_moveaxis(0, 2)), &["moveaxis", "axis 2"]),
        (
            err(try_concat(&[a.clone(), Tensor::ones([2, 2])], 0)),
            &["concat", "[2, 3]", "[2, 2]"],
        ),
        (err(try_where(&a, &a, &a)), &["where", "bool"]),
        (
            err(try_where(&a.greater(&a), &Tensor::ones([4]), &a)),
            &["where", "[2, 3]", "[4]"],
        ),
        (err(a.greater(&a).try_exp()), &["exp", "bool", "[2, 3]"]),
        (
            err(Tensor::from_slice(&[1i32], [1]).try_log()),
            &["log", "i32"],
        ),
        (
            err(Tensor::from_slice(&[1i32], [1]).try_add(Tensor::ones([1]))),
            &["add", "i32", "f32"],
        ),
        (err(a.greater(&a).try_sum_all()), &["sum", "bool"]),
        (
            err(Tensor::try_from_slice(&[1.0f32, 2.0], [3])),
            &["from_slice", "[3]"],
        ),
    ];
    for (msg, needles) in cases {
        for n in needles {
            assert!(msg.contains(n), "message {msg:?} lacks {n:?}");
        }
    }
    // A failed call leaves everything usable.
    assert_eq!(a.sum_all().item(), 6.0);
}

#[test]
fn panicking_forms_carry_the_same_message() {
    common::setup();
    let r = std::panic::catch_unwind(|| Tensor::ones([2, 3]) + Tensor::ones([4]));
    let msg = r.unwrap_err().downcast_ref::<String>().cloned().unwrap();
    assert!(
        msg.contains("add") && msg.contains("[2, 3]") && msg.contains("[4]"),
        "{msg}"
    );
}

#[test]
fn too_large_for_the_device_is_an_error() {
    common::setup();
    let e = Tensor::try_full([1 << 20, 1 << 12], 0.0, DType::F32)
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(e, wgrad::Error::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("[1048576, 4096]"), "{e}");
    // 2^32 elements: more than 32-bit indices reach, on any device.
    let e = Tensor::ones([1 << 16, 1])
        .try_broadcast_to([1 << 16, 1 << 16])
        .map(|_| ())
        .unwrap_err();
    assert!(e.to_string().contains("too large"), "{e}");
}

#[test]
fn no_adapter_says_what_to_install() {
    // A child process with an adapter filter that matches nothing.
    if std::env::var_os("WGRAD_ERRORS_CHILD").is_some() {
        let e = wgrad::init().unwrap_err().to_string();
        println!("CHILD-ERROR: {e}");
        return;
    }
    // The child's stdout, run with one environment variable set.
    // This test's name in its binary: its module path without the crate's name.
    let name = match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::no_adapter_says_what_to_install"),
        None => "no_adapter_says_what_to_install".to_string(),
    };
    let child = |key: &str, value: &str| {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name.as_str(), "--nocapture"])
            .env("WGRAD_ERRORS_CHILD", "1")
            .env(key, value)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = child("WGRAD_ADAPTER", "no-such-adapter-anywhere");
    assert!(
        text.contains(
            "CHILD-ERROR: device: WGRAD_ADAPTER=\"no-such-adapter-anywhere\" matches none"
        ),
        "{text}"
    );
    let text = child("WGRAD_BACKEND", "dx12");
    assert!(text.contains("mesa-vulkan-drivers"), "{text}");
}

#[test]
fn a_rule_that_refuses_is_an_error_from_every_try_transform_not_a_panic() {
    common::setup();
    // Reverse mode through a while_loop is refused by its rule; the refusal must come back as
    // an error (through vmap of the pullback inside jacrev, too), never as a panic.
    let f = |x: &Tensor| {
        let out = wgrad::while_loop(
            |c: &Tensor| c.sum_all().less(&Tensor::scalar(10.0)),
            |c: &Tensor| c * 2.0,
            x,
        );
        out.sum_all()
    };
    let x = Tensor::from_vec(vec![1.0f32, 2.0], [2]);
    let jac = std::panic::catch_unwind(|| wgrad::try_jacrev(f)(&x));
    let msg = jac.expect("try_jacrev panicked").unwrap_err().to_string();
    assert!(
        msg.contains("while_loop") && msg.contains("reverse-mode"),
        "{msg}"
    );
    let vg = std::panic::catch_unwind(|| {
        wgrad::try_value_and_grad_aux(|x: &Tensor| (f(x), ()), Default::default())(&x)
    });
    let msg = match vg.expect("try_value_and_grad_aux panicked") {
        Ok(_) => panic!("a gradient through a while_loop was computed"),
        Err(e) => e.to_string(),
    };
    assert!(msg.contains("while_loop"), "{msg}");
    // Forward mode goes through: d/dx of sum(x * 4) (two doublings reach 12 >= 10).
    let (_, t) = wgrad::try_jvp(f, &x, &Tensor::ones([2]), Default::default()).unwrap();
    assert_eq!(t.item(), 8.0);
}

#[test]
fn padding_whose_size_overflows_is_an_error_not_a_wrapped_shape() {
    common::setup();
    let x = Tensor::ones([3]);
    let e = x.try_pad([usize::MAX], [0]).unwrap_err().to_string();
    assert!(e.contains("pad") && e.contains("overflow"), "{e}");
    let e = x.try_pad([1], [usize::MAX - 2]).unwrap_err().to_string();
    assert!(e.contains("pad") && e.contains("overflow"), "{e}");
    // In range it pads.
    assert_eq!(x.try_pad([1], [2]).unwrap().shape(), &[6]);
}

#[test]
fn the_numerics_try_forms_never_panic_on_odd_input() {
    common::setup();
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use wgrad::{fft, linalg};
    // Scalars, empty axes, vectors where matrices go, integers where floats go: each call
    // returns (an error or a value), none panics, and realizing an Ok value works too.
    let odd = vec![
        Tensor::scalar(1.0),
        Tensor::zeros([0]),
        Tensor::zeros([3]),
        Tensor::zeros([0, 0]),
        Tensor::zeros([2, 3]),
        Tensor::zeros([2, 0, 0]),
        Tensor::from_vec(vec![1i32, 2, 3, 4], [2, 2]),
        Tensor::from_vec(vec![f32::NAN; 4], [2, 2]),
    ];
    let mut calls = 0;
    for x in &odd {
        let y = x.clone();
        let tries: Vec<Box<dyn Fn() -> wgrad::Result<Tensor>>> = vec![
            Box::new(|| linalg::try_cholesky(x)),
            Box::new(|| linalg::try_solve(x, &y)),
            Box::new(|| linalg::try_inv(x)),
            Box::new(|| linalg::try_det(x)),
            Box::new(|| linalg::try_slogdet(x).map(|p| p.1)),
            Box::new(|| linalg::try_qr(x).map(|p| p.1)),
            Box::new(|| linalg::try_eigvalsh(x)),
            Box::new(|| linalg::try_svdvals(x)),
            Box::new(|| linalg::try_svd(x).map(|p| p.1)),
            Box::new(|| linalg::try_triangular_solve(x, &y, true)),
            Box::new(|| linalg::try_cho_solve(x, &y)),
            Box::new(|| linalg::try_lu_factor(x).map(|p| p.0)),
            Box::new(|| x.try_sort(-1)),
            Box::new(|| x.try_argsort(0)),
            Box::new(|| x.try_top_k(1).map(|p| p.0)),
            Box::new(|| x.try_cumprod(0)),
            Box::new(|| x.try_cummax(-1)),
            Box::new(|| x.try_logcumsumexp(0)),
            Box::new(|| x.try_lgamma()),
            Box::new(|| x.try_polygamma(2)),
            Box::new(|| x.try_atan2(&y)),
            Box::new(|| x.try_remainder(&y)),
            Box::new(|| x.try_scatter_add([0], &y, 0)),
            Box::new(|| try_segment_sum(x, [0, 1], 2)),
            Box::new(|| try_segment_max(x, [0], 1)),
            Box::new(|| try_einsum("ij,jk->ik", &[x, &y])),
            Box::new(|| try_einsum("i->", &[x])),
            Box::new(|| fft::try_rfft(x).map(|p| p.0)),
            Box::new(|| fft::try_fft(x, &y).map(|p| p.1)),
            Box::new(|| fft::try_irfft(x, &y, 4)),
            Box::new(|| x.try_conv1d(&y, Conv1dOptions::default())),
            Box::new(|| x.try_conv_transpose2d(&y, 1, 0)),
        ];
        for (k, f) in tries.iter().enumerate() {
            let r = catch_unwind(AssertUnwindSafe(|| {
                f().and_then(|t| t.try_realize().map(|_| ()))
            }));
            assert!(
                r.is_ok(),
                "call {k} panicked on input of shape {:?} ({})",
                x.shape(),
                x.dtype()
            );
            calls += 1;
        }
    }
    assert_eq!(calls, 8 * 32);
}
