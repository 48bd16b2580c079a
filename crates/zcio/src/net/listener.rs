//! A listening stream socket accepting through the ring.

use std::os::fd::RawFd;
use std::rc::Rc;

use super::socket::{bind_to, new_socket, SocketShared};
use super::sockopt::{set_int_opt, set_nodelay_raw};
use crate::error::{Error, Result};
use crate::op::accept::Accept;
use crate::op::dispatch::Op;
use crate::ring::handle::Ring;
use crate::sockaddr::{self, SockAddr};

/// A listening stream socket accepting through the ring.
#[derive(Clone)]
pub struct TcpListener {
    socket: Rc<SocketShared>,
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("fd", &self.socket.raw)
            .finish()
    }
}

/// How [`TcpListener::bind_with`] sets up the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenOptions {
    /// The kernel's queue of connections not yet accepted (`listen(2)`).
    pub backlog: u32,
    /// `IPV6_V6ONLY` on an IPv6 address: accept IPv6 connections only (no
    /// IPv4-mapped ones on `::`). `false` leaves the system's default
    /// (`net.ipv6.bindv6only`, 0 on most systems). Ignored on other
    /// families, as libuv's `UV_TCP_IPV6ONLY`.
    pub ipv6_only: bool,
    /// `SO_REUSEPORT` (Linux 3.9) on a TCP address: several listeners may
    /// bind the same address and port, and the kernel spreads connections
    /// among them. Ignored for Unix paths.
    pub reuse_port: bool,
}

impl Default for ListenOptions {
    fn default() -> ListenOptions {
        ListenOptions {
            backlog: 511,
            ipv6_only: false,
            reuse_port: false,
        }
    }
}

impl TcpListener {
    /// Binds and listens (`SO_REUSEADDR` and `TCP_NODELAY` on TCP: accepted
    /// streams start with Nagle's algorithm off). Port 0 picks a free port
    /// (see [`local_addr`](Self::local_addr)). [`bind_with`](Self::bind_with)
    /// with the given backlog and the other options at their defaults.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] with the call that failed (`socket`, `bind` →
    /// `EADDRINUSE`, `listen`); [`Error::Closed`] for a closed ring.
    pub fn bind(ring: &Ring, addr: &SockAddr, backlog: u32) -> Result<TcpListener> {
        TcpListener::bind_with(
            ring,
            addr,
            &ListenOptions {
                backlog,
                ..ListenOptions::default()
            },
        )
    }

    /// Binds and listens as [`bind`](Self::bind), with `IPV6_V6ONLY` and
    /// `SO_REUSEPORT` as `options` say.
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind), and `setsockopt` failures.
    pub fn bind_with(ring: &Ring, addr: &SockAddr, options: &ListenOptions) -> Result<TcpListener> {
        let inner = ring.inner();
        inner.check_open()?;
        let fd = new_socket(addr.family())?;
        if options.ipv6_only && addr.family() == libc::AF_INET6 {
            set_int_opt(fd.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
        }
        if !addr.is_unix() {
            set_int_opt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
            if options.reuse_port {
                set_int_opt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
            }
            // Accepted sockets inherit it: every connection starts without
            // Nagle's algorithm, at no cost per connection.
            set_nodelay_raw(fd.as_raw_fd(), true)?;
        }
        bind_to(fd.as_raw_fd(), addr)?;
        let backlog = options.backlog.min(i32::MAX as u32) as i32;
        syscall!(listen(fd.as_raw_fd(), backlog)).map_err(|e| Error::sys("listen", e))?;
        if ring.backend() == crate::backend::kind::BackendKind::Epoll {
            // Accepts are made when it is readable, and must not block when
            // another process took the connection first.
            crate::sys::io_calls::set_nonblocking(fd.as_raw_fd(), true)
                .map_err(|e| Error::sys("fcntl", e))?;
        }
        Ok(TcpListener {
            socket: SocketShared::new(inner, fd),
        })
    }

    /// Queues a multishot accept (Linux 5.19): one completion per connection,
    /// whose result is the new descriptor (close-on-exec) — adopt it at once
    /// with [`TcpStream::from_fd`](crate::TcpStream::from_fd) — with `IORING_CQE_F_MORE` while it goes on.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::Sys`] when the queue could not be flushed.
    pub fn accept_multishot(&self) -> Result<u64> {
        let fd = self.socket.raw_fd("listener")?;
        let op = Accept::new(fd, true, self.socket.use_for_op(false));
        self.socket.ring.push(Op::Accept(op))
    }

    /// Queues one accept (`IORING_OP_ACCEPT`): its completion's result is a
    /// new descriptor (close-on-exec) — adopt it at once with
    /// [`TcpStream::from_fd`](crate::TcpStream::from_fd) — or `-errno`. Unlike
    /// [`accept_multishot`](Self::accept_multishot), it takes exactly one
    /// connection off the kernel's queue, so the caller bounds how many it
    /// holds; a failure (`EMFILE`...) leaves the connection queued.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::Sys`] when the queue could not be flushed.
    pub fn accept(&self) -> Result<u64> {
        let fd = self.socket.raw_fd("listener")?;
        let op = Accept::new(fd, false, self.socket.use_for_op(false));
        self.socket.ring.push(Op::Accept(op))
    }

    /// The bound address.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] (`getsockname`).
    pub fn local_addr(&self) -> Result<SockAddr> {
        sockaddr::local(self.socket.query_fd()?)
    }

    /// The listening descriptor.
    pub fn as_raw_fd(&self) -> RawFd {
        self.socket.raw
    }

    /// Stops accepting: the socket stops listening at once (new connects
    /// are refused, as after `close(2)`, even while an accept still holds
    /// the descriptor), the accept in flight is cancelled, and the
    /// descriptor closes once no operation uses it.
    pub fn close(&self) {
        if !self.socket.closed.get() {
            // On a listening socket, SHUT_RD makes the kernel stop
            // listening (TCP resets the connections queued, Unix refuses
            // new ones): the port is not left taking connections between
            // close() and the descriptor's last use. A failure changes
            // nothing the close below does not also do.
            // The descriptor is this listener's own and still open.
            let _ = syscall!(shutdown(self.socket.raw, libc::SHUT_RD));
        }
        self.socket.close();
    }
}
