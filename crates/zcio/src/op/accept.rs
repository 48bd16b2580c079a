//! `IORING_OP_ACCEPT`, one connection or multishot (Linux 5.19): each
//! completion's result is a new close-on-exec descriptor or `-errno`.

use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::kind::OpKind;
use super::owner::SocketUse;
use super::poll::{Attempt, Interest};
use crate::sys::io_calls;

pub(crate) struct Accept {
    fd: RawFd,
    multishot: bool,
    _socket: SocketUse,
}

impl Accept {
    pub(crate) fn new(fd: RawFd, multishot: bool, socket: SocketUse) -> Accept {
        Accept {
            fd,
            multishot,
            _socket: socket,
        }
    }

    pub(crate) fn kind(&self) -> OpKind {
        if self.multishot {
            OpKind::AcceptMulti
        } else {
            OpKind::Accept
        }
    }

    /// The readiness form (the listener is non-blocking on that backend):
    /// one connection per completion, a multishot accept going on after each.
    pub(crate) fn attempt(&mut self) -> Attempt {
        let r = io_calls::accept(self.fd);
        if r == -libc::EAGAIN {
            return Attempt::Wait {
                fd: self.fd,
                interest: Interest::Read,
            };
        }
        if self.multishot && r >= 0 {
            Attempt::More {
                result: r,
                flags: 0,
                drained: false,
            }
        } else {
            Attempt::Done {
                result: r,
                flags: 0,
            }
        }
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    pub(crate) fn uring_entry(&self) -> squeue::Entry {
        let fd = types::Fd(self.fd);
        // Without an address buffer: the entry references no memory.
        if self.multishot {
            opcode::AcceptMulti::new(fd)
                .flags(libc::SOCK_CLOEXEC)
                .build()
        } else {
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                .flags(libc::SOCK_CLOEXEC)
                .build()
        }
    }
}
