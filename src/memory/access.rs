//! Access to a device from several threads. On GL, wgpu-hal guards its one context with a lock
//! that gives up after 6 s and panics, and llvmpipe runs a submit's kernels inside
//! `queue.submit` while holding it: a thread compiling a kernel during another thread's long
//! submit aborted the process. wgrad's calls into a GL device therefore queue on a lock of
//! wgrad's own, which waits as long as it must.

use std::sync::{Condvar, Mutex};

/// A lock that one thread may take several times (the scheduler's calls nest), and that does
/// nothing where the backend does not need it.
pub(crate) struct AccessLock {
    serialize: bool,
    /// The holder and how many times it holds the lock.
    state: Mutex<(Option<std::thread::ThreadId>, usize)>,
    released: Condvar,
}

/// Held access to a device (see [`AccessLock::hold`]).
pub(crate) struct AccessGuard<'a>(Option<&'a AccessLock>);

impl AccessLock {
    pub(crate) fn new(serialize: bool) -> AccessLock {
        AccessLock {
            serialize,
            state: Mutex::new((None, 0)),
            released: Condvar::new(),
        }
    }
    /// Whether calls into this device are serialized (GL).
    pub(crate) fn serializes(&self) -> bool {
        self.serialize
    }
    /// Holds the device until the guard drops (at once where nothing is serialized; this
    /// thread again when it holds it already).
    pub(crate) fn hold(&self) -> AccessGuard<'_> {
        self.acquire(true).unwrap_or(AccessGuard(None))
    }
    /// Holds the device if no other thread does (for work that may be put off).
    pub(crate) fn try_hold(&self) -> Option<AccessGuard<'_>> {
        self.acquire(false)
    }
    /// Takes the lock, waiting for another holder if `wait`, else giving up (`None`).
    fn acquire(&self, wait: bool) -> Option<AccessGuard<'_>> {
        if !self.serialize {
            return Some(AccessGuard(None));
        }
        let me = std::thread::current().id();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match s.0 {
                None => *s = (Some(me), 1),
                Some(t) if t == me => s.1 += 1,
                Some(_) if wait => {
                    s = self.released.wait(s).unwrap_or_else(|e| e.into_inner());
                    continue;
                }
                Some(_) => return None,
            }
            return Some(AccessGuard(Some(self)));
        }
    }
}

impl Drop for AccessGuard<'_> {
    fn drop(&mut self) {
        if let Some(lock) = self.0 {
            let mut s = lock.state.lock().unwrap_or_else(|e| e.into_inner());
            s.1 -= 1;
            if s.1 == 0 {
                s.0 = None;
                drop(s);
                lock.released.notify_one();
            }
        }
    }
}
