//! Per-thread scopes (`with_device`, `with_policy`): a value in force for one closure on one
//! thread, innermost last, popped even when the closure panics.

use std::cell::RefCell;
use std::thread::LocalKey;

/// A thread's stack of scoped values.
pub(crate) type Stack<T> = LocalKey<RefCell<Vec<T>>>;

/// Runs `f` with `value` on top of `stack`.
pub(crate) fn with_pushed<T: 'static, R>(
    stack: &'static Stack<T>,
    value: T,
    f: impl FnOnce() -> R,
) -> R {
    struct Pop<T: 'static>(&'static Stack<T>);
    impl<T: 'static> Drop for Pop<T> {
        fn drop(&mut self) {
            self.0.with(|s| s.borrow_mut().pop());
        }
    }
    stack.with(|s| s.borrow_mut().push(value));
    let _pop = Pop(stack);
    f()
}

/// The innermost scoped value of `stack`, if any.
pub(crate) fn innermost<T: Clone + 'static>(stack: &'static Stack<T>) -> Option<T> {
    stack.with(|s| s.borrow().last().cloned())
}
