//! What a finished operation looks like.

use crate::error::{Error, Result};
use crate::op::kind::OpKind;

/// One finished operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The value [`RegisteredBufferPool::submit_read_fixed`](crate::RegisteredBufferPool::submit_read_fixed)
    /// (or another submit call) returned.
    pub user_data: u64,
    /// Bytes transferred, or `-errno`.
    pub result: i32,
    /// The CQE flags.
    pub flags: u32,
    /// What the operation was.
    pub kind: OpKind,
    /// The buffer the completion refers to: the pool buffer of a fixed
    /// read or write, the buffer id the kernel chose from a buffer group for
    /// a receive; 0 otherwise.
    pub buffer: u32,
    /// Where the received bytes start inside `buffer` (non-zero only for
    /// incrementally consumed buffer groups).
    pub offset: u32,
}

impl Completion {
    /// Whether the kernel will post more completions for this operation
    /// (`IORING_CQE_F_MORE`): a multishot operation goes on, or a zero-copy
    /// send's notification is still to come.
    pub fn more(&self) -> bool {
        io_uring::cqueue::more(self.flags)
    }

    /// Whether this is a zero-copy send's notification (`IORING_CQE_F_NOTIF`):
    /// the kernel no longer uses the send's memory.
    pub fn is_notification(&self) -> bool {
        io_uring::cqueue::notif(self.flags)
    }
}

impl Completion {
    /// The operation's outcome: bytes transferred, or the kernel's error.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] with the operation's errno when `result` is negative.
    pub fn into_result(self) -> Result<u32> {
        if self.result < 0 {
            Err(Error::from_cqe(self.kind.syscall(), self.result))
        } else {
            Ok(self.result as u32)
        }
    }

    /// The index of the operation in the ring's table (the low 32 bits of
    /// `user_data`): unique among operations in flight, so bindings can keep
    /// their own per-operation state in a dense table.
    pub fn slot(&self) -> u32 {
        self.user_data as u32
    }
}
