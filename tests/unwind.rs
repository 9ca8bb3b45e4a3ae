//! Panic safety of the trace state: after user code panics inside a transform (and the panic
//! is caught), realizing outside transforms forgets history again. (Its own test binary: the
//! probe reads the process-wide pool counter.)

mod common;

use wgrad::prelude::*;

/// Whether a tensor realized outside every transform forgot its history: what keeps a
/// training loop from holding every step's inputs.
fn forgets_history_after_realize() -> bool {
    // A 4 MiB input that only the consumer's history holds: it goes back to the pool when
    // the consumer is realized, unless the consumer keeps its inputs.
    let x = Tensor::from_vec(vec![1.0f32; 1 << 20], [1 << 20]);
    x.realize();
    let y = (x.exp() * 2.0).sum_all();
    drop(x);
    let before = wgrad::counters().pooled_bytes;
    y.realize();
    wgrad::counters().pooled_bytes >= before + (2 << 20)
}

#[test]
fn a_panic_inside_any_transform_leaves_no_trace_state_behind() {
    common::setup();
    assert!(
        forgets_history_after_realize(),
        "the probe fails before any panic"
    );
    // The probe can fail: inside a transform a realized tensor keeps its history.
    let inside = std::cell::Cell::new(true);
    let _ = grad(|x: &Tensor| {
        inside.set(forgets_history_after_realize());
        x.sum_all()
    })(&Tensor::ones([2]));
    assert!(
        !inside.get(),
        "the probe cannot see a transform's trace state"
    );
    let x = Tensor::from_vec(vec![0.5f32, -1.0], [2]);
    let boom = |_: &Tensor| -> Tensor { panic!("user code panics") };
    type Case<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let cases: Vec<Case> = vec![
        ("grad", Box::new(|| drop(grad(boom)(&x)))),
        ("vmap", Box::new(|| drop(vmap(boom, 0)(&x)))),
        ("jvp", Box::new(|| drop(jvp(boom, &x, &x)))),
        ("vjp", Box::new(|| drop(vjp(boom, &x)))),
        ("jacrev", Box::new(|| drop(jacrev(boom)(&x)))),
        ("jacfwd", Box::new(|| drop(jacfwd(boom)(&x)))),
        ("jit", Box::new(|| drop(jit(boom)(&x)))),
        ("grad(grad)", Box::new(|| drop(grad(grad(boom))(&x)))),
        (
            "4-deep",
            Box::new(|| {
                drop(vmap(|r: &Tensor| jacfwd(grad(grad(boom)))(r), 0)(
                    &x.reshape([2, 1]),
                ))
            }),
        ),
        (
            "scan body",
            Box::new(|| {
                drop(scan(
                    |c: &Tensor, _x: &Tensor| (boom(c), c.clone()),
                    &x,
                    &x,
                    false,
                ))
            }),
        ),
    ];
    let mut failures = vec![];
    for (name, run) in &cases {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
        if caught.is_ok() {
            failures.push(format!("{name}: the user's panic did not propagate"));
        }
        if !forgets_history_after_realize() {
            failures.push(format!("{name}: realize keeps history after the panic"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
