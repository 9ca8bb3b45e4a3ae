//! [`Mpi`]: the processes of a data-parallel run as MPI ranks (feature `mpi`).

use super::collective::Collective;
use crate::base::error::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives};
use std::time::{Duration, Instant};

/// The processes of a data-parallel run as the ranks of `MPI_COMM_WORLD`: gradients meet in
/// `MPI_Allreduce` on host buffers. Start the program under `mpirun -np N`; each rank opens its
/// own device(s) (see [`local_rank`](super::local_rank) for machines with several GPUs).
///
/// A collective that does not complete within the timeout (a rank died or hangs) cannot be
/// cancelled in MPI, so wgrad reports it on stderr and ends every rank with `MPI_Abort`
/// instead of hanging: resume from the last checkpoint. A rank whose own step fails (a lost
/// device) tells the others through the collective, and every rank returns that error. A rank
/// that panics while it holds its `Mpi` ends every rank (`MPI_Abort`), as a rank that dies does.
///
/// ```no_run
/// use wgrad::parallel::{DataParallel, Mpi};
/// let mpi = Mpi::init().unwrap();
/// println!("rank {} of {}", mpi.rank(), mpi.size());
/// let dp = DataParallel::new(vec![wgrad::Device::default()]).unwrap().with_collective(mpi);
/// # let _ = dp;
/// ```
pub struct Mpi {
    world: SimpleCommunicator,
    timeout: Duration,
    // Declared last: finalizes MPI when dropped, after the communicator.
    _universe: Universe,
}

impl Mpi {
    /// Initializes MPI (once per process: an error the second time) with the timeout of
    /// `WGRAD_MPI_TIMEOUT` seconds, else 300 s.
    pub fn init() -> Result<Mpi> {
        let (universe, _level) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| Error::Parallel {
                op: "Mpi::init",
                msg: "MPI is initialized already in this process (Mpi::init is called once)".into(),
            })?;
        let timeout = std::env::var("WGRAD_MPI_TIMEOUT")
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| *s > 0.0)
            .map_or(Duration::from_secs(300), Duration::from_secs_f64);
        Ok(Mpi {
            world: universe.world(),
            timeout,
            _universe: universe,
        })
    }

    /// The same, waiting at most `timeout` for a collective to complete.
    pub fn with_timeout(mut self, timeout: Duration) -> Mpi {
        self.timeout = timeout;
        self
    }

    /// This rank's number.
    pub fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    /// How many ranks.
    pub fn size(&self) -> usize {
        self.world.size() as usize
    }

    /// Ends every rank of the run (`MPI_Abort`) with exit code `code`.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}

impl Drop for Mpi {
    /// Unwinding from a panic on this rank: `MPI_Finalize` would wait for ranks that wait in a
    /// collective for this one, so the whole run would hang; end every rank instead.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "wgrad: rank {} of {} panicked; ending every rank with MPI_Abort",
                self.rank(),
                self.size()
            );
            self.world.abort(101);
        }
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        Mpi::rank(self)
    }
    fn size(&self) -> usize {
        Mpi::size(self)
    }
    fn all_reduce_sum(&self, values: &mut [f64]) -> Result<()> {
        let send = values.to_vec();
        let started = Instant::now();
        let mut pause = Duration::from_micros(20);
        mpi::request::scope(|scope| {
            let mut request = self.world.immediate_all_reduce_into(
                scope,
                &send[..],
                values,
                SystemOperation::sum(),
            );
            loop {
                match request.test() {
                    Ok(_) => return,
                    Err(pending) => request = pending,
                }
                if started.elapsed() > self.timeout {
                    eprintln!(
                        "wgrad: rank {} of {}: an all-reduce of {} values did not complete in \
                         {:.0} s (another rank died or hangs); ending every rank with MPI_Abort \
                         — resume from the last checkpoint",
                        self.rank(),
                        self.size(),
                        send.len(),
                        self.timeout.as_secs_f64()
                    );
                    self.world.abort(70);
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(1));
            }
        });
        Ok(())
    }
}
