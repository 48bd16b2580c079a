//! `IORING_OP_CONNECT` of a new socket to an address the op owns.

use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::owner::SocketUse;
use super::poll::{Attempt, Interest};
use crate::sys::io_calls;

pub(crate) struct Connect {
    fd: RawFd,
    /// On the heap: the kernel reads it while the op is in flight.
    addr: Box<(libc::sockaddr_storage, libc::socklen_t)>,
    _socket: SocketUse,
    /// On the epoll backend: the connect is under way (`EINPROGRESS`).
    started: bool,
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
            started: false,
        }
    }

    /// The readiness form: a non-blocking connect, then (once the socket is
    /// writable) its outcome from `SO_ERROR`. The socket is blocking again
    /// afterwards, as it would be on io_uring.
    pub(crate) fn attempt(&mut self) -> Attempt {
        let r = if self.started {
            io_calls::socket_error(self.fd)
        } else {
            if let Err(e) = io_calls::set_nonblocking(self.fd, true) {
                return Attempt::Done {
                    result: -e.raw_os_error().unwrap_or(libc::EIO),
                    flags: 0,
                };
            }
            io_calls::connect(self.fd, &self.addr)
        };
        // A Unix socket whose listener's backlog is full answers EAGAIN:
        // try again once it is writable, as a blocking connect would.
        if r == -libc::EINPROGRESS || r == -libc::EAGAIN || r == -libc::EALREADY {
            self.started = r != -libc::EAGAIN;
            return Attempt::Wait {
                fd: self.fd,
                interest: Interest::Write,
            };
        }
        let _ = io_calls::set_nonblocking(self.fd, false);
        Attempt::Done {
            result: r,
            flags: 0,
        }
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd
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
