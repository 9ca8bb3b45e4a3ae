//! `realize` can return once the work is submitted (the default on GPUs; forced here, since
//! CPU adapters wait by default); a process that exits with work still running on the device
//! exits cleanly (lavapipe and llvmpipe once crashed here). Tested in a child process: this
//! test binary runs itself again with `WGRAD_EXIT_CHILD` set.

mod common;

use std::process::Command;
use std::time::Instant;
use wgrad::prelude::*;

fn no_wait() {
    wgrad::set_policy(wgrad::Policy {
        wait_after_realize: Some(false),
        ..wgrad::policy()
    });
}

/// In the child: queue heavy work, realize, and return at once (the process then exits with
/// the work in flight). Outside the child it does nothing.
#[test]
fn child_exits_with_work_in_flight() {
    if std::env::var("WGRAD_EXIT_CHILD").is_err() {
        return;
    }
    common::setup();
    no_wait();
    let a = Tensor::rand([768, 768], 1);
    let mut c = a.matmul(&a);
    for _ in 0..6 {
        c = c.matmul(&a) * 1e-3;
    }
    let t = Instant::now();
    c.realize();
    // Several realizes in flight, their temporaries dropped while the device reads them.
    for k in 0..4 {
        let d = (c.matmul(&a) + k as f32).tanh();
        d.realize();
    }
    println!("CHILD-REALIZED after {:?}", t.elapsed());
}

#[test]
fn exiting_with_work_in_flight_is_clean() {
    if std::env::var("WGRAD_EXIT_CHILD").is_ok() {
        return;
    }
    for run in 0..3 {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_exits_with_work_in_flight", "--nocapture"])
            .env("WGRAD_EXIT_CHILD", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("CHILD-REALIZED"),
            "run {run}: the child failed: {:?}\n{stdout}\n{stderr}",
            out.status
        );
    }
}

#[test]
fn realize_does_not_wait_for_the_device_but_reading_does() {
    if std::env::var("WGRAD_EXIT_CHILD").is_ok() {
        return;
    }
    common::setup();
    no_wait();
    let a = Tensor::rand([512, 512], 2).realize().clone();
    // Warm the pipelines.
    (a.matmul(&a) * 0.5).realize();
    wgrad::synchronize();
    let mut c = a.clone();
    for _ in 0..8 {
        c = c.matmul(&a) * 0.01;
    }
    let t = Instant::now();
    c.realize();
    let submitted = t.elapsed();
    let v = c.to_vec::<f32>();
    let read = t.elapsed();
    assert!(v.iter().all(|x| x.is_finite()));
    // The value is the same as computed step by step with waits in between.
    let mut d = a.clone();
    for _ in 0..8 {
        d = d.matmul(&a) * 0.01;
        d.realize();
        wgrad::synchronize();
    }
    common::close(&v, &d.to_vec::<f32>(), 1e-5, 1e-6).unwrap();
    eprintln!("realize returned after {submitted:?}, the read after {read:?}");
}
