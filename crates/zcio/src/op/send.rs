//! `IORING_OP_SEND` and `IORING_OP_SEND_ZC` of one memory range, with
//! `MSG_NOSIGNAL | MSG_WAITALL` (the kernel retries a short send).
//!
//! A zero-copy send (Linux 6.0; usage reporting 6.1) completes twice: the
//! byte count with `IORING_CQE_F_MORE`, then a notification once the kernel
//! no longer reads the memory; the op (and the memory) lives until then.

use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{Cqe, OpKind, Placed, SendMemory, SocketUse};

/// `IORING_SEND_ZC_REPORT_USAGE`.
pub(crate) const SEND_ZC_REPORT_USAGE: u16 = 8;

pub(crate) struct Send {
    fd: RawFd,
    ptr: *const u8,
    len: u32,
    /// Zero-copy; with the buffer's registered index when it is a pool's.
    zc: bool,
    fixed: Option<u16>,
    link: bool,
    memory: SendMemory,
    _socket: SocketUse,
}

impl Send {
    /// A send of `len` bytes at `ptr` on `fd`.
    ///
    /// # Safety
    ///
    /// `ptr..ptr + len` stays valid until the op's final completion: it lies
    /// in `memory` (which the op keeps), or the caller keeps it valid.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn new(
        fd: RawFd,
        ptr: *const u8,
        len: u32,
        zc: bool,
        fixed: Option<u16>,
        link: bool,
        memory: SendMemory,
        socket: SocketUse,
    ) -> Send {
        Send {
            fd,
            ptr,
            len,
            zc,
            fixed,
            link,
            memory,
            _socket: socket,
        }
    }

    pub(crate) fn kind(&self) -> OpKind {
        if self.zc {
            OpKind::SendZc
        } else {
            OpKind::Send
        }
    }

    pub(crate) fn links(&self) -> bool {
        self.link
    }

    pub(crate) fn uring_entry(&self) -> squeue::Entry {
        let flags = libc::MSG_NOSIGNAL | libc::MSG_WAITALL;
        let fd = types::Fd(self.fd);
        if self.zc {
            opcode::SendZc::new(fd, self.ptr, self.len)
                .buf_index(self.fixed)
                .flags(flags)
                .zc_flags(SEND_ZC_REPORT_USAGE)
                .build()
        } else {
            opcode::Send::new(fd, self.ptr, self.len)
                .flags(flags)
                .build()
        }
    }

    pub(crate) fn placed(&self) -> Placed {
        self.memory.placed()
    }

    pub(crate) fn complete(&mut self, cqe: Cqe) -> Placed {
        self.memory.done(cqe.result);
        self.placed()
    }
}
