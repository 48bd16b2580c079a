//! What a call that the kernel kept refusing as busy returns.

use crate::error::{Error, Result};

/// The kernel kept refusing with `EBUSY`/`EAGAIN`: nothing was submitted,
/// and the entries stay queued for the next call.
pub(crate) fn busy_is_zero<T: Default>(e: Error) -> Result<T> {
    match e.errno() {
        Some(libc::EBUSY) | Some(libc::EAGAIN) => Ok(T::default()),
        _ => Err(e),
    }
}
