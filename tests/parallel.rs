//! Data parallelism in one process (issue 22): k = 1, 2, 3 replicas on logical devices of one
//! adapter give the single-device gradients and training run within float reassociation, the
//! copies stay bit-identical, a run repeats bit for bit, bad batches are refused, and a failed
//! device fails the step without touching the caller's values.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::mlp::{Mlp, data, host, loss, mlp};
use wgrad::optim;
use wgrad::parallel::{DataParallel, Reduce, Replicated};
use wgrad::prelude::*;

fn devices(k: usize) -> Vec<Device> {
    (0..k).map(|_| Device::open().unwrap()).collect()
}

/// Every leaf within `tol` of the reference, relative to the leaf's largest magnitude.
fn assert_tree_close(got: &[Vec<f32>], want: &[Vec<f32>], tol: f32, what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let scale = w.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        for (j, (a, b)) in g.iter().zip(w).enumerate() {
            assert!(
                (a - b).abs() <= tol * scale,
                "{what}: leaf {i}[{j}] = {a}, single device {b} (scale {scale})"
            );
        }
    }
}

#[test]
fn gradients_match_one_device_on_the_whole_batch() {
    common::setup();
    let p = mlp(1);
    let batch = data(12, 2);
    let (l1, g1) = value_and_grad(|p: &Mlp| loss(p, &batch))(&p);
    let (l1, g1) = (l1.item(), host(&g1));
    for k in [1, 2, 3] {
        let dp = DataParallel::new(devices(k)).unwrap();
        let params = dp.replicate(&p).unwrap();
        let (l, g) = dp.value_and_grad(loss, &params, &batch).unwrap();
        assert!((l - l1).abs() <= 1e-5 * l1.abs(), "k={k}: loss {l} vs {l1}");
        for (r, copy) in g.iter().enumerate() {
            assert_eq!(copy.0.device(), dp.devices()[r]);
            assert_tree_close(&host(copy), &g1, 1e-5, &format!("k={k} replica {r} grads"));
        }
        dp.check_replicas(&g).unwrap();
    }
}

/// Ten Adam steps on `replicas` devices from the same start; the first copy's parameters.
fn train(replicas: usize, steps: usize) -> (Vec<f32>, Vec<Vec<f32>>) {
    let dp = DataParallel::new(devices(replicas)).unwrap();
    let opt = optim::adam(0.02);
    let p0 = mlp(3);
    let mut params = dp.replicate(&p0).unwrap();
    let mut state = dp.replicate(&opt.init(&p0)).unwrap();
    let mut losses = vec![];
    for s in 0..steps {
        let batch = data(12, 100 + s as u64);
        losses.push(
            dp.step(&opt, loss, &mut params, &mut state, &batch)
                .unwrap(),
        );
    }
    dp.check_replicas(&params).unwrap();
    dp.check_replicas(&state).unwrap();
    assert_eq!(state.first().step(), steps as u64);
    (losses, host(params.first()))
}

#[test]
fn training_matches_one_device_and_repeats_bit_for_bit() {
    common::setup();
    let steps = 10;
    // The single-device run, written out with the plain API.
    let opt = optim::adam(0.02);
    let mut p = mlp(3);
    let mut state = opt.init(&p);
    let mut losses = vec![];
    for s in 0..steps {
        let batch = data(12, 100 + s as u64);
        let (l, g) = value_and_grad(|p: &Mlp| loss(p, &batch))(&p);
        p = opt.step(&p, &g, &mut state);
        losses.push(l.item());
    }
    let want = host(&p);
    assert!(
        losses[steps - 1] < losses[0],
        "training did not reduce the loss: {losses:?}"
    );
    for k in [1, 2, 3] {
        let (l, got) = train(k, steps);
        assert_tree_close(
            &got,
            &want,
            1e-4,
            &format!("k={k} parameters after {steps} steps"),
        );
        for (a, b) in l.iter().zip(&losses) {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs(),
                "k={k}: losses {l:?} vs {losses:?}"
            );
        }
        // Run to run: the same bits.
        let (l2, again) = train(k, steps);
        assert_eq!(l, l2, "k={k}: losses differ between two identical runs");
        assert_eq!(
            got, again,
            "k={k}: parameters differ between two identical runs"
        );
    }
}

#[test]
fn uneven_batches_are_refused_and_change_nothing() {
    common::setup();
    let dp = DataParallel::new(devices(3)).unwrap();
    let opt = optim::sgd(0.1);
    let p0 = mlp(4);
    let mut params = dp.replicate(&p0).unwrap();
    let mut state = dp.replicate(&opt.init(&p0)).unwrap();
    let before = host(params.first());
    let batch = data(10, 5);
    let e = dp
        .step(&opt, loss, &mut params, &mut state, &batch)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("shard") && e.contains("[10, 6]") && e.contains("3 replicas"),
        "{e}"
    );
    assert_eq!(host(params.first()), before);
    assert_eq!(state.first().step(), 0);
    // A scalar has no leading axis to split.
    assert!(dp.shard(&Tensor::scalar(1.0)).is_err());
}

#[test]
fn all_reduce_sums_and_averages_and_refuses_integers() {
    common::setup();
    let dp = DataParallel::new(devices(3)).unwrap();
    // A half-precision leaf where the adapter has f16 (GL has not): summed in f32, cast back.
    let half = if wgrad::device_info().shader_f16 {
        DType::F16
    } else {
        DType::F32
    };
    let t = dp.map(|k, _| {
        (
            Tensor::from_vec(vec![k as f32, 1.0, -2.0 * k as f32], [3]),
            Tensor::scalar(10.0f32.powi(k as i32)).cast(half),
        )
    });
    let sum = dp.all_reduce(&t, Reduce::Sum).unwrap();
    let mean = dp.all_reduce(&t, Reduce::Mean).unwrap();
    for r in 0..3 {
        assert_eq!(sum[r].0.to_vec::<f32>(), vec![3.0, 3.0, -6.0]);
        assert_eq!(sum[r].1.dtype(), half);
        assert_eq!(sum[r].1.to_f32_vec(), vec![111.0]);
        assert_eq!(mean[r].0.to_vec::<f32>(), vec![1.0, 1.0, -2.0]);
        assert_eq!(mean[r].0.device(), dp.devices()[r]);
    }
    let ints: Replicated<Tensor> = dp.map(|_, _| Tensor::from_slice(&[1i32], [1]));
    let e = dp.all_reduce(&ints, Reduce::Sum).unwrap_err().to_string();
    assert!(e.contains("i32") && e.contains("float"), "{e}");
}

#[test]
fn composes_with_jit_and_loops() {
    common::setup();
    // The loss is a jitted function with a loop inside: one trace per device.
    let inner = jit(|(p, x, y): &(Mlp, Tensor, Tensor)| {
        let h = fori_loop(
            0,
            2,
            |_, h: &Tensor| {
                (h.matmul(&p.0.slice_axis(0, 0..6)) + &p.1)
                    .tanh()
                    .slice_axis(1, 0..6)
            },
            x,
        );
        (h.matmul(&p.0).tanh().matmul(&p.2) + &p.3 - y)
            .square()
            .mean_all()
    });
    let f = |p: &Mlp, b: &[Tensor]| inner(&(p.clone(), b[0].clone(), b[1].clone()));
    let p = mlp(6);
    let batch = data(8, 7);
    let (l1, g1) = value_and_grad(|p: &Mlp| f(p, &batch))(&p);
    let dp = DataParallel::new(devices(2)).unwrap();
    let params = dp.replicate(&p).unwrap();
    for _ in 0..2 {
        let (l, g) = dp.value_and_grad(f, &params, &batch).unwrap();
        assert!((l - l1.item()).abs() <= 1e-5 * l1.item().abs());
        assert_tree_close(&host(g.first()), &host(&g1), 1e-5, "jit + fori_loop grads");
    }
}

#[test]
fn a_lost_device_fails_the_step_and_changes_nothing() {
    common::setup();
    let devs = devices(2);
    let dp = DataParallel::new(devs.clone()).unwrap();
    let opt = optim::sgd(0.1);
    let p0 = mlp(8);
    let mut params = dp.replicate(&p0).unwrap();
    let mut state = dp.replicate(&opt.init(&p0)).unwrap();
    let batch = data(8, 9);
    dp.step(&opt, loss, &mut params, &mut state, &batch)
        .unwrap();
    let before = host(params.first());
    let (device, _) = devs[1].wgpu().unwrap();
    device.destroy();
    let e = dp
        .step(&opt, loss, &mut params, &mut state, &batch)
        .unwrap_err()
        .to_string();
    assert!(e.contains("replica 1"), "{e}");
    assert_eq!(host(params.first()), before);
    assert_eq!(state.first().step(), 1);
}
