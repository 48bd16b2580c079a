//! Queuing a pool's fixed-buffer reads and writes and its sends.

use std::os::fd::RawFd;
use std::rc::Rc;

use super::registered::RegisteredBufferPool;
use crate::error::{Error, Result};
use crate::net::stream::TcpStream;
use crate::op::dispatch::Op;
use crate::op::fixed_rw::{Direction, FixedRw};
use crate::op::kind::OpKind;
use crate::op::owner::{BufferOwner, SendMemory};
use crate::op::send::Send;
use crate::slots::Slot;

impl RegisteredBufferPool {
    /// Queues `IORING_OP_READ_FIXED`: read `len` bytes at file `offset` of
    /// `fd` into buffer `index`, starting `buf_offset` bytes into it.
    /// The buffer becomes in flight and stays so until the completion is
    /// reaped **and** the caller calls [`complete_in_flight`](Self::complete_in_flight).
    /// Returns the operation's `user_data`, found again in its
    /// [`Completion`](crate::Completion). Submit with [`Ring::submit`](crate::Ring::submit).
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] when `buf_offset + len` exceeds the buffer;
    /// [`Error::NotAcquired`], [`Error::Borrowed`], [`Error::Closed`] (pool or
    /// ring), [`Error::Sys`] if the submission queue could not be flushed.
    /// Errors of the read itself (`EBADF`...) arrive in the completion.
    pub fn submit_read_fixed(
        &self,
        fd: RawFd,
        index: u32,
        offset: u64,
        len: usize,
        buf_offset: usize,
    ) -> Result<u64> {
        self.submit(OpKind::ReadFixed, fd, index, offset, len, buf_offset, true)
    }

    /// Queues `IORING_OP_WRITE_FIXED` from buffer `index`; as
    /// [`submit_read_fixed`](Self::submit_read_fixed).
    ///
    /// # Errors
    ///
    /// As [`submit_read_fixed`](Self::submit_read_fixed).
    pub fn submit_write_fixed(
        &self,
        fd: RawFd,
        index: u32,
        offset: u64,
        len: usize,
        buf_offset: usize,
    ) -> Result<u64> {
        self.submit(OpKind::WriteFixed, fd, index, offset, len, buf_offset, true)
    }

    /// As [`submit_read_fixed`](Self::submit_read_fixed), but the buffer leaves
    /// the in-flight state by itself when the last of its operations completes.
    ///
    /// # Errors
    ///
    /// As [`submit_read_fixed`](Self::submit_read_fixed).
    pub fn read_fixed(
        &self,
        fd: RawFd,
        index: u32,
        offset: u64,
        len: usize,
        buf_offset: usize,
    ) -> Result<u64> {
        self.submit(OpKind::ReadFixed, fd, index, offset, len, buf_offset, false)
    }

    /// As [`submit_write_fixed`](Self::submit_write_fixed), completing by itself;
    /// see [`read_fixed`](Self::read_fixed).
    ///
    /// # Errors
    ///
    /// As [`submit_read_fixed`](Self::submit_read_fixed).
    pub fn write_fixed(
        &self,
        fd: RawFd,
        index: u32,
        offset: u64,
        len: usize,
        buf_offset: usize,
    ) -> Result<u64> {
        self.submit(
            OpKind::WriteFixed,
            fd,
            index,
            offset,
            len,
            buf_offset,
            false,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn submit(
        &self,
        kind: OpKind,
        fd: RawFd,
        index: u32,
        offset: u64,
        len: usize,
        buf_offset: usize,
        manual: bool,
    ) -> Result<u64> {
        let rw = self.fixed_op(kind, fd, index, offset, len, buf_offset)?;
        self.submit_with(index, manual, Op::Fixed(rw))
    }

    /// The fixed-buffer transfer these arguments describe, checked as
    /// [`check_fixed_op`](Self::check_fixed_op) does.
    pub(super) fn fixed_op(
        &self,
        kind: OpKind,
        fd: RawFd,
        index: u32,
        offset: u64,
        len: usize,
        buf_offset: usize,
    ) -> Result<FixedRw> {
        self.check_fixed_op(index, offset, len, buf_offset)?;
        let dir = if kind == OpKind::ReadFixed {
            Direction::Read
        } else {
            Direction::Write
        };
        let (addr, buf_index) = self.buffer_addr(index, buf_offset);
        Ok(FixedRw {
            dir,
            pool: self.shared.clone(),
            index,
            buf_index,
            fd,
            pos: offset,
            addr,
            len: len as u32,
            stream: false,
            plain: false,
            tried: false,
        })
    }

    /// Queues a send of `len` bytes of buffer `index` (from `buf_offset`) on
    /// `stream`; a zero-copy send names the buffer as a registered buffer
    /// (no per-send page pinning). The buffer is in flight until the final
    /// completion (for `zc`, the notification): it can't be released meanwhile.
    ///
    /// # Errors
    ///
    /// As [`submit_read_fixed`](Self::submit_read_fixed), plus
    /// [`Error::Closed`] for a closed stream.
    ///
    /// `linked`: as in [`TcpStream::send_borrowed`].
    pub fn submit_send(
        &self,
        stream: &TcpStream,
        index: u32,
        buf_offset: usize,
        len: usize,
        zc: bool,
        linked: bool,
    ) -> Result<u64> {
        self.check_fixed_op(index, 0, len, buf_offset)?;
        if !stream.is_on(&self.shared.ring) {
            return Err(Error::InvalidArgument {
                name: "pool",
                reason: "the pool belongs to another ring than the stream".into(),
            });
        }
        let fd = stream.raw_fd()?;
        if len > i32::MAX as usize {
            return Err(Error::OutOfRange {
                name: "length",
                reason: format!("{len} bytes is above 2^31 - 1"),
            });
        }
        let socket = stream.socket_use(&self.shared.ring, zc);
        let pool: Rc<dyn BufferOwner> = self.shared.clone();
        let (addr, buf_index) = self.buffer_addr(index, buf_offset);
        let memory = SendMemory::Pool { pool, index };
        let fixed = zc.then_some(buf_index);
        // SAFETY: `addr..addr + len` lies inside buffer `index` of the pool,
        // which `memory` holds (and with it the mapping) until the final
        // completion.
        let op = unsafe { Send::new(fd, addr, len as u32, zc, fixed, linked, memory, socket) };
        self.submit_with(index, false, Op::Send(op))
    }

    /// The address `buf_offset` bytes into buffer `index`, and the buffer's
    /// index in the ring's registered-buffer table.
    fn buffer_addr(&self, index: u32, buf_offset: usize) -> (*mut u8, u16) {
        let s = &self.shared;
        // In bounds (checked by the caller): index < total and
        // buf_offset + len <= buffer_size <= stride.
        let addr = s
            .region
            .as_ptr()
            .wrapping_add(index as usize * s.stride + buf_offset);
        (addr, (s.base + index) as u16)
    }

    /// Queues `op`, on buffer `index`: the buffer is in flight from now
    /// until the op's final completion.
    pub(super) fn submit_with(&self, index: u32, manual: bool, op: Op) -> Result<u64> {
        let s = &self.shared;
        let mut slots = self.slots()?;
        let was = slots.state(index)?;
        slots.begin_op(index, manual)?;
        drop(slots);
        match s.ring.push(op) {
            Ok(user_data) => Ok(user_data),
            Err(e) => {
                s.slots_mut().abort_op(index, was);
                Err(e)
            }
        }
    }

    /// Checks, without side effects, everything a `read_fixed` /
    /// `write_fixed` call with these arguments would check before queueing:
    /// lets a caller validate a whole batch before queueing any of it.
    ///
    /// # Errors
    ///
    /// As [`submit_read_fixed`](Self::submit_read_fixed).
    pub fn check_fixed_op(
        &self,
        index: u32,
        offset: u64,
        len: usize,
        buf_offset: usize,
    ) -> Result<()> {
        let s = &self.shared;
        s.ring.check_open()?;
        let slots = self.slots()?;
        match slots.state(index)? {
            Slot::Free => return Err(Error::NotAcquired { index }),
            Slot::Acquired if slots.is_borrowed(index) => return Err(Error::Borrowed { index }),
            _ => {}
        }
        if buf_offset > s.buffer_size || len > s.buffer_size - buf_offset {
            return Err(Error::OutOfRange {
                name: "len",
                reason: format!(
                    "bufferOffset {buf_offset} + len {len} exceeds the buffer size {}",
                    s.buffer_size
                ),
            });
        }
        if offset > i64::MAX as u64 {
            return Err(Error::OutOfRange {
                name: "offset",
                reason: format!("{offset} is above 2^63 - 1"),
            });
        }
        Ok(())
    }
}
