//! `while_loop` where values are placeholders: under `vmap` (one loop while any example's
//! predicate holds, finished examples masked, as JAX batches it), under `jit` (the trip count
//! read anew at every call), inside loop bodies, with forward-mode derivatives, and against
//! the reference interpreter.

use crate::common;
use wgrad::prelude::*;

fn int_scalar(v: i32) -> Tensor {
    Tensor::from_vec(vec![v], Vec::<usize>::new())
}

/// Newton's iteration for the cube root of `a` from `x0`, until |x³ - a| ≤ 1e-3·a, counting
/// its steps: the carry is (x, a, steps).
fn cube_root(x0: &Tensor, a: &Tensor) -> (Tensor, Tensor) {
    let one = int_scalar(1);
    let (x, _, n) = while_loop(
        |(x, a, _): &(Tensor, Tensor, Tensor)| {
            (x * x * x - a).abs().greater(&(a * 1e-3)).reshape([])
        },
        |(x, a, n): &(Tensor, Tensor, Tensor)| {
            let x2 = x * x;
            (x - &((&x2 * x - a) / (&x2 * 3.0)), a.clone(), n + &one)
        },
        &(x0.clone(), a.clone(), int_scalar(0)),
    );
    (x, n)
}

/// The same iteration on the host in float64: the root and the number of steps.
fn cube_root_host(mut x: f64, a: f64) -> (f64, i32) {
    let mut n = 0;
    while (x * x * x - a).abs() > 1e-3 * a {
        x -= (x * x * x - a) / (3.0 * x * x);
        n += 1;
    }
    (x, n)
}

#[test]
fn newton_batched_over_starting_points_masks_finished_examples() {
    common::setup();
    let starts = [0.5f32, 1.0, 2.0, 4.0, 9.0, 30.0];
    let a = Tensor::scalar(7.0);
    let x0 = Tensor::from_vec(starts.to_vec(), [starts.len()]);
    let (x, n) = vmap(|x0: &Tensor| cube_root(x0, &a), 0)(&x0);
    let (x, n) = (x.to_vec::<f32>(), n.to_vec::<i32>());
    let mut counts = vec![];
    for (k, &s) in starts.iter().enumerate() {
        let (root, steps) = cube_root_host(f64::from(s), 7.0);
        counts.push(steps);
        assert_eq!(n[k], steps, "start {s}: steps");
        assert!(
            (f64::from(x[k]) - root).abs() < 1e-5 * root,
            "start {s}: {} vs {root}",
            x[k]
        );
        // Each example alone (the eager loop) agrees too.
        let (xe, ne) = cube_root(&Tensor::scalar(s), &a);
        assert_eq!(ne.to_vec::<i32>()[0], steps);
        assert!((xe.item() - x[k]).abs() <= 1e-6 * x[k].abs());
    }
    // The trip counts differ, so the masking did something.
    assert!(counts.iter().min() < counts.iter().max(), "{counts:?}");
    // JAX's `vmap(cube_root)` of the same iteration in float32 (jax 0.10.2, CPU;
    // tests/data/make_newton_reference.py): the same step counts, the same roots.
    let jax_steps = [8, 5, 2, 4, 6, 9];
    let jax_roots = [
        1.912_932_4f32,
        1.912_932,
        1.912_938_5,
        1.913_369_4,
        1.913_529_6,
        1.913_448_6,
    ];
    assert_eq!(n, jax_steps);
    for (k, (a, b)) in x.iter().zip(jax_roots).enumerate() {
        assert!(
            (a - b).abs() <= 2e-6 * b,
            "start {}: {a} vs JAX {b}",
            starts[k]
        );
    }
}

#[test]
fn batched_captured_tensors_and_axes() {
    common::setup();
    // The bound is a batched value the loop captures: halve each row until its sum is below
    // its own bound, along axis 1 of the input.
    let xs = Tensor::from_vec(vec![8.0f32, 1.0, 2.0, 40.0, 3.0, 1.0], [2, 3]);
    let bounds = Tensor::from_vec(vec![1.0f32, 5.0, 0.5], [3]);
    let f = |(x, b): &(Tensor, Tensor)| {
        while_loop(|c: &Tensor| c.sum_all().greater(b), |c: &Tensor| c * 0.5, x)
    };
    let got = vmap(f, vec![Some(1), Some(0)])(&(xs.clone(), bounds.clone()));
    assert_eq!(got.shape(), &[3, 2]);
    let got = got.to_vec::<f32>();
    let cols = [[8.0f32, 40.0], [1.0, 3.0], [2.0, 1.0]];
    let bs = [1.0f32, 5.0, 0.5];
    for k in 0..3 {
        let mut c = cols[k];
        while c[0] + c[1] > bs[k] {
            c = [c[0] * 0.5, c[1] * 0.5];
        }
        assert_eq!(&got[2 * k..2 * k + 2], &c, "example {k}");
    }
}

#[test]
fn jit_reads_the_trip_count_at_every_call() {
    common::setup();
    let halve = jit(|x: &Tensor| {
        while_loop(
            |c: &Tensor| c.sum_all().greater(&Tensor::scalar(1.0)),
            |c: &Tensor| c * 0.5,
            x,
        )
    });
    for (v, want) in [
        (10.0f32, 0.625f32),
        (3.0, 0.75),
        (0.5, 0.5),
        (100.0, 0.78125),
    ] {
        let got = halve(&Tensor::from_vec(vec![v], [1])).to_vec::<f32>()[0];
        assert_eq!(got, want, "from {v}");
    }
    // jit of vmap of while_loop, with check_every > 1: the same values.
    let opts = WhileOptions {
        check_every: 3,
        ..Default::default()
    };
    let batched = jit(vmap(
        move |x: &Tensor| {
            while_loop_with(
                |c: &Tensor| c.greater(&Tensor::scalar(1.0)).reshape([]),
                |c: &Tensor| c * 0.5,
                x,
                opts,
            )
            .unwrap()
        },
        0,
    ));
    let got = batched(&Tensor::from_vec(vec![10.0f32, 3.0, 0.5, 100.0], [4, 1]));
    assert_eq!(got.to_vec::<f32>(), vec![0.625, 0.75, 0.5, 0.78125]);
    let got = batched(&Tensor::from_vec(vec![2.0f32, 4.0, 8.0, 16.0], [4, 1]));
    assert_eq!(got.to_vec::<f32>(), vec![1.0, 1.0, 1.0, 1.0]);
}

#[test]
fn forward_mode_under_vmap_and_jit() {
    common::setup();
    // d/da of the cube root (the iteration converged) is a^(-2/3)/3, per example.
    let a = Tensor::from_vec(vec![2.0f32, 7.0, 30.0], [3]);
    let root = |a: &Tensor| cube_root(&Tensor::scalar(1.0), a).0;
    let d = jacfwd(|a: &Tensor| vmap(root, 0)(a))(&a).to_vec::<f32>();
    let (_, t) = jvp(|a: &Tensor| vmap(root, 0)(a), &a, &Tensor::ones([3]));
    let t = t.to_vec::<f32>();
    for (k, v) in [2.0f32, 7.0, 30.0].iter().enumerate() {
        let want = v.powf(-2.0 / 3.0) / 3.0;
        assert!(
            (d[k * 3 + k] - want).abs() < 1e-3 * want,
            "{} vs {want}",
            d[k * 3 + k]
        );
        assert!((t[k] - want).abs() < 1e-3 * want, "{} vs {want}", t[k]);
        for j in 0..3 {
            if j != k {
                assert_eq!(d[k * 3 + j], 0.0);
            }
        }
    }
    // jvp inside jit.
    let f = jit(|a: &Tensor| jvp(root, a, &Tensor::ones([])).1);
    let t = f(&Tensor::scalar(8.0)).item();
    assert!((t - 1.0 / 12.0).abs() < 1e-4, "{t}");
}

#[test]
fn reverse_mode_is_refused_under_vmap_and_jit() {
    common::setup();
    let f = |x: &Tensor| {
        while_loop(
            |c: &Tensor| c.sum_all().less(&Tensor::scalar(10.0)),
            |c: &Tensor| c * 2.0,
            x,
        )
        .sum_all()
    };
    let xs = Tensor::ones([3, 2]);
    let r = std::panic::catch_unwind(|| {
        try_vmap(
            wgrad::grad(f),
            VmapOptions {
                in_axes: 0.into(),
                ..Default::default()
            },
        )(&xs)
        .map(|g| g.to_vec::<f32>())
    });
    let msg = match r {
        Ok(Ok(_)) => panic!("a gradient through a batched while_loop was computed"),
        Ok(Err(e)) => e.to_string(),
        Err(p) => p.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(
        msg.contains("while_loop") && msg.contains("reverse-mode"),
        "{msg}"
    );
    let jitted = wgrad::try_jacrev(jit(f));
    let e = jitted(&Tensor::ones([2])).unwrap_err().to_string();
    assert!(e.contains("reverse-mode"), "{e}");
}

#[test]
fn a_while_loop_inside_a_scan_body_and_nested_vmaps() {
    common::setup();
    // Each step halves the carry until it is below the step's bound.
    let bounds = Tensor::from_vec(vec![4.0f32, 1.0, 0.3], [3]);
    let (c, ys) = scan(
        |c: &Tensor, b: &Tensor| {
            let n = while_loop(|x: &Tensor| x.sum_all().greater(b), |x: &Tensor| x * 0.5, c);
            (n.clone(), n.sum_all())
        },
        &Tensor::from_vec(vec![10.0f32], [1]),
        &bounds,
        false,
    );
    assert_eq!(c.to_vec::<f32>(), vec![0.15625]);
    assert_eq!(ys.to_vec::<f32>(), vec![2.5, 0.625, 0.15625]);
    // vmap of vmap: one loop over all 2×3 examples.
    let xs = Tensor::from_vec(vec![1.0f32, 2.0, 4.0, 8.0, 16.0, 0.5], [2, 3]);
    let f = |x: &Tensor| {
        while_loop(
            |c: &Tensor| c.greater(&Tensor::scalar(1.0)),
            |c: &Tensor| c * 0.5,
            x,
        )
    };
    let got = vmap(vmap(f, 0), 0)(&xs);
    assert_eq!(got.to_vec::<f32>(), vec![1.0, 1.0, 1.0, 1.0, 1.0, 0.5]);
}

#[test]
fn batched_loops_agree_with_the_reference() {
    common::setup();
    let x0 = Tensor::from_vec(vec![0.5f32, 3.0, 12.0], [3]);
    let a = Tensor::scalar(5.0);
    let (x, n) = vmap(|x0: &Tensor| cube_root(x0, &a), 0)(&x0);
    let want = wgrad::reference::values_of(&[x.clone(), n.cast(DType::F32)]).unwrap();
    let got = x.to_vec::<f32>();
    for (g, w) in got.iter().zip(&want[0]) {
        assert!((f64::from(*g) - w).abs() < 1e-5, "{g} vs {w}");
    }
    let steps: Vec<f64> = n.to_vec::<i32>().into_iter().map(f64::from).collect();
    assert_eq!(steps, want[1]);
}

#[test]
fn errors_come_from_the_call_or_from_the_realize_that_runs_the_loop() {
    common::setup();
    // A loop that does not end: an error from the read, not a hang or a panic.
    let opts = WhileOptions {
        max_iterations: 40,
        ..Default::default()
    };
    let x = while_loop_with(
        |c: &Tensor| c.greater(&Tensor::scalar(0.0)),
        |c: &Tensor| c + 1.0,
        &Tensor::scalar(1.0),
        opts,
    )
    .unwrap();
    let e = x.try_to_vec::<f32>().unwrap_err().to_string();
    assert!(e.contains("max_iterations"), "{e}");
    // The same loop batched: still an error, and a later realize of other work is fine.
    let ys = try_vmap(
        |x: &Tensor| {
            while_loop_with(
                |c: &Tensor| c.greater(&Tensor::scalar(0.0)).reshape([]),
                |c: &Tensor| c + 1.0,
                x,
                opts,
            )
            .unwrap()
        },
        VmapOptions::default(),
    )(&Tensor::ones([3]))
    .unwrap();
    assert!(ys.try_to_vec::<f32>().is_err());
    assert_eq!((Tensor::ones([2]) * 3.0).to_vec::<f32>(), vec![3.0, 3.0]);
    // A predicate that is not a bool scalar is an error from the call.
    let bad = while_loop_with(
        |c: &Tensor| c.greater(&Tensor::scalar(0.0)),
        |c: &Tensor| c * 0.5,
        &Tensor::ones([2]),
        WhileOptions::default(),
    );
    let e = match bad {
        Ok(_) => panic!("a vector predicate was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("bool scalar"), "{e}");
}
