//! What the processes of a data-parallel run share: a [`Collective`] sums host buffers over
//! every process. [`SingleProcess`] is the one-process case; [`Mpi`](super::Mpi) (feature
//! `mpi`) runs over MPI ranks.

use crate::base::error::Result;
use crate::device::Device;

/// Communication between the processes of a data-parallel run, on host buffers.
///
/// wgrad calls it from the thread that drives the step, once per step with every replica's
/// gradients already summed within the process. Implement it to run over a transport of your
/// own; wgrad ships [`SingleProcess`] and, with the `mpi` feature, [`Mpi`](super::Mpi).
///
/// ```
/// use wgrad::parallel::{Collective, SingleProcess};
/// let mut v = [1.0, 2.5];
/// SingleProcess.all_reduce_sum(&mut v).unwrap();
/// assert_eq!((SingleProcess.rank(), SingleProcess.size(), v), (0, 1, [1.0, 2.5]));
/// ```
pub trait Collective {
    /// This process's number, from 0.
    fn rank(&self) -> usize;
    /// How many processes take part.
    fn size(&self) -> usize;
    /// Replaces `values` by their elementwise sum over every process. Every process must call
    /// it with the same length, and every process must receive the same sums (bit for bit), so
    /// that replicas updated from them stay identical.
    fn all_reduce_sum(&self, values: &mut [f64]) -> Result<()>;
    /// Returns once every process has called it (rank 0 writes a checkpoint, then all load
    /// it). The default sums an empty buffer, which synchronizes on every transport that
    /// implements `all_reduce_sum` as a collective.
    fn barrier(&self) -> Result<()> {
        self.all_reduce_sum(&mut [0.0])
    }
}

/// The collective of a run with one process: sums are the values themselves.
///
/// ```
/// use wgrad::parallel::{Collective, SingleProcess};
/// assert_eq!(SingleProcess.size(), 1);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_reduce_sum(&self, _values: &mut [f64]) -> Result<()> {
        Ok(())
    }
}

/// This process's number among the processes on its machine, as the MPI launcher or the
/// batch system tells it (`OMPI_COMM_WORLD_LOCAL_RANK`, `MPI_LOCALRANKID`, `SLURM_LOCALID`);
/// 0 when none does. With several GPUs per machine, rank `r` takes
/// `Device::open_adapter(local_rank() % Device::adapters()?.len())`.
///
/// ```
/// // Outside mpirun there is one process per machine.
/// if std::env::var("OMPI_COMM_WORLD_LOCAL_RANK").is_err() {
///     assert_eq!(wgrad::parallel::local_rank(), 0);
/// }
/// ```
pub fn local_rank() -> usize {
    [
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "MPI_LOCALRANKID",
        "SLURM_LOCALID",
    ]
    .iter()
    .find_map(|name| std::env::var(name).ok()?.trim().parse().ok())
    .unwrap_or(0)
}

/// The device this process trains on: with several GPUs on the machine (adapters that are not
/// CPUs), the one numbered [`local_rank`] modulo their count — one GPU per rank, round robin;
/// otherwise the default device. `WGRAD_ADAPTER` narrows the choice as it does everywhere.
///
/// ```
/// let d = wgrad::parallel::local_device().unwrap();
/// assert!(!d.info().unwrap().name.is_empty());
/// ```
pub fn local_device() -> Result<Device> {
    let gpus: Vec<usize> = Device::adapters()?
        .iter()
        .enumerate()
        .filter(|(_, a)| a.device_type != "Cpu")
        .map(|(k, _)| k)
        .collect();
    if gpus.len() > 1 {
        Device::open_adapter(gpus[local_rank() % gpus.len()])
    } else {
        Ok(Device::default())
    }
}
