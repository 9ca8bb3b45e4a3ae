//! The host side of a data-parallel step: every device's work computed concurrently (one
//! thread each), gradients read back and summed in a fixed order, whatever order the devices
//! finish in, so that a run is bit-identical to the next.

use crate::base::error::{Error, Result};
use crate::device::{Device, with_device};
use crate::ir::tensor::Tensor;
use crate::parallel::Replicated;
use crate::tree::Tree;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// An error of device `k`'s share of a data-parallel operation, naming the device.
pub(crate) fn device_failed(op: &'static str, k: usize, device: &Device, e: &Error) -> Error {
    Error::Parallel {
        op,
        msg: format!("replica {k} on {device:?} failed: {e}"),
    }
}

/// Realizes `per_device[k]` on `devices[k]`, all devices at once; the error of the first
/// device (in device order) that failed.
pub(crate) fn realize_concurrently(devices: &[Device], per_device: Vec<Vec<Tensor>>) -> Result<()> {
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .iter()
            .zip(per_device)
            .map(|(d, tensors)| {
                s.spawn(move || with_device(d, || crate::runtime::read::try_realize(&tensors)))
            })
            .collect();
        handles.into_iter().map(join).collect()
    });
    first_error("realize", devices, results)
}

/// Reads `flats[k]` (a float32 vector of the same length on each device `devices[k]`) back to
/// the host, the devices concurrently, and sums them elementwise in float64 in device order:
/// device 0's values first, then device 1's, … — as each arrives, but never out of that order.
/// Also returns the time spent summing (not waiting for the devices).
pub(crate) fn sum_in_device_order(
    devices: &[Device],
    flats: Vec<Tensor>,
) -> Result<(Vec<f64>, Duration)> {
    let mut summing = Duration::ZERO;
    let n = flats.first().map_or(0, Tensor::numel);
    let mut sum = vec![0.0f64; n];
    let mut errors: Vec<Result<()>> = (0..devices.len()).map(|_| Ok(())).collect();
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        for (k, (d, flat)) in devices.iter().zip(flats).enumerate() {
            let tx = tx.clone();
            s.spawn(move || {
                let values = with_device(d, || flat.try_to_vec::<f32>());
                let _ = tx.send((k, values));
            });
        }
        drop(tx);
        let mut waiting: Vec<Option<Vec<f32>>> = vec![None; devices.len()];
        let mut next = 0;
        for (k, values) in rx {
            match values {
                Ok(v) => waiting[k] = Some(v),
                Err(e) => errors[k] = Err(e),
            }
            let started = Instant::now();
            while next < waiting.len() {
                let Some(v) = waiting[next].take() else { break };
                for (acc, x) in sum.iter_mut().zip(&v) {
                    *acc += f64::from(*x);
                }
                next += 1;
            }
            summing += started.elapsed();
        }
    });
    first_error("all_reduce", devices, errors)?;
    Ok((sum, summing))
}

/// A scoped thread's result; a panic there is passed on to the caller's thread.
fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

fn first_error(op: &'static str, devices: &[Device], results: Vec<Result<()>>) -> Result<()> {
    for (k, r) in results.into_iter().enumerate() {
        if let Err(e) = r {
            return Err(device_failed(op, k, &devices[k], &e));
        }
    }
    Ok(())
}

/// An error when any process marked itself failed in `failed` (one slot per process).
pub(crate) fn check_processes(
    op: &'static str,
    rank: usize,
    failed: &[f64],
    mine: Option<&Error>,
) -> Result<()> {
    let ranks: Vec<usize> = (0..failed.len()).filter(|&r| failed[r] != 0.0).collect();
    if ranks.is_empty() {
        return match mine {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        };
    }
    let own = match mine {
        Some(e) => format!(" (on this process, {rank}: {e})"),
        None => String::new(),
    };
    Err(Error::Parallel {
        op,
        msg: format!("failed on process(es) {ranks:?}{own}; every process stops this step"),
    })
}

/// Three 20-bit pieces of an FNV-1a hash of `leaves`' bytes.
pub(crate) fn fingerprint<'a>(leaves: impl Iterator<Item = &'a Vec<u8>>) -> [u64; 3] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for bytes in leaves {
        for b in bytes.iter().chain(&(bytes.len() as u64).to_le_bytes()) {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    [h & 0xf_ffff, (h >> 20) & 0xf_ffff, (h >> 40) & 0xf_ffff]
}

/// Three 20-bit pieces of a hash of `tree`'s bytes, after checking that this process's copies
/// hold the same bytes (an error naming the first leaf that differs).
pub(crate) fn local_fingerprint<T: Tree>(tree: &Replicated<T>) -> Result<[u64; 3]> {
    let mut reference: Option<Vec<Vec<u8>>> = None;
    for (k, copy) in tree.iter().enumerate() {
        let bytes: Vec<Vec<u8>> = copy
            .leaves()
            .iter()
            .map(crate::runtime::realize::read_bytes)
            .collect::<Result<_>>()?;
        match &reference {
            None => reference = Some(bytes),
            Some(first) => {
                if let Some(leaf) = (0..bytes.len()).find(|&i| bytes[i] != first[i]) {
                    return Err(Error::Parallel {
                        op: "check_replicas",
                        msg: format!("leaf {leaf} differs between replicas 0 and {k}"),
                    });
                }
            }
        }
    }
    Ok(fingerprint(reference.iter().flatten()))
}
