//! wgrad in a few lines: build a computation lazily, differentiate it, realize it in one submit.
//!
//! Run: `cargo run --release --example quickstart`

use wgrad::prelude::*;

fn main() {
    let info = wgrad::init().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1);
    });
    println!(
        "adapter: {} ({}, {})",
        info.name, info.backend, info.device_type
    );

    // A small computation: nothing runs until a value is needed.
    let x = Tensor::from_vec(vec![0.5f32, -1.0, 2.0], [3]);
    let f = |x: &Tensor| (x.sin() * x).sum_all();

    let before = wgrad::counters();
    let (y, g) = value_and_grad(f)(&x);
    wgrad::realize(&[y.clone(), g.clone()]);
    let used = wgrad::counters().since(&before);
    println!("f(x)      = {y}");
    println!("grad f(x) = {g}");
    println!("  ({} kernels, {} submit)", used.kernels, used.submits);

    // Transforms compose: the Hessian as jacfwd(jacrev(f)), and per-example gradients by vmap.
    let h = jacfwd(jacrev(f))(&x);
    println!("hessian   = {h}");
    let xs = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0], [2, 3]);
    let per_example = vmap(grad(f), 0)(&xs);
    println!("vmap(grad f) over 2 examples = {per_example}");

    println!(
        "\nwhat grad built:\n{}",
        wgrad::graph_string(&[grad(f)(&x)])
    );
}
