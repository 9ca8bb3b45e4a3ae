//! The validation fixture: every kernel variant, rendered by the real generator from real
//! graphs (no device needed), is checked by naga as the device would check it.

use crate::base::limits::Limits;
use crate::base::policy::{MatmulKernel, Policy};
use crate::device::pipelines::validate_wgsl;
use crate::kernel::Kernel;
use crate::prelude::*;
use crate::schedule::lower::lower_offline;
use std::collections::BTreeSet;

fn validate_all(targets: &[Tensor], limits: &Limits, policy: &Policy) -> Vec<Kernel> {
    let kernels = lower_offline(targets, limits, policy).unwrap_or_else(|e| panic!("{e}"));
    for k in &kernels {
        validate_wgsl(&k.source, &k.label).unwrap_or_else(|e| panic!("{e}"));
    }
    kernels
}

fn graphs() -> Vec<Tensor> {
    let x = Tensor::from_vec(vec![0.5f32, -1.0, 2.0, 0.25, 1.5, -0.5], [2, 3]);
    let i = Tensor::from_slice(&[1i32, -2, 3], [3]);
    let u = Tensor::from_slice(&[1u32, 2, 3], [3]);
    vec![
        // unary, binary, logic, source and movement families, fused
        x.exp()
            .sin()
            .tanh()
            .sigmoid()
            .abs()
            .sqrt()
            .log()
            .neg()
            .sign(),
        x.pow(Tensor::scalar(2.0)).maximum(&x).minimum(x.cos()) / &x - &x,
        where_(&x.greater(&x.cos()), &x, &x.less(&x).cast(DType::F32)),
        x.transpose([1, 0])
            .slice([1, 0], [3, 2])
            .pad([1, 0], [0, 1])
            .broadcast_to([2, 3, 3]),
        concat(&[x.clone(), x.clone()], 1).reshape([3, 4]),
        x.greater(&Tensor::scalar(0.0)), // a bool output
        (&i * &i - &i).abs().cast(DType::F32) + u.cast(DType::F32),
        Tensor::rand([2, 3], 1)
            + Tensor::eye(3).slice([0, 0], [2, 3])
            + Tensor::full([2, 3], f32::INFINITY),
        // reductions: one invocation per output, workgroup trees, chunks and their second pass
        x.sum_axes(0).expand_dims(0) + x.max_keepdim(1),
        Tensor::ones([3, 100_000]).sum_axes(1),
        Tensor::ones([1_000_000]).exp().max_all(),
        i.max_all(),
        // matmul (the variant follows the policy)
        x.matmul(&x.mt()),
        x.exp().matmul(&Tensor::ones([3, 8]).sin()),
        Tensor::ones([2, 4, 5]).matmul(&Tensor::ones([2, 5, 4])),
        // a matmul whose bias and activation are its epilogue
        (x.matmul(&x.mt().exp()) + Tensor::ones([2]))
            .tanh()
            .greater(&Tensor::scalar(0.1)),
        // a large product with few rows: the direct kernel's short, wide workgroups, and a
        // large operand read once (kept fused)
        Tensor::ones([32, 2048]).matmul(&Tensor::ones([2048, 128]).exp()),
        // set-2 families: gather, scatter-add (through take's VJP), scans, windows
        x.take(Tensor::from_slice(&[1i32, 0, 1], [3]), 1),
        grad(|t: &Tensor| t.take([2, 2, 0], 1).sin().sum_all())(&x),
        Tensor::ones([3, 200]).cumsum(1),
        Tensor::ones([1, 2, 6, 6]).conv2d(
            &Tensor::ones([4, 1, 3, 3]),
            Conv2dOptions::default().groups(2).stride(2),
        ),
        grad(|t: &Tensor| t.max_pool2d(2, Some([1, 1])).sum_all())(&Tensor::ones([1, 1, 4, 4])),
        x.erfc().log1p().expm1().floor() + x.round() + x.erf(),
    ]
}

#[test]
fn every_kernel_variant_validates() {
    let mut labels = BTreeSet::new();
    for (matmul, cpu) in [(MatmulKernel::Tiled, false), (MatmulKernel::Direct, true)] {
        let policy = Policy {
            matmul,
            epilogues: Some(true),
            ..Policy::from_env()
        };
        let limits = Limits {
            cpu,
            ..Limits::webgpu_default()
        };
        let kernels = validate_all(&graphs(), &limits, &policy);
        assert!(kernels.iter().any(|k| k.label == "matmul+epilogue"));
        for k in kernels {
            let variant = [
                "MATMUL_DIRECT",
                "mm_block",
                "partial[",
                "acc = combine",
                "wg_store(i, result(i))",
            ]
            .iter()
            .find(|m| k.source.contains(*m))
            .copied()
            .unwrap_or("other");
            labels.insert(format!(
                "{}:{variant}",
                k.label.split('+').next().unwrap_or("")
            ));
        }
    }
    // Every template was rendered at least once.
    let all: String = labels.iter().cloned().collect::<Vec<_>>().join(" ");
    for needed in [
        "mm_block",
        "partial[",
        "acc = combine",
        "wg_store(i, result(i))",
    ] {
        assert!(
            all.contains(needed),
            "no kernel rendered with {needed}: {all}"
        );
    }
    println!("validated kernel variants: {all}");
}

#[test]
fn f16_kernels_validate() {
    let limits = Limits {
        shader_f16: true,
        ..Limits::webgpu_default()
    };
    let x = Tensor::from_vec(vec![half::f16::from_f32(1.5); 6], [2, 3]);
    let outs = vec![
        (x.exp() * &x).pow(x.abs()),
        x.sum_axes(1),
        x.matmul(&x.mt()),
        x.cast(DType::F32),
    ];
    for k in validate_all(&outs, &limits, &Policy::from_env()) {
        assert!(k.source.starts_with("enable f16;"), "{}", k.source);
    }
}

#[test]
fn invalid_wgsl_is_reported_with_the_kernel_name() {
    let e = validate_wgsl("fn main( {", "broken")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("kernel broken") && e.contains("parse error"),
        "{e}"
    );
}

#[test]
fn graphs_build_and_print_without_a_device() {
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3]);
    let g = grad(|x: &Tensor| (x.sin() * x).sum_all())(&x);
    let text = crate::graph_string(std::slice::from_ref(&g));
    assert!(text.contains("cos") && text.contains("f32[3]"), "{text}");
    let e = x.try_add(Tensor::zeros([4])).unwrap_err().to_string();
    assert!(e.contains("[3]") && e.contains("[4]"), "{e}");
    assert!(
        crate::device::opened().is_none(),
        "building graphs, transforms and errors opened the device"
    );
}

#[test]
fn kernels_carry_only_the_helpers_they_call() {
    let limits = Limits::webgpu_default();
    let policy = Policy::from_env();
    let x = Tensor::from_vec(vec![1.0f32, 2.0], [2]);
    let plain = validate_all(&[&x + 1.0], &limits, &policy);
    let helpers = plain[0].source.matches("fn wg_").count();
    assert_eq!(
        helpers, 2,
        "only wg_store and wg_extra:\n{}",
        plain[0].source
    );
    let erf = validate_all(&[x.erf()], &limits, &policy);
    for f in ["fn wg_erf(", "fn wg_erfc_tail(", "fn wg_exp(", "fn wg_inf("] {
        assert!(erf[0].source.contains(f), "missing {f}");
    }
    assert!(!erf[0].source.contains("fn wg_log("));
}

#[test]
fn kernels_over_tensors_larger_than_a_binding_validate() {
    // A binding limit of 1 KiB: every tensor below is bound (and written) as several windows.
    let limits = Limits {
        max_binding: 1024,
        max_storage_buffers: 64,
        ..Limits::webgpu_default()
    };
    let x = Tensor::from_vec(vec![0.5f32; 3000], [30, 100]);
    let outs = vec![
        (&x * 2.0).exp(),
        x.sum_axes(1),
        x.sum_all(),
        x.cumsum(1),
        x.take([3, 1], 0),
        x.matmul(&Tensor::from_vec(vec![1.0f32; 400], [100, 4])),
    ];
    for (matmul, cpu) in [(MatmulKernel::Tiled, false), (MatmulKernel::Direct, true)] {
        let policy = Policy {
            matmul,
            ..Policy::from_env()
        };
        let limits = Limits {
            cpu,
            ..limits.clone()
        };
        let kernels = validate_all(&outs, &limits, &policy);
        assert!(kernels.iter().any(|k| k.out_windows > 1));
        assert!(kernels.iter().any(|k| k.windows.iter().any(|&w| w > 1)));
        assert!(kernels.iter().any(|k| k.source.contains("fn wg_read")));
    }
}
