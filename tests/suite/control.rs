//! scan, fori_loop, while_loop, cond: values against hand-written loops, derivatives of every
//! kind through them, bodies traced once.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::close;
use wgrad::prelude::*;

fn v(t: &Tensor) -> Vec<f32> {
    t.to_vec::<f32>()
}

/// An RNN cell: h' = tanh(x W + h U), y = sum(h').
fn cell(w: &Tensor, u: &Tensor, h: &Tensor, x: &Tensor) -> (Tensor, Tensor) {
    let h = (x.matmul(w) + h.matmul(u)).tanh();
    let y = h.sum_all();
    (h, y)
}

#[test]
fn scan_matches_a_hand_loop_forward_and_reversed_and_traces_once() {
    common::setup();
    let w = Tensor::rand([3, 4], 1) - 0.5;
    let u = Tensor::rand([4, 4], 2) - 0.5;
    let xs = Tensor::rand([5, 2, 3], 3);
    let h0 = Tensor::zeros([2, 4]);
    for reverse in [false, true] {
        let traces = Arc::new(AtomicUsize::new(0));
        let t = traces.clone();
        let (h, ys) = scan(
            |h: &Tensor, x: &Tensor| {
                t.fetch_add(1, Ordering::SeqCst);
                cell(&w, &u, h, x)
            },
            &h0,
            &xs,
            reverse,
        );
        assert_eq!(
            traces.load(Ordering::SeqCst),
            1,
            "the body ran more than once"
        );
        let mut hh = h0.clone();
        let mut want = vec![0.0f32; 5];
        let order: Vec<usize> = if reverse {
            (0..5).rev().collect()
        } else {
            (0..5).collect()
        };
        for t in order {
            let (h2, y) = cell(&w, &u, &hh, &xs.index(t as isize));
            hh = h2;
            want[t] = y.item();
        }
        close(&v(&h), &v(&hh), 1e-6, 1e-6).unwrap();
        assert_eq!(ys.shape(), &[5]);
        close(&v(&ys), &want, 1e-5, 1e-6).unwrap();
    }
}

#[test]
fn derivatives_through_scan_and_fori_loop() {
    common::setup();
    let w = Tensor::rand([3, 4], 11) - 0.5;
    let u = Tensor::rand([4, 4], 12) - 0.5;
    let xs = Tensor::rand([6, 2, 3], 13);
    let loss_scan = |(w, u): &(Tensor, Tensor)| {
        let (h, ys) = scan(
            |h: &Tensor, x: &Tensor| cell(w, u, h, x),
            &Tensor::zeros([2, 4]),
            &xs,
            false,
        );
        h.square().sum_all() + ys.sum_all()
    };
    let loss_hand = |(w, u): &(Tensor, Tensor)| {
        let mut h = Tensor::zeros([2, 4]);
        let mut total = Tensor::scalar(0.0);
        for t in 0..6 {
            let (h2, y) = cell(w, u, &h, &xs.index(t));
            h = h2;
            total = total + y;
        }
        h.square().sum_all() + total
    };
    let p = (w.clone(), u.clone());
    let (gs, gh) = (grad(loss_scan)(&p), grad(loss_hand)(&p));
    close(&v(&gs.0), &v(&gh.0), 1e-5, 1e-6).unwrap();
    close(&v(&gs.1), &v(&gh.1), 1e-5, 1e-6).unwrap();
    // Forward mode and second order through fori_loop: jacfwd(grad(...)).
    let f = |x: &Tensor| {
        fori_loop(
            0,
            4,
            |i, c: &Tensor| (c * 0.9 + i.cast(DType::F32) * 0.1).sin(),
            x,
        )
        .sum_all()
    };
    let x = Tensor::from_vec(vec![0.2f32, -0.7], [2]);
    let h = jacfwd(grad(f))(&x);
    let f_hand = |x: &Tensor| {
        let mut c = x.clone();
        for i in 0..4 {
            c = (c * 0.9 + i as f32 * 0.1).sin();
        }
        c.sum_all()
    };
    close(&v(&h), &v(&jacfwd(grad(f_hand))(&x)), 1e-5, 1e-6).unwrap();
    let r = check_grads(
        |a: &[Tensor]| f(&a[0]),
        std::slice::from_ref(&x),
        2,
        &[Mode::Fwd, Mode::Rev],
        2e-2,
    );
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn scan_inside_vmap_inside_grad() {
    common::setup();
    // Per example: an Euler integration of dx/dt = -k x for 8 steps; the gradient in k of the
    // sum over examples of the final states.
    let x0s = Tensor::from_vec(vec![1.0f32, 2.0, -0.5], [3]);
    let dt = Tensor::full([8], 0.1);
    let loss = |k: &Tensor| {
        let one = |x0: &Tensor| {
            scan(
                |x: &Tensor, dt: &Tensor| (x - &(k * x * dt), ()),
                x0,
                &dt,
                false,
            )
            .0
        };
        vmap(one, 0)(&x0s).sum_all()
    };
    let k = Tensor::scalar(0.7);
    // Closed form: x8 = x0 (1 - 0.1 k)^8, d/dk = x0 * 8 (1 - 0.1k)^7 * (-0.1).
    let s: f32 = 1.0 + 2.0 - 0.5;
    let want = s * 8.0 * (1.0 - 0.07f32).powi(7) * -0.1;
    let got = grad(loss)(&k).item();
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    let value = loss(&k).item();
    assert!((value - s * (1.0 - 0.07f32).powi(8)).abs() < 1e-5);
}

#[test]
fn cond_runs_one_branch_on_the_host_and_selects_when_staged() {
    common::setup();
    // sqrt on one side, zero on the other: the untaken branch's NaN derivative does not leak
    // when the predicate is read on the host (as jax.lax.cond).
    let f = |x: &Tensor| {
        cond(
            &x.greater(&Tensor::scalar(0.0)).reshape([]),
            |x: &Tensor| x.sqrt(),
            |x: &Tensor| x.zeros_like(),
            x,
        )
    };
    let neg = Tensor::scalar(-4.0);
    assert_eq!(f(&neg).item(), 0.0);
    assert_eq!(grad(|x: &Tensor| f(x))(&neg).item(), 0.0);
    let pos = Tensor::scalar(4.0);
    assert_eq!(grad(|x: &Tensor| f(x))(&pos).item(), 0.25);
    // Under vmap: per example.
    let xs = Tensor::from_vec(vec![4.0f32, -1.0, 9.0], [3]);
    assert_eq!(v(&vmap(f, 0)(&xs)), vec![2.0, 0.0, 3.0]);
    // Under jit: both calls right, whatever the first call's branch was.
    let jf = jit(f);
    assert_eq!(jf(&Tensor::scalar(-1.0)).item(), 0.0);
    assert_eq!(jf(&Tensor::scalar(16.0)).item(), 4.0);
    // A predicate that is not a bool scalar is an error; so are branches that disagree
    // where both run (staged: under vmap).
    let e = try_cond(
        &Tensor::scalar(1.0),
        |x: &Tensor| x.clone(),
        |x: &Tensor| x.clone(),
        &Tensor::ones([2]),
    );
    assert!(e.unwrap_err().to_string().contains("bool scalar"));
    let bad = std::panic::catch_unwind(|| {
        vmap(
            |x: &Tensor| {
                cond(
                    &x.greater(&Tensor::scalar(0.0)),
                    |x: &Tensor| x.clone(),
                    |x: &Tensor| x.expand_dims(0),
                    x,
                )
            },
            0,
        )(&Tensor::ones([2]))
    });
    assert!(bad.is_err());
}

#[test]
fn while_loop_forward_mode_and_its_limits() {
    common::setup();
    // Newton's iteration for sqrt(a) from 1 until converged; jvp in a gives d sqrt(a)/da.
    let sqrt = |a: &Tensor| {
        let (x, _) = while_loop(
            |(x, _a): &(Tensor, Tensor)| {
                (x.square() - _a)
                    .abs()
                    .greater(&Tensor::scalar(1e-5))
                    .reshape([])
            },
            |(x, a): &(Tensor, Tensor)| ((x + a / x) * 0.5, a.clone()),
            &(Tensor::scalar(1.0), a.clone()),
        );
        x
    };
    let a = Tensor::scalar(2.0);
    assert!((sqrt(&a).item() - 2f32.sqrt()).abs() < 1e-5);
    let (_, t) = jvp(sqrt, &a, &Tensor::scalar(1.0));
    assert!((t.item() - 0.5 / 2f32.sqrt()).abs() < 1e-4, "{}", t.item());
    // Checking the predicate every 3 steps gives the same result.
    let opts = WhileOptions {
        check_every: 3,
        ..Default::default()
    };
    let x = while_loop_with(
        |c: &Tensor| c.greater(&Tensor::scalar(1.0)),
        |c: &Tensor| c * 0.5,
        &Tensor::scalar(10.0),
        opts,
    )
    .unwrap();
    assert_eq!(x.item(), 0.625);
    // Reverse mode is refused with a clear message.
    let r = std::panic::catch_unwind(|| grad(|a: &Tensor| sqrt(a))(&Tensor::scalar(2.0)).item());
    let msg = match r {
        Err(e) => e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
        Ok(_) => panic!("reverse mode through while_loop did not fail"),
    };
    assert!(
        msg.contains("while_loop") && msg.contains("reverse-mode"),
        "{msg}"
    );
    // Inside vmap it runs while any example's predicate holds (tests/suite/while_loops.rs).
    let halved = vmap(
        |x: &Tensor| {
            while_loop(
                |c: &Tensor| c.greater(&Tensor::scalar(1.0)).reshape([]),
                |c: &Tensor| c * 0.5,
                x,
            )
        },
        0,
    )(&Tensor::from_vec(vec![3.0f32, 0.5], [2]));
    assert_eq!(halved.to_vec::<f32>(), vec![0.75, 0.5]);
}

#[test]
fn a_long_scan_stacks_its_outputs() {
    common::setup();
    // 300 steps: the outputs are stacked as a tree of at most 8-way stacks (one 300-way
    // concatenation would bind 300 buffers in one kernel).
    let xs = Tensor::rand([300, 2], 77);
    let (total, partial) = scan(
        |c: &Tensor, x: &Tensor| {
            let c = c + x;
            (c.clone(), c.clone())
        },
        &Tensor::zeros([2]),
        &xs,
        false,
    );
    let host = v(&xs);
    let mut acc = [0.0f32; 2];
    let mut want = vec![];
    for row in host.chunks(2) {
        acc[0] += row[0];
        acc[1] += row[1];
        want.extend_from_slice(&acc);
    }
    assert_eq!(partial.shape(), &[300, 2]);
    close(&v(&partial), &want, 1e-5, 1e-5).unwrap();
    close(&v(&total), &acc, 1e-5, 1e-5).unwrap();
}
