//! Gaussian-process regression of the Mauna Loa CO₂ record (`examples/data/co2_monthly.csv`,
//! public domain, see its header): a quadratic mean (least squares), and on the residuals a
//! smooth trend plus a yearly cycle that may drift, plus noise, with the six kernel
//! hyperparameters fitted by L-BFGS on the exact log marginal
//! likelihood (Cholesky, `cho_solve` and the log-determinant on the device, the gradient by
//! wgrad), then the posterior mean and a ±2σ band, extrapolated past the data, drawn as a PNG.
//! The last 24 months are held out and predicted.
//!
//! Run: `cargo run --release --example gp -- [--plot PATH] [--quick]` (`--quick`: every fourth
//! month and a few iterations, for CI).

#[path = "support/plot.rs"]
mod plot;

use wgrad::optim::{LbfgsOptions, lbfgs};
use wgrad::prelude::*;

/// The kernel between times `a` `[n]` and `b` `[m]` (years) at log-hyperparameters `th`:
/// `s1² rbf(ℓ1) + s2² exp(-2 sin²(π Δ) / ℓ2²) rbf(ℓ3)`.
fn kernel(th: &Tensor, a: &Tensor, b: &Tensor) -> Tensor {
    let p = th.exp();
    let d = a.expand_dims(1) - b.expand_dims(0);
    let rbf = |l: Tensor| (-(d.square() / (l.square() * 2.0))).exp();
    let trend = rbf(p.index(1)) * p.index(0).square();
    let season = (-((d.clone() * std::f32::consts::PI).sin().square() * 2.0 / p.index(3).square()))
        .exp()
        * rbf(p.index(4))
        * p.index(2).square();
    trend + season
}

/// The negative log marginal likelihood of `y` at times `t`.
fn nll(th: &Tensor, t: &Tensor, y: &Tensor) -> Tensor {
    let n = t.shape()[0];
    let noise = th.index(5).exp().square() + 1e-4;
    let k = kernel(th, t, t) + Tensor::eye(n) * noise;
    let l = wgrad::linalg::cholesky(&k);
    let alpha = wgrad::linalg::cho_solve(&l, y);
    (y * alpha).sum_all() * 0.5
        + (&l * Tensor::eye(n)).sum_axes(-1).log().sum_all()
        + 0.5 * n as f32 * (2.0 * std::f32::consts::PI).ln()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut plot_path = "target/gp.png".to_string();
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--plot" => plot_path = args.next().ok_or("--plot needs a path")?,
            _ => return Err(format!("unknown argument {a}; gp [--plot PATH] [--quick]").into()),
        }
    }
    let info = wgrad::init()?;
    println!("adapter: {} ({})", info.name, info.backend);

    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/co2_monthly.csv"
    ))?;
    let rows: Vec<(f32, f32)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (a, b) = l.split_once(',').expect("two columns");
            (a.parse().expect("year"), b.parse().expect("ppm"))
        })
        .collect();
    let step = if quick { 4 } else { 1 };
    let held = 24;
    let (fit_rows, test_rows) = rows.split_at(rows.len() - held);
    let fit_rows: Vec<(f32, f32)> = fit_rows.iter().step_by(step).copied().collect();
    let t0 = fit_rows[0].0;
    let tensor = |v: Vec<f32>| Tensor::from_vec(v.clone(), [v.len()]);
    // The mean function: a quadratic in time by least squares (a 3 × 3 solve on the device).
    let basis = |x: f32| [1.0f32, (x - t0) / 10.0, ((x - t0) / 10.0).powi(2)];
    let design: Vec<f32> = fit_rows.iter().flat_map(|r| basis(r.0)).collect();
    let design = Tensor::from_vec(design, [fit_rows.len(), 3]);
    let ys = tensor(fit_rows.iter().map(|r| r.1).collect());
    let coef = wgrad::linalg::solve(&design.mt().matmul(&design), &design.mt().matmul(&ys))
        .to_vec::<f32>();
    let trend = move |x: f32| basis(x).iter().zip(&coef).map(|(b, c)| b * c).sum::<f32>();
    let resid: Vec<f32> = fit_rows.iter().map(|r| r.1 - trend(r.0)).collect();
    let sd = (resid.iter().map(|v| v * v).sum::<f32>() / resid.len() as f32).sqrt();
    let t = tensor(fit_rows.iter().map(|r| r.0 - t0).collect());
    let y = tensor(resid.iter().map(|v| v / sd).collect());
    println!(
        "{} months fitted ({:.1}–{:.1}), {held} held out",
        fit_rows.len(),
        fit_rows[0].0,
        fit_rows[fit_rows.len() - 1].0
    );

    // log of: residual trend scale and length (years), seasonal scale, periodic length, decay
    // (years), noise — all on the standardized residuals.
    let init = tensor(vec![-1.0, 2.0f32.ln(), 0.0, 0.0, 20.0f32.ln(), -2.0]);
    let started = std::time::Instant::now();
    let options = LbfgsOptions {
        max_iters: if quick { 5 } else { 80 },
        ..Default::default()
    };
    let r = lbfgs(|th: &Tensor| nll(th, &t, &y), &init, options);
    let p: Vec<f32> = r.params.exp().to_vec::<f32>();
    println!(
        "L-BFGS: nll {:.2} after {} iterations, {} evaluations ({:.1} s); largest gradient entry {:.1e}; stopped: {:?}",
        r.value,
        r.iterations,
        r.evaluations,
        started.elapsed().as_secs_f64(),
        r.grad_max,
        r.stop
    );
    println!(
        "residual trend {:.2} ppm over {:.1} years; season {:.2} ppm (periodic length {:.2}, decay {:.1} years); noise {:.3} ppm",
        p[0] * sd,
        p[1],
        p[2] * sd,
        p[3],
        p[4],
        p[5] * sd
    );

    // The posterior on a grid past the data: mean K*ᵀα, variance k** - |L⁻¹K*|² (+ noise).
    let th = &r.params;
    let n = t.shape()[0];
    let noise = th.index(5).exp().square() + 1e-4;
    let l = wgrad::linalg::cholesky(&(kernel(th, &t, &t) + Tensor::eye(n) * noise.clone()));
    let alpha = wgrad::linalg::cho_solve(&l, &y);
    let last = rows[rows.len() - 1].0;
    let grid: Vec<f32> = (0..400)
        .map(|k| t0 + (last + 8.0 - t0) * k as f32 / 399.0)
        .collect();
    let predict = |times: &[f32]| -> (Vec<f32>, Vec<f32>) {
        let ts = tensor(times.iter().map(|x| x - t0).collect());
        let ks = kernel(th, &t, &ts);
        let base = tensor(times.iter().map(|&x| trend(x)).collect());
        let mu = ks.mt().matmul(&alpha) * sd + base;
        let v = wgrad::linalg::triangular_solve(&l, &ks, true);
        let prior = th.index(0).exp().square() + th.index(2).exp().square() + &noise;
        let var = (prior - v.square().sum_axes(0)).maximum(Tensor::scalar(0.0)) * (sd * sd);
        (mu.to_vec::<f32>(), var.sqrt().to_vec::<f32>())
    };
    let (mu, sigma) = predict(&grid);
    let test_t: Vec<f32> = test_rows.iter().map(|r| r.0).collect();
    let (test_mu, _) = predict(&test_t);
    let rmse = (test_rows
        .iter()
        .zip(&test_mu)
        .map(|(r, m)| (r.1 - m).powi(2))
        .sum::<f32>()
        / held as f32)
        .sqrt();

    {
        use plotters::prelude::*;
        let text = plot::font();
        if let Some(dir) = std::path::Path::new(&plot_path).parent() {
            std::fs::create_dir_all(dir).ok();
        }
        let root = BitMapBackend::new(&plot_path, (1000, 500)).into_drawing_area();
        root.fill(&WHITE)?;
        let (lo, hi) = (grid[0] as f64, grid[grid.len() - 1] as f64);
        let mut builder = ChartBuilder::on(&root);
        builder.margin(14);
        if text {
            builder
                .caption("Mauna Loa CO₂: GP posterior mean ± 2σ", ("sans-serif", 22))
                .x_label_area_size(36)
                .y_label_area_size(56);
        }
        let mut chart = builder.build_cartesian_2d(lo..hi, 305.0f64..390.0)?;
        if text {
            chart
                .configure_mesh()
                .x_desc("year")
                .y_desc("ppm")
                .label_style(("sans-serif", 14))
                .draw()?;
        }
        let band: Vec<(f64, f64)> = grid
            .iter()
            .zip(mu.iter().zip(&sigma))
            .map(|(&x, (&m, &s))| (x as f64, (m + 2.0 * s) as f64))
            .chain(
                grid.iter()
                    .zip(mu.iter().zip(&sigma))
                    .rev()
                    .map(|(&x, (&m, &s))| (x as f64, (m - 2.0 * s) as f64)),
            )
            .collect();
        chart.draw_series(std::iter::once(Polygon::new(band, BLUE.mix(0.2).filled())))?;
        chart.draw_series(
            rows.iter()
                .map(|&(x, v)| Circle::new((x as f64, v as f64), 1, BLACK.mix(0.6).filled())),
        )?;
        chart.draw_series(LineSeries::new(
            grid.iter().zip(&mu).map(|(&x, &m)| (x as f64, m as f64)),
            BLUE.stroke_width(2),
        ))?;
        root.present()?;
        println!("plot: {plot_path}");
    }
    println!("held-out RMSE: {rmse:.3} ppm ({held} months)");
    Ok(())
}
