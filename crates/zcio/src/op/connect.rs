//! `IORING_OP_CONNECT` of a new socket to an address the op owns.

use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::SocketUse;

pub(crate) struct Connect {
    fd: RawFd,
    /// On the heap: the kernel reads it while the op is in flight.
    addr: Box<(libc::sockaddr_storage, libc::socklen_t)>,
    _socket: SocketUse,
}

impl Connect {
    pub(crate) fn new(
        fd: RawFd,
        addr: (libc::sockaddr_storage, libc::socklen_t),
        socket: SocketUse,
    ) -> Connect {
        Connect {
            fd,
            addr: Box::new(addr),
            _socket: socket,
        }
    }

    pub(crate) fn uring_entry(&self) -> squeue::Entry {
        opcode::Connect::new(
            types::Fd(self.fd),
            (&self.addr.0 as *const libc::sockaddr_storage).cast(),
            self.addr.1,
        )
        .build()
    }
}
