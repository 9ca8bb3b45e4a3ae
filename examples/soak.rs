//! A long training run that watches memory (issue 19's soak): an MLP with dropout (a new key
//! every step), Adam on a warmup-cosine schedule that restarts every 2,000 steps, fresh
//! mini-batches every step, a checkpoint saved every `--checkpoint-secs` and loaded back.
//! Every `--sample-secs` it prints one CSV row: elapsed seconds, steps, loss, the process's
//! resident memory (RSS, from /proc/self/statm) and the device memory wgrad holds
//! (`Counters::bytes_allocated`). At the end it compares the last third of the run with the
//! first (after warm-up): memory that keeps growing is a leak, and the run fails.
//!
//! Run: `cargo run --release --example soak -- [--minutes M] [--sample-secs S]
//! [--checkpoint-secs C] [--csv PATH]` (default 30 minutes; `--quick` is 20 seconds).

use std::io::Write;
use std::time::Instant;

use wgrad::prelude::*;
use wgrad::{nn, optim, random};

/// Resident memory of this process in bytes (Linux), or 0 where /proc is missing.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn arg(args: &[String], name: &str) -> Option<f64> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

struct Sample {
    secs: f64,
    rss: u64,
    device: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let minutes = arg(&args, "--minutes").unwrap_or(if quick { 1.0 / 3.0 } else { 30.0 });
    let sample_secs = arg(&args, "--sample-secs").unwrap_or(if quick { 2.0 } else { 30.0 });
    let checkpoint_secs =
        arg(&args, "--checkpoint-secs").unwrap_or(if quick { 5.0 } else { 180.0 });
    let csv_path = args
        .iter()
        .position(|a| a == "--csv")
        .and_then(|i| args.get(i + 1))
        .cloned();
    println!("adapter: {}", wgrad::init().expect("no adapter"));
    let ckpt = std::env::temp_dir().join(format!("wgrad-soak-{}.safetensors", std::process::id()));

    // y = sin(3 x0) + x1 x2 on random points, a fresh batch every step.
    let [k_model, mut k_data] = random::key(7).split_n();
    let mut model = nn::Mlp::new(k_model, &[3, 128, 128, 1], nn::Activation::Tanh);
    let schedule = optim::warmup_cosine_decay_schedule(0.0, 3e-3, 100, 2_000, 1e-4);
    let opt = optim::adam(schedule);
    let mut state = opt.init(&model);
    let started = Instant::now();
    let (mut last_sample, mut last_ckpt) = (0.0f64, 0.0f64);
    let mut samples: Vec<Sample> = vec![];
    let mut csv = String::from("secs,steps,loss,rss_bytes,device_bytes\n");
    println!("secs,steps,loss,rss_mb,device_mb");
    let mut step: u64 = 0;
    loop {
        let secs = started.elapsed().as_secs_f64();
        if secs >= minutes * 60.0 {
            break;
        }
        let [k_x, k_drop, next] = k_data.split_n();
        k_data = next;
        let x = random::uniform_range(k_x, [256, 3], -1.0, 1.0);
        let y = (x.slice_axis(1, 0..1) * 3.0).sin() + x.slice_axis(1, 1..2) * x.slice_axis(1, 2..3);
        let loss = |m: &nn::Mlp| {
            let mut h = x.clone();
            for (k, l) in m.layers.iter().enumerate() {
                h = l.forward(&h);
                if k + 1 < m.layers.len() {
                    h = nn::dropout(&h.tanh(), 0.1, Some(k_drop.fold_in(k as u32)));
                }
            }
            nn::mse(&h, &y)
        };
        let (l, g) = value_and_grad(loss)(&model);
        // The schedule restarts every 2,000 steps (a changing learning rate all run long).
        if step > 0 && step % 2_000 == 0 {
            state = opt.init(&model);
        }
        model = opt.step(&model, &g, &mut state);
        wgrad::tree::realize(&[&model, &state, &l]);
        step += 1;
        if secs - last_ckpt >= checkpoint_secs {
            last_ckpt = secs;
            wgrad::checkpoint::save(&ckpt, &model, &[("step", &step.to_string())])
                .expect("saving the checkpoint");
            let (back, meta) = wgrad::checkpoint::load(&ckpt, &model).expect("loading it back");
            assert_eq!(meta["step"], step.to_string());
            model = back;
        }
        if secs - last_sample >= sample_secs || step == 1 {
            last_sample = secs;
            let (rss, device) = (rss_bytes(), wgrad::counters().bytes_allocated);
            let loss = l.item();
            println!(
                "{secs:.0},{step},{loss:.5},{:.1},{:.1}",
                rss as f64 / 1e6,
                device as f64 / 1e6
            );
            csv.push_str(&format!("{secs:.1},{step},{loss},{rss},{device}\n"));
            samples.push(Sample { secs, rss, device });
        }
    }
    let _ = std::fs::remove_file(&ckpt);
    if let Some(p) = csv_path {
        std::fs::File::create(&p)
            .and_then(|mut f| f.write_all(csv.as_bytes()))
            .expect("writing the CSV");
    }
    // Past warm-up (the first quarter), the last third's peak against the first third's.
    let warm: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.secs >= minutes * 15.0)
        .collect();
    if warm.len() < 3 {
        println!("soak: {step} steps; too few samples to judge memory");
        return;
    }
    let third = warm.len() / 3;
    let peak = |xs: &[&Sample], f: fn(&Sample) -> u64| xs.iter().map(|s| f(s)).max().unwrap_or(0);
    let (early, late) = (&warm[..third.max(1)], &warm[warm.len() - third.max(1)..]);
    let rss = (peak(early, |s| s.rss), peak(late, |s| s.rss));
    let device = (peak(early, |s| s.device), peak(late, |s| s.device));
    println!(
        "soak: {step} steps in {:.0} s; RSS peak {:.1} -> {:.1} MB, device {:.1} -> {:.1} MB",
        started.elapsed().as_secs_f64(),
        rss.0 as f64 / 1e6,
        rss.1 as f64 / 1e6,
        device.0 as f64 / 1e6,
        device.1 as f64 / 1e6
    );
    // Flat: the late peak within 10 % (and 16 MB) of the early one.
    let grew = |(a, b): (u64, u64)| b as f64 > a as f64 * 1.1 + 16e6;
    assert!(!grew(rss), "RSS kept growing");
    assert!(!grew(device), "device memory kept growing");
    println!("soak: memory flat");
}
