//! A small CNN on scikit-learn's handwritten digits (1,797 8×8 images, `examples/data`), trained
//! with Adam and a warm-up cosine schedule, with a progress bar, a loss/accuracy plot and a
//! safetensors checkpoint that is saved and loaded back. Uses only `nn`, `optim`, `random`,
//! `tree` and `checkpoint`.
//!
//! Run: `cargo run --release --example digits -- [--epochs N] [--save PATH] [--plot PATH] [--quick]`
//!
//! The last line printed is `test accuracy: 0.xxxx` (on 360 held-out images). `--save PATH`
//! writes the trained parameters there (float32 safetensors, one tensor per parameter: `c1.w`,
//! `c1.b`, …); without it they go to `target/digits.safetensors`. `--quick` trains a few
//! steps only (what CI runs, so that the example never rots).

#[path = "support/plot.rs"]
mod plot;

// The model and the data split, shared with the browser demo (which also has a trainer of its
// own; this example writes its training loop out).
#[allow(dead_code)]
#[path = "../web/src/digits.rs"]
mod digits;

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use wgrad::prelude::*;
use wgrad::{checkpoint, nn, optim, random};

struct Args {
    epochs: usize,
    save: Option<String>,
    plot: String,
    quick: bool,
}

fn args() -> Args {
    let mut a = Args {
        epochs: 15,
        save: None,
        plot: "target/digits.png".into(),
        quick: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value");
                std::process::exit(2)
            })
        };
        match flag.as_str() {
            "--epochs" => {
                a.epochs = value("--epochs").parse().unwrap_or_else(|_| {
                    eprintln!("--epochs takes a whole number");
                    std::process::exit(2)
                })
            }
            "--save" => a.save = Some(value("--save")),
            "--plot" => a.plot = value("--plot"),
            "--quick" => a.quick = true,
            "-h" | "--help" => {
                println!("digits [--epochs N] [--save PATH] [--plot PATH] [--quick]");
                std::process::exit(0)
            }
            other => {
                eprintln!("unknown argument {other} (try --help)");
                std::process::exit(2)
            }
        }
    }
    if a.quick {
        a.epochs = a.epochs.min(1);
    }
    a
}

fn accuracy(model: &digits::Cnn, x: &Tensor, y: &Tensor) -> f32 {
    nn::accuracy(&model.forward(x), y).item()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args();
    let info = wgrad::init()?;
    println!("adapter: {} ({})", info.name, info.backend);

    // Shuffled with a fixed key; 360 images (20 %) held out.
    let digits::Digits {
        x_train,
        y_train,
        x_test,
        y_test,
    } = digits::load();
    wgrad::realize(&[
        x_test.clone(),
        y_test.clone(),
        x_train.clone(),
        y_train.clone(),
    ]);
    let (n_train, n_test) = (y_train.numel(), y_test.numel());

    let batch = 64;
    let per_epoch = if args.quick { 5 } else { n_train / batch };
    let total = (args.epochs * per_epoch) as u64;
    let schedule = optim::warmup_cosine_decay_schedule(0.0, 3e-3, total / 20, total, 1e-4);
    let opt = optim::adam(schedule);
    let mut model = digits::Cnn::new(random::key(42));
    let mut state = opt.init(&model);
    println!(
        "{} training and {} test images; {} parameters; {} epochs of {} steps",
        n_train,
        n_test,
        wgrad::tree::size(&model),
        args.epochs,
        per_epoch
    );

    let loss_fn = |m: &digits::Cnn, x: &Tensor, y: &Tensor| {
        nn::softmax_cross_entropy_with_integer_labels(&m.forward(x), y).mean_all()
    };
    let bar = ProgressBar::new(total);
    bar.set_style(ProgressStyle::with_template(
        "{bar:30.cyan/blue} {pos:>4}/{len} {msg}",
    )?);
    let say = |bar: &ProgressBar, line: String| {
        if bar.is_hidden() {
            println!("{line}");
        } else {
            bar.println(line);
        }
    };
    let mut losses: Vec<(f64, f64)> = vec![];
    let mut test_acc: Vec<(f64, f64)> = vec![(0.0, accuracy(&model, &x_test, &y_test) as f64)];
    let started = Instant::now();
    for epoch in 0..args.epochs {
        let shuffle = random::permutation(random::key(1).fold_in(epoch as u32), n_train);
        let epoch_start = Instant::now();
        for step in 0..per_epoch {
            let idx = shuffle.slice_axis(0, step * batch..(step + 1) * batch);
            let (x, y) = (x_train.take(&idx, 0), y_train.take(&idx, 0));
            let (loss, g) = value_and_grad(|m: &digits::Cnn| loss_fn(m, &x, &y))(&model);
            model = opt.step(&model, &g, &mut state);
            wgrad::tree::realize(&[&model, &state, &loss]);
            let l = loss.item();
            losses.push((state.step() as f64, l as f64));
            let rate = (step + 1) as f64 / epoch_start.elapsed().as_secs_f64();
            bar.set_message(format!(
                "epoch {}/{} loss {l:.4} {rate:.1} steps/s",
                epoch + 1,
                args.epochs
            ));
            bar.inc(1);
        }
        let acc = accuracy(&model, &x_test, &y_test);
        test_acc.push(((epoch + 1) as f64, acc as f64));
        say(
            &bar,
            format!(
                "epoch {:>2}: loss {:.4}, test accuracy {:.4}, {:.1} steps/s",
                epoch + 1,
                losses.last().map_or(f64::NAN, |l| l.1),
                acc,
                per_epoch as f64 / epoch_start.elapsed().as_secs_f64()
            ),
        );
    }
    bar.finish_and_clear();
    println!(
        "trained in {:.1} s ({:.1} steps/s)",
        started.elapsed().as_secs_f64(),
        total as f64 / started.elapsed().as_secs_f64()
    );

    // The plot: training loss per step, test accuracy per epoch.
    {
        use plotters::prelude::*;
        let text = plot::font();
        if let Some(dir) = std::path::Path::new(&args.plot).parent() {
            std::fs::create_dir_all(dir).ok();
        }
        let root = BitMapBackend::new(&args.plot, (1000, 400)).into_drawing_area();
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(500);
        plot::line_chart(&left, text, "training loss", "step", &losses, BLUE)?;
        plot::line_chart(&right, text, "test accuracy", "epoch", &test_acc, RED)?;
        root.present()?;
        println!("plot: {}", args.plot);
    }

    // Save, load into a freshly initialised model, check it gives the same answers.
    let acc = accuracy(&model, &x_test, &y_test);
    let path = args
        .save
        .clone()
        .unwrap_or_else(|| "target/digits.safetensors".into());
    let acc_text = format!("{acc:.4}");
    checkpoint::save(&path, &model, &[("test_accuracy", &acc_text)])?;
    let (reloaded, meta) = checkpoint::load(&path, &digits::Cnn::new(random::key(7)))?;
    let again = accuracy(&reloaded, &x_test, &y_test);
    println!(
        "saved to {path} and loaded back: test accuracy {again:.4} (file says {})",
        meta["test_accuracy"]
    );
    if again != acc {
        return Err("the reloaded model disagrees with the trained one".into());
    }
    println!("test accuracy: {acc:.4}");
    Ok(())
}
