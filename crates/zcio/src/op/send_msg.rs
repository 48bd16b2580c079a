//! `IORING_OP_SENDMSG` of several memory ranges in order, one pass through
//! the socket layer (`MSG_NOSIGNAL | MSG_WAITALL`).

use std::any::Any;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::owner::SocketUse;
use super::poll::{Attempt, Interest};
use crate::sys::io_calls;

/// The header and iovecs the kernel reads, on the heap (the table moves ops).
struct Message {
    iov: Vec<libc::iovec>,
    hdr: libc::msghdr,
}

pub(crate) struct SendMsg {
    fd: RawFd,
    msg: Box<Message>,
    link: bool,
    /// Bytes in all, and (on the epoll backend) sent so far.
    total: usize,
    done: usize,
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
        let total = ranges.iter().map(|r| r.1).sum();
        SendMsg {
            fd,
            msg,
            link,
            total,
            done: 0,
            _keep: keep,
            _socket: socket,
        }
    }

    pub(crate) fn links(&self) -> bool {
        self.link
    }

    /// Bytes the send must have sent in full for a linked op to follow.
    pub(crate) fn expected(&self) -> i32 {
        self.total as i32
    }

    /// The readiness form: as [`Send`](super::Send)'s, the iovecs advanced
    /// past what the socket took.
    pub(crate) fn attempt(&mut self) -> Attempt {
        while self.done < self.total {
            // SAFETY: the header and iovecs are the op's; the ranges stay
            // valid until the completion (the constructor's contract).
            let r = unsafe { io_calls::sendmsg(self.fd, &self.msg.hdr) };
            if r >= 0 {
                self.advance(r as usize);
            } else if r == -libc::EAGAIN {
                return Attempt::Wait {
                    fd: self.fd,
                    interest: Interest::Write,
                };
            } else {
                let result = if self.done > 0 { self.done as i32 } else { r };
                return Attempt::Done { result, flags: 0 };
            }
        }
        Attempt::Done {
            result: self.done as i32,
            flags: 0,
        }
    }

    /// Given up while waiting: the bytes sent so far, else `-errno`.
    pub(crate) fn abandoned(&self, errno: i32) -> Attempt {
        let result = if self.done > 0 {
            self.done as i32
        } else {
            -errno
        };
        Attempt::Done { result, flags: 0 }
    }

    /// Moves the header's iovecs past `n` more bytes sent.
    fn advance(&mut self, mut n: usize) {
        self.done += n;
        let m = &mut *self.msg;
        let mut first =
            (m.hdr.msg_iov as usize - m.iov.as_ptr() as usize) / std::mem::size_of::<libc::iovec>();
        while n > 0 && first < m.iov.len() {
            let v = &mut m.iov[first];
            let step = n.min(v.iov_len);
            v.iov_base = (v.iov_base as usize + step) as *mut libc::c_void;
            v.iov_len -= step;
            n -= step;
            if v.iov_len == 0 {
                first += 1;
            }
        }
        m.hdr.msg_iov = m.iov.as_mut_ptr().wrapping_add(first);
        m.hdr.msg_iovlen = (m.iov.len() - first) as _;
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    pub(crate) fn uring_entry(&self) -> squeue::Entry {
        // The header and iovecs live in the boxed message (a Box does not
        // move its contents when the op moves).
        opcode::SendMsg::new(types::Fd(self.fd), &self.msg.hdr)
            .flags((libc::MSG_NOSIGNAL | libc::MSG_WAITALL) as u32)
            .build()
    }
}
