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

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use wgrad::prelude::*;
use wgrad::{checkpoint, nn, optim, random};

/// The model: two 3×3 convolutions, a 2×2 max pool, two dense layers.
struct Cnn {
    c1: nn::Conv2d,
    c2: nn::Conv2d,
    fc1: nn::Linear,
    fc2: nn::Linear,
}
wgrad::tree_struct!(Cnn { c1, c2, fc1, fc2 });

impl Cnn {
    fn new(key: random::Key) -> Cnn {
        let [k1, k2, k3, k4] = key.split_n();
        let same = Conv2d {
            padding: [1, 1],
            ..Default::default()
        };
        Cnn {
            c1: nn::Conv2d::new(k1, 1, 16, [3, 3], same),
            c2: nn::Conv2d::new(k2, 16, 32, [3, 3], same),
            fc1: nn::Linear::new(k3, 32 * 4 * 4, 64),
            fc2: nn::Linear::new(k4, 64, 10),
        }
    }

    /// Logits `[n, 10]` for images `[n, 1, 8, 8]`.
    fn forward(&self, x: &Tensor) -> Tensor {
        let n = x.shape()[0];
        let h = self.c1.forward(x).relu();
        let h = self.c2.forward(&h).relu().max_pool2d(2, None);
        let h = self.fc1.forward(&h.reshape([n, 32 * 4 * 4])).relu();
        self.fc2.forward(&h)
    }
}

/// Images `[n, 1, 8, 8]` scaled to [0, 1] and labels `[n]` (i32).
fn load_digits() -> (Tensor, Tensor) {
    let bytes = include_bytes!("data/digits.bin");
    let n = bytes.len() / 65;
    let mut pixels = Vec::with_capacity(n * 64);
    let mut labels = Vec::with_capacity(n);
    for rec in bytes.chunks_exact(65) {
        pixels.extend(rec[..64].iter().map(|&p| p as f32 / 16.0));
        labels.push(rec[64] as i32);
    }
    (
        Tensor::from_vec(pixels, [n, 1, 8, 8]),
        Tensor::from_slice(&labels, [n]),
    )
}

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

fn accuracy(model: &Cnn, x: &Tensor, y: &Tensor) -> f32 {
    nn::accuracy(&model.forward(x), y).item()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args();
    let info = wgrad::init()?;
    println!("adapter: {} ({})", info.name, info.backend);

    // Shuffle once with a fixed key; hold out 360 images (20 %).
    let (images, labels) = load_digits();
    let n = labels.numel();
    let order = random::permutation(random::key(0), n);
    let (images, labels) = (images.take(&order, 0), labels.take(&order, 0));
    let n_test = 360;
    let (x_test, y_test) = (
        images.slice_axis(0, 0..n_test),
        labels.slice_axis(0, 0..n_test),
    );
    let (x_train, y_train) = (
        images.slice_axis(0, n_test..n),
        labels.slice_axis(0, n_test..n),
    );
    wgrad::realize(&[
        x_test.clone(),
        y_test.clone(),
        x_train.clone(),
        y_train.clone(),
    ]);
    let n_train = n - n_test;

    let batch = 64;
    let per_epoch = if args.quick { 5 } else { n_train / batch };
    let total = (args.epochs * per_epoch) as u64;
    let schedule = optim::warmup_cosine_decay_schedule(0.0, 3e-3, total / 20, total, 1e-4);
    let opt = optim::adam(schedule);
    let mut model = Cnn::new(random::key(42));
    let mut state = opt.init(&model);
    println!(
        "{} training and {} test images; {} parameters; {} epochs of {} steps",
        n_train,
        n_test,
        wgrad::tree::size(&model),
        args.epochs,
        per_epoch
    );

    let loss_fn = |m: &Cnn, x: &Tensor, y: &Tensor| {
        nn::softmax_cross_entropy_with_integer_labels(&m.forward(x), y).mean(None, false)
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
            let (loss, g) = value_and_grad(|m: &Cnn| loss_fn(m, &x, &y))(&model);
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
    let (reloaded, meta) = checkpoint::load(&path, &Cnn::new(random::key(7)))?;
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
