//! Matmul epilogues (an elementwise consumer computed in the matmul's store), forced on: every
//! conformance case's value and gradient, against the oracle, with both matmul kernels. (Its
//! own test binary: it changes the process-wide policy. Epilogues are on by default only on
//! GPUs; this runs them on every adapter.)

mod common;

use wgrad::MatmulKernel;
use wgrad::prelude::*;

/// Both tests change the process-wide policy and read the counters: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn epilogues_compute_what_separate_kernels_compute() {
    common::setup();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cases = common::load_cases();
    let mut failures = vec![];
    let mut checked = 0;
    for kernel in [MatmulKernel::Tiled, MatmulKernel::Direct] {
        wgrad::set_policy(wgrad::Policy {
            epilogues: Some(true),
            matmul: kernel,
            ..wgrad::policy()
        });
        for case in cases
            .iter()
            .filter(|c| c.json.get("checks").unwrap().get("grad").is_some())
            .filter(|c| common::set3::pending_op(c).is_none())
        {
            let checks = case.json.get("checks").unwrap();
            let xs = case.inputs();
            let f = |a: &[Tensor]| case.call(a);
            if let Err(e) = case.check(&f(&xs), checks.get("value").unwrap()) {
                failures.push(format!("{kernel:?} {} value: {e}", case.name));
            }
            let g = grad_argnums(f, Argnums::All)(&xs);
            for (k, (got, want)) in g.iter().zip(checks.get("grad").unwrap().arr()).enumerate() {
                if let Err(e) = case.check(got, want) {
                    failures.push(format!("{kernel:?} {} grad {k}: {e}", case.name));
                }
            }
            checked += 1;
        }
    }
    wgrad::set_policy(wgrad::Policy {
        epilogues: None,
        matmul: MatmulKernel::Auto,
        ..wgrad::policy()
    });
    assert!(checked > 80, "only {checked} cases");
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn an_mlp_step_has_fewer_kernels_with_epilogues() {
    common::setup();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let x = Tensor::rand([64, 32], 1);
    let w1 = Tensor::rand([32, 64], 2) - 0.5;
    let b1 = Tensor::rand([64], 3);
    let w2 = Tensor::rand([64, 8], 4) - 0.5;
    wgrad::realize(&[x.clone(), w1.clone(), b1.clone(), w2.clone()]);
    let run = |on: bool| {
        wgrad::set_policy(wgrad::Policy {
            epilogues: Some(on),
            ..wgrad::policy()
        });
        let f = |p: &(Tensor, Tensor, Tensor)| {
            (x.matmul(&p.0) + &p.1)
                .tanh()
                .matmul(&p.2)
                .square()
                .sum_all()
        };
        let (loss, g) = value_and_grad(f)(&(w1.clone(), b1.clone(), w2.clone()));
        let next = (&w1 - &g.0 * 0.1, &b1 - &g.1 * 0.1, &w2 - &g.2 * 0.1);
        let before = wgrad::counters();
        wgrad::realize(&[loss.clone(), next.0.clone(), next.1.clone(), next.2.clone()]);
        let k = wgrad::counters().since(&before).kernels;
        (
            k,
            loss.item(),
            next.0.to_vec::<f32>(),
            next.2.to_vec::<f32>(),
        )
    };
    let (k_off, l_off, a_off, c_off) = run(false);
    let (k_on, l_on, a_on, c_on) = run(true);
    wgrad::set_policy(wgrad::Policy {
        epilogues: None,
        ..wgrad::policy()
    });
    assert!(
        k_on < k_off,
        "kernels with epilogues {k_on}, without {k_off}"
    );
    assert!((l_on - l_off).abs() <= 1e-5 * l_off.abs());
    common::close(&a_on, &a_off, 1e-5, 1e-6).unwrap();
    common::close(&c_on, &c_off, 1e-5, 1e-6).unwrap();
}
