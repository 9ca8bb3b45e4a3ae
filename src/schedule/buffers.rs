//! Buffer assignment, a pure function: kernels' reads and writes of virtual buffers in, real
//! buffer slots out, each slot reused once every reader of its last value has run.

use crate::base::error::Result;
use crate::base::error::internal;
use crate::kernel::{BufRef, Kernel, Step};
use crate::memory::pool::size_class;
use std::collections::{HashMap, HashSet};

/// One kernel's buffer traffic, for buffer assignment: the virtual buffers it reads, the one
/// it writes, and the bytes written.
#[derive(Clone, Debug)]
pub(crate) struct KernelIo {
    pub reads: Vec<usize>,
    /// The buffer written (`None` for a loop marker).
    pub writes: Option<usize>,
    pub bytes: u64,
    /// Further outputs (a multi-output kernel): virtual buffer and bytes.
    pub extra: Vec<(usize, u64)>,
}

/// Which buffer (slot) each virtual buffer of a schedule lives in, and each slot's size.
#[derive(Debug, PartialEq)]
pub(crate) struct Assignment {
    pub slot_of: HashMap<usize, usize>,
    pub slot_bytes: Vec<u64>,
}

/// Assign buffers: a slot for each kernel's output, reused once its last reader has run
/// (unless it is `keep`, a result), by size class. Pure: no device involved.
pub(crate) fn assign_buffers(kernels: &[KernelIo], keep: &HashSet<usize>) -> Assignment {
    let mut last_use: HashMap<usize, usize> = HashMap::new();
    for (k, io) in kernels.iter().enumerate() {
        for &v in &io.reads {
            last_use.insert(v, k);
        }
    }
    let mut slot_of = HashMap::new();
    let mut slot_bytes: Vec<u64> = vec![];
    let mut free: HashMap<u64, Vec<usize>> = HashMap::new();
    for (k, io) in kernels.iter().enumerate() {
        let writes: Vec<(usize, u64)> = io
            .writes
            .map(|w| (w, io.bytes))
            .into_iter()
            .chain(io.extra.iter().copied())
            .collect();
        let mut fresh = vec![];
        for &(w, bytes) in &writes {
            if slot_of.contains_key(&w) {
                // Written again (a loop's carry or stacked output): the same buffer.
                continue;
            }
            fresh.push(w);
            let class = size_class(bytes.max(4));
            let slot = match free.get_mut(&class).and_then(|v| v.pop()) {
                Some(s) => s,
                None => {
                    slot_bytes.push(class);
                    slot_bytes.len() - 1
                }
            };
            slot_of.insert(w, slot);
        }
        // Buffers nothing reads any more can serve later kernels (not this one: it still
        // reads them while it writes its output). A buffer bound twice is freed once.
        let reads: HashSet<usize> = io.reads.iter().copied().collect();
        for &v in &reads {
            if last_use.get(&v) == Some(&k) && !keep.contains(&v) {
                if let Some(&s) = slot_of.get(&v) {
                    free.entry(slot_bytes[s]).or_default().push(s);
                }
            }
        }
        for &w in &fresh {
            if !last_use.contains_key(&w) && !keep.contains(&w) {
                let s = slot_of[&w];
                free.entry(slot_bytes[s]).or_default().push(s);
            }
        }
    }
    Assignment {
        slot_of,
        slot_bytes,
    }
}

/// The buffer traffic of a schedule's entries, for [`assign_buffers`]. A repeated block's
/// buffers (everything its entries read or write) stay alive to its end: its first entries
/// run again after its last ones.
pub(crate) fn kernel_io(kernels: &[Kernel]) -> Result<Vec<KernelIo>> {
    let written = |b: &BufRef| -> Result<usize> {
        match b {
            BufRef::Virtual(v) => Ok(*v),
            _ => Err(internal(
                "a kernel writes a realized or external buffer".into(),
            )),
        }
    };
    let mut open: Vec<HashSet<usize>> = vec![];
    let mut io = Vec::with_capacity(kernels.len());
    for k in kernels {
        let reads: Vec<usize> = virtuals(&k.inputs);
        let entry = match &k.step {
            Step::Repeat { .. } => {
                open.push(HashSet::new());
                KernelIo {
                    reads: vec![],
                    writes: None,
                    bytes: 0,
                    extra: vec![],
                }
            }
            Step::EndRepeat => {
                let used = open
                    .pop()
                    .ok_or_else(|| internal("a loop end without its start".into()))?;
                if let Some(outer) = open.last_mut() {
                    outer.extend(used.iter().copied());
                }
                let mut reads: Vec<usize> = used.into_iter().collect();
                reads.sort_unstable();
                KernelIo {
                    reads,
                    writes: None,
                    bytes: 0,
                    extra: vec![],
                }
            }
            Step::Dispatch | Step::Copy { .. } => KernelIo {
                reads,
                writes: Some(written(&k.out)?),
                bytes: k.out_bytes,
                extra: k
                    .extra_outs
                    .iter()
                    .map(|(b, bytes)| Ok((written(b)?, *bytes)))
                    .collect::<Result<_>>()?,
            },
        };
        if let Some(used) = open.last_mut() {
            used.extend(entry.reads.iter().copied());
            used.extend(
                entry
                    .writes
                    .into_iter()
                    .chain(entry.extra.iter().map(|(v, _)| *v)),
            );
        }
        io.push(entry);
    }
    Ok(io)
}

/// The virtual buffers a list of buffer references names.
fn virtuals(bufs: &[BufRef]) -> Vec<usize> {
    bufs.iter().filter_map(BufRef::virtual_id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(reads: &[usize], writes: usize, bytes: u64) -> KernelIo {
        KernelIo {
            extra: vec![],
            reads: reads.to_vec(),
            writes: Some(writes),
            bytes,
        }
    }

    #[test]
    fn a_chain_reuses_buffers_once_they_are_read() {
        // 0 -> 1 -> 2 -> 3: each buffer is free after its reader, so two slots serve all.
        let ks = [
            io(&[], 0, 1024),
            io(&[0], 1, 1024),
            io(&[1], 2, 1024),
            io(&[2], 3, 1024),
        ];
        let a = assign_buffers(&ks, &HashSet::from([3]));
        assert_eq!(a.slot_bytes.len(), 2);
        assert_ne!(
            a.slot_of[&0], a.slot_of[&1],
            "a kernel never writes what it reads"
        );
        assert_eq!(a.slot_of[&0], a.slot_of[&2]);
        assert_eq!(a.slot_of[&1], a.slot_of[&3]);
    }

    #[test]
    fn kept_results_are_never_reused() {
        let ks = [io(&[], 0, 1024), io(&[0], 1, 1024), io(&[1], 2, 1024)];
        let a = assign_buffers(&ks, &HashSet::from([0, 2]));
        let slots: HashSet<usize> = [0, 1, 2].iter().map(|v| a.slot_of[v]).collect();
        assert_eq!(slots.len(), 3, "{a:?}");
    }

    #[test]
    fn buffers_are_shared_only_within_a_size_class() {
        let ks = [io(&[], 0, 1024), io(&[0], 1, 4096), io(&[1], 2, 1024)];
        let a = assign_buffers(&ks, &HashSet::from([2]));
        assert_eq!(a.slot_of[&0], a.slot_of[&2]);
        assert_eq!(a.slot_bytes[a.slot_of[&1]], size_class(4096));
        assert_eq!(a.slot_bytes.len(), 2);
    }

    #[test]
    fn a_buffer_read_twice_lives_until_its_last_reader() {
        // 0 is read by kernels 1 and 3; 1 and 2 die early, so 2 may take 1's slot, never 0's.
        let ks = [
            io(&[], 0, 512),
            io(&[0], 1, 512),
            io(&[1], 2, 512),
            io(&[0, 2], 3, 512),
        ];
        let a = assign_buffers(&ks, &HashSet::from([3]));
        assert_ne!(a.slot_of[&2], a.slot_of[&0]);
        assert_ne!(a.slot_of[&3], a.slot_of[&0]);
        assert_ne!(a.slot_of[&3], a.slot_of[&2]);
        assert_eq!(a.slot_bytes.len(), 3);
    }

    #[test]
    fn a_buffer_bound_twice_by_one_kernel_is_freed_once() {
        // Kernel 2 reads 1 twice (as scalars and as vec4s); its slot must not be handed to
        // two later buffers that are alive at once.
        let ks = [
            io(&[], 0, 256),
            io(&[], 1, 256),
            io(&[0, 1, 0, 1], 2, 256),
            io(&[], 3, 256),
            io(&[], 4, 256),
            io(&[3, 4], 5, 256),
        ];
        let a = assign_buffers(&ks, &HashSet::from([2, 5]));
        let live_at_5 = [3, 4, 5].map(|v| a.slot_of[&v]);
        assert!(
            live_at_5[0] != live_at_5[1]
                && live_at_5[0] != live_at_5[2]
                && live_at_5[1] != live_at_5[2],
            "{a:?}"
        );
    }

    #[test]
    fn an_unread_unkept_output_frees_its_slot_at_once() {
        let ks = [io(&[], 0, 256), io(&[], 1, 256), io(&[1], 2, 256)];
        let a = assign_buffers(&ks, &HashSet::from([2]));
        assert_eq!(a.slot_of[&0], a.slot_of[&1]);
    }
}
