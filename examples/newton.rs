//! Newton's method with `hessian`: the resting shape of a net of springs hanging under gravity.
//!
//! A 7 × 7 grid of unit masses joined by springs (structural ones of stiffness 20 and rest
//! length 1, diagonal ones of stiffness 5 and rest length √2), its top row pinned, released
//! from a squeezed and sheared shape. The shape
//! at rest minimises the energy `E(q) = Σ ½ k (|p_i − p_j| − L)² + Σ m g y` over the free
//! nodes' coordinates `q` (84 numbers). Each Newton step takes the gradient and the 84 × 84
//! Hessian from wgrad and solves `H d = −∇E` on the device with `wgrad::linalg` (Cholesky and
//! `cho_solve`, with a little damping while H is not yet positive definite — its Cholesky
//! factor is then NaN, as JAX's), with a backtracking line search. Near the solution
//! the gradient's norm falls quadratically (2.7 → 0.39 → 0.003), down to what float32
//! resolves (the energy is ~160, its float32 spacing ~1e-5).
//!
//! Run: `cargo run --release --example newton`

use wgrad::prelude::*;

const SIDE: usize = 7;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let info = wgrad::init()?;
    println!("adapter: {} ({})", info.name, info.backend);

    // Nodes row by row, row 0 on top (y = 0), pinned; free nodes follow.
    let id = |r: usize, c: usize| r * SIDE + c;
    let (mut from, mut to, mut stiffness, mut rest) = (vec![], vec![], vec![], vec![]);
    let mut spring = |a: usize, b: usize, k: f32, l: f32| {
        from.push(a as i32);
        to.push(b as i32);
        stiffness.push(k);
        rest.push(l);
    };
    for r in 0..SIDE {
        for c in 0..SIDE {
            if c + 1 < SIDE {
                spring(id(r, c), id(r, c + 1), 20.0, 1.0);
            }
            if r + 1 < SIDE {
                spring(id(r, c), id(r + 1, c), 20.0, 1.0);
                if c + 1 < SIDE {
                    spring(id(r, c), id(r + 1, c + 1), 5.0, 2f32.sqrt());
                    spring(id(r, c + 1), id(r + 1, c), 5.0, 2f32.sqrt());
                }
            }
        }
    }
    let springs = from.len();
    let from = Tensor::from_slice(&from, [springs]);
    let to = Tensor::from_slice(&to, [springs]);
    let stiffness = Tensor::from_vec(stiffness, [springs]);
    let rest = Tensor::from_vec(rest, [springs]);
    let pinned: Vec<f32> = (0..SIDE).flat_map(|c| [c as f32, 0.0]).collect();
    let pinned = Tensor::from_vec(pinned, [SIDE, 2]);
    let free = SIDE * (SIDE - 1);
    let n = 2 * free;

    let energy = |q: &Tensor| {
        let p = concat(&[pinned.clone(), q.reshape([free, 2])], 0);
        let d = p.take(&from, 0) - p.take(&to, 0);
        let len = d.square().sum_axes(-1).sqrt();
        let elastic = (&stiffness * (len - &rest).square()).sum_all() * 0.5;
        let gravity = p.slice_axis(1, 1..2).sum_all() * 1.0; // m g y, with y up
        elastic + gravity
    };

    // Start away from rest: the net squeezed to 70 % of its height and sheared, so that
    // springs are compressed and the Hessian is indefinite at first.
    let start: Vec<f32> = (1..SIDE)
        .flat_map(|r| (0..SIDE).flat_map(move |c| [c as f32 + 0.15 * r as f32, -0.7 * r as f32]))
        .collect();
    let mut q = Tensor::from_vec(start, [n]);
    println!(
        "{} free nodes, {} springs, {n} unknowns; the Hessian is {n} × {n}",
        free, springs
    );
    println!(" iter   energy          |grad|      step      damping");
    let mut converged = None;
    let mut damping = 0.0f64;
    for iter in 0..50 {
        let (e, g) = value_and_grad(energy)(&q);
        let h = hessian(energy)(&q);
        wgrad::realize(&[e.clone(), g.clone(), h.clone()]);
        let e0 = e.item() as f64;
        let g: Vec<f64> = g.to_vec::<f32>().into_iter().map(f64::from).collect();
        let gnorm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
        if gnorm < 2e-3 {
            println!("{iter:>5}   {e0:<14.6} {gnorm:<10.2e}");
            converged = Some(iter);
            break;
        }
        let minus_g = Tensor::from_vec(g.iter().map(|v| -*v as f32).collect(), [n]);
        // Levenberg–Marquardt-style damping: a tenth of the last one that worked, grown
        // tenfold until H + damping·I is positive definite (a finite Cholesky factor).
        damping = if damping < 1e-6 { 0.0 } else { damping / 10.0 };
        let d: Vec<f64> = loop {
            let l = wgrad::linalg::cholesky(&(&h + Tensor::eye(n) * damping as f32));
            if l.sum_all().item().is_finite() {
                let d = wgrad::linalg::cho_solve(&l, &minus_g).to_vec::<f32>();
                break d.into_iter().map(f64::from).collect();
            }
            damping = if damping == 0.0 { 1e-3 } else { damping * 10.0 };
        };
        // Backtracking: halve the step until the energy falls.
        let mut t = 1.0f64;
        let qv = q.to_vec::<f32>();
        let mut next;
        loop {
            let cand: Vec<f32> = qv
                .iter()
                .zip(&d)
                .map(|(a, b)| (*a as f64 + t * b) as f32)
                .collect();
            next = Tensor::from_vec(cand, [n]);
            if energy(&next).item() as f64 <= e0 || t < 1e-4 {
                break;
            }
            t *= 0.5;
        }
        let step = t * d.iter().map(|v| v * v).sum::<f64>().sqrt();
        println!("{iter:>5}   {e0:<14.6} {gnorm:<10.2e}  {step:<9.2e} {damping:.0e}");
        q = next;
    }
    let p = q.to_vec::<f32>();
    let lowest = p.chunks(2).map(|xy| xy[1]).fold(f32::MAX, f32::min);
    println!(
        "lowest node hangs at y = {lowest:.4} (unstretched: {})",
        -(SIDE as f32 - 1.0)
    );
    match converged {
        Some(k) => println!("converged in {k} Newton steps"),
        None => return Err("Newton's method did not converge in 50 steps".into()),
    }
    Ok(())
}
