//! The bench's data-parallel rows: `dp_mlp_step_K`, the `mlp_train_step` workload (784-512-512-10,
//! a batch of 256, SGD) as one data-parallel step over K logical devices of the adapter, the
//! batch sharded onto the devices once. On one adapter (a CPU adapter above all) this measures
//! what data parallelism costs, not a speed-up: the K devices share the same cores. The
//! `reduce_share` is the part of the step's time spent reducing on the host (summing the
//! read-back gradients; no collective in one process).

use super::{Mlp, Result, Workload, mlp_problem, time};
use std::cell::{Cell, RefCell};
use std::time::Instant;
use wgrad::parallel::DataParallel;
use wgrad::prelude::*;

pub fn workloads() -> Vec<Workload> {
    let mut w: Vec<Workload> = vec![];
    for k in [1usize, 2, 4] {
        let name = format!("dp_mlp_step_{k}");
        w.push((name.clone(), Box::new(move |secs| row(&name, k, secs))));
    }
    w
}

fn row(name: &str, k: usize, secs: f64) -> Result {
    let (x, y, init) = mlp_problem();
    let devices: Vec<Device> = (0..k).map(|_| Device::open().unwrap()).collect();
    let dp = DataParallel::new(devices).unwrap();
    let opt = wgrad::optim::sgd(0.01);
    let params = RefCell::new(dp.replicate(&init).unwrap());
    let state = RefCell::new(dp.replicate(&opt.init(&init)).unwrap());
    let (xs, ys) = (dp.shard(&x).unwrap(), dp.shard(&y).unwrap());
    let shards = dp.map(|r, _| vec![xs[r].clone(), ys[r].clone()]);
    let loss = |p: &Mlp, b: &[Tensor]| p.loss(&b[0], &b[1]);
    let stepping = Cell::new(0.0f64);
    let mut step = || {
        let started = Instant::now();
        let l = dp
            .step_sharded(
                &opt,
                loss,
                &mut params.borrow_mut(),
                &mut state.borrow_mut(),
                &shards,
            )
            .unwrap();
        stepping.set(stepping.get() + started.elapsed().as_secs_f64());
        l as f64
    };
    let mut r = time(name, secs, &mut step);
    r.extra.push(("devices", k as f64));
    r.extra.push((
        "reduce_share",
        dp.reduce_time().as_secs_f64() / stepping.get().max(1e-12),
    ));
    r
}
