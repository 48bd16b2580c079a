//! Failure injection for tests: the verbs calls whose failure must leave
//! resources alive (`ibv_destroy_qp`, `ibv_dereg_mr`) can be made to fail
//! once, on this thread, without calling verbs; the resource then stays as
//! it is, as it would after a real failure.

use std::cell::Cell;

std::thread_local! {
    static NEXT: Cell<Option<(&'static str, i32)>> = const { Cell::new(None) };
}

/// Makes the next `call` (`"ibv_destroy_qp"` or `"ibv_dereg_mr"`) on this
/// thread fail with `errno` instead of running. For tests of the failure
/// paths; real devices rarely fail these calls.
#[doc(hidden)]
pub fn fail_next(call: &'static str, errno: i32) {
    NEXT.with(|n| n.set(Some((call, errno))));
}

/// Runs `f` (a verbs call returning 0 or an errno), unless a failure of
/// `call` was injected: then returns that errno.
pub(crate) fn or(call: &'static str, f: impl FnOnce() -> i32) -> i32 {
    match NEXT.with(|n| n.get()) {
        Some((c, errno)) if c == call => {
            NEXT.with(|n| n.set(None));
            errno
        }
        _ => f(),
    }
}
