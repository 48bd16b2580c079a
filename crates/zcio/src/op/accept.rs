//! `IORING_OP_ACCEPT`, one connection or multishot (Linux 5.19): each
//! completion's result is a new close-on-exec descriptor or `-errno`.

use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{OpKind, SocketUse};

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
