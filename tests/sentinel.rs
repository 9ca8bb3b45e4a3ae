//! No kernel leaves an output element unwritten: with `Policy::sentinel`, every buffer a
//! realize writes starts as a NaN pattern, and no result of any op family may contain it. (Its
//! own test binary: it changes the process-wide policy.)

mod common;

use wgrad::prelude::*;

const SENTINEL: u32 = 0x7fba_dbad;

fn bits(t: &Tensor) -> Vec<u32> {
    match t.dtype() {
        DType::F32 => t.to_vec::<f32>().iter().map(|v| v.to_bits()).collect(),
        DType::I32 => t.to_vec::<i32>().iter().map(|&v| v as u32).collect(),
        DType::U32 => t.to_vec::<u32>(),
        DType::Bool => t.to_vec::<bool>().iter().map(|&b| b as u32).collect(),
        DType::F16 => vec![],
    }
}

#[test]
fn no_result_contains_the_sentinel() {
    common::setup();
    wgrad::set_policy(wgrad::Policy {
        sentinel: true,
        ..wgrad::policy()
    });
    let x = Tensor::rand([6, 5], 1) * 4.0 - 2.0;
    let z = Tensor::from_vec(vec![0.0f32, 1.0, -2.0, 0.0], [4]);
    let img = Tensor::rand([2, 3, 7, 6], 2);
    let w = Tensor::rand([4, 3, 3, 3], 3);
    let outs: Vec<(&str, Tensor)> = vec![
        ("elementwise", (x.exp().sin() * x.tanh() + x.erf()).log1p()),
        ("division by zero", &z / 0.0),
        ("division by a computed zero", &z / (&z * 0.0)),
        ("compare", x.greater(&x.cos())),
        ("movement", x.transpose([1, 0]).pad([1, 2], [0, 3]).flip(0)),
        ("sum", x.sum_axes(1)),
        ("long sum", Tensor::rand([300_000], 4).sum_all()),
        ("max", x.max_keepdim(0)),
        ("prod", x.prod_all()),
        ("argmax", x.argmax(1)),
        ("cumsum", Tensor::rand([3, 1000], 5).cumsum(1)),
        ("matmul", x.matmul(&x.mt())),
        (
            "matmul long K",
            Tensor::ones([2, 20_000]).matmul(&Tensor::ones([20_000, 3])),
        ),
        ("take", x.take([4, 0, 4], 0)),
        (
            "scatter-add",
            grad(|t: &Tensor| t.take([1, 1, 0], 1).sum_all())(&x),
        ),
        (
            "conv2d",
            img.conv2d(&w, Conv2dOptions::default().padding(1).stride(2)),
        ),
        (
            "conv2d grad",
            grad(|i: &Tensor| i.conv2d(&w, Conv2dOptions::default()).sum_all())(&img),
        ),
        (
            "max_pool2d grad",
            grad(|i: &Tensor| i.max_pool2d(2, None).sum_all())(&img),
        ),
        ("empty axis mean", Tensor::zeros([3, 0]).mean_axes(1)),
        (
            "jacobian",
            jacrev(|v: &Tensor| v.sin() * 2.0)(&Tensor::rand([7], 6)),
        ),
    ];
    for (name, t) in &outs {
        let b = bits(t);
        assert!(!b.is_empty() || t.numel() == 0, "{name}: no values");
        assert!(
            !b.contains(&SENTINEL),
            "{name}: an element was never written"
        );
    }
    wgrad::set_policy(wgrad::Policy {
        sentinel: false,
        ..wgrad::policy()
    });
}
