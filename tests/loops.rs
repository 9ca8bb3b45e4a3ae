//! The loop node (`scan` and `fori_loop` lowered once and replayed per step): values and
//! derivatives of every kind equal to the unrolled loop's (`Policy::loops = false`), for
//! bodies that pass carries through, swap them, emit old carries, capture tensors, nest loops
//! and run in reverse; the graph and the host's work do not grow with the step count.
//! Policy and counters are process-wide: every test here holds `LOCK`.

mod common;

use std::sync::Mutex;

use common::close;
use wgrad::prelude::*;

static LOCK: Mutex<()> = Mutex::new(());

fn set_loops(on: bool) {
    let mut p = wgrad::policy();
    p.loops = on;
    wgrad::set_policy(p);
}

/// `f`'s results with loop nodes and unrolled, which must agree.
fn agree(what: &str, f: impl Fn() -> Vec<Tensor>, tol: f32) {
    set_loops(true);
    let with = f();
    let text = wgrad::graph_string(&with);
    let values: Vec<Vec<f32>> = with.iter().map(|t| t.to_vec::<f32>()).collect();
    set_loops(false);
    let without = f();
    let reference: Vec<Vec<f32>> = without.iter().map(|t| t.to_vec::<f32>()).collect();
    set_loops(true);
    assert!(
        text.contains("loop["),
        "{what}: no loop node in the graph:\n{text}"
    );
    assert!(
        !wgrad::graph_string(&without).contains("loop["),
        "{what}: unrolled graph has a loop node"
    );
    for (k, (a, b)) in values.iter().zip(&reference).enumerate() {
        assert_eq!(a.len(), b.len(), "{what}: result {k} sizes");
        if let Err(e) = close(a, b, tol, tol) {
            panic!("{what}: result {k}: {e}");
        }
    }
}

fn rnn(w: &Tensor, u: &Tensor, h: &Tensor, x: &Tensor) -> Tensor {
    (x.matmul(w) + h.matmul(u)).tanh()
}

#[test]
fn an_rnn_and_every_derivative_of_it() {
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    common::setup();
    let w = Tensor::rand([3, 4], 1) - 0.5;
    let u = Tensor::rand([4, 4], 2) - 0.5;
    let xs = Tensor::rand([7, 2, 3], 3) - 0.5;
    let h0 = Tensor::rand([2, 4], 4) - 0.5;
    for reverse in [false, true] {
        let run = |w: &Tensor, u: &Tensor, h0: &Tensor, xs: &Tensor| {
            scan(
                |h: &Tensor, x: &Tensor| {
                    let h2 = rnn(w, u, h, x);
                    (h2.clone(), h2.sum_all() * h.mean_all())
                },
                h0,
                xs,
                reverse,
            )
        };
        let loss = |(w, u, h0, xs): &(Tensor, Tensor, Tensor, Tensor)| {
            let (h, ys) = run(w, u, h0, xs);
            h.square().sum_all() + (ys * Tensor::arange(7)).sum_all()
        };
        let args = (w.clone(), u.clone(), h0.clone(), xs.clone());
        agree(
            "forward",
            || {
                let (h, ys) = run(&w, &u, &h0, &xs);
                vec![h, ys]
            },
            1e-6,
        );
        agree(
            "grad",
            || {
                let (a, b, c, d) = grad(loss)(&args);
                vec![a, b, c, d]
            },
            1e-5,
        );
        agree(
            "jvp",
            || {
                let tangents = (
                    Tensor::ones([3, 4]),
                    Tensor::rand([4, 4], 9),
                    Tensor::zeros([2, 4]),
                    Tensor::ones([7, 2, 3]) * 0.1,
                );
                let (y, t) = jvp(loss, &args, &tangents);
                vec![y, t]
            },
            1e-5,
        );
        agree(
            "vmap over xs, grad inside",
            || {
                let xb = Tensor::rand([3, 7, 2, 3], 5) - 0.5;
                let per = vmap(
                    |xs: &Tensor| {
                        grad(|u: &Tensor| loss(&(w.clone(), u.clone(), h0.clone(), xs.clone())))(&u)
                    },
                    0,
                )(&xb);
                vec![per]
            },
            1e-5,
        );
        if reverse {
            continue;
        }
        agree(
            "second order (jacfwd of grad)",
            || {
                let f = |h0: &Tensor| loss(&(w.clone(), u.clone(), h0.clone(), xs.clone()));
                vec![jacfwd(grad(f))(&h0.reshape([2, 4]))]
            },
            1e-4,
        );
    }
}

#[test]
fn carries_passed_through_swapped_and_emitted_before_the_update() {
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    common::setup();
    let xs = Tensor::rand([5, 3], 11);
    let a0 = Tensor::rand([3], 12);
    let b0 = Tensor::rand([3], 13);
    let c0 = Tensor::rand([3], 14);
    let body = |(a, b, c): &(Tensor, Tensor, Tensor), x: &Tensor| {
        // a and b swap, c is updated from the old a; the outputs are the old a, the slice
        // itself and a constant.
        let next = (b.clone(), a.clone(), c + x * a);
        (next, (a.clone(), x.clone(), Tensor::full([3], 2.0)))
    };
    let init = (a0.clone(), b0.clone(), c0.clone());
    agree(
        "values",
        || {
            let ((a, b, c), (y0, y1, y2)) = scan(body, &init, &xs, false);
            vec![a, b, c, y0, y1, y2]
        },
        1e-6,
    );
    // Three steps by hand.
    let ((a, b, c), (old, _, _)) = scan(body, &init, &xs.slice_axis(0, 0..3), false);
    let x: Vec<Vec<f32>> = (0..3).map(|t| xs.index(t).to_vec::<f32>()).collect();
    let (a0v, b0v, c0v) = (a0.to_vec::<f32>(), b0.to_vec::<f32>(), c0.to_vec::<f32>());
    let c3: Vec<f32> = (0..3)
        .map(|k| c0v[k] + x[0][k] * a0v[k] + x[1][k] * b0v[k] + x[2][k] * a0v[k])
        .collect();
    close(&a.to_vec::<f32>(), &b0v, 0.0, 0.0).unwrap();
    close(&b.to_vec::<f32>(), &a0v, 0.0, 0.0).unwrap();
    close(&c.to_vec::<f32>(), &c3, 1e-6, 1e-6).unwrap();
    close(&old.index(1).to_vec::<f32>(), &b0v, 0.0, 0.0).unwrap();
    close(&old.index(2).to_vec::<f32>(), &a0v, 0.0, 0.0).unwrap();
    agree(
        "grad of every carry and the slices",
        || {
            let loss = |(a, b, c, xs): &(Tensor, Tensor, Tensor, Tensor)| {
                let ((a, b, c), (y0, y1, _)) =
                    scan(body, &(a.clone(), b.clone(), c.clone()), xs, true);
                (a * b * c).sum_all() + y0.square().sum_all() + y1.sum_all()
            };
            let (ga, gb, gc, gx) = grad(loss)(&(a0.clone(), b0.clone(), c0.clone(), xs.clone()));
            vec![ga, gb, gc, gx]
        },
        1e-5,
    );
}

#[test]
fn nested_loops_and_fori_loop_with_captured_tensors() {
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    common::setup();
    let k = Tensor::rand([4], 21) - 0.5;
    let x0 = Tensor::rand([4], 22);
    // An Euler integrator whose step is itself a loop of 2 sub-steps; `i` (i32) scales it.
    let f = |k: &Tensor, x0: &Tensor| {
        fori_loop(
            0,
            4,
            |i: &Tensor, x: &Tensor| {
                let dt = i.cast(DType::F32) * 0.01 + 0.05;
                fori_loop(0, 2, |_j, y: &Tensor| y + (k * y).sin() * &dt, x)
            },
            x0,
        )
    };
    agree("values", || vec![f(&k, &x0)], 1e-6);
    agree(
        "grad through both loops",
        || {
            let (gk, gx) =
                grad(|(k, x): &(Tensor, Tensor)| f(k, x).sum_all())(&(k.clone(), x0.clone()));
            vec![gk, gx]
        },
        1e-5,
    );
    agree(
        "hessian",
        || vec![hessian(|x: &Tensor| f(&k, x).square().sum_all())(&x0)],
        1e-4,
    );
    agree(
        "vmap of the nested loops",
        || {
            vec![vmap(|k: &Tensor| f(k, &x0), 0)(
                &(Tensor::rand([5, 4], 23) - 0.5),
            )]
        },
        1e-6,
    );
}

#[test]
fn the_graph_and_the_host_work_do_not_grow_with_the_steps() {
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    common::setup();
    set_loops(true);
    let w = Tensor::rand([8, 8], 31) - 0.5;
    let lines = |n: usize| {
        let xs = Tensor::rand([n, 8], 32);
        let g = grad(|w: &Tensor| {
            scan(
                |h: &Tensor, x: &Tensor| ((h.matmul(w) + x).tanh(), ()),
                &Tensor::zeros([8]),
                &xs,
                false,
            )
            .0
            .sum_all()
        })(&w);
        let text = wgrad::graph_string(std::slice::from_ref(&g));
        g.realize();
        text.lines().count()
    };
    assert_eq!(lines(4), lines(256), "the graph grew with the steps");
    // A second call of the same loop compiles nothing and reuses the plan.
    let before = wgrad::counters();
    lines(256);
    let after = wgrad::counters();
    assert_eq!(after.pipelines_compiled, before.pipelines_compiled);
    assert!(after.plan_hits > before.plan_hits);
    // 256 steps ran as one submit.
    assert_eq!(after.submits - before.submits, 1);
}

#[test]
fn a_loop_whose_results_mix_dtypes_is_unrolled_and_right() {
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    common::setup();
    set_loops(true);
    let (n, x) = fori_loop(
        0,
        5,
        |_i, (n, x): &(Tensor, Tensor)| (n + Tensor::scalar(2.0).cast(DType::I32), x * 1.5),
        &(Tensor::scalar(1.0).cast(DType::I32), Tensor::scalar(2.0)),
    );
    assert_eq!(n.to_vec::<i32>(), vec![11]);
    assert!((x.item() - 2.0 * 1.5f32.powi(5)).abs() < 1e-4);
    assert!(!wgrad::graph_string(&[x]).contains("loop["));
}
