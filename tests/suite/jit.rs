//! jit: traced once per signature, replayed with new arguments; the same values as calling
//! the function directly, under transforms inside and outside.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::close;
use wgrad::prelude::*;

fn v(t: &Tensor) -> Vec<f32> {
    t.to_vec::<f32>()
}

#[test]
fn traced_once_per_signature_and_correct_for_every_call() {
    common::setup();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let data = Tensor::from_vec(vec![1.0f32, -2.0, 0.5, 3.0, 1.5, -1.0], [3, 2]);
    let data_for_f = data.clone();
    let loss_and_grad = move |(w, b): &(Tensor, Tensor)| {
        c.fetch_add(1, Ordering::SeqCst);
        value_and_grad(|p: &(Tensor, Tensor)| {
            (data_for_f.matmul(&p.0) + &p.1).tanh().square().sum_all()
        })(&(w.clone(), b.clone()))
    };
    let direct = loss_and_grad.clone();
    let jitted = jit(loss_and_grad);
    for k in 0..4 {
        let w = Tensor::rand([2, 3], 10 + k);
        let b = Tensor::rand([3], 20 + k);
        let (l1, g1) = jitted(&(w.clone(), b.clone()));
        let (l2, g2) = direct(&(w, b));
        assert_eq!(l1.item(), l2.item(), "call {k}");
        assert_eq!(v(&g1.0), v(&g2.0));
        assert_eq!(v(&g1.1), v(&g2.1));
    }
    // 1 trace + 4 direct calls.
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    // A new shape traces again, and the old one is still cached.
    let (l, _) = jitted(&(Tensor::rand([2, 5], 1), Tensor::rand([5], 2)));
    assert!(l.item().is_finite());
    jitted(&(Tensor::rand([2, 3], 3), Tensor::rand([3], 4)));
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    let _ = data;
}

#[test]
fn transforms_of_a_jitted_function_and_jit_of_transforms() {
    common::setup();
    let f = |x: &Tensor| (x.sin() * x).sum_all();
    let jf = jit(f);
    let x = Tensor::from_vec(vec![0.3f32, -1.2, 2.0], [3]);
    // grad of jit(f) differentiates the replayed graph.
    let g = grad(|x: &Tensor| jf(x))(&x);
    close(&v(&g), &v(&grad(f)(&x)), 1e-6, 1e-6).unwrap();
    // jit of hessian, and of vmap of grad, on changing inputs.
    let jh = jit(hessian(f));
    let jv = jit(vmap(grad(f), 0));
    for k in 0..3 {
        let x = Tensor::rand([3], 30 + k);
        close(&v(&jh(&x)), &v(&hessian(f)(&x)), 1e-6, 1e-6).unwrap();
        let xs = Tensor::rand([4, 3], 40 + k);
        close(&v(&jv(&xs)), &v(&vmap(grad(f), 0)(&xs)), 1e-6, 1e-6).unwrap();
    }
}

#[test]
fn what_the_trace_freezes_and_what_it_does_not() {
    common::setup();
    // A host scalar and a random key inside are frozen at the first call; tensor arguments
    // are not.
    let mut scale = 2.0f32;
    let jf = {
        let s = scale;
        jit(move |x: &Tensor| x * s + wgrad::random::uniform(wgrad::random::key(7), [2]))
    };
    scale = 100.0;
    let a = jf(&Tensor::ones([2]));
    let b = jf(&Tensor::zeros([2]));
    let noise = wgrad::random::uniform(wgrad::random::key(7), [2]);
    close(&v(&a), &v(&(noise.clone() + 2.0)), 1e-6, 1e-6).unwrap();
    close(&v(&b), &v(&noise), 1e-6, 1e-6).unwrap();
    assert_eq!(scale, 100.0);
    // An output that does not depend on the arguments.
    let jc = jit(|(_x, c): &(Tensor, Tensor)| (Tensor::scalar(3.0).exp(), c * 2.0));
    for k in 0..2 {
        let (e, c) = jc(&(Tensor::ones([1]), Tensor::full([2], k as f32)));
        assert!((e.item() - 3f32.exp()).abs() < 1e-4);
        assert_eq!(v(&c), vec![2.0 * k as f32; 2]);
    }
}

#[test]
fn a_jitted_step_in_a_loop_matches_the_direct_loop() {
    common::setup();
    let x = Tensor::rand([64, 8], 1);
    let y = Tensor::rand([64, 1], 2);
    let step = jit(|(w, lr): &(Tensor, Tensor)| {
        let g = grad(|w: &Tensor| (x.matmul(w) - &y).square().mean_all())(w);
        w - g * lr
    });
    let mut w = Tensor::zeros([8, 1]);
    let mut w_direct = Tensor::zeros([8, 1]);
    for k in 0..20 {
        let lr = Tensor::scalar(0.5 / (1.0 + k as f32));
        w = step(&(w, lr.clone()));
        w.realize();
        let g = grad(|w: &Tensor| (x.matmul(w) - &y).square().mean_all())(&w_direct);
        w_direct = &w_direct - g * &lr;
        w_direct.realize();
    }
    close(&v(&w), &v(&w_direct), 1e-6, 1e-6).unwrap();
}

#[test]
fn a_host_read_while_staged_is_an_error_not_a_frozen_branch() {
    common::setup();
    // A branch on a value read on the host: under jit it would be decided once, at the first
    // call, and silently replayed for every later input.
    let f = jit(|x: &Tensor| {
        if x.sum_all().item() > 0.0 {
            x * 1.0
        } else {
            x * -2.0
        }
    });
    let run = |v: f32| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            f(&Tensor::from_vec(vec![v; 2], [2])).to_vec::<f32>()
        }))
    };
    for v in [1.0f32, -1.0] {
        match run(v) {
            Ok(out) => panic!("jit read a value on the host and returned {out:?} for {v}"),
            Err(p) => {
                let msg = p.downcast_ref::<String>().cloned().unwrap_or_default();
                assert!(msg.contains("host") && msg.contains("jit"), "{msg}");
            }
        }
    }
    // The fallible read returns the error (inside vmap too); outside, reads work as ever.
    let inside = std::cell::RefCell::new(None);
    let _ = vmap(
        |x: &Tensor| {
            *inside.borrow_mut() = Some(x.try_to_vec::<f32>());
            x * 2.0
        },
        0,
    )(&Tensor::ones([3, 2]));
    let read = inside.borrow_mut().take().expect("the function ran");
    assert!(read.is_err(), "a read inside vmap gave {read:?}");
    assert_eq!(Tensor::ones([2]).sum_all().item(), 2.0);
    // Branching with `cond` or `where_` is how it is done.
    let g = jit(|x: &Tensor| {
        where_(
            &x.sum_all().greater(&Tensor::scalar(0.0)),
            &(x * 1.0),
            &(x * -2.0),
        )
    });
    assert_eq!(
        g(&Tensor::from_vec(vec![1.0f32; 2], [2])).to_vec::<f32>(),
        vec![1.0, 1.0]
    );
    assert_eq!(
        g(&Tensor::from_vec(vec![-1.0f32; 2], [2])).to_vec::<f32>(),
        vec![2.0, 2.0]
    );
}

#[test]
fn jit_replays_the_numerics_ops_for_new_inputs() {
    common::setup();
    // Linear algebra, sorting, scans, scatter, einsum, FFT and special functions under jit,
    // with a gradient: the second call (a replay) must follow its new input.
    let f = |x: &Tensor| {
        let a = x.matmul(&x.mt()) + Tensor::eye(4) * 2.0;
        let l = wgrad::linalg::cholesky(&a);
        let s = wgrad::linalg::cho_solve(&l, &x.slice_axis(1, 0..1)).sum_all();
        let srt = x.sort(1).cumprod(1).sum_all() * 0.01;
        let sc =
            Tensor::zeros([3]).scatter_add([0, 2, 2, 1], &x.slice_axis(1, 0..1).squeeze(-1), 0);
        let (re, _) = wgrad::fft::rfft(x);
        let e = einsum("ij,ij->", &[x, x]);
        s + srt + sc.sum_all() + re.sum_all() + e + x.abs().lgamma().sum_all() * 0.1
    };
    let vg = |x: &Tensor| value_and_grad(f)(x);
    let jvg = jit(vg);
    for seed in [1u64, 2, 3] {
        let x = Tensor::rand([4, 6], seed) + 0.5;
        let (v, g) = vg(&x);
        let (jv, jg) = jvg(&x);
        assert!(
            (v.item() - jv.item()).abs() < 1e-4 * v.item().abs().max(1.0),
            "seed {seed}"
        );
        common::close(&jg.to_vec::<f32>(), &g.to_vec::<f32>(), 1e-4, 1e-4).unwrap();
    }
}
