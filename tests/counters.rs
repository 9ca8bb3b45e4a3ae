//! Counter checks (kernels, submits, pipelines, pool). The counters are process-wide, so these
//! run one after another in a single test of their own binary.

mod common;

use common::Mlp;
use wgrad::prelude::*;

#[test]
fn counters() {
    common::setup();
    realize_is_one_submit_and_fuses();
    pipelines_compile_once_per_structure();
    training_loop_does_not_grow();
    jacobians_split_into_chunks();
    a_batched_while_loop_runs_once_for_all_its_leaves();
}

/// The batching (and JVP) rule of each leaf of a loop's carry builds the same loop: it runs
/// once per realize, not once per leaf.
fn a_batched_while_loop_runs_once_for_all_its_leaves() {
    let count = |leaves: usize| {
        let f = move |x: &Tensor| {
            let carry: Vec<Tensor> = (0..leaves).map(|k| x * (k + 1) as f32).collect();
            while_loop(
                |c: &Vec<Tensor>| c[0].greater(&Tensor::scalar(1.0)).reshape([]),
                |c: &Vec<Tensor>| c.iter().map(|t| t * 0.5).collect(),
                &carry,
            )
        };
        let before = wgrad::counters();
        let out = vmap(f, 0)(&Tensor::from_vec(vec![10.0f32, 3.0], [2]));
        wgrad::realize(&out);
        assert_eq!(
            out[leaves - 1].to_vec::<f32>(),
            vec![0.625 * leaves as f32, 0.75 * leaves as f32]
        );
        wgrad::counters().since(&before).submits
    };
    let (one, three) = (count(1), count(3));
    assert!(three <= one + 2, "1 leaf: {one} submits, 3 leaves: {three}");
}

/// With a small cap, Jacobian bases are computed in several chunks and joined; the result
/// must not change.
fn jacobians_split_into_chunks() {
    let x = Tensor::randn([5, 7], 11);
    let f = |x: &Tensor| x.matmul(&x.mt()).tanh();
    let (full_rev, full_fwd) = (jacrev(f)(&x).to_vec::<f32>(), jacfwd(f)(&x).to_vec::<f32>());
    wgrad::set_jacobian_chunk_bytes(100); // a few rows per chunk
    let before = wgrad::counters();
    let (rev, fwd) = (jacrev(f)(&x), jacfwd(f)(&x));
    wgrad::realize(&[rev.clone(), fwd.clone()]);
    let kernels = wgrad::counters().since(&before).kernels;
    wgrad::set_jacobian_chunk_bytes(0);
    assert_eq!(rev.shape(), &[5, 5, 5, 7]);
    for (a, b) in rev
        .to_vec::<f32>()
        .iter()
        .zip(&full_rev)
        .chain(fwd.to_vec::<f32>().iter().zip(&full_fwd))
    {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    assert!(
        kernels > 20,
        "chunking should run many more kernels, ran {kernels}"
    );
}

fn realize_is_one_submit_and_fuses() {
    let x = Tensor::rand([1 << 12], 1);
    x.realize();
    let before = wgrad::counters();
    let y = ((&x * 1.5 + 0.5).tanh() * x.sigmoid()).sum_all();
    y.realize();
    let d = wgrad::counters().since(&before);
    assert_eq!(d.submits, 1);
    assert!(
        d.kernels <= 2,
        "elementwise chain and sum took {} kernels",
        d.kernels
    );
    // Several targets, one submit; reading back costs no extra submit.
    let before = wgrad::counters();
    let (a, b, c) = (x.exp(), x.sin().sum_all(), x.matmul(&x));
    wgrad::realize(&[a.clone(), b.clone(), c.clone()]);
    assert_eq!(wgrad::counters().since(&before).submits, 1);
    let before = wgrad::counters();
    let _ = (&a + 1.0).to_vec::<f32>();
    assert_eq!(wgrad::counters().since(&before).submits, 1);
    // A realized tensor costs nothing more.
    let before = wgrad::counters();
    a.realize();
    assert_eq!(wgrad::counters().since(&before).kernels, 0);
}

fn pipelines_compile_once_per_structure() {
    // New data each step (same shapes, same constants): no new pipelines after the first.
    let step = |k: f32| {
        let x = Tensor::from_vec(vec![k; 300], [300]);
        ((&x * 2.0).exp() + 1.0).log().sum_all().item()
    };
    step(1.0);
    let before = wgrad::counters();
    for k in 0..5 {
        step(k as f32);
    }
    assert_eq!(wgrad::counters().since(&before).pipelines_compiled, 0);
}

fn training_loop_does_not_grow() {
    let (x, y) = (Tensor::randn([16, 8], 1), Tensor::randn([16, 1], 2));
    let mut p = Mlp {
        w1: Tensor::randn([8, 16], 3) * 0.3,
        b1: Tensor::zeros([16]),
        w2: Tensor::randn([16, 1], 4) * 0.3,
    };
    let step = |p: &Mlp| {
        let (l, g) = value_and_grad(|p: &Mlp| p.loss(&x, &y))(p);
        let q = Mlp {
            w1: &p.w1 - &g.w1 * 0.1,
            b1: &p.b1 - &g.b1 * 0.1,
            w2: &p.w2 - &g.w2 * 0.1,
        };
        let mut all = q.leaves();
        all.push(l.clone());
        wgrad::realize(&all);
        (q, l)
    };
    let first = step(&p).1.item();
    for _ in 0..5 {
        p = step(&p).0;
    }
    let held = wgrad::counters().bytes_allocated;
    let mut last = 0.0;
    let compiled = wgrad::counters().pipelines_compiled;
    for _ in 0..1000 {
        let (q, l) = step(&p);
        p = q;
        last = l.item();
    }
    assert_eq!(
        wgrad::counters().pipelines_compiled,
        compiled,
        "a training step compiled new pipelines"
    );
    // The history of every step is released: the parameters' graph is one node deep.
    assert!(wgrad::graph_string(&p.leaves()).lines().count() <= 3);
    assert!(last < first, "loss {first} -> {last}");
    let now = wgrad::counters().bytes_allocated;
    assert!(
        now <= held + (1 << 20),
        "pool grew from {held} to {now} bytes over 1000 steps"
    );
}
