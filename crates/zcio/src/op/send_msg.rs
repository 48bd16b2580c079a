//! `IORING_OP_SENDMSG` of several memory ranges in order, one pass through
//! the socket layer (`MSG_NOSIGNAL | MSG_WAITALL`).

use std::any::Any;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::SocketUse;

/// The header and iovecs the kernel reads, on the heap (the table moves ops).
struct Message {
    iov: Vec<libc::iovec>,
    hdr: libc::msghdr,
}

pub(crate) struct SendMsg {
    fd: RawFd,
    msg: Box<Message>,
    link: bool,
    /// Never read: kept until the final completion, then dropped.
    _keep: Box<dyn Any>,
    _socket: SocketUse,
}

impl SendMsg {
    /// A send of `ranges`, in order, on `fd`.
    ///
    /// # Safety
    ///
    /// Every range stays valid until the op's completion (it lies in `keep`,
    /// or the caller keeps it valid otherwise).
    pub(crate) unsafe fn new(
        fd: RawFd,
        ranges: &[(*const u8, usize)],
        link: bool,
        keep: Box<dyn Any>,
        socket: SocketUse,
    ) -> SendMsg {
        let mut msg = Box::new(Message {
            iov: ranges
                .iter()
                .map(|&(p, l)| libc::iovec {
                    iov_base: p as *mut libc::c_void,
                    iov_len: l,
                })
                .collect(),
            // SAFETY: msghdr is plain data; all zeros is a valid empty header.
            hdr: unsafe { std::mem::zeroed() },
        });
        msg.hdr.msg_iov = msg.iov.as_mut_ptr();
        // size_t on glibc, int on musl; at most IOV_MAX (checked by callers).
        msg.hdr.msg_iovlen = msg.iov.len() as _;
        SendMsg {
            fd,
            msg,
            link,
            _keep: keep,
            _socket: socket,
        }
    }

    pub(crate) fn links(&self) -> bool {
        self.link
    }

    pub(crate) fn uring_entry(&self) -> squeue::Entry {
        // The header and iovecs live in the boxed message (a Box does not
        // move its contents when the op moves).
        opcode::SendMsg::new(types::Fd(self.fd), &self.msg.hdr)
            .flags((libc::MSG_NOSIGNAL | libc::MSG_WAITALL) as u32)
            .build()
    }
}
