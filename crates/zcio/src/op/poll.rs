//! The readiness form of an operation, for the epoll backend: an op is
//! *attempted* (its system call made without blocking) when it is started
//! and again each time its descriptor is ready, until it says it is done.

use std::os::fd::RawFd;

/// What one attempt of an op came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The final completion.
    Done { result: i32, flags: u32 },
    /// The final completion of a receive that took less than its room: the
    /// socket is empty now, so the next receive waits without a try.
    DoneDrained { result: i32, flags: u32 },
    /// A completion after which the op goes on (multishot): attempt again,
    /// or, when `drained` (a receive that took less than the room it had:
    /// the socket is empty), wait for readiness first (the re-armed
    /// registration reports at once what arrived in between).
    More {
        result: i32,
        flags: u32,
        drained: bool,
    },
    /// It would block: attempt again once `fd` is ready for `interest`.
    Wait { fd: RawFd, interest: Interest },
    /// It can only be done by a blocking call: run `job` on a worker thread;
    /// its result is the final completion.
    Blocking(Job),
    /// A zero-copy send has been handed to the socket in `calls` system
    /// calls (`MSG_ZEROCOPY`): the byte count (or `-errno`) is its first
    /// completion, the notification for those calls its final one.
    Sent {
        result: i32,
        calls: u32,
        copied: bool,
    },
}

/// Which readiness an op waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    Read,
    Write,
}

/// A blocking file transfer for a worker thread: raw parts only (never an
/// `Rc`); the op that made it stays in the ring's table, owning the
/// memory, until the result is reaped on the ring's thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Job {
    pub(crate) write: bool,
    pub(crate) fd: RawFd,
    pub(crate) addr: usize,
    pub(crate) len: usize,
    /// `None`: at the file's position (a stream: pipe, terminal, socket).
    pub(crate) pos: Option<u64>,
}

/// What the backend remembers of a descriptor between attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FdFlags {
    /// `SO_ZEROCOPY` has been turned on.
    pub(crate) zerocopy: bool,
    /// The system does not know `SO_ZEROCOPY` (an emulator, an old
    /// kernel): zero-copy sends copy, and say so (`copied`).
    pub(crate) zc_copies: bool,
}

/// `IORING_CQE_F_BUFFER`: the completion names a buffer (`flags >> 16`).
pub(crate) const F_BUFFER: u32 = 1;
/// `IORING_CQE_F_MORE`.
pub(crate) const F_MORE: u32 = 2;
/// `IORING_CQE_F_NOTIF`.
pub(crate) const F_NOTIF: u32 = 8;
/// `IORING_CQE_F_BUF_MORE`: the buffer goes on being filled.
pub(crate) const F_BUF_MORE: u32 = 16;

#[cfg(test)]
mod tests {
    use io_uring::cqueue;

    use crate::op::poll::*;

    #[test]
    fn the_flags_are_the_kernels() {
        assert!(cqueue::more(F_MORE));
        assert!(cqueue::notif(F_NOTIF));
        assert!(cqueue::buffer_more(F_BUF_MORE));
        assert_eq!(cqueue::buffer_select(F_BUFFER | (7 << 16)), Some(7));
        assert_eq!(cqueue::buffer_select(F_MORE), None);
    }
}
