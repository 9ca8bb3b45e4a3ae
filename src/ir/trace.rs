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

thread_local! {
    static STAGED: Cell<usize> = const { Cell::new(0) };
}

struct StagedGuard;

impl Drop for StagedGuard {
    fn drop(&mut self) {
        STAGED.with(|d| d.set(d.get() - 1));
    }
}

/// Runs `f` as staged code: traced on placeholders whose values stand for others (`vmap`'s
/// first example, `jit`'s first call, a loop body's first step), so `f` must not decide
/// anything on the host from a value (`cond` then selects instead of branching).
pub(crate) fn staged<R>(f: impl FnOnce() -> R) -> R {
    STAGED.with(|d| d.set(d.get() + 1));
    let _guard = StagedGuard;
    traced(f)
}

/// Whether staged code is being traced on this thread.
pub(crate) fn is_staged() -> bool {
    STAGED.with(|d| d.get() > 0)
}

thread_local! {
    /// The leaves of the enclosing differentiating transforms (jvp, vjp and what is built on
    /// them), innermost last, by id.
    static LEAVES: std::cell::RefCell<Vec<Vec<u64>>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct LeavesGuard;

impl Drop for LeavesGuard {
    fn drop(&mut self) {
        LEAVES.with(|l| l.borrow_mut().pop());
    }
}

/// Runs `f` as traced code that differentiates with respect to `leaves` (panic-safe).
pub(crate) fn differentiating<R>(leaves: &[crate::ir::tensor::Tensor], f: impl FnOnce() -> R) -> R {
    LEAVES.with(|l| l.borrow_mut().push(leaves.iter().map(|t| t.id()).collect()));
    let _guard = LeavesGuard;
    traced(f)
}

/// Whether some transform on this thread is differentiating with respect to node `id`.
pub(crate) fn differentiated_leaf(id: u64) -> bool {
    LEAVES.with(|l| l.borrow().iter().any(|ids| ids.contains(&id)))
}

/// Whether a differentiating transform is tracing on this thread.
pub(crate) fn differentiating_any() -> bool {
    LEAVES.with(|l| !l.borrow().is_empty())
}
