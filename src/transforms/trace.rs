//! Whether a transform is tracing a user function right now (per thread). While one is, realized
//! tensors keep their graph history, since the transform may still differentiate through them.

use std::cell::Cell;

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// Runs `f` as traced code (panic-safe).
pub(crate) fn traced<R>(f: impl FnOnce() -> R) -> R {
    DEPTH.with(|d| d.set(d.get() + 1));
    let _guard = Guard;
    f()
}

/// Whether some transform is tracing on this thread.
pub(crate) fn active() -> bool {
    DEPTH.with(|d| d.get() > 0)
}
