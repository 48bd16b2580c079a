//! Fixed-buffer transfers done at once where the backend can: on epoll a
//! page-cache hit is one `preadv2`/`pwritev2` with `RWF_NOWAIT`, and doing
//! it in the call spares the caller the round trip through the ring (a
//! queued entry, a reap, a completion to deliver) that costs more than the
//! copy itself.

use std::os::fd::RawFd;

use super::registered::RegisteredBufferPool;
use crate::error::Result;
use crate::op::dispatch::Op;
use crate::op::kind::OpKind;
use crate::op::poll::{Attempt, Interest};

/// The largest transfer done in the call. A bigger copy is better left to
/// the workers: several of them copy in parallel with each other and with
/// the caller's thread, where copies done in the call would queue up on
/// it (sequential 1 MiB reads at depth 4 ran at 0.66x Node's `fs.read` when
/// every size went in the call). Up to this size the round through the ring
/// costs more than the copy.
pub const NOW_MAX_LEN: usize = 64 * 1024;

/// What [`RegisteredBufferPool::read_fixed_now`] (or `write_fixed_now`)
/// did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// Done in the call: bytes transferred, or `-errno`. No completion
    /// follows; the buffer is as it was before the call.
    Done(i32),
    /// Queued as [`read_fixed`](RegisteredBufferPool::read_fixed) queues
    /// it: the `user_data` of its completion.
    Queued(u64),
}

impl RegisteredBufferPool {
    /// As [`read_fixed`](Self::read_fixed), but done in the call where the
    /// backend can without blocking and without overtaking an operation
    /// queued before it: on the epoll backend, a read the page cache (or
    /// a ready pipe) serves at once, when no operation is queued and `len`
    /// is at most [`NOW_MAX_LEN`]. Otherwise (io_uring, a read that would
    /// block, operations queued, a bigger read) it is queued as
    /// `read_fixed` queues it. Counted in the pool's statistics either
    /// way.
    ///
    /// # Errors
    ///
    /// As [`submit_read_fixed`](Self::submit_read_fixed). Errors of the
    /// read itself are `Started::Done(-errno)` or arrive in the completion.
    pub fn read_fixed_now(
        &self,
        fd: RawFd,
        index: u32,
        offset: u64,
        len: usize,
        buf_offset: usize,
    ) -> Result<Started> {
        self.now(OpKind::ReadFixed, fd, index, offset, len, buf_offset)
    }

    /// As [`read_fixed_now`](Self::read_fixed_now), for a write from
    /// buffer `index`.
    ///
    /// # Errors
    ///
    /// As [`read_fixed_now`](Self::read_fixed_now).
    pub fn write_fixed_now(
        &self,
        fd: RawFd,
        index: u32,
        offset: u64,
        len: usize,
        buf_offset: usize,
    ) -> Result<Started> {
        self.now(OpKind::WriteFixed, fd, index, offset, len, buf_offset)
    }

    fn now(
        &self,
        kind: OpKind,
        fd: RawFd,
        index: u32,
        offset: u64,
        len: usize,
        buf_offset: usize,
    ) -> Result<Started> {
        let mut rw = self.fixed_op(kind, fd, index, offset, len, buf_offset)?;
        let interest = if kind == OpKind::ReadFixed {
            Interest::Read
        } else {
            Interest::Write
        };
        if len <= NOW_MAX_LEN && self.shared.ring.runs_now(fd, interest) {
            let mut slots = self.slots()?;
            let was = slots.state(index)?;
            // Counted and marked as any transfer, for the time of the call.
            slots.begin_op(index, false)?;
            drop(slots);
            match rw.attempt() {
                Attempt::Done { result, .. } | Attempt::DoneDrained { result, .. } => {
                    self.shared.slots_mut().end_op(index, result);
                    return Ok(Started::Done(result));
                }
                outcome => {
                    self.shared.slots_mut().abort_op(index, was);
                    // Known to block: the worker does it without a second try.
                    rw.tried = matches!(outcome, Attempt::Blocking(_));
                }
            }
        }
        self.submit_with(index, false, Op::Fixed(rw))
            .map(Started::Queued)
    }
}
