//! The socket descriptors zcio owns, process-wide.
//!
//! Descriptor numbers belong to the process, not to a thread or a ring: a
//! stream adopted with [`TcpStream::from_fd`](crate::TcpStream::from_fd) on
//! a descriptor that another zcio object already owns would close it under
//! that object, and the number could then be reused by an unrelated
//! connection that the first object goes on sending to. Every descriptor a
//! zcio socket owns is recorded here from the moment it is taken until it is
//! closed; adopting a recorded one is refused. Closing happens under the same
//! lock as the check, so no other thread can see a number that is closed but
//! still recorded, or open but no longer recorded.

use std::collections::HashSet;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::error::{Error, Result};

fn owned() -> MutexGuard<'static, HashSet<RawFd>> {
    static OWNED: OnceLock<Mutex<HashSet<RawFd>>> = OnceLock::new();
    OWNED
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        // A panic while holding the lock left the set as it was: still usable.
        .unwrap_or_else(|e| e.into_inner())
}

/// A descriptor owned by a zcio socket: recorded while it lives, closed (and
/// forgotten) on drop.
#[derive(Debug)]
pub(crate) struct TrackedFd(Option<OwnedFd>);

impl TrackedFd {
    /// Records a descriptor zcio has just created (`socket`, `accept`): its
    /// number can't be recorded already, since nothing zcio owns is open
    /// under that number.
    pub(crate) fn new(fd: OwnedFd) -> TrackedFd {
        owned().insert(fd.as_raw_fd());
        TrackedFd(Some(fd))
    }

    /// Records a descriptor handed over by the caller.
    ///
    /// # Errors
    ///
    /// [`Error::FdInUse`] when a zcio object already owns that descriptor;
    /// the caller's `OwnedFd` is then given back unclosed (forgotten), since
    /// it names the other object's descriptor.
    pub(crate) fn adopt(fd: OwnedFd) -> Result<TrackedFd> {
        let raw = fd.as_raw_fd();
        let mut set = owned();
        if !set.insert(raw) {
            drop(set);
            // Not ours to close: the number is another zcio object's.
            std::mem::forget(fd);
            return Err(Error::FdInUse { fd: raw });
        }
        Ok(TrackedFd(Some(fd)))
    }

    /// Whether a zcio object owns `fd` now.
    pub(crate) fn is_owned(fd: RawFd) -> bool {
        owned().contains(&fd)
    }

    pub(crate) fn as_raw_fd(&self) -> RawFd {
        self.0.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }
}

impl Drop for TrackedFd {
    fn drop(&mut self) {
        if let Some(fd) = self.0.take() {
            let raw = fd.as_raw_fd();
            let mut set = owned();
            drop(fd);
            set.remove(&raw);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::fd_registry::*;
    use std::os::fd::FromRawFd;

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe writes.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: pipe2 returned two new descriptors nothing else owns.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    #[test]
    fn a_recorded_descriptor_is_refused_and_left_open() {
        let (r, _w) = pipe();
        let raw = r.as_raw_fd();
        let first = TrackedFd::new(r);
        // SAFETY: an alias of `first`'s descriptor, which `adopt` must refuse
        // and must not close.
        let alias = unsafe { OwnedFd::from_raw_fd(raw) };
        let err = TrackedFd::adopt(alias).unwrap_err();
        assert!(matches!(err, Error::FdInUse { .. }));
        // Still open: fcntl succeeds on it.
        // SAFETY: F_GETFD reads flags only.
        assert!(unsafe { libc::fcntl(raw, libc::F_GETFD) } >= 0);
        assert!(TrackedFd::is_owned(raw));
        drop(first);
        assert!(!TrackedFd::is_owned(raw));
    }
}
