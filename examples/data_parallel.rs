//! The digits CNN of `examples/digits.rs` trained data-parallel: every replica holds the
//! parameters and the data, takes its block of each batch, and the gradients are averaged over
//! all replicas (`wgrad::parallel`).
//!
//! - One process, N devices: `cargo run --release --example data_parallel -- --devices 2`
//! - MPI, one rank per process (Open MPI; as root add `--allow-run-as-root`):
//!   `cargo build --release --features mpi --example data_parallel`, then
//!   `mpirun -np 2 target/release/examples/data_parallel --devices 1`. Each rank takes
//!   `wgrad::parallel::local_device()` (with several GPUs, one per rank, round robin).
//!
//! Flags: `--devices N` (per process; default 2, or 1 under MPI), `--epochs N` (default 15),
//! `--batch B` (the whole batch over every replica; default 96), `--checkpoint PATH` (rank 0
//! saves parameters and optimizer state there after each epoch), `--resume` (every rank loads
//! that checkpoint and goes on from its epoch), `--quick` (a few steps, what CI runs).
//!
//! The last line (rank 0) is `test accuracy: 0.xxxx` on the 360 held-out images.

#[allow(dead_code)]
#[path = "../web/src/digits.rs"]
mod digits;

use std::time::Instant;
use wgrad::parallel::DataParallel;
use wgrad::prelude::*;
use wgrad::{checkpoint, nn, optim, random};

struct Args {
    devices: Option<usize>,
    epochs: usize,
    batch: usize,
    checkpoint: Option<String>,
    resume: bool,
    quick: bool,
}

fn args() -> Args {
    let mut a = Args {
        devices: None,
        epochs: 15,
        batch: 96,
        checkpoint: None,
        resume: false,
        quick: false,
    };
    let mut it = std::env::args().skip(1);
    let usage = "data_parallel [--devices N] [--epochs N] [--batch B] [--checkpoint PATH] [--resume] [--quick]";
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value");
                std::process::exit(2)
            })
        };
        let mut number = |name: &str| -> usize {
            value(name).parse().unwrap_or_else(|_| {
                eprintln!("{name} takes a whole number");
                std::process::exit(2)
            })
        };
        match flag.as_str() {
            "--devices" => a.devices = Some(number("--devices")),
            "--epochs" => a.epochs = number("--epochs"),
            "--batch" => a.batch = number("--batch"),
            "--checkpoint" => a.checkpoint = Some(value("--checkpoint")),
            "--resume" => a.resume = true,
            "--quick" => a.quick = true,
            "-h" | "--help" => {
                println!("{usage}");
                std::process::exit(0)
            }
            other => {
                eprintln!("unknown argument {other} (try --help)");
                std::process::exit(2)
            }
        }
    }
    if a.quick {
        a.epochs = a.epochs.min(2);
    }
    a
}

/// Under `mpirun` (built with `--features mpi`): MPI's collective, and this rank's device.
#[cfg(feature = "mpi")]
fn processes() -> Result<(Option<wgrad::parallel::Mpi>, Device), wgrad::Error> {
    if std::env::var("OMPI_COMM_WORLD_SIZE").is_ok() || std::env::var("PMI_SIZE").is_ok() {
        let mpi = wgrad::parallel::Mpi::init()?;
        return Ok((Some(mpi), wgrad::parallel::local_device()?));
    }
    Ok((None, Device::default()))
}

#[cfg(not(feature = "mpi"))]
fn processes() -> Result<(Option<wgrad::parallel::SingleProcess>, Device), wgrad::Error> {
    if std::env::var("OMPI_COMM_WORLD_SIZE").is_ok() {
        eprintln!("started by mpirun, but built without MPI: build with `--features mpi`");
        std::process::exit(2);
    }
    Ok((None, Device::default()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args();
    let (mpi, first) = processes()?;
    let under_mpi = mpi.is_some();
    let per_process = args.devices.unwrap_or(if under_mpi { 1 } else { 2 });
    let mut devices = vec![first];
    for _ in 1..per_process {
        devices.push(Device::open()?);
    }
    let mut dp = DataParallel::new(devices)?;
    if let Some(mpi) = mpi {
        dp = dp.with_collective(mpi);
    }
    let rank = dp.rank();
    let say = |line: String| {
        if rank == 0 {
            println!("{line}");
        }
    };
    let info = dp.devices()[0].info()?;
    say(format!(
        "{} processes × {} devices = {} replicas on {} ({})",
        dp.collective().size(),
        per_process,
        dp.replicas(),
        info.name,
        info.backend
    ));

    let data = digits::load();
    let n_train = data.y_train.numel();
    let batch = args.batch;
    if batch % dp.replicas() != 0 {
        return Err(format!(
            "--batch {batch} must be a multiple of the {} replicas",
            dp.replicas()
        )
        .into());
    }
    let per_replica = batch / dp.replicas();
    let per_epoch = if args.quick { 4 } else { n_train / batch };
    let total = (args.epochs * per_epoch) as u64;
    let schedule = optim::warmup_cosine_decay_schedule(0.0, 3e-3, total / 20, total, 1e-4);
    let opt = optim::adam(schedule);
    let model = digits::Cnn::new(random::key(42));
    let mut params = dp.replicate(&model)?;
    let mut state = dp.replicate(&opt.init(&model))?;
    let mut first_epoch = 0;
    if args.resume {
        let path = args
            .checkpoint
            .as_deref()
            .ok_or("--resume needs --checkpoint PATH")?;
        let template = (
            wgrad::tree::tree_map(&model, Tensor::clone),
            opt.init(&model),
        );
        let ((m, s), meta) = checkpoint::load(path, &template)?;
        first_epoch = meta["epoch"].parse()?;
        let steps: u64 = meta["step"].parse()?;
        params = dp.replicate(&m)?;
        state = dp.replicate(&s.with_step(steps))?;
        say(format!("resumed from {path} after epoch {first_epoch}"));
    }
    // The training data on every device; each replica gathers its own rows there.
    let train = dp.replicate(&(data.x_train.clone(), data.y_train.clone()))?;
    say(format!(
        "{n_train} training images; {} parameters; batches of {batch} ({per_replica} a replica); {} epochs of {per_epoch} steps",
        wgrad::tree::size(&model),
        args.epochs
    ));

    let loss_fn = |m: &digits::Cnn, b: &[Tensor]| {
        nn::softmax_cross_entropy_with_integer_labels(&m.forward(&b[0]), &b[1]).mean_all()
    };
    let (x_test, y_test) = wgrad::with_device(&dp.devices()[0], || {
        (
            data.x_test.to_device(&dp.devices()[0]),
            data.y_test.to_device(&dp.devices()[0]),
        )
    });
    // On the first device, where the first copy of the parameters lives.
    let test_accuracy = |model: &digits::Cnn| {
        wgrad::with_device(&dp.devices()[0], || {
            nn::accuracy(&model.forward(&x_test), &y_test).item()
        })
    };
    let started = Instant::now();
    let mut steps = 0;
    for epoch in first_epoch..args.epochs {
        let epoch_start = Instant::now();
        let mut loss = f32::NAN;
        for step in 0..per_epoch {
            // The same shuffle on every device; replica r takes block r of the step's rows.
            let shards = dp.map(|k, _| {
                let order = random::permutation(random::key(1).fold_in(epoch as u32), n_train);
                let start = step * batch + dp.replica_id(k) * per_replica;
                let idx = order.slice_axis(0, start..start + per_replica);
                vec![train[k].0.take(&idx, 0), train[k].1.take(&idx, 0)]
            });
            loss = dp.step_sharded(&opt, loss_fn, &mut params, &mut state, &shards)?;
            steps += 1;
        }
        let acc = test_accuracy(params.first());
        say(format!(
            "epoch {:>2}: loss {loss:.4}, test accuracy {acc:.4}, {:.1} steps/s",
            epoch + 1,
            per_epoch as f64 / epoch_start.elapsed().as_secs_f64()
        ));
        if let Some(path) = &args.checkpoint {
            if rank == 0 {
                let (e, s) = ((epoch + 1).to_string(), state.first().step().to_string());
                let tree = (
                    wgrad::tree::tree_map(params.first(), Tensor::clone),
                    state.first().clone(),
                );
                checkpoint::save(path, &tree, &[("epoch", &e), ("step", &s)])?;
            }
            dp.collective().barrier()?;
        }
    }
    let took = started.elapsed().as_secs_f64();
    say(format!(
        "trained {steps} steps in {took:.1} s ({:.1} steps/s); reducing took {:.1} % of it",
        steps as f64 / took,
        100.0 * dp.reduce_time().as_secs_f64() / took
    ));
    dp.check_replicas(&params)?;
    say("replicas identical on every device and process".into());
    let acc = test_accuracy(params.first());
    say(format!("test accuracy: {acc:.4}"));
    Ok(())
}
