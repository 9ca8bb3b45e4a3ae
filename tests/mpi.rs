//! Data parallelism over MPI ranks (issue 22; feature `mpi`): `cargo test --features mpi --test
//! mpi` starts this binary under `mpirun -np 2` and `-np 3` (it launches itself) and checks
//! what the ranks report:
//! - training over the ranks matches one device on the whole batch, the copies are bit-identical
//!   on every rank, and an uneven batch is refused on every rank;
//! - a rank whose device is lost makes every rank return an error naming it (no hang);
//! - a rank that hangs makes the others give up after `WGRAD_MPI_TIMEOUT` and end the run;
//! - a rank that dies ends the run, and training resumed from rank 0's last checkpoint ends
//!   with the same bits as a run that was never interrupted.
//!
//! Needs Open MPI (`apt-get install openmpi-bin libopenmpi-dev libclang-dev`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wgrad::optim::{self, OptState};
use wgrad::parallel::{DataParallel, Mpi};
use wgrad::prelude::*;
mod common;

use common::mlp::{Mlp, data, host, loss, mlp};

const STEPS: usize = 6;
const ROWS: usize = 12;

/// Step `s`'s batch: the same on every rank (each takes its rows).
fn batch(s: usize, rows: usize) -> Vec<Tensor> {
    data(rows, 100 + s as u64)
}

fn digest(p: &Mlp) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in host(p).iter().flatten() {
        for b in v.to_bits().to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

fn main() {
    if let Ok(scenario) = std::env::var("WGRAD_MPI_SCENARIO") {
        return rank_main(&scenario);
    }
    if std::env::args().any(|a| a == "--list") {
        return; // (nothing to list: one test, this launcher)
    }
    let started = Instant::now();
    for np in [2, 3] {
        training_matches_one_device(np);
        a_lost_device_fails_every_rank(np);
    }
    a_hung_rank_ends_the_run_after_the_timeout();
    a_panicking_rank_ends_the_run();
    a_dead_rank_ends_the_run_and_training_resumes_from_the_checkpoint();
    println!(
        "mpi: all scenarios passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

// ---- The launcher's side: run the ranks, check what they print. ----

struct Run {
    ok: bool,
    out: String,
    err: String,
}

/// This binary under `mpirun -np np`, its ranks running `scenario`; killed (and the test
/// failed) if it runs past `limit`.
fn mpirun(np: usize, scenario: &str, env: &[(&str, &str)], limit: Duration) -> Run {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("mpirun");
    cmd.args(["--oversubscribe", "-np", &np.to_string()])
        .arg(exe)
        .env("WGRAD_MPI_SCENARIO", scenario)
        // A rank that waits for a dead one gives up well within the test's own limit.
        .env("WGRAD_MPI_TIMEOUT", "60")
        // Open MPI refuses root unless told twice (CI's container runs as root); loopback only.
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl", "self,vader,tcp")
        .env("OMPI_MCA_btl_tcp_if_include", "lo")
        .env("OMPI_MCA_oob_tcp_if_include", "lo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .expect("mpirun not found: apt-get install openmpi-bin");
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            let out = child.wait_with_output().unwrap();
            panic!(
                "mpirun -np {np} ({scenario}) still running after {limit:?}: it hangs\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let run = Run {
        ok: out.status.success(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!(
        "mpirun -np {np} {scenario}: {} in {:.1} s",
        if run.ok { "exit 0" } else { "failed" },
        started.elapsed().as_secs_f64()
    );
    run
}

/// The lines ranks printed that start with `tag`, by rank.
fn reports(run: &Run, tag: &str) -> Vec<String> {
    let mut lines: Vec<String> = run
        .out
        .lines()
        .filter(|l| l.starts_with(tag))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

fn training_matches_one_device(np: usize) {
    let run = mpirun(np, "train", &[], Duration::from_secs(300));
    assert!(run.ok, "np={np}: training failed\n{}\n{}", run.out, run.err);
    let done = reports(&run, "trained");
    assert_eq!(done.len(), np, "np={np}: every rank reports\n{}", run.out);
    // Every rank ends with the same parameters (check_replicas passed on each, and they print
    // the same digest).
    let digests: Vec<&str> = done.iter().map(|l| l.rsplit(' ').next().unwrap()).collect();
    assert!(digests.iter().all(|d| *d == digests[0]), "{done:?}");
    assert_eq!(reports(&run, "uneven refused").len(), np, "{}", run.out);
}

fn a_lost_device_fails_every_rank(np: usize) {
    let run = mpirun(np, "lose", &[], Duration::from_secs(300));
    assert!(run.ok, "np={np}\n{}\n{}", run.out, run.err);
    let seen = reports(&run, "step failed");
    assert_eq!(
        seen.len(),
        np,
        "np={np}: every rank returns the error\n{}",
        run.out
    );
    for line in &seen {
        assert!(line.contains("process(es) [1]"), "{line}");
    }
}

fn a_hung_rank_ends_the_run_after_the_timeout() {
    let started = Instant::now();
    let run = mpirun(
        2,
        "hang",
        &[("WGRAD_MPI_TIMEOUT", "4")],
        Duration::from_secs(120),
    );
    assert!(!run.ok, "a hung rank must end the run\n{}", run.out);
    assert!(
        run.err.contains("did not complete in 4 s"),
        "the rank that waited says why\n{}",
        run.err
    );
    assert!(started.elapsed() < Duration::from_secs(100));
}

fn a_panicking_rank_ends_the_run() {
    // Unwinding would finalize MPI, which waits for the rank that waits for this one.
    let started = Instant::now();
    let run = mpirun(2, "panic", &[], Duration::from_secs(120));
    assert!(!run.ok, "a panicking rank must end the run\n{}", run.out);
    assert!(run.err.contains("rank 1 of 2 panicked"), "{}", run.err);
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "the run ended by a timeout, not at the panic"
    );
}

fn a_dead_rank_ends_the_run_and_training_resumes_from_the_checkpoint() {
    let dir = std::env::temp_dir().join(format!("wgrad-mpi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ckpt.safetensors");
    let path_text = path.to_str().unwrap();
    let env = [("WGRAD_TEST_CHECKPOINT", path_text)];
    let whole = mpirun(2, "train", &env, Duration::from_secs(300));
    assert!(whole.ok, "{}\n{}", whole.out, whole.err);
    std::fs::remove_file(&path).unwrap();
    // Rank 1 dies at the start of step 4 (after rank 0 saved the checkpoint of 4 steps).
    let died = mpirun(
        2,
        "train",
        &[env[0], ("WGRAD_TEST_DIE_AT", "4")],
        Duration::from_secs(120),
    );
    assert!(!died.ok, "a dead rank must end the run\n{}", died.out);
    assert!(reports(&died, "trained").is_empty(), "{}", died.out);
    let resumed = mpirun(
        2,
        "train",
        &[env[0], ("WGRAD_TEST_RESUME", "1")],
        Duration::from_secs(300),
    );
    assert!(resumed.ok, "{}\n{}", resumed.out, resumed.err);
    assert!(resumed.out.contains("resumed at step 4"), "{}", resumed.out);
    assert_eq!(
        reports(&resumed, "trained"),
        reports(&whole, "trained"),
        "the resumed run ends with other bits than the uninterrupted one"
    );
    std::fs::remove_dir_all(&dir).ok();
}

// ---- A rank's side. ----

fn rank_main(scenario: &str) {
    let mpi = Mpi::init().unwrap();
    let rank = mpi.rank();
    let dp = DataParallel::new(vec![Device::default()])
        .unwrap()
        .with_collective(mpi);
    match scenario {
        "train" => train(&dp, rank),
        "lose" => lose(&dp, rank),
        "hang" => hang(&dp, rank),
        "panic" => {
            let (opt, mut params, mut state) = setup(&dp);
            dp.step(&opt, loss, &mut params, &mut state, &batch(0, ROWS))
                .unwrap();
            assert!(rank != 1, "rank 1 fails an assertion of its own");
            let r = dp.step(&opt, loss, &mut params, &mut state, &batch(1, ROWS));
            println!("rank {rank} returned {:?}", r.map(|_| ()));
        }
        other => panic!("unknown scenario {other}"),
    }
}

fn setup(
    dp: &DataParallel,
) -> (
    optim::Optimizer,
    wgrad::parallel::Replicated<Mlp>,
    wgrad::parallel::Replicated<OptState>,
) {
    let opt = optim::adam(0.02);
    let p0 = mlp(3);
    let params = dp.replicate(&p0).unwrap();
    let state = dp.replicate(&opt.init(&p0)).unwrap();
    (opt, params, state)
}

fn train(dp: &DataParallel, rank: usize) {
    let (opt, mut params, mut state) = setup(dp);
    let checkpoint = std::env::var("WGRAD_TEST_CHECKPOINT").ok();
    let die_at: Option<usize> = std::env::var("WGRAD_TEST_DIE_AT")
        .ok()
        .map(|s| s.parse().unwrap());
    let mut first = 0;
    if std::env::var("WGRAD_TEST_RESUME").is_ok() {
        // Every rank loads rank 0's checkpoint (one file system here).
        let path = checkpoint.as_deref().unwrap();
        let template = (params.first().clone(), state.first().clone());
        let ((p, s), meta) = wgrad::checkpoint::load(path, &template).unwrap();
        first = meta["step"].parse().unwrap();
        params = dp.replicate(&p).unwrap();
        state = dp.replicate(&s.with_step(first as u64)).unwrap();
        println!("rank {rank} resumed at step {first}");
    }
    for s in first..STEPS {
        if die_at == Some(s) && rank == 1 {
            std::process::exit(3);
        }
        dp.step(&opt, loss, &mut params, &mut state, &batch(s, ROWS))
            .unwrap();
        if let (Some(path), 0) = (&checkpoint, rank) {
            let tree = (params.first().clone(), state.first().clone());
            let step = (s + 1).to_string();
            wgrad::checkpoint::save(path, &tree, &[("step", &step)]).unwrap();
        }
        dp.collective().barrier().unwrap();
    }
    dp.check_replicas(&params).unwrap();
    dp.check_replicas(&state).unwrap();
    if std::env::var("WGRAD_TEST_RESUME").is_err() {
        // Against one device on the whole batch (this rank computes it alone).
        let mut p = mlp(3);
        let mut s1 = opt.init(&p);
        for s in 0..STEPS {
            let b = batch(s, ROWS);
            let (_, g) = value_and_grad(|p: &Mlp| loss(p, &b))(&p);
            p = opt.step(&p, &g, &mut s1);
        }
        for (got, want) in host(params.first()).iter().zip(host(&p)) {
            let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-4 * scale, "rank {rank}: {a} vs {b}");
            }
        }
        // An uneven batch is refused on every rank, and changes nothing.
        let before = digest(params.first());
        let e = dp
            .step(&opt, loss, &mut params, &mut state, &batch(0, ROWS + 1))
            .unwrap_err();
        assert_eq!(digest(params.first()), before);
        println!("uneven refused on rank {rank}: {e}");
    }
    // Copies that differ between ranks are found on every rank.
    let other = dp.replicate(&mlp(10 + rank as u64)).unwrap();
    let c = dp.check_replicas(&other).unwrap_err().to_string();
    assert!(
        c.contains("differ from another process"),
        "rank {rank}: {c}"
    );
    println!("trained rank {rank} {:016x}", digest(params.first()));
}

fn lose(dp: &DataParallel, rank: usize) {
    let (opt, mut params, mut state) = setup(dp);
    dp.step(&opt, loss, &mut params, &mut state, &batch(0, ROWS))
        .unwrap();
    let before = digest(params.first());
    let next = batch(1, ROWS);
    if rank == 1 {
        dp.devices()[0].wgpu().unwrap().0.destroy();
    }
    let e = dp
        .step(&opt, loss, &mut params, &mut state, &next)
        .unwrap_err();
    // Unchanged: the step count on every rank, the values where the device still reads.
    assert_eq!(
        state.first().step(),
        1,
        "rank {rank}: the failed step counted"
    );
    if rank != 1 {
        let after = digest(params.first());
        assert_eq!(
            after, before,
            "rank {rank}: the failed step changed the parameters"
        );
    }
    println!("step failed on rank {rank}: {e}");
    // Checking the copies needs every rank's: rank 1 cannot read its own, and says so.
    let c = dp.check_replicas(&params).unwrap_err().to_string();
    assert!(c.contains("process(es) [1]"), "rank {rank}: {c}");
}

fn hang(dp: &DataParallel, rank: usize) {
    let (opt, mut params, mut state) = setup(dp);
    if rank == 1 {
        std::thread::sleep(Duration::from_secs(600));
    }
    let r = dp.step(&opt, loss, &mut params, &mut state, &batch(0, ROWS));
    println!("rank {rank} returned {:?}", r.map(|_| ()));
}
