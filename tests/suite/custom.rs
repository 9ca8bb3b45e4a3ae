//! custom_vjp, custom_jvp and checkpoint: the custom rule (not autodiff of the body) is what
//! runs, under every transform and nesting; check_grads on correct rules; checkpoint's memory.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::close;
use wgrad::prelude::*;

fn v(t: &Tensor) -> Vec<f32> {
    t.to_vec::<f32>()
}

#[test]
fn custom_vjp_rule_is_what_runs() {
    // The rule says d/dx x^2 = 10 x (deliberately not 2x), and counts its calls.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let f = custom_vjp(
        |x: &Tensor| (x.square(), x.clone()),
        move |x: &Tensor, ct: &Tensor| {
            c.fetch_add(1, Ordering::SeqCst);
            ct * x * 10.0
        },
    );
    let x = Tensor::from_vec(vec![1.0f32, -2.0], [2]);
    assert_eq!(v(&f(&x)), vec![1.0, 4.0]);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "bwd ran without differentiation"
    );
    let g = grad(|x: &Tensor| f(x).sum_all())(&x);
    assert_eq!(v(&g), vec![10.0, -20.0]);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // vjp with a cotangent; vmap of grad (per example).
    let (_, pb) = vjp(|x: &Tensor| f(x), &x);
    assert_eq!(
        v(&pb.call(&Tensor::from_vec(vec![0.5f32, 1.0], [2]))),
        vec![5.0, -20.0]
    );
    let xs = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [3, 2]);
    let per = vmap(grad(|x: &Tensor| f(x).sum_all()), 0)(&xs);
    assert_eq!(v(&per), vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0]);
    // Second order: jacfwd of the custom gradient differentiates bwd's graph: d(10 x)/dx.
    let h = jacfwd(grad(|x: &Tensor| f(x).sum_all()))(&x);
    assert_eq!(v(&h), vec![10.0, 0.0, 0.0, 10.0]);
    let h = hessian(|x: &Tensor| f(x).sum_all())(&x);
    assert_eq!(v(&h), vec![10.0, 0.0, 0.0, 10.0]);
    // Forward mode falls back to the body's own derivative (2x).
    let (_, t) = jvp(|x: &Tensor| f(x), &x, &Tensor::ones([2]));
    assert_eq!(v(&t), vec![2.0, -4.0]);
}

#[test]
fn custom_vjp_on_trees_with_residual_trees() {
    // f(a, b) = a * sin(b) with residuals (a, cos b, sin b): a correct rule.
    let f = custom_vjp(
        |(a, b): &(Tensor, Tensor)| (a * b.sin(), (a.clone(), b.cos(), b.sin())),
        |(a, cb, sb): &(Tensor, Tensor, Tensor), ct: &Tensor| (ct * sb, ct * a * cb),
    );
    let a = Tensor::from_vec(vec![0.5f32, -1.5, 2.0], [3]);
    let b = Tensor::from_vec(vec![0.3f32, 1.1, -0.7], [3]);
    let g = grad(|p: &(Tensor, Tensor)| f(p).square().sum_all())(&(a.clone(), b.clone()));
    let g_auto =
        grad(|(a, b): &(Tensor, Tensor)| (a * b.sin()).square().sum_all())(&(a.clone(), b.clone()));
    close(&v(&g.0), &v(&g_auto.0), 1e-6, 1e-6).unwrap();
    close(&v(&g.1), &v(&g_auto.1), 1e-6, 1e-6).unwrap();
    let r = check_grads(
        |xs: &[Tensor]| f(&(xs[0].clone(), xs[1].clone())).sum_all(),
        &[a.clone(), b.clone()],
        2,
        &[Mode::Rev],
        2e-2,
    );
    assert!(r.is_ok(), "{r:?}");
    // vmap over the tree, unbatched b.
    let aa = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]);
    let per = vmap2(
        |a: &Tensor, b: &Tensor| grad(|a: &Tensor| f(&(a.clone(), b.clone())).sum_all())(a),
        vec![Some(0), None],
    )(&aa, &b);
    let sb = v(&b.sin());
    assert_eq!(per.shape(), &[2, 3]);
    close(&v(&per), &[sb.clone(), sb].concat(), 1e-6, 1e-6).unwrap();
}

#[test]
fn custom_jvp_rule_is_what_runs_forward_and_transposed() {
    // f(x, y) = x * y with a rule that doubles y's part: t_x y + 2 x t_y.
    let f = custom_jvp(
        |(x, y): &(Tensor, Tensor)| x * y,
        |(x, y): &(Tensor, Tensor), (tx, ty): &(Tensor, Tensor)| tx * y + x * ty * 2.0,
    );
    let x = Tensor::from_vec(vec![1.5f32, -2.0], [2]);
    let y = Tensor::from_vec(vec![3.0f32, 0.5], [2]);
    let p = (x.clone(), y.clone());
    assert_eq!(v(&f(&p)), vec![4.5, -1.0]);
    let (_, t) = jvp(
        |p: &(Tensor, Tensor)| f(p),
        &p,
        &(Tensor::zeros([2]), Tensor::ones([2])),
    );
    assert_eq!(v(&t), vec![3.0, -4.0]);
    let g = grad(|p: &(Tensor, Tensor)| f(p).sum_all())(&p);
    assert_eq!(v(&g.0), vec![3.0, 0.5]);
    assert_eq!(v(&g.1), vec![3.0, -4.0]);
    // Per example under vmap, in both modes.
    let xs = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]);
    let gy = vmap2(
        |x: &Tensor, y: &Tensor| grad(|y: &Tensor| f(&(x.clone(), y.clone())).sum_all())(y),
        vec![Some(0), None],
    )(&xs, &y);
    assert_eq!(v(&gy), vec![2.0, 4.0, 6.0, 8.0]);
    let jf = vmap(
        |x: &Tensor| jacfwd(|y: &Tensor| f(&(x.clone(), y.clone())).sum_all())(&y),
        0,
    )(&xs);
    assert_eq!(v(&jf), vec![2.0, 4.0, 6.0, 8.0]);
}

#[test]
fn straight_through_round_and_a_correct_rule_passes_check_grads() {
    let ste = custom_jvp(|x: &Tensor| x.round(), |_: &Tensor, t: &Tensor| t.clone());
    let x = Tensor::from_vec(vec![0.4f32, 1.6, -2.2], [3]);
    let g = grad(|x: &Tensor| ste(x).sum_all())(&x);
    assert_eq!(v(&g), vec![1.0, 1.0, 1.0]);
    // A correct custom JVP (sin) agrees with finite differences to second order.
    let sin = custom_jvp(|x: &Tensor| x.sin(), |x: &Tensor, t: &Tensor| x.cos() * t);
    let r = check_grads(
        |xs: &[Tensor]| sin(&xs[0]).square().sum_all(),
        std::slice::from_ref(&x),
        2,
        &[Mode::Fwd, Mode::Rev],
        2e-2,
    );
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn checkpoint_matches_plain_autodiff_everywhere() {
    let plain = |(w, x): &(Tensor, Tensor)| (x.matmul(w)).tanh().sin();
    let block = checkpoint(plain);
    let w = Tensor::from_vec(vec![0.3f32, -0.5, 0.8, 0.1, 0.2, -0.9], [3, 2]);
    let x = Tensor::from_vec(vec![1.0f32, -1.0, 0.5, 2.0, 0.0, -0.3], [2, 3]);
    let p = (w.clone(), x.clone());
    let loss_c = |p: &(Tensor, Tensor)| block(p).square().sum_all();
    let loss_p = |p: &(Tensor, Tensor)| plain(p).square().sum_all();
    let (gc, gp) = (grad(loss_c)(&p), grad(loss_p)(&p));
    close(&v(&gc.0), &v(&gp.0), 1e-6, 1e-6).unwrap();
    close(&v(&gc.1), &v(&gp.1), 1e-6, 1e-6).unwrap();
    let hc = hessian(|w: &Tensor| loss_c(&(w.clone(), x.clone())))(&w);
    let hp = hessian(|w: &Tensor| loss_p(&(w.clone(), x.clone())))(&w);
    close(&v(&hc), &v(&hp), 1e-5, 1e-5).unwrap();
    let xs = Tensor::rand([4, 2, 3], 3);
    let per_c = vmap(
        |x: &Tensor| grad(|w: &Tensor| loss_c(&(w.clone(), x.clone())))(&w),
        0,
    )(&xs);
    let per_p = vmap(
        |x: &Tensor| grad(|w: &Tensor| loss_p(&(w.clone(), x.clone())))(&w),
        0,
    )(&xs);
    close(&v(&per_c), &v(&per_p), 1e-5, 1e-5).unwrap();
}

#[test]
fn a_custom_function_closing_over_a_differentiated_tensor_is_refused_not_a_silent_zero() {
    common::setup();
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [4]);
    let w0 = Tensor::from_vec(vec![0.5f32, -0.25, 1.0, -0.5], [4]);
    let message = |r: std::thread::Result<Tensor>| match r {
        Ok(g) => panic!("a gradient of {:?} through a closure", g.to_vec::<f32>()),
        Err(p) => p.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    // Each gave [0, 0, 0, 0] for d/dw sum(sin(x * w)) = x * cos(x * w).
    let through_checkpoint = std::panic::catch_unwind(|| {
        grad(|w: &Tensor| {
            let w = w.clone();
            checkpoint(move |x: &Tensor| (x * &w).sin())(&x).sum_all()
        })(&w0)
    });
    let through_jvp = std::panic::catch_unwind(|| {
        grad(|w: &Tensor| {
            let w = w.clone();
            let f = custom_jvp(
                move |x: &Tensor| (x * &w).sin(),
                |x: &Tensor, t: &Tensor| t * x.cos(),
            );
            f(&x).sum_all()
        })(&w0)
    });
    let through_vjp = std::panic::catch_unwind(|| {
        grad(|w: &Tensor| {
            let w = w.clone();
            let f = custom_vjp(
                move |x: &Tensor| ((x * &w).sin(), x.clone()),
                |r: &Tensor, ct: &Tensor| ct * r.cos(),
            );
            f(&x).sum_all()
        })(&w0)
    });
    for (kind, r) in [
        ("checkpoint", through_checkpoint),
        ("custom_jvp", through_jvp),
        ("custom_vjp", through_vjp),
    ] {
        let msg = message(r);
        assert!(
            msg.contains(kind) && msg.contains("argument"),
            "{kind}: {msg}"
        );
    }
    // Passing the tensor as an argument differentiates it (here with checkpoint).
    let g = grad(|w: &Tensor| {
        checkpoint(|a: &(Tensor, Tensor)| (&a.0 * &a.1).sin())(&(x.clone(), w.clone())).sum_all()
    })(&w0)
    .to_vec::<f32>();
    let want: Vec<f32> = (0..4)
        .map(|i| {
            let (a, b) = ([1.0f32, 2.0, 3.0, 4.0][i], [0.5f32, -0.25, 1.0, -0.5][i]);
            a * (a * b).cos()
        })
        .collect();
    assert!(
        common::close(&g, &want, 1e-5, 1e-6).is_ok(),
        "{g:?} vs {want:?}"
    );
    // Closing over a constant (not differentiated) is fine.
    let c = Tensor::from_vec(vec![2.0f32; 4], [4]);
    let f = checkpoint(move |x: &Tensor| x * &c);
    assert_eq!(
        grad(|x: &Tensor| f(x).sum_all())(&x).to_vec::<f32>(),
        vec![2.0; 4]
    );
}

#[test]
fn a_bwd_returning_the_wrong_number_of_cotangents_is_an_error_from_try_transforms() {
    common::setup();
    // Two argument leaves, one cotangent: an error from the try_ form, not a panic.
    let f = custom_vjp(
        |a: &Vec<Tensor>| ((&a[0] * &a[1]).sum_all(), ()),
        |_: &(), ct: &Tensor| vec![ct.clone()],
    );
    let args = vec![Tensor::ones([2]), Tensor::ones([2])];
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wgrad::try_value_and_grad_aux(|a: &Vec<Tensor>| (f(a), ()), Default::default())(&args)
    }));
    let msg = match r.expect("try_value_and_grad_aux panicked") {
        Ok(_) => panic!("a gradient from a bwd of the wrong arity"),
        Err(e) => e.to_string(),
    };
    assert!(
        msg.contains("custom_vjp") && msg.contains("1 cotangents for 2"),
        "{msg}"
    );
}
