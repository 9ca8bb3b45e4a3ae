//! The transforms: nesting without perturbation confusion, structured arguments, options,
//! check_grads, and the errors each transform gives.

use crate::common;

use common::Mlp;
use common::assert_close;
use wgrad::prelude::*;

fn t(v: &[f32], s: &[usize]) -> Tensor {
    Tensor::from_slice(v, s)
}

#[test]
fn nested_derivatives_have_no_perturbation_confusion() {
    common::setup();
    // d/dx [x · d/dy (x + y)] = 1, at any x (the inner derivative must not see x).
    let x = Tensor::scalar(3.0);
    let outer = grad(|x: &Tensor| {
        let inner = grad(|y: &Tensor| x + y)(&Tensor::scalar(7.0));
        x * inner
    })(&x);
    assert_eq!(outer.item(), 1.0);
    // The same through jvp-of-jvp.
    let (_, d) = jvp(
        |x: &Tensor| {
            let (_, dy) = jvp(
                |y: &Tensor| x * y,
                &Tensor::scalar(2.0),
                &Tensor::scalar(1.0),
            );
            x * dy
        },
        &x,
        &Tensor::scalar(1.0),
    );
    assert_eq!(d.item(), 6.0); // d/dx x·x = 2x
    // grad of grad: d²/dx² x³ = 6x.
    let g2 = grad(grad(|x: &Tensor| x.pow(Tensor::scalar(3.0))))(&Tensor::scalar(2.0));
    assert!((g2.item() - 12.0).abs() < 1e-4);
    // Third order by three nested grads: d³/dx³ sin = -cos.
    let g3 = grad(grad(grad(|x: &Tensor| x.sin())))(&Tensor::scalar(0.5));
    assert!((g3.item() + 0.5f32.cos()).abs() < 1e-5);
}

#[test]
fn mixed_modes_compose() {
    common::setup();
    let f = |x: &Tensor| (x.sin() * x).sum_all();
    let x = t(&[0.5, -1.0, 2.0], &[3]);
    let want: Vec<f32> = [0.5f32, -1.0, 2.0]
        .iter()
        .map(|v| 2.0 * v.cos() - v * v.sin())
        .collect();
    let diag = |h: &Tensor| (h * Tensor::eye(3)).sum_axes(1).to_vec::<f32>();
    for (name, h) in [
        ("jacfwd(jacrev)", jacfwd(jacrev(f))(&x)),
        ("jacrev(jacfwd)", jacrev(jacfwd(f))(&x)),
        ("jacrev(grad)", jacrev(grad(f))(&x)),
        ("jacfwd(grad)", jacfwd(grad(f))(&x)),
        ("hessian", hessian(f)(&x)),
    ] {
        assert_eq!(h.shape(), &[3, 3], "{name}");
        assert!(
            common::close(&diag(&h), &want, 1e-5, 1e-5).is_ok(),
            "{name}: {:?}",
            diag(&h)
        );
        assert!(
            h.sum_all().item() - want.iter().sum::<f32>() < 1e-4,
            "{name} off-diagonal"
        );
    }
    // jvp of vjp: the pullback is linear in the cotangent.
    let (_, tout) = jvp(
        |ct: &Tensor| vjp(|x: &Tensor| x.square(), &x).1.call(ct),
        &Tensor::ones([3]),
        &Tensor::ones([3]),
    );
    assert_close(&tout, &[3], &[1.0, -2.0, 4.0], 1e-6);
    // vmap of grad: per-example gradients, and vmap of jacrev.
    let xs = t(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &[2, 3]);
    let pe = vmap(grad(f), 0)(&xs);
    let want: Vec<f32> = (0..6)
        .map(|k| (k as f32).sin() + k as f32 * (k as f32).cos())
        .collect();
    assert_close(&pe, &[2, 3], &want, 1e-5);
    let jr = vmap(jacrev(|x: &Tensor| x.square()), 0)(&xs);
    assert_eq!(jr.shape(), &[2, 3, 3]);
    assert_eq!(jr.sum_all().item(), 30.0);
    // grad of a function that vmaps inside.
    let g =
        grad(|w: &Tensor| vmap(|x: &Tensor| (x * w).sum_all(), 0)(&xs).sum_all())(&Tensor::ones([
            3,
        ]));
    assert_close(&g, &[3], &[3.0, 5.0, 7.0], 0.0);
}

#[test]
fn stop_gradient_is_respected_everywhere() {
    common::setup();
    let f = |x: &Tensor| (x * x.stop_gradient()).sum_all();
    let x = t(&[2.0, 3.0], &[2]);
    assert_close(&grad(f)(&x), &[2], &[2.0, 3.0], 0.0);
    assert_close(&jvp(f, &x, &Tensor::ones([2])).1, &[], &[5.0], 0.0);
    assert_close(&jacfwd(f)(&x), &[2], &[2.0, 3.0], 0.0);
    assert_close(&jacrev(f)(&x), &[2], &[2.0, 3.0], 0.0);
    assert_close(&hessian(f)(&x), &[2, 2], &[0.0; 4], 0.0);
    // vmap passes through stop_gradient.
    assert_close(
        &vmap(|x: &Tensor| x.stop_gradient() * 2.0, 0)(&x),
        &[2],
        &[4.0, 6.0],
        0.0,
    );
}

#[test]
fn structured_arguments_come_back_in_their_own_shape() {
    common::setup();
    let p = Mlp {
        w1: Tensor::randn([3, 4], 1) * 0.5,
        b1: Tensor::zeros([4]),
        w2: Tensor::randn([4, 1], 2) * 0.5,
    };
    let (x, y) = (Tensor::randn([5, 3], 3), Tensor::randn([5, 1], 4));
    let (loss, g) = value_and_grad(|p: &Mlp| p.loss(&x, &y))(&p);
    assert_eq!(g.w1.shape(), &[3, 4]);
    assert_eq!(g.b1.shape(), &[4]);
    assert_eq!(g.w2.shape(), &[4, 1]);
    // Against finite differences on one weight.
    let eps = 1e-2;
    let bump = |s: f32| {
        let mut e = vec![0.0f32; 12];
        e[5] = s;
        let q = Mlp {
            w1: &p.w1 + Tensor::from_vec(e, [3, 4]),
            ..p.clone()
        };
        q.loss(&x, &y).item()
    };
    let fd = (bump(eps) - bump(-eps)) / (2.0 * eps);
    assert!(
        (g.w1.to_vec::<f32>()[5] - fd).abs() < 1e-3,
        "{} vs {fd}",
        g.w1.to_vec::<f32>()[5]
    );
    // SGD on the struct decreases the loss.
    let mut q = p.clone();
    for _ in 0..20 {
        let g = grad(|p: &Mlp| p.loss(&x, &y))(&q);
        q = Mlp {
            w1: &q.w1 - &g.w1 * 0.2,
            b1: &q.b1 - &g.b1 * 0.2,
            w2: &q.w2 - &g.w2 * 0.2,
        };
        wgrad::realize(&q.leaves());
    }
    assert!(q.loss(&x, &y).item() < loss.item());
    // Tuples, Vecs and arrays.
    let (ga, gb) = grad(|(a, b): &(Tensor, Tensor)| (a * b).sum_all())(&(
        Tensor::full([2], 2.0),
        Tensor::full([2], 5.0),
    ));
    assert_eq!(
        (ga.to_vec::<f32>(), gb.to_vec::<f32>()),
        (vec![5.0, 5.0], vec![2.0, 2.0])
    );
    let gv = grad(|v: &Vec<Tensor>| {
        v.iter()
            .map(|t| t.sum_all())
            .fold(Tensor::scalar(0.0), |a, b| a + b)
    })(&vec![Tensor::ones([2]), Tensor::ones([3])]);
    assert_eq!(gv.len(), 2);
    let ga = grad(|a: &[Tensor; 2]| (&a[0] * &a[1]).sum_all())(&[
        Tensor::ones([1]),
        Tensor::full([1], 4.0),
    ]);
    assert_eq!(ga[0].item(), 4.0);
    // vmap over a struct-free tuple with a per-argument prefix.
    let ys = vmap(|(x, w): &(Tensor, Tensor)| x.matmul(w), [Some(0), None])(&(
        Tensor::ones([7, 3]),
        Tensor::ones([3, 2]),
    ));
    assert_eq!(ys.shape(), &[7, 2]);
}

#[test]
fn options_aux_argnums_and_pullbacks() {
    common::setup();
    let x = t(&[1.0, 2.0], &[2]);
    // create_graph = false detaches; realize = true materializes.
    let g = grad_with(
        |x: &Tensor| x.square().sum_all(),
        GradOptions {
            create_graph: false,
            realize: true,
        },
    )(&x);
    assert!(g.is_realized());
    let h = grad(|x: &Tensor| {
        grad_with(
            |y: &Tensor| y.square().sum_all(),
            GradOptions {
                create_graph: false,
                realize: false,
            },
        )(x)
        .sum_all()
    })(&x);
    assert_close(&h, &[2], &[0.0, 0.0], 0.0);
    // has_aux
    let (v, g, aux) = value_and_grad_aux(|x: &Tensor| (x.sum_all(), x * 10.0))(&x);
    assert_eq!(v.item(), 3.0);
    assert_close(&g, &[2], &[1.0, 1.0], 0.0);
    assert_close(&aux, &[2], &[10.0, 20.0], 0.0);
    let (y, pb, aux) = vjp_aux(|x: &Tensor| (x.exp(), 5), &x);
    assert_eq!(aux, 5);
    // The pullback can be called many times, even after the output was realized.
    y.realize();
    let a = pb.call(&Tensor::ones([2]));
    let b = pb.call(&(Tensor::ones([2]) * 2.0));
    assert_close(&(b - a * 2.0), &[2], &[0.0, 0.0], 1e-6);
    // argnums
    let f = |a: &[Tensor]| (&a[0] * &a[1] * &a[2]).sum_all();
    let args = [
        Tensor::scalar(2.0),
        Tensor::scalar(3.0),
        Tensor::scalar(5.0),
    ];
    let g = grad_argnums(f, [2, 0])(&args);
    assert_eq!((g[0].item(), g[1].item()), (6.0, 15.0));
    let (v, g) = value_and_grad_argnums(f, 1)(&args);
    assert_eq!((v.item(), g.len(), g[0].item()), (30.0, 1, 10.0));
    // Jacobians of a function with two outputs, with respect to the second argument.
    let f2 = |a: &[Tensor]| vec![&a[0] * &a[1], a[1].sum_all()];
    let xy = [t(&[1.0, 2.0], &[2]), t(&[3.0, 4.0], &[2])];
    for j in [jacrev_argnums(f2, 1)(&xy), jacfwd_argnums(f2, 1)(&xy)] {
        assert_close(&j[0][0], &[2, 2], &[1.0, 0.0, 0.0, 2.0], 0.0);
        assert_close(&j[1][0], &[2], &[1.0, 1.0], 0.0);
    }
    // jacrev of a matrix function: shape (*out, *in).
    let j = jacrev(|x: &Tensor| x.matmul(&Tensor::ones([3, 2])))(&Tensor::ones([4, 3]));
    assert_eq!(j.shape(), &[4, 2, 4, 3]);
    // vmap with axis_size and an unbatched output.
    let opts = VmapOptions {
        in_axes: None.into(),
        axis_size: Some(3),
        ..Default::default()
    };
    assert_eq!(vmap_with(|x: &Tensor| x * 2.0, opts)(&x).shape(), &[3, 2]);
}

#[test]
fn check_grads_catches_a_wrong_rule() {
    common::setup();
    let x = t(&[0.3, -0.8, 1.1], &[3]);
    // A correct function passes, to second order.
    let ok = check_grads(
        |a: &[Tensor]| (a[0].sin() * a[0].exp()).sum_all(),
        std::slice::from_ref(&x),
        2,
        &[Mode::Fwd, Mode::Rev],
        1e-2,
    );
    assert!(ok.is_ok(), "{ok:?}");
    // sin with a deliberately wrong derivative (sin instead of cos): value sin(x), slope sin(x).
    let wrong = |a: &[Tensor]| {
        let x = &a[0];
        let slope = x.sin().stop_gradient();
        (x.sin().stop_gradient() + (x - x.stop_gradient()) * slope).sum_all()
    };
    let err = check_grads(wrong, std::slice::from_ref(&x), 1, &[Mode::Fwd], 1e-2)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("jvp check failed") && err.contains("argument 0"),
        "{err}"
    );
}

#[test]
fn transform_errors_are_clear_and_harmless() {
    common::setup();
    let x = t(&[1.0, 2.0], &[2]);
    let msg = |r: std::thread::Result<Tensor>| -> String {
        let p = r.unwrap_err();
        p.downcast_ref::<String>().cloned().unwrap_or_default()
    };
    // grad of a non-scalar
    let e = try_value_and_grad_aux(|x: &Tensor| (x * 2.0, ()), GradOptions::default())(&x)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("grad:") && e.contains("scalar") && e.contains("[2]"),
        "{e}"
    );
    let e = msg(std::panic::catch_unwind(|| grad(|x: &Tensor| x * 2.0)(&x)));
    assert!(e.contains("grad") && e.contains("scalar"), "{e}");
    // argnums out of range
    let e = try_value_and_grad_argnums(
        |a: &[Tensor]| a[0].sum_all(),
        [0, 3],
        GradOptions::default(),
    )(std::slice::from_ref(&x))
    .unwrap_err()
    .to_string();
    assert!(e.contains("argnums 3") && e.contains("1 arguments"), "{e}");
    // tangents that do not match primals
    let e = try_jvp(
        |x: &Tensor| x.exp(),
        &x,
        &Tensor::ones([3]),
        AdOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("jvp:") && e.contains("[3]") && e.contains("[2]"),
        "{e}"
    );
    let e = try_jvp(
        |v: &Vec<Tensor>| v[0].exp(),
        &vec![x.clone()],
        &vec![x.clone(), x.clone()],
        AdOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("2 tangents for 1 primals"), "{e}");
    // a cotangent of the wrong shape
    let (_, pb) = vjp(|x: &Tensor| x.exp(), &x);
    let e = pb.try_call(&Tensor::ones([5])).unwrap_err().to_string();
    assert!(
        e.starts_with("vjp:") && e.contains("[5]") && e.contains("[2]"),
        "{e}"
    );
    // vmap: axis out of range, sizes that disagree, nothing batched
    let v = try_vmap(
        |x: &Tensor| x.exp(),
        VmapOptions {
            in_axes: 2.into(),
            ..Default::default()
        },
    );
    let e = v(&x).unwrap_err().to_string();
    assert!(
        e.starts_with("vmap:") && e.contains("in_axes 2") && e.contains("[2]"),
        "{e}"
    );
    let v = try_vmap(|(a, b): &(Tensor, Tensor)| a + b, VmapOptions::default());
    let e = v(&(Tensor::ones([3]), Tensor::ones([4])))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("batch sizes disagree") && e.contains("size 3") && e.contains("size 4"),
        "{e}"
    );
    let v = try_vmap(
        |x: &Tensor| x * 2.0,
        VmapOptions {
            in_axes: None.into(),
            ..Default::default()
        },
    );
    assert!(
        v(&x)
            .unwrap_err()
            .to_string()
            .contains("no argument is batched")
    );
    let v = try_vmap(
        |(a, b): &(Tensor, Tensor)| a + b,
        VmapOptions {
            in_axes: [Some(0), None, None].into(),
            ..Default::default()
        },
    );
    assert!(
        v(&(x.clone(), x.clone()))
            .unwrap_err()
            .to_string()
            .contains("3 entries")
    );
    // has_aux without a pair does not compile (the type of `f` demands `(output, aux)`).
    // Nothing the caller holds changed.
    assert_eq!(x.to_vec::<f32>(), vec![1.0, 2.0]);
    assert_eq!(
        grad(|x: &Tensor| x.sum_all())(&x).to_vec::<f32>(),
        vec![1.0, 1.0]
    );
}

#[test]
fn graph_printout_shows_the_derivative() {
    common::setup();
    let x = t(&[1.0, 2.0], &[2]);
    let g = grad(|x: &Tensor| x.exp().sum_all())(&x);
    let s = wgrad::graph_string(&[g]);
    assert!(
        s.starts_with("{ lambda") && s.contains("exp") && s.contains("mul"),
        "{s}"
    );
}
