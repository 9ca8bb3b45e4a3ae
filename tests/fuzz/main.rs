//! Differential testing (issue 19): random programs (`program.rs`) under random stacks of
//! transforms and scheduler policies (`checks.rs`), against the float64 reference interpreter.
//! A disagreement is shrunk by deleting instructions and policy bits while it still fails,
//! and printed as a `Case` literal for `regressions.rs`.
//!
//! `cargo test --release --test fuzz` runs a fixed budget of seeds (as CI does, on lavapipe and
//! on GL); `cargo xtask fuzz --minutes N [--seed S]` runs new seeds for N minutes
//! (`WGRAD_FUZZ_MINUTES`, `WGRAD_FUZZ_SEED`).

#[path = "../common/mod.rs"]
mod common;

mod build;
mod checks;
mod program;
mod regressions;

use std::time::{Duration, Instant};

use checks::{Case, Check, POLICY_BITS, Skip, run_case};
use program::{Rng, generate};

/// Programs in the fixed budget.
const FIXED_PROGRAMS: u64 = 36;

/// The checks drawn for a program of this size class.
fn checks_for(r: &mut Rng, size: u8, forward_only: bool) -> Vec<Check> {
    if forward_only {
        // Reverse mode is refused (a while_loop): the value, jvp, vmap and jit.
        let all = [
            Check::Value,
            Check::Jvp,
            Check::Vmap(r.below(4) as u8),
            Check::Jit,
        ];
        let n = if size == 2 { 2 } else { 4 };
        return all[..n].to_vec();
    }
    let mut all = vec![
        Check::Value,
        Check::Grad,
        Check::Jvp,
        Check::Vmap(r.below(4) as u8),
        Check::VmapGrad(r.below(4) as u8),
        Check::Jit,
        Check::JitGrad,
        Check::Checkpoint,
        Check::HessianVector,
    ];
    if size == 0 {
        all.push(Check::Jacobians);
    }
    if size == 2 {
        // Large inputs: the value and first derivatives only (the reference is host loops).
        all.truncate(3);
    }
    // Value always; a few others drawn.
    let mut chosen = vec![Check::Value];
    for _ in 0..3 {
        let c = all[1 + r.below(all.len() - 1)];
        if !chosen.contains(&c) {
            chosen.push(c);
        }
    }
    chosen
}

/// Deletes instructions, then policy bits, while the case still fails.
fn shrink(case: &Case) -> Case {
    let mut best = case.clone();
    loop {
        let mut smaller = false;
        for i in (0..best.program.ops.len()).rev() {
            let mut c = best.clone();
            c.program.ops.remove(i);
            if run_case(&c).is_err() {
                best = c;
                smaller = true;
            }
        }
        for bit in 0..POLICY_BITS {
            if best.policy & (1 << bit) != 0 {
                let mut c = best.clone();
                c.policy &= !(1 << bit);
                if run_case(&c).is_err() {
                    best = c;
                    smaller = true;
                }
            }
        }
        if !smaller {
            return best;
        }
    }
}

#[derive(Default)]
struct Tally {
    programs: u64,
    passed: u64,
    not_smooth: u64,
    not_finite: u64,
    rounding: u64,
    failures: Vec<String>,
}

#[test]
fn random_programs_agree_with_the_reference() {
    common::setup();
    let minutes: Option<f64> = std::env::var("WGRAD_FUZZ_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok());
    let first: u64 = std::env::var("WGRAD_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let verbose = std::env::var("WGRAD_FUZZ_VERBOSE").is_ok();
    let start = Instant::now();
    let deadline = minutes.map(|m| start + Duration::from_secs_f64(m * 60.0));
    let mut tally = Tally::default();
    for seed in first.. {
        match deadline {
            Some(d) if Instant::now() >= d => break,
            None if seed >= first + FIXED_PROGRAMS => break,
            _ => {}
        }
        let size = [0u8, 0, 1, 0, 1, 2, 0, 3][(seed % 8) as usize];
        let program = generate(seed, size);
        let mut r = Rng(seed ^ 0xC4EC);
        tally.programs += 1;
        if verbose {
            println!("seed {seed}: {}", program.to_rust());
        }
        for check in checks_for(&mut r, size, program.forward_only()) {
            let policy = (r.next() % (1 << POLICY_BITS)) as u16;
            let case = Case {
                program: program.clone(),
                check,
                policy,
                data: r.next() % 10_000,
            };
            let result = run_case(&case);
            if verbose {
                println!("  {check:?} policy {policy:#b}: {result:?}");
            }
            match result {
                Ok(None) => tally.passed += 1,
                Ok(Some(Skip::NotSmooth)) => tally.not_smooth += 1,
                Ok(Some(Skip::NotFinite)) => tally.not_finite += 1,
                Ok(Some(Skip::Rounding)) => tally.rounding += 1,
                Err(e) => {
                    eprintln!("seed {seed}: {check:?} fails: {e}; shrinking");
                    let small = shrink(&case);
                    let why = run_case(&small).err().unwrap_or_default();
                    let report = format!("seed {seed}: {why}\n{}", small.to_rust());
                    eprintln!("{report}");
                    tally.failures.push(report);
                }
            }
        }
    }
    println!(
        "fuzz: {} programs from seed {first}, {} checks passed, {} not smooth at the point, \
         {} not finite, {} decided by rounding, {} failed, in {:.1} s",
        tally.programs,
        tally.passed,
        tally.not_smooth,
        tally.not_finite,
        tally.rounding,
        tally.failures.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(
        tally.failures.is_empty(),
        "{} failing cases (add each to tests/fuzz/regressions.rs once fixed):\n{}",
        tally.failures.len(),
        tally.failures.join("\n\n")
    );
    // A budget that judges nothing is no test.
    assert!(
        tally.passed >= tally.programs,
        "too few checks could judge: {} passed of {} programs",
        tally.passed,
        tally.programs
    );
}
