//! The benchmark program behind `cargo xtask bench`: the shared workloads of
//! `../shared/peers/python/README.md`, timed as the peers time them (warm-up, then each
//! iteration finished on the device; median and minimum).
//!
//! `target/release/examples/bench [--json] [--filter a,b] [--secs S]`

#[path = "support/data_parallel_rows.rs"]
mod data_parallel_rows;
#[path = "support/numerics.rs"]
mod numerics;

use std::time::Instant;
use wgrad::prelude::*;

struct Args {
    json: bool,
    filter: Vec<String>,
    secs: f64,
}

fn parse_args() -> Args {
    let mut a = Args {
        json: false,
        filter: vec![],
        secs: 3.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--json" => a.json = true,
            "--filter" | "--only" => {
                a.filter = it
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(String::from)
                    .collect()
            }
            "--secs" => a.secs = it.next().and_then(|s| s.parse().ok()).unwrap_or(3.0),
            "-h" | "--help" => {
                println!("bench [--json] [--filter a,b] [--secs S]");
                std::process::exit(0);
            }
            other => {
                eprintln!("bench: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    a
}

struct Result {
    name: String,
    median_ms: f64,
    min_ms: f64,
    iters: usize,
    extra: Vec<(&'static str, f64)>,
    kernels: f64,
    submits: f64,
    pipelines: u64,
    peak_bytes: u64,
    check: f64,
}

/// Times `step` (which must finish its work on the device) like the peers do.
fn time(name: &str, secs: f64, step: &mut dyn FnMut() -> f64) -> Result {
    let first = step();
    for _ in 0..3 {
        step();
    }
    // Calibrate: at least 3 iterations and 0.25 s.
    let t = Instant::now();
    let mut n = 0;
    while n < 3 || t.elapsed().as_secs_f64() < 0.25 {
        step();
        n += 1;
    }
    let per = t.elapsed().as_secs_f64() / n as f64;
    let iters = ((secs / per) as usize).clamp(5, 100_000);
    wgrad::reset_counters();
    let before = wgrad::counters();
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        step();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let c = wgrad::counters().since(&before);
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Result {
        name: name.to_string(),
        median_ms: times[times.len() / 2],
        min_ms: times[0],
        iters,
        extra: vec![],
        kernels: c.kernels as f64 / iters as f64,
        submits: c.submits as f64 / iters as f64,
        pipelines: c.pipelines_compiled,
        peak_bytes: c.peak_bytes,
        check: first,
    }
}

fn abs_sum(t: &Tensor) -> f64 {
    t.to_f32_vec().iter().map(|v| v.abs() as f64).sum()
}

fn normal(shape: &[usize], std: f32, seed: u64) -> Tensor {
    let t = Tensor::randn(shape, seed) * std;
    t.realize();
    t
}

#[derive(Clone)]
struct Mlp {
    w: Vec<Tensor>,
    b: Vec<Tensor>,
}
wgrad::tree_struct!(Mlp { w, b });

/// The MLP workloads' data and initial parameters: 784-512-512-10, a batch of 256 with
/// one-hot labels.
fn mlp_problem() -> (Tensor, Tensor, Mlp) {
    let dims = [784, 512, 512, 10];
    let x = normal(&[256, 784], 1.0, 4);
    let labels: Vec<usize> = (0..256).map(|i| (i * 7 + 3) % 10).collect();
    let mut onehot = vec![0.0f32; 256 * 10];
    for (i, &l) in labels.iter().enumerate() {
        onehot[i * 10 + l] = 1.0;
    }
    let y = Tensor::from_vec(onehot, [256, 10]);
    let init = Mlp {
        w: (0..3)
            .map(|k| {
                normal(
                    &[dims[k], dims[k + 1]],
                    (2.0 / dims[k] as f32).sqrt(),
                    10 + k as u64,
                )
            })
            .collect(),
        b: (0..3)
            .map(|k| Tensor::zeros([dims[k + 1]]).realize().clone())
            .collect(),
    };
    (x, y, init)
}

/// The same tree with zeros.
fn zeros_like_tree(p: &Mlp) -> Mlp {
    Mlp {
        w: p.w.iter().map(|t| t.zeros_like()).collect(),
        b: p.b.iter().map(|t| t.zeros_like()).collect(),
    }
}

impl Mlp {
    fn loss(&self, x: &Tensor, onehot: &Tensor) -> Tensor {
        let mut h = x.clone();
        for k in 0..self.w.len() {
            h = h.matmul(&self.w[k]) + &self.b[k];
            if k + 1 < self.w.len() {
                h = h.relu();
            }
        }
        -(onehot * h.log_softmax(-1)).sum_axes(-1).mean_all()
    }
}

/// A named workload: runs for about the given seconds and reports.
type Workload = (String, Box<dyn Fn(f64) -> Result>);

fn workloads(real_gpu: bool) -> Vec<Workload> {
    let mut w: Vec<Workload> = vec![];
    let mut sizes = vec![256, 512, 1024];
    if real_gpu {
        sizes.push(4096);
    }
    for n in sizes {
        let name = format!("matmul_f32_{n}");
        w.push((
            name.clone(),
            Box::new(move |secs| {
                let a = normal(&[n, n], 1.0, 1);
                let b = normal(&[n, n], 1.0, 2);
                let mut step = || {
                    let c = a.matmul(&b);
                    c.realize();
                    wgrad::synchronize();
                    0.0
                };
                let mut r = time(&name, secs, &mut step);
                // A fresh (zeroed) output buffer, so a kernel that skips entries cannot pass on
                // values an earlier iteration left in a pooled buffer.
                wgrad::trim_pool();
                let c = a.matmul(&b).to_vec::<f32>();
                r.check = c.iter().map(|v| v.abs() as f64).sum();
                // 16 entries against a float64 host product: a fast wrong kernel must show.
                let (av, bv) = (a.to_vec::<f32>(), b.to_vec::<f32>());
                let mut worst = 0.0f64;
                for s in 0..16 {
                    let (i, j) = ((s * 7919 + 13) % n, (s * 104_729 + 7) % n);
                    let want: f64 = (0..n)
                        .map(|k| av[i * n + k] as f64 * bv[k * n + j] as f64)
                        .sum();
                    worst = worst.max((c[i * n + j] as f64 - want).abs() / want.abs().max(1.0));
                }
                if worst > 1e-4 {
                    eprintln!("bench: {name}: WRONG RESULT (max rel err {worst:.2e})");
                }
                r.extra
                    .push(("gflops", 2.0 * (n as f64).powi(3) / (r.median_ms * 1e6)));
                r.extra.push(("check_max_rel_err", worst));
                r
            }),
        ));
    }
    let mut chains = vec![("elementwise_chain_1m", 1usize << 20)];
    if real_gpu {
        chains.push(("elementwise_chain_64m", 1 << 26));
    }
    for (name, n) in chains {
        w.push((
            name.to_string(),
            Box::new(move |secs| {
                let x = normal(&[n], 1.0, 3);
                let mut step = || ((&x * 1.5 + 0.5).tanh() * x.sigmoid()).sum_all().item() as f64;
                let mut r = time(name, secs, &mut step);
                r.check = r.check.abs();
                r.extra.push(("gbps", 4.0 * n as f64 / (r.median_ms * 1e6)));
                r
            }),
        ));
    }
    w.push((
        "mlp_train_step".into(),
        Box::new(|secs| {
            let (x, y, init) = mlp_problem();
            let params = std::cell::RefCell::new(init);
            let opts = GradOptions {
                create_graph: false,
                realize: false,
            };
            let mut step = || {
                let p = params.borrow().clone();
                let (loss, g) = value_and_grad_with(|p: &Mlp| p.loss(&x, &y), opts)(&p);
                let next = Mlp {
                    w: p.w.iter().zip(&g.w).map(|(w, g)| w - g * 0.01).collect(),
                    b: p.b.iter().zip(&g.b).map(|(b, g)| b - g * 0.01).collect(),
                };
                let mut all = next.leaves();
                all.push(loss.clone());
                wgrad::realize(&all);
                wgrad::synchronize();
                *params.borrow_mut() = next;
                0.0
            };
            let first = {
                let p = params.borrow().clone();
                p.loss(&x, &y).item() as f64
            };
            let mut r = time("mlp_train_step", secs, &mut step);
            r.check = first;
            r
        }),
    ));
    w.push((
        "conv2d_f32".into(),
        Box::new(|secs| {
            // N=64, C=16 -> 32, 28×28, 3×3, padding 1 (the conv row).
            let (n, c, o, hw) = (64usize, 16usize, 32usize, 28usize);
            let x = normal(&[n, c, hw, hw], 1.0, 40);
            let wt = normal(&[o, c, 3, 3], (2.0 / (c * 9) as f32).sqrt(), 41);
            let opts = Conv2dOptions::default().padding(1);
            let mut step = || {
                let y = x.conv2d(&wt, opts);
                y.realize();
                wgrad::synchronize();
                0.0
            };
            let mut r = time("conv2d_f32", secs, &mut step);
            wgrad::trim_pool();
            let y = x.conv2d(&wt, opts).to_vec::<f32>();
            r.check = y.iter().map(|v| v.abs() as f64).sum();
            // 16 outputs against a float64 host convolution.
            let (xv, wv) = (x.to_vec::<f32>(), wt.to_vec::<f32>());
            let mut worst = 0.0f64;
            for s in 0..16usize {
                let (b, q, i, j) = ((s * 37) % n, (s * 11) % o, (s * 5) % hw, (s * 13 + 3) % hw);
                let mut want = 0.0f64;
                for ch in 0..c {
                    for a in 0..3 {
                        for e in 0..3 {
                            let (r0, c0) =
                                (i as isize + a as isize - 1, j as isize + e as isize - 1);
                            if r0 < 0 || c0 < 0 || r0 >= hw as isize || c0 >= hw as isize {
                                continue;
                            }
                            want += xv[((b * c + ch) * hw + r0 as usize) * hw + c0 as usize] as f64
                                * wv[((q * c + ch) * 3 + a) * 3 + e] as f64;
                        }
                    }
                }
                let got = y[((b * o + q) * hw + i) * hw + j] as f64;
                worst = worst.max((got - want).abs() / want.abs().max(1.0));
            }
            if worst > 1e-4 {
                eprintln!("bench: conv2d_f32: WRONG RESULT (max rel err {worst:.2e})");
            }
            let flops = 2.0 * (n * o * hw * hw * c * 9) as f64;
            r.extra.push(("gflops", flops / (r.median_ms * 1e6)));
            r.extra.push(("check_max_rel_err", worst));
            r
        }),
    ));
    w.push((
        "cnn_train_step".into(),
        Box::new(|secs| {
            // Workload 9 of ../shared/peers/python/README.md.
            let x = normal(&[64, 1, 28, 28], 1.0, 50);
            let labels: Vec<i32> = (0..64).map(|i| (i * 7 + 3) % 10).collect();
            let labels = Tensor::from_vec(labels, [64, 1]);
            let he = |shape: &[usize], fan_in: usize, seed| {
                normal(shape, (2.0 / fan_in as f32).sqrt(), seed)
            };
            let init = vec![
                he(&[16, 1, 3, 3], 9, 51),
                Tensor::zeros([16]).realize().clone(),
                he(&[32, 16, 3, 3], 144, 52),
                Tensor::zeros([32]).realize().clone(),
                he(&[1568, 10], 1568, 53),
                Tensor::zeros([10]).realize().clone(),
            ];
            let loss = move |p: &Vec<Tensor>| {
                let conv = |h: &Tensor, w: &Tensor, b: &Tensor| {
                    h.conv2d(w, Conv2dOptions::default().padding(1))
                        + b.reshape([1, b.numel(), 1, 1])
                };
                let h = conv(&x, &p[0], &p[1]).relu().max_pool2d(2, None);
                let h = conv(&h, &p[2], &p[3]).relu().max_pool2d(2, None);
                let logits = h.reshape([64, 1568]).matmul(&p[4]) + &p[5];
                -logits
                    .log_softmax(-1)
                    .take_along_axis(&labels, 1)
                    .mean_all()
            };
            let params = std::cell::RefCell::new(init);
            let opts = GradOptions {
                create_graph: false,
                realize: false,
            };
            let first = loss(&params.borrow()).item() as f64;
            let mut step = || {
                let p = params.borrow().clone();
                let (l, g) = value_and_grad_with(&loss, opts)(&p);
                let next: Vec<Tensor> = p.iter().zip(&g).map(|(w, g)| w - g * 0.01).collect();
                let mut all = next.clone();
                all.push(l);
                wgrad::realize(&all);
                wgrad::synchronize();
                *params.borrow_mut() = next;
                0.0
            };
            let mut r = time("cnn_train_step", secs, &mut step);
            r.check = first;
            r
        }),
    ));
    w.push((
        "adam_mlp_step".into(),
        Box::new(|secs| {
            // Workload 8: the MLP step with Adam; the bias corrections change every step.
            let (x, y, init) = mlp_problem();
            let zeros = |p: &Mlp| Mlp {
                w: p.w
                    .iter()
                    .map(|t| t.zeros_like().realize().clone())
                    .collect(),
                b: p.b
                    .iter()
                    .map(|t| t.zeros_like().realize().clone())
                    .collect(),
            };
            let state = std::cell::RefCell::new((zeros(&init), zeros(&init), init, 0i32));
            let opts = GradOptions {
                create_graph: false,
                realize: false,
            };
            let first = state.borrow().2.loss(&x, &y).item() as f64;
            let mut step = || {
                let (m, v, p, t) = state.borrow().clone();
                let t = t + 1;
                let (loss, g) = value_and_grad_with(|p: &Mlp| p.loss(&x, &y), opts)(&p);
                let (b1, b2, lr, eps) = (0.9f32, 0.999f32, 1e-3f32, 1e-8f32);
                let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
                let adam = |p: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor| {
                    let m = m * b1 + g * (1.0 - b1);
                    let v = v * b2 + g.square() * (1.0 - b2);
                    let p = p - (&m / c1) / ((&v / c2).sqrt() + eps) * lr;
                    (p, m, v)
                };
                let mut next = (
                    zeros_like_tree(&m),
                    zeros_like_tree(&v),
                    zeros_like_tree(&p),
                );
                for k in 0..3 {
                    let (pw, mw, vw) = adam(&p.w[k], &g.w[k], &m.w[k], &v.w[k]);
                    let (pb, mb, vb) = adam(&p.b[k], &g.b[k], &m.b[k], &v.b[k]);
                    next.2.w[k] = pw;
                    next.2.b[k] = pb;
                    next.0.w[k] = mw;
                    next.0.b[k] = mb;
                    next.1.w[k] = vw;
                    next.1.b[k] = vb;
                }
                let mut all = next.0.leaves();
                all.extend(next.1.leaves());
                all.extend(next.2.leaves());
                all.push(loss);
                wgrad::realize(&all);
                wgrad::synchronize();
                *state.borrow_mut() = (next.0, next.1, next.2, t);
                0.0
            };
            let mut r = time("adam_mlp_step", secs, &mut step);
            r.check = first;
            r
        }),
    ));
    for (name, jitted) in [("pinn_step", false), ("pinn_step_jit", true)] {
        w.push((
            name.into(),
            Box::new(move |secs| pinn_step(name, jitted, secs)),
        ));
    }
    // Workload 11: `scan_rnn_grad` runs the cell under `scan` (the body traced once, the 64
    // steps copied from its graph); `_unrolled` writes the loop out; `_jit` jits the scan's
    // loss and gradient.
    for (name, how) in [
        ("scan_rnn_grad", 0),
        ("scan_rnn_grad_unrolled", 1),
        ("scan_rnn_grad_jit", 2),
    ] {
        w.push((
            name.into(),
            Box::new(move |secs| scan_rnn_grad(name, how, secs)),
        ));
    }
    w.push((
        "empty_submit".into(),
        Box::new(|secs| {
            // The adapter's floor: one trivial dispatch, one submit, a wait.
            let x = Tensor::from_vec(vec![1.0f32], [1]);
            let mut step = || {
                let y = &x + 1.0;
                y.realize();
                wgrad::synchronize();
                0.0
            };
            time("empty_submit", secs, &mut step)
        }),
    ));
    w.push((
        "grad_small_latency".into(),
        Box::new(|secs| {
            let x = normal(&[16], 1.0, 5);
            let mut step = || {
                let g = grad(|x: &Tensor| (x * x).sum_all())(&x);
                g.to_vec::<f32>()[0] as f64
            };
            let mut r = time("grad_small_latency", secs, &mut step);
            r.check = abs_sum(&grad(|x: &Tensor| (x * x).sum_all())(&x));
            r
        }),
    ));
    w.push((
        "hessian_64".into(),
        Box::new(|secs| {
            let wm = normal(&[64, 64], 0.125, 6);
            let x = normal(&[64], 1.0, 7);
            let f =
                |x: &Tensor| wm.matmul(x).tanh().square().sum_all() + x.square().sum_all() * 0.5;
            let mut step = || {
                let h = jacfwd(jacrev(f))(&x);
                h.realize();
                wgrad::synchronize();
                0.0
            };
            let mut r = time("hessian_64", secs, &mut step);
            r.check = abs_sum(&jacfwd(jacrev(f))(&x));
            r
        }),
    ));
    w.push((
        "jacrev_mlp".into(),
        Box::new(|secs| {
            let w1 = normal(&[64, 32], (1.0f32 / 32.0).sqrt(), 8);
            let b1 = normal(&[64], 0.1, 9);
            let w2 = normal(&[16, 64], 0.125, 10);
            let b2 = normal(&[16], 0.1, 11);
            let x = normal(&[32], 1.0, 12);
            let f = |x: &Tensor| w2.matmul(&(w1.matmul(x) + &b1).tanh()) + &b2;
            let mut step = || {
                let j = jacrev(f)(&x);
                j.realize();
                wgrad::synchronize();
                0.0
            };
            let mut r = time("jacrev_mlp", secs, &mut step);
            r.check = abs_sum(&jacrev(f)(&x));
            r
        }),
    ));
    w.push((
        "vmap_grad_per_example".into(),
        Box::new(|secs| {
            let w = normal(&[128], (1.0f32 / 128.0).sqrt(), 13);
            let xs = normal(&[256, 128], 1.0, 14);
            let ys = (Tensor::rand([256], 15).greater(&Tensor::scalar(0.5))).cast(DType::F32);
            ys.realize();
            let loss = |(w, x, y): &(Tensor, Tensor, Tensor)| {
                let z = (x * w).sum_all();
                z.softplus() - y * &z
            };
            let per_example = |args: &(Tensor, Tensor, Tensor)| {
                let (w, x, y) = args;
                grad(|w: &Tensor| loss(&(w.clone(), x.clone(), y.clone())))(w)
            };
            let args = (w.clone(), xs.clone(), ys.clone());
            let mut step = || {
                let g = vmap(per_example, [None, Some(0), Some(0)])(&args);
                g.realize();
                wgrad::synchronize();
                0.0
            };
            let mut r = time("vmap_grad_per_example", secs, &mut step);
            r.check = abs_sum(&vmap(per_example, [None, Some(0), Some(0)])(&args));
            r
        }),
    ));
    w
}

fn main() {
    let args = parse_args();
    let info = wgrad::init().unwrap_or_else(|e| {
        eprintln!("bench: {e}");
        std::process::exit(1);
    });
    let real_gpu = info.device_type != "Cpu";
    let mut all = workloads(real_gpu);
    all.extend(numerics::workloads());
    all.extend(data_parallel_rows::workloads());
    for (name, run) in all {
        if !args.filter.is_empty() && !args.filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        eprintln!("bench: {name} …");
        // Each workload's peak memory is its own: idle buffers of the last one are released.
        wgrad::trim_pool();
        let r = run(args.secs);
        if args.json {
            let mut s = format!(
                "{{\"name\":\"{}\",\"backend\":\"wgrad\",\"adapter\":\"{}\",\"graphics_api\":\"{}\",\"median_ms\":{:.6},\"min_ms\":{:.6},\"iters\":{}",
                r.name, info.name, info.backend, r.median_ms, r.min_ms, r.iters
            );
            for (k, v) in &r.extra {
                s += &format!(",\"{k}\":{v:.4e}");
            }
            s += &format!(
                ",\"kernels\":{:.2},\"submits\":{:.2},\"pipelines_compiled_while_timed\":{},\"peak_bytes\":{},\"check\":{:.6}}}",
                r.kernels, r.submits, r.pipelines, r.peak_bytes, r.check
            );
            println!("{s}");
        } else {
            let extra: Vec<String> = r.extra.iter().map(|(k, v)| format!("{v:.2} {k}")).collect();
            println!(
                "{:<24} median {:>10.4} ms  min {:>10.4} ms  iters {:>6}  kernels/iter {:>6.1}  submits/iter {:.1}  {}",
                r.name,
                r.median_ms,
                r.min_ms,
                r.iters,
                r.kernels,
                r.submits,
                extra.join(" ")
            );
        }
    }
}

/// Workload 10: Burgers' residual by per-point grad and hessian (third-order derivatives in
/// the parameter gradient), Adam; `jitted`: the loss and gradient under `jit`.
fn pinn_step(name: &str, jitted: bool, secs: f64) -> Result {
    // Workload 10: Burgers' residual by per-point grad and hessian (third-order
    // derivatives in the parameter gradient), Adam.
    let sizes = [2usize, 32, 32, 1];
    let mut init = vec![];
    for k in 0..3 {
        let std = (2.0 / (sizes[k] + sizes[k + 1]) as f32).sqrt();
        init.push(normal(&[sizes[k], sizes[k + 1]], std, 60 + k as u64));
        init.push(Tensor::zeros([sizes[k + 1]]).realize().clone());
    }
    let pts = {
        let u = Tensor::rand([256, 2], 66);
        let scale = Tensor::from_vec(vec![2.0f32, 1.0], [2]);
        let shift = Tensor::from_vec(vec![-1.0f32, 0.0], [2]);
        (u * scale + shift).realize().clone()
    };
    let nu = 0.01 / std::f32::consts::PI;
    let u = |p: &Vec<Tensor>, xt: &Tensor| {
        let h = (xt.matmul(&p[0]) + &p[1]).tanh();
        let h = (h.matmul(&p[2]) + &p[3]).tanh();
        (h.matmul(&p[4]) + &p[5]).index(0)
    };
    let loss = move |p: &Vec<Tensor>| {
        let residual = |xt: &Tensor| {
            let uu = u(p, xt);
            let du = grad(|z: &Tensor| u(p, z))(xt);
            let h = hessian(|z: &Tensor| u(p, z))(xt);
            du.index(1) + &uu * du.index(0) - h.index(0).index(0) * nu
        };
        vmap(residual, 0)(&pts).square().mean_all()
    };
    let zeros: Vec<Tensor> = init
        .iter()
        .map(|t| t.zeros_like().realize().clone())
        .collect();
    let state = std::cell::RefCell::new((zeros.clone(), zeros, init, 0i32));
    let opts = GradOptions {
        create_graph: false,
        realize: false,
    };
    let first = loss(&state.borrow().2).item() as f64;
    // With `jitted`, the loss and its gradient are traced once (the transforms run
    // once) and replayed; Adam's host scalars stay outside.
    let vg_direct = {
        let loss = loss.clone();
        move |p: &Vec<Tensor>| value_and_grad_with(&loss, opts)(p)
    };
    type Vg = Box<dyn Fn(&Vec<Tensor>) -> (Tensor, Vec<Tensor>)>;
    let vg: Vg = if jitted {
        Box::new(jit(vg_direct))
    } else {
        Box::new(vg_direct)
    };
    let mut step = || {
        let (m, v, p, t) = state.borrow().clone();
        let t = t + 1;
        let (l, g) = vg(&p);
        let (b1, b2, lr, eps) = (0.9f32, 0.999f32, 1e-3f32, 1e-8f32);
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        let mut next = (vec![], vec![], vec![]);
        for k in 0..p.len() {
            let mk = &m[k] * b1 + &g[k] * (1.0 - b1);
            let vk = &v[k] * b2 + g[k].square() * (1.0 - b2);
            next.2
                .push(&p[k] - (&mk / c1) / ((&vk / c2).sqrt() + eps) * lr);
            next.0.push(mk);
            next.1.push(vk);
        }
        let mut all: Vec<Tensor> = next
            .0
            .iter()
            .chain(&next.1)
            .chain(&next.2)
            .cloned()
            .collect();
        all.push(l);
        wgrad::realize(&all);
        wgrad::synchronize();
        *state.borrow_mut() = (next.0, next.1, next.2, t);
        0.0
    };
    let mut r = time(name, secs, &mut step);
    r.check = first;
    r
}

/// Workload 11: h_{s+1} = tanh(x_s Wx + h_s Wh + b), 64 steps; the loss sum(h_64^2) and its
/// gradient. `how`: 0 scan, 1 unrolled by hand, 2 scan under jit.
fn scan_rnn_grad(name: &str, how: u8, secs: f64) -> Result {
    let wx = normal(&[32, 128], (1.0f32 / 32.0).sqrt(), 70);
    let wh = normal(&[128, 128], (1.0f32 / 128.0).sqrt(), 71);
    let b = Tensor::zeros([128]).realize().clone();
    let xs = normal(&[64, 32, 32], 1.0, 72);
    let cell = |p: &(Tensor, Tensor, Tensor), h: &Tensor, x: &Tensor| {
        (x.matmul(&p.0) + h.matmul(&p.1) + &p.2).tanh()
    };
    let loss = move |p: &(Tensor, Tensor, Tensor)| {
        let h0 = Tensor::zeros([32, 128]);
        let h = if how == 1 {
            let mut h = h0;
            for s in 0..64 {
                h = cell(p, &h, &xs.index(s));
            }
            h
        } else {
            scan(
                |h: &Tensor, x: &Tensor| (cell(p, h, x), ()),
                &h0,
                &xs,
                false,
            )
            .0
        };
        h.square().sum_all()
    };
    let params = (wx, wh, b);
    let opts = GradOptions {
        create_graph: false,
        realize: false,
    };
    type Vg = Box<dyn Fn(&(Tensor, Tensor, Tensor)) -> (Tensor, (Tensor, Tensor, Tensor))>;
    let direct = {
        let loss = loss.clone();
        move |p: &(Tensor, Tensor, Tensor)| value_and_grad_with(&loss, opts)(p)
    };
    let vg: Vg = if how == 2 {
        Box::new(jit(direct))
    } else {
        Box::new(direct)
    };
    let mut step = || {
        let (l, g) = vg(&params);
        wgrad::realize(&[l, g.0, g.1, g.2]);
        wgrad::synchronize();
        0.0
    };
    let mut r = time(name, secs, &mut step);
    r.check = loss(&params).item() as f64;
    r
}
