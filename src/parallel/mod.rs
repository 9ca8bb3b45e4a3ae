//! Data-parallel training: one copy of the parameters per device, a batch split along its
//! leading axis, gradients averaged over every copy, the same update applied everywhere — over
//! several devices in one process, and over processes and machines through a [`Collective`]
//! (MPI with the `mpi` feature).
//!
//! WebGPU has no peer-to-peer copies and no collectives, so gradients meet on the host: each
//! device's share is computed concurrently (one thread per device realizes it), read back as
//! one float32 vector and summed in float64 **in device order** — then, across processes, by
//! the collective — and the mean is uploaded to every device. Every device and process
//! receives the same bytes and applies the same update, so the copies stay bit-identical
//! (check it with [`DataParallel::check_replicas`]), and a run repeats bit for bit. Compared
//! with one device on the whole batch, the result differs only by the order of the
//! floating-point sums (the tests hold it within 1e-5 of the gradient's scale).
//!
//! The functions you hand it run on the calling thread, once per device (so `jit`ted
//! functions and optimizers, which are not `Send`, work unchanged); only realizing and
//! reading back run on the device threads. A step that fails on any device or process
//! returns an error on every process and changes nothing the caller holds.
//!
//! ```
//! use wgrad::prelude::*;
//! use wgrad::parallel::DataParallel;
//! use wgrad::optim;
//!
//! let devices = vec![wgrad::Device::open().unwrap(), wgrad::Device::open().unwrap()];
//! let dp = DataParallel::new(devices).unwrap();
//! let opt = optim::sgd(0.1);
//! let w0 = Tensor::from_vec(vec![0.5f32, -0.5], [2, 1]);
//! let mut params = dp.replicate(&w0).unwrap();
//! let mut state = dp.replicate(&opt.init(&w0)).unwrap();
//! // A batch of 4 rows: each device takes 2.
//! let x = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, -1.0], [4, 2]);
//! let y = Tensor::from_vec(vec![1.0f32, 0.0, 1.0, 3.0], [4, 1]);
//! let loss = |w: &Tensor, b: &[Tensor]| (b[0].matmul(w) - &b[1]).square().mean_all();
//! let l0 = dp.step(&opt, loss, &mut params, &mut state, &[x.clone(), y.clone()]).unwrap();
//! // The same as one device on the whole batch.
//! assert!((l0 - loss(&w0, &[x, y]).item()).abs() < 1e-6);
//! dp.check_replicas(&params).unwrap();
//! ```

mod collective;
#[cfg(feature = "mpi")]
mod mpi;
mod reduce;
mod replicated;

pub use collective::{Collective, SingleProcess, local_device, local_rank};
#[cfg(feature = "mpi")]
pub use mpi::Mpi;
pub use replicated::Replicated;

use crate::base::dtype::DType;
use crate::base::error::{Error, Result};
use crate::compose::shape::try_concat;
use crate::device::{Device, with_device};
use crate::ir::tensor::Tensor;
use crate::optim::{OptState, Optimizer, apply_updates};
use crate::tree::Tree;
use std::cell::Cell;
use std::time::{Duration, Instant};

/// How [`DataParallel::all_reduce`] combines the copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// The sum over every replica of every process.
    Sum,
    /// The mean over every replica of every process (what gradients of a mean loss need).
    Mean,
}

/// Runs a computation on several devices at once (and, with a [`Collective`], on several
/// processes): replicate a tree, shard a batch, reduce the copies, take optimizer steps.
/// See the [module documentation](self) for how and an example.
pub struct DataParallel {
    devices: Vec<Device>,
    collective: Box<dyn Collective>,
    reducing: Cell<Duration>,
}

impl std::fmt::Debug for DataParallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DataParallel(process {} of {}, devices {:?})",
            self.collective.rank(),
            self.collective.size(),
            self.devices
        )
    }
}

impl DataParallel {
    /// Data parallelism over `devices` in this process (one replica each; two devices on one
    /// adapter are allowed). An error for an empty list or a device named twice.
    ///
    /// ```
    /// use wgrad::parallel::DataParallel;
    /// let d = wgrad::Device::default();
    /// assert!(DataParallel::new(vec![d.clone()]).is_ok());
    /// assert!(DataParallel::new(vec![d.clone(), d]).unwrap_err().to_string().contains("twice"));
    /// assert!(DataParallel::new(vec![]).is_err());
    /// ```
    pub fn new(devices: Vec<Device>) -> Result<DataParallel> {
        let err = |msg: String| Err(Error::Parallel { op: "new", msg });
        if devices.is_empty() {
            return err("no devices: give at least one".into());
        }
        for (k, d) in devices.iter().enumerate() {
            if devices[..k].contains(d) {
                return err(format!(
                    "{d:?} is named twice; open another logical device with Device::open()"
                ));
            }
        }
        Ok(DataParallel {
            devices,
            collective: Box::new(SingleProcess),
            reducing: Cell::new(Duration::ZERO),
        })
    }

    /// The same devices, as this process's share of a run over several processes that
    /// `collective` connects (every process must build its `DataParallel` with the same
    /// number of devices).
    ///
    /// ```
    /// use wgrad::parallel::{DataParallel, SingleProcess};
    /// let dp = DataParallel::new(vec![wgrad::Device::default()]).unwrap().with_collective(SingleProcess);
    /// assert_eq!(dp.replicas(), 1);
    /// ```
    pub fn with_collective(mut self, collective: impl Collective + 'static) -> DataParallel {
        self.collective = Box::new(collective);
        self
    }

    /// Host time spent so far reducing: summing the copies read back from the devices and the
    /// collective between processes, not the device work that reading back waits for (the
    /// overhead data parallelism adds to a step).
    ///
    /// ```
    /// let dp = wgrad::parallel::DataParallel::new(vec![wgrad::Device::default()]).unwrap();
    /// assert_eq!(dp.reduce_time(), std::time::Duration::ZERO);
    /// ```
    pub fn reduce_time(&self) -> Duration {
        self.reducing.get()
    }

    /// This process's devices, one replica each.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// This process's number among the run's processes (0 for a single process).
    pub fn rank(&self) -> usize {
        self.collective.rank()
    }

    /// The collective between the run's processes.
    pub fn collective(&self) -> &dyn Collective {
        self.collective.as_ref()
    }

    /// Replicas in the whole run: devices per process × processes.
    ///
    /// ```
    /// let dp = wgrad::parallel::DataParallel::new(vec![wgrad::Device::default()]).unwrap();
    /// assert_eq!(dp.replicas(), 1);
    /// ```
    pub fn replicas(&self) -> usize {
        self.devices.len() * self.collective.size()
    }

    /// `f(k, device)` for each of this process's devices, called on this thread inside
    /// [`with_device`] (so what it makes is placed there); lazy like any tensor work.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let dp = wgrad::parallel::DataParallel::new(vec![wgrad::Device::default()]).unwrap();
    /// let ones = dp.map(|k, _| Tensor::ones([2]) * (k + 1) as f32);
    /// assert_eq!(ones.first().to_vec::<f32>(), vec![1.0, 1.0]);
    /// ```
    pub fn map<R>(&self, mut f: impl FnMut(usize, &Device) -> R) -> Replicated<R> {
        let copies = self
            .devices
            .iter()
            .enumerate()
            .map(|(k, d)| with_device(d, || f(k, d)))
            .collect();
        self.replicated(copies)
    }

    /// A copy of `tree` on every device (its values read back once and uploaded to each).
    pub fn replicate<T: Tree>(&self, tree: &T) -> Result<Replicated<T>> {
        let leaves = tree.leaves();
        crate::runtime::read::try_realize(&leaves)?;
        let mut copies = Vec::with_capacity(self.devices.len());
        for d in &self.devices {
            let moved: Vec<Tensor> = leaves
                .iter()
                .map(|t| t.try_to_device(d))
                .collect::<Result<_>>()?;
            copies.push(tree.rebuild(moved));
        }
        Ok(self.replicated(copies))
    }

    /// This process's shares of a batch: its rows split evenly along the leading axis over
    /// every replica of the run (replica `rank × devices + k` takes the `rank × devices + k`-th
    /// block), each placed on its device. Every process passes the same whole batch. An error
    /// when the rows do not split evenly (a smaller last batch would weigh its rows more).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let dp = wgrad::parallel::DataParallel::new(vec![wgrad::Device::open().unwrap(), wgrad::Device::open().unwrap()]).unwrap();
    /// let x = Tensor::from_vec((0..6).map(|v| v as f32).collect(), [6]);
    /// assert_eq!(dp.shard(&x).unwrap()[1].to_vec::<f32>(), vec![3.0, 4.0, 5.0]);
    /// assert!(dp.shard(&Tensor::ones([5])).unwrap_err().to_string().contains("evenly"));
    /// ```
    pub fn shard(&self, batch: &Tensor) -> Result<Replicated<Tensor>> {
        let per = self.rows_per_replica(batch)?;
        let mut copies = Vec::with_capacity(self.devices.len());
        for (k, d) in self.devices.iter().enumerate() {
            let start = self.replica_id(k) * per;
            let block = batch.try_slice_axis(0, start..start + per)?;
            copies.push(block.try_to_device(d)?);
        }
        Ok(self.replicated(copies))
    }

    /// The rows each replica takes of `batch`; an error when they do not split evenly (the
    /// same on every process, which all pass the same batch shape).
    fn rows_per_replica(&self, batch: &Tensor) -> Result<usize> {
        let replicas = self.replicas();
        let rows = batch.shape().first().copied().unwrap_or(0);
        if batch.shape().is_empty() || rows % replicas != 0 || rows == 0 {
            return Err(Error::Parallel {
                op: "shard",
                msg: format!(
                    "a batch of shape {:?} does not split evenly over {replicas} replicas \
                     along its leading axis; make the batch size a multiple of {replicas} \
                     (drop or pad the last batch)",
                    batch.shape()
                ),
            });
        }
        Ok(rows / replicas)
    }

    /// The sum or mean of the copies of `trees` over every replica of the run, the same
    /// values on every device (float leaves only; summed in float64 in a fixed order).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// use wgrad::parallel::{DataParallel, Reduce};
    /// let dp = DataParallel::new(vec![wgrad::Device::open().unwrap(), wgrad::Device::open().unwrap()]).unwrap();
    /// let t = dp.map(|k, _| Tensor::from_vec(vec![k as f32, 1.0], [2]));
    /// let m = dp.all_reduce(&t, Reduce::Mean).unwrap();
    /// assert_eq!(m[1].to_vec::<f32>(), vec![0.5, 1.0]);
    /// assert_eq!(m[0].device(), dp.devices()[0]);
    /// ```
    pub fn all_reduce<T: Tree>(&self, trees: &Replicated<T>, how: Reduce) -> Result<Replicated<T>> {
        let per_device: Vec<Vec<Tensor>> = trees.iter().map(Tree::leaves).collect();
        let total = per_device[0].iter().map(Tensor::numel).sum();
        let values = self.reduce_leaves("all_reduce", Ok(per_device), total, how)?;
        Ok(self.upload(trees, &values))
    }

    /// The loss and its gradient with respect to the parameters, each device taking its
    /// share of `batch` (every tensor sharded as [`DataParallel::shard`] does):
    /// `f(params, shards)` must be the mean loss over its shard's rows, so that the mean over
    /// replicas is the mean over the batch. Returns that mean loss and the mean gradients,
    /// the same on every device.
    pub fn value_and_grad<P: Tree>(
        &self,
        f: impl Fn(&P, &[Tensor]) -> Tensor,
        params: &Replicated<P>,
        batch: &[Tensor],
    ) -> Result<(f32, Replicated<P>)> {
        let shards = self.shard_batch(batch)?;
        self.value_and_grad_of(f, params, shards)
    }

    /// [`DataParallel::value_and_grad`] on shards the caller placed: `shards[k]` is the batch
    /// of device `k` (each the same number of rows; made with [`DataParallel::map`], say, from
    /// data kept on every device, which saves the copies through the host that sharding one
    /// batch needs).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// use wgrad::parallel::DataParallel;
    /// let dp = DataParallel::new(vec![wgrad::Device::open().unwrap(), wgrad::Device::open().unwrap()]).unwrap();
    /// let w = dp.replicate(&Tensor::ones([2])).unwrap();
    /// // Replica k's rows: [k, k] (made on its device).
    /// let shards = dp.map(|k, _| vec![Tensor::full([1, 2], dp.replica_id(k) as f32)]);
    /// let (l, g) = dp.value_and_grad_sharded(|w: &Tensor, b: &[Tensor]| b[0].matmul(w).mean_all(), &w, &shards).unwrap();
    /// assert_eq!(l, 1.0); // mean of 0 and 2
    /// assert_eq!(g[1].to_vec::<f32>(), vec![0.5, 0.5]);
    /// ```
    pub fn value_and_grad_sharded<P: Tree>(
        &self,
        f: impl Fn(&P, &[Tensor]) -> Tensor,
        params: &Replicated<P>,
        shards: &Replicated<Vec<Tensor>>,
    ) -> Result<(f32, Replicated<P>)> {
        self.value_and_grad_of(f, params, Ok(shards.clone()))
    }

    /// One training step: [`DataParallel::value_and_grad`], then `opt`'s update on every
    /// device, realized (all devices concurrently). Returns the mean loss. On an error
    /// (on any device or, through the collective, any process) `params` and `state` are left
    /// as they were, on every process.
    pub fn step<P: Tree>(
        &self,
        opt: &Optimizer,
        loss: impl Fn(&P, &[Tensor]) -> Tensor,
        params: &mut Replicated<P>,
        state: &mut Replicated<OptState>,
        batch: &[Tensor],
    ) -> Result<f32> {
        let shards = self.shard_batch(batch)?;
        self.step_of(opt, loss, params, state, shards)
    }

    /// [`DataParallel::step`] on shards the caller placed (as
    /// [`DataParallel::value_and_grad_sharded`] takes them).
    pub fn step_sharded<P: Tree>(
        &self,
        opt: &Optimizer,
        loss: impl Fn(&P, &[Tensor]) -> Tensor,
        params: &mut Replicated<P>,
        state: &mut Replicated<OptState>,
        shards: &Replicated<Vec<Tensor>>,
    ) -> Result<f32> {
        self.step_of(opt, loss, params, state, Ok(shards.clone()))
    }

    /// The number in the whole run of this process's replica `k`: `rank × devices + k` (which
    /// block of a batch it takes).
    ///
    /// ```
    /// let dp = wgrad::parallel::DataParallel::new(vec![wgrad::Device::default()]).unwrap();
    /// assert_eq!(dp.replica_id(0), 0);
    /// ```
    pub fn replica_id(&self, k: usize) -> usize {
        self.rank() * self.devices.len() + k
    }

    /// Every tensor of `batch` sharded: an error now when one does not split evenly (the
    /// same on every process: refused before any process waits for the others); a failure
    /// of the copies (a lost device) is the `Ok` value's error, for the reduction to share.
    fn shard_batch(&self, batch: &[Tensor]) -> Result<Result<Replicated<Vec<Tensor>>>> {
        for b in batch {
            self.rows_per_replica(b)?;
        }
        let shards = batch
            .iter()
            .map(|b| self.shard(b))
            .collect::<Result<Vec<_>>>();
        Ok(shards.map(|shards| self.map(|k, _| shards.iter().map(|s| s[k].clone()).collect())))
    }

    /// The gradient step's common part. A failure of this process's share (`shards` an
    /// error, a lost device) reaches the other processes through the reduction, so that none
    /// waits for this one.
    fn value_and_grad_of<P: Tree>(
        &self,
        f: impl Fn(&P, &[Tensor]) -> Tensor,
        params: &Replicated<P>,
        shards: Result<Replicated<Vec<Tensor>>>,
    ) -> Result<(f32, Replicated<P>)> {
        let local = shards.map(|shards| {
            self.map(|k, _| {
                let (loss, grads) =
                    crate::transforms::api::value_and_grad(|p: &P| f(p, &shards[k]))(&params[k]);
                let mut leaves = vec![loss];
                grads.flatten(&mut leaves);
                leaves
            })
            .into_vec()
        });
        let total = 1 + params
            .first()
            .leaves()
            .iter()
            .map(Tensor::numel)
            .sum::<usize>();
        let values = self.reduce_leaves("value_and_grad", local, total, Reduce::Mean)?;
        Ok((values[0], self.upload(params, &values[1..])))
    }

    fn step_of<P: Tree>(
        &self,
        opt: &Optimizer,
        loss: impl Fn(&P, &[Tensor]) -> Tensor,
        params: &mut Replicated<P>,
        state: &mut Replicated<OptState>,
        shards: Result<Replicated<Vec<Tensor>>>,
    ) -> Result<f32> {
        let (value, grads) = self.value_and_grad_of(loss, params, shards)?;
        let mut states = state.copies.clone();
        let mut updated = Vec::with_capacity(self.devices.len());
        for (k, d) in self.devices.iter().enumerate() {
            let u = with_device(d, || opt.try_update(&grads[k], &mut states[k], &params[k]))?;
            updated.push(with_device(d, || apply_updates(&params[k], &u)));
        }
        let work: Vec<Vec<Tensor>> = updated
            .iter()
            .zip(&states)
            .map(|(p, s)| [p.leaves(), s.leaves()].concat())
            .collect();
        let local = reduce::realize_concurrently(&self.devices, work);
        self.agree("step", local)?;
        params.copies = updated;
        state.copies = states;
        Ok(value)
    }

    /// Checks that every copy of `tree` holds the same bytes, on this process's devices and
    /// (through the collective) on every process; an error naming the first difference.
    pub fn check_replicas<T: Tree>(&self, tree: &Replicated<T>) -> Result<()> {
        let local = reduce::local_fingerprint(tree);
        let size = self.collective.size();
        if size == 1 {
            return local.map(|_| ());
        }
        // Equal on every process exactly when the sums of the pieces and of their squares are
        // `size` times this process's (pieces of 20 bits: the sums stay exact in float64). A
        // process that could not read its copies marks itself failed instead.
        let mut sums = vec![0.0f64; size];
        match &local {
            Ok(digest) => {
                sums.extend(digest.iter().map(|&p| p as f64));
                sums.extend(digest.iter().map(|&p| (p as f64) * (p as f64)));
            }
            Err(_) => {
                sums[self.rank()] = 1.0;
                sums.resize(size + 6, 0.0);
            }
        }
        let mine = sums[size..].to_vec();
        self.collective.all_reduce_sum(&mut sums)?;
        reduce::check_processes(
            "check_replicas",
            self.rank(),
            &sums[..size],
            local.as_ref().err(),
        )?;
        if sums[size..]
            .iter()
            .zip(&mine)
            .any(|(s, m)| *s != size as f64 * m)
        {
            return Err(Error::Parallel {
                op: "check_replicas",
                msg: format!(
                    "the copies on process {} differ from another process's",
                    self.rank()
                ),
            });
        }
        Ok(())
    }

    /// Sums (or averages) every device's leaves over the run: the leaves of each device are
    /// read back as one float32 vector, summed over devices in device order, then over
    /// processes; returned as float32 in leaf order. `total` is the count of values, which
    /// a process whose own share failed (`per_device` an error) still knows.
    fn reduce_leaves(
        &self,
        op: &'static str,
        per_device: Result<Vec<Vec<Tensor>>>,
        total: usize,
        how: Reduce,
    ) -> Result<Vec<f32>> {
        let local = per_device
            .and_then(|leaves| self.flatten_per_device(op, &leaves))
            .and_then(|flats| reduce::sum_in_device_order(&self.devices, flats))
            .map(|(sums, summing)| {
                self.reducing.set(self.reducing.get() + summing);
                sums
            });
        let size = self.collective.size();
        if size == 1 {
            // (One process: its own error as it is.)
            return Ok(self.scaled(&local?, how));
        }
        let mut buffer = vec![0.0f64; size];
        match &local {
            Ok(sums) => buffer.extend_from_slice(sums),
            Err(_) => {
                buffer[self.rank()] = 1.0;
                buffer.resize(size + total, 0.0);
            }
        }
        let started = Instant::now();
        self.collective.all_reduce_sum(&mut buffer)?;
        self.reducing.set(self.reducing.get() + started.elapsed());
        reduce::check_processes(op, self.rank(), &buffer[..size], local.as_ref().err())?;
        Ok(self.scaled(&buffer[size..], how))
    }

    /// Sums over every replica as float32: as they are, or divided by the replica count.
    fn scaled(&self, sums: &[f64], how: Reduce) -> Vec<f32> {
        let scale = match how {
            Reduce::Sum => 1.0,
            Reduce::Mean => 1.0 / self.replicas() as f64,
        };
        sums.iter().map(|v| (v * scale) as f32).collect()
    }

    /// `copies` (one per device, in device order) as a replicated value.
    fn replicated<T>(&self, copies: Vec<T>) -> Replicated<T> {
        Replicated {
            copies,
            devices: self.devices.clone(),
        }
    }

    /// Each device's leaves as one float32 vector (an error for a leaf that is not float).
    fn flatten_per_device(
        &self,
        op: &'static str,
        per_device: &[Vec<Tensor>],
    ) -> Result<Vec<Tensor>> {
        let mut flats = Vec::with_capacity(per_device.len());
        for (d, leaves) in self.devices.iter().zip(per_device) {
            if let Some(t) = leaves.iter().find(|t| !t.dtype().is_float()) {
                return Err(Error::Parallel {
                    op,
                    msg: format!(
                        "a leaf of shape {:?} has dtype {}: only float leaves can be summed or averaged",
                        t.shape(),
                        t.dtype()
                    ),
                });
            }
            let flat = with_device(d, || {
                let pieces: Vec<Tensor> = leaves
                    .iter()
                    .map(|t| t.cast(DType::F32).reshape([t.numel()]))
                    .collect();
                match pieces.len() {
                    0 => Ok(Tensor::zeros([0])),
                    _ => try_concat(&pieces, 0),
                }
            })?;
            flats.push(flat);
        }
        Ok(flats)
    }

    /// `values` (the leaves of `template`'s copies, in order, as float32) on every device, as
    /// trees shaped like `template`'s copies.
    fn upload<T: Tree>(&self, template: &Replicated<T>, values: &[f32]) -> Replicated<T> {
        self.map(|k, _| {
            let leaves = template[k].leaves();
            if leaves.is_empty() {
                return template[k].rebuild(vec![]);
            }
            let flat = Tensor::from_vec(values.to_vec(), [values.len()]);
            let mut at = 0;
            let rebuilt = leaves
                .iter()
                .map(|t| {
                    let piece = flat.slice_axis(0, at..at + t.numel()).reshape(t.shape());
                    at += t.numel();
                    if t.dtype() == DType::F32 {
                        piece
                    } else {
                        piece.cast(t.dtype())
                    }
                })
                .collect();
            template[k].rebuild(rebuilt)
        })
    }

    /// This process's outcome made known to every process: an error on all of them when any
    /// failed (naming which), this process's own error first.
    fn agree(&self, op: &'static str, local: Result<()>) -> Result<()> {
        let size = self.collective.size();
        if size == 1 {
            return local;
        }
        let mut failed = vec![0.0f64; size];
        if local.is_err() {
            failed[self.rank()] = 1.0;
        }
        self.collective.all_reduce_sum(&mut failed)?;
        reduce::check_processes(op, self.rank(), &failed, local.as_ref().err())
    }
}
