//! The oracle: every case of every `*.json` in `$WGRAD_CONFORMANCE_DIR` (else
//! `tests/data/conformance`), each check kind against JAX's float64 reference.

use crate::common;

use common::{Case, to_tensor};
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use wgrad::prelude::*;

const KINDS: [&str; 8] = [
    "value", "grad", "jvp", "vjp", "jacfwd", "jacrev", "hessian", "vmap",
];

fn run_check(case: &Case, kind: &str) -> Result<(), String> {
    let check = case.json.get("checks").unwrap().get(kind).unwrap();
    let xs = case.inputs();
    let f = |a: &[Tensor]| case.call(a);
    let many = |got: &[Tensor], want: &common::Json| -> Result<(), String> {
        let want = want.arr();
        if got.len() != want.len() {
            return Err(format!("{} results, {} expected", got.len(), want.len()));
        }
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            case.check(g, w).map_err(|e| format!("argument {k}: {e}"))?;
        }
        Ok(())
    };
    match kind {
        "value" => case.check(&f(&xs), check),
        "grad" => many(&grad_argnums(f, Argnums::All)(&xs), check),
        "jvp" => {
            let ts: Vec<Tensor> = check
                .get("tangents")
                .unwrap()
                .arr()
                .iter()
                .map(to_tensor)
                .collect();
            let (_, t) = jvp(|a: &Vec<Tensor>| f(a), &xs, &ts);
            case.check(&t, check.get("out").unwrap())
        }
        "vjp" => {
            let (_, pb) = vjp(|a: &Vec<Tensor>| f(a), &xs);
            let g = pb.call(&to_tensor(check.get("cotangent").unwrap()));
            many(&g, check.get("grads").unwrap())
        }
        "jacfwd" => many(
            &jacfwd_argnums(|a: &[Tensor]| vec![f(a)], Argnums::All)(&xs)[0],
            check,
        ),
        "jacrev" => many(
            &jacrev_argnums(|a: &[Tensor]| vec![f(a)], Argnums::All)(&xs)[0],
            check,
        ),
        "hessian" => {
            let rest = xs[1..].to_vec();
            let f0 = |x: &Tensor| {
                let mut a = vec![x.clone()];
                a.extend(rest.iter().cloned());
                f(&a)
            };
            let h1 = jacfwd(jacrev(f0))(&xs[0]);
            case.check(&h1, check)
                .map_err(|e| format!("jacfwd(jacrev f): {e}"))?;
            let h2 = jacrev(grad(f0))(&xs[0]);
            case.check(&h2, check)
                .map_err(|e| format!("jacrev(grad f): {e}"))
        }
        "vmap" => {
            let (axes, bx) = case.vmap_args(check);
            let y = vmap(|a: &Vec<Tensor>| f(a), axes)(&bx);
            case.check(&y, check.get("out").unwrap())
        }
        other => Err(format!("unknown check kind {other}")),
    }
}

#[test]
fn conformance() {
    common::setup();
    let _ = writeln!(
        std::io::stdout().lock(),
        "adapter: {}",
        wgrad::device_info()
    );
    let cases = common::load_cases();
    let mut passed = [0usize; KINDS.len()];
    let mut failed = [0usize; KINDS.len()];
    let mut failures = vec![];
    let filter = std::env::var("WGRAD_CONFORMANCE_FILTER").ok();
    let mut skipped: Vec<&str> = vec![];
    for case in &cases {
        if filter
            .as_ref()
            .is_some_and(|f| !case.name.contains(f.as_str()))
        {
            continue;
        }
        if let Some(op) = common::set3::pending_op(case) {
            // Still missing? Its value check must fail with "unknown op".
            let r = catch_unwind(AssertUnwindSafe(|| run_check(case, "value")));
            let missing = match &r {
                Err(p) => p
                    .downcast_ref::<String>()
                    .is_some_and(|m| m.contains("unknown op")),
                Ok(_) => false,
            };
            if !missing {
                failures.push(format!(
                    "{}: `{op}` works now: remove it from PENDING in tests/common/set3.rs",
                    case.name
                ));
                failed[0] += 1;
            }
            skipped.push(&case.name);
            continue;
        }
        let checks = case.json.get("checks").unwrap();
        let started = std::time::Instant::now();
        for key in checks.keys() {
            let Some(k) = KINDS.iter().position(|&x| x == key) else {
                continue;
            };
            let r = catch_unwind(AssertUnwindSafe(|| run_check(case, key))).unwrap_or_else(|p| {
                Err(format!(
                    "panicked: {}",
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                ))
            });
            if std::env::var_os("WGRAD_CONFORMANCE_VERBOSE").is_some() {
                eprintln!(
                    "{} [{key}] {:?} {:?}",
                    case.name,
                    started.elapsed(),
                    r.as_ref().err()
                );
            }
            match r {
                Ok(()) => passed[k] += 1,
                Err(e) => {
                    failed[k] += 1;
                    failures.push(format!("{} [{key}]: {e}", case.name));
                }
            }
        }
    }
    // Written to stdout directly, so the summary shows even when libtest captures output.
    let mut out = std::io::stdout().lock();
    for f in &failures {
        let _ = writeln!(out, "FAIL {}", f.chars().take(600).collect::<String>());
    }
    for (k, kind) in KINDS.iter().enumerate() {
        if passed[k] + failed[k] > 0 {
            let _ = writeln!(
                out,
                "conformance[{kind}]: {} passed, {} failed",
                passed[k], failed[k]
            );
        }
    }
    let (p, f): (usize, usize) = (passed.iter().sum(), failed.iter().sum());
    let _ = writeln!(
        out,
        "conformance: {p} passed, {f} failed; {} cases skipped (ops pending: issue 18)",
        skipped.len()
    );
    drop(out);
    assert_eq!(f, 0, "{f} conformance checks failed");
    assert!(p > 0, "no conformance checks ran");
}

/// The oracle's loop cases with each `fori` rewritten as a `while_loop` (i < N): the checks
/// that need no reverse mode (value, jvp, jacfwd, vmap), and the value again under `jit` with
/// the loop traced on placeholders.
#[test]
fn loop_cases_as_while_loops() {
    common::setup();
    struct Flag;
    impl Drop for Flag {
        fn drop(&mut self) {
            common::FORI_AS_WHILE.with(|w| w.set(false));
        }
    }
    common::FORI_AS_WHILE.with(|w| w.set(true));
    let _flag = Flag;
    let cases = common::load_cases();
    let (mut passed, mut failures) = (0, vec![]);
    fn has_fori(e: &common::Sexp) -> bool {
        match e {
            common::Sexp::Atom(a) => a == "fori",
            common::Sexp::List(items) => items.iter().any(has_fori),
        }
    }
    for case in cases.iter().filter(|c| has_fori(&c.expr)) {
        let checks = case.json.get("checks").unwrap();
        for kind in ["value", "jvp", "jacfwd", "vmap"] {
            if checks.get(kind).is_none() {
                continue;
            }
            let r = catch_unwind(AssertUnwindSafe(|| run_check(case, kind)))
                .unwrap_or_else(|_| Err("panicked".into()));
            match r {
                Ok(()) => passed += 1,
                Err(e) => failures.push(format!("{} [{kind}]: {e}", case.name)),
            }
        }
        if let Some(want) = checks.get("value") {
            let f = jit(|a: &Vec<Tensor>| case.call(a));
            let r = catch_unwind(AssertUnwindSafe(|| case.check(&f(&case.inputs()), want)))
                .unwrap_or_else(|_| Err("panicked".into()));
            match r {
                Ok(()) => passed += 1,
                Err(e) => failures.push(format!("{} [jit value]: {e}", case.name)),
            }
        }
    }
    println!("loop cases as while loops: {passed} checks passed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(passed >= 20, "only {passed} loop checks ran");
}
