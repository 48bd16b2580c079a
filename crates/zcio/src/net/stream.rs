//! A connected stream socket whose sends go through the ring.

use std::any::Any;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use super::shutdown::Shutdown;
use super::socket::{bind_to, new_socket, send_len, SocketShared};
use super::sockopt::{set_int_opt, set_nodelay_raw};
use crate::error::{Error, Result};
use crate::fd_registry::TrackedFd;
use crate::op::connect::Connect;
use crate::op::dispatch::Op;
use crate::op::owner::{SendMemory, SocketUse};
use crate::op::send::Send;
use crate::op::send_msg::SendMsg;
use crate::ring::handle::{Ring, RingInner};
use crate::sockaddr::{self, SockAddr};

/// A connected stream socket whose sends go through the ring.
#[derive(Clone)]
pub struct TcpStream {
    socket: Rc<SocketShared>,
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("fd", &self.socket.raw)
            .field("closed", &self.socket.closed.get())
            .finish()
    }
}

impl TcpStream {
    /// Adopts a connected stream socket (from an accept completion, or made
    /// elsewhere). The stream owns the descriptor from now on: it closes it.
    /// To keep using the descriptor elsewhere, adopt a `dup(2)` of it.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] `ENOTSOCK` / `EINVAL` when it is not a stream socket;
    /// [`Error::FdInUse`] when a zcio stream or listener already owns it
    /// (then `fd` is not closed: it is the other object's).
    pub fn from_fd(ring: &Ring, fd: OwnedFd) -> Result<TcpStream> {
        let inner = ring.inner();
        inner.check_open()?;
        if TrackedFd::is_owned(fd.as_raw_fd()) {
            let raw = fd.as_raw_fd();
            std::mem::forget(fd);
            return Err(Error::FdInUse { fd: raw });
        }
        TcpStream::check_fd(fd.as_raw_fd())?;
        Ok(TcpStream {
            socket: SocketShared::new(inner, TrackedFd::adopt(fd)?),
        })
    }

    /// Checks that `fd` is a stream socket that no zcio object owns, without
    /// taking it: what [`from_fd`](Self::from_fd) would refuse.
    ///
    /// # Errors
    ///
    /// [`Error::FdInUse`]; as [`check_fd`](Self::check_fd).
    pub fn check_adoptable(fd: RawFd) -> Result<()> {
        if TrackedFd::is_owned(fd) {
            return Err(Error::FdInUse { fd });
        }
        TcpStream::check_fd(fd)
    }

    /// Checks that `fd` is a stream socket, without taking it.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] (`getsockopt`): `EBADF`, `ENOTSOCK`, or `EINVAL` for a
    /// socket of another type.
    pub fn check_fd(fd: RawFd) -> Result<()> {
        let mut ty: i32 = 0;
        let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
        syscall!(getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut ty as *mut i32).cast(),
            &mut len
        ))
        .map_err(|e| Error::sys("getsockopt", e))?;
        if ty != libc::SOCK_STREAM {
            return Err(Error::sys(
                "getsockopt",
                std::io::Error::from_raw_os_error(libc::EINVAL),
            ));
        }
        Ok(())
    }

    /// Makes a socket and queues its connect (`IORING_OP_CONNECT`); the
    /// stream is usable once that completion reports 0 (or `-ECONNREFUSED`...).
    /// TCP streams start with Nagle's algorithm off (`TCP_NODELAY`).
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] (`socket`, `setsockopt`), [`Error::Closed`].
    pub fn connect(ring: &Ring, addr: &SockAddr) -> Result<(TcpStream, u64)> {
        TcpStream::connect_from(ring, addr, None)
    }

    /// As [`connect`](Self::connect), from the local address `local` when
    /// given (`bind(2)` before the connect: a source address of this host,
    /// port 0 for any free one); it must be of `addr`'s family.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect), and [`Error::Sys`] from `bind`
    /// (`EADDRINUSE`, `EADDRNOTAVAIL`, `EINVAL` for another family).
    pub fn connect_from(
        ring: &Ring,
        addr: &SockAddr,
        local: Option<&SockAddr>,
    ) -> Result<(TcpStream, u64)> {
        let inner = ring.inner();
        inner.check_open()?;
        let fd = new_socket(addr.family())?;
        if !addr.is_unix() {
            set_nodelay_raw(fd.as_raw_fd(), true)?;
        }
        if let Some(local) = local {
            if local.family() != addr.family() {
                return Err(Error::sys(
                    "bind",
                    std::io::Error::from_raw_os_error(libc::EINVAL),
                ));
            }
            bind_to(fd.as_raw_fd(), local)?;
        }
        let socket = SocketShared::new(inner, fd);
        let op = Connect::new(socket.raw, addr.to_raw(), socket.use_for_op(false));
        let user_data = socket.ring.push(Op::Connect(op))?;
        Ok((TcpStream { socket }, user_data))
    }

    pub(crate) fn raw_fd(&self) -> Result<RawFd> {
        self.socket.raw_fd("stream")
    }

    /// What an operation on this stream that another owner started (a
    /// group's receive, a pool buffer's send) keeps: it holds the descriptor
    /// open and counts as one of the stream's operations (`zc`: a zero-copy
    /// send, which closing the ring aborts), so `close()` cancels it and the
    /// descriptor closes only after it.
    ///
    /// `ring` is the ring the operation is queued on; when it is not the
    /// stream's own, `close()` cancels there too.
    pub(crate) fn socket_use(&self, ring: &Rc<RingInner>, zc: bool) -> SocketUse {
        let s = &self.socket;
        if !Rc::ptr_eq(&s.ring, ring) {
            let mut foreign = s.foreign.borrow_mut();
            foreign.retain(|w| w.strong_count() > 0);
            if !foreign
                .iter()
                .any(|w| std::ptr::eq(w.as_ptr(), Rc::as_ptr(ring)))
            {
                foreign.push(Rc::downgrade(ring));
            }
        }
        s.use_for_op(zc)
    }

    /// Whether the stream was made on `ring`.
    pub(crate) fn is_on(&self, ring: &Rc<RingInner>) -> bool {
        Rc::ptr_eq(&self.socket.ring, ring)
    }

    /// Queues a send of `data` (`IORING_OP_SEND` with `MSG_NOSIGNAL` and
    /// `MSG_WAITALL`: a short send is retried by the kernel). The op owns
    /// `data` until its completion, whose result is the byte count.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::OutOfRange`] above 2 GiB - 1 bytes.
    pub fn send<B: AsRef<[u8]> + 'static>(&self, data: B) -> Result<u64> {
        let data = Box::new(data);
        let (ptr, len) = {
            let s: &[u8] = (*data).as_ref();
            (s.as_ptr(), s.len())
        };
        // SAFETY: `data` is boxed and kept by the op; its slice does not move.
        unsafe { self.send_borrowed(ptr, len, false, false, data) }
    }

    /// Queues a zero-copy send of `data` (`IORING_OP_SEND_ZC`, Linux 6.0;
    /// usage reporting 6.1): a completion with the byte count and
    /// `IORING_CQE_F_MORE`, then a notification (`IORING_CQE_F_NOTIF`) once
    /// the kernel no longer uses the memory, whose result has
    /// [`NOTIF_USAGE_ZC_COPIED`](crate::NOTIF_USAGE_ZC_COPIED) set when the kernel copied after all. The
    /// op owns `data` until the notification.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn send_zc<B: AsRef<[u8]> + 'static>(&self, data: B) -> Result<u64> {
        let data = Box::new(data);
        let (ptr, len) = {
            let s: &[u8] = (*data).as_ref();
            (s.as_ptr(), s.len())
        };
        // SAFETY: as in `send`.
        unsafe { self.send_borrowed(ptr, len, true, false, data) }
    }

    /// Queues a send (or, with `zc`, a zero-copy send) of memory the caller
    /// keeps valid by other means — a binding's buffer whose owner holds it
    /// until the operation's final completion. `keep` is dropped with the op.
    ///
    /// # Safety
    ///
    /// `ptr..ptr + len` stays valid until the operation's final completion
    /// (for `zc`, the notification) has been reaped.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    ///
    /// `linked` chains the next operation queued to this one
    /// (`IOSQE_IO_LINK`): it starts only after this one completed in full,
    /// and fails with `-ECANCELED` if this one fails or sends less. Reserve
    /// room for the whole chain first ([`Ring::reserve`]) so that it reaches
    /// the kernel in one submission.
    pub unsafe fn send_borrowed(
        &self,
        ptr: *const u8,
        len: usize,
        zc: bool,
        linked: bool,
        keep: Box<dyn Any>,
    ) -> Result<u64> {
        let fd = self.raw_fd()?;
        let len = send_len(len)?;
        let socket = self.socket.use_for_op(zc);
        let memory = SendMemory::Kept(keep);
        // SAFETY: the caller's contract; `keep` goes with the op.
        let op = unsafe { Send::new(fd, ptr, len, zc, None, linked, memory, socket) };
        self.socket.ring.push(Op::Send(op))
    }

    /// Queues one send of several memory ranges, in order (`IORING_OP_SENDMSG`
    /// with an iovec per range, `MSG_WAITALL`): one operation, one pass
    /// through the socket layer, where a send per range would cost one each.
    /// At most 1024 ranges (`IOV_MAX`).
    ///
    /// # Safety
    ///
    /// As [`send_borrowed`](Self::send_borrowed), for every range.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send); [`Error::OutOfRange`] for more than 1024
    /// ranges or more than 2 GiB - 1 bytes in all.
    pub unsafe fn send_vectored_borrowed(
        &self,
        ranges: &[(*const u8, usize)],
        linked: bool,
        keep: Box<dyn Any>,
    ) -> Result<u64> {
        let fd = self.raw_fd()?;
        let total: usize = ranges.iter().map(|r| r.1).sum();
        if ranges.len() > 1024 || total > i32::MAX as usize {
            return Err(Error::OutOfRange {
                name: "buffers",
                reason: format!(
                    "{} buffers of {total} bytes in all: at most 1024 and 2^31 - 1 bytes",
                    ranges.len()
                ),
            });
        }
        let socket = self.socket.use_for_op(false);
        // SAFETY: the caller's contract for the ranges; `keep` goes with the op.
        let op = unsafe { SendMsg::new(fd, ranges, linked, keep, socket) };
        self.socket.ring.push(Op::SendMsg(op))
    }

    /// Ends a chain of linked sends that could not be queued in full: the
    /// last entry queued went with `IOSQE_IO_LINK` and the one meant to
    /// follow it failed before reaching the queue. A no-op entry without the
    /// link takes its place, so the next operation anyone queues on the ring
    /// does not wait behind (or get cancelled with) this stream's chain.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::Sys`] when the queue could not be flushed.
    pub fn end_chain(&self) -> Result<()> {
        self.socket.ring.end_chain()
    }

    /// Shuts one or both directions down (`shutdown(2)`).
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] (`ENOTCONN`...), [`Error::Closed`].
    pub fn shutdown(&self, how: Shutdown) -> Result<()> {
        let fd = self.raw_fd()?;
        let how = match how {
            Shutdown::Read => libc::SHUT_RD,
            Shutdown::Write => libc::SHUT_WR,
            Shutdown::Both => libc::SHUT_RDWR,
        };
        syscall!(shutdown(fd, how))
            .map(drop)
            .map_err(|e| Error::sys("shutdown", e))
    }

    /// Turns Nagle's algorithm off (`TCP_NODELAY`) or on; a no-op on Unix
    /// sockets.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] (`setsockopt`), [`Error::Closed`].
    pub fn set_nodelay(&self, on: bool) -> Result<()> {
        let fd = self.raw_fd()?;
        if sockaddr::local(fd)?.is_unix() {
            return Ok(());
        }
        set_nodelay_raw(fd, on)
    }

    /// Whether Nagle's algorithm is off (`TCP_NODELAY`); `false` on Unix
    /// sockets.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] (`getsockopt`), [`Error::Closed`].
    pub fn nodelay(&self) -> Result<bool> {
        let fd = self.raw_fd()?;
        if sockaddr::local(fd)?.is_unix() {
            return Ok(false);
        }
        let mut on: i32 = 0;
        let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
        syscall!(getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&mut on as *mut i32).cast(),
            &mut len
        ))
        .map_err(|e| Error::sys("getsockopt", e))?;
        Ok(on != 0)
    }

    /// Turns TCP keep-alive probes on (`SO_KEEPALIVE`, the first after
    /// `idle_secs` of silence when above 0, `TCP_KEEPIDLE`) or off; a no-op on
    /// Unix sockets.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] (`setsockopt`), [`Error::Closed`].
    pub fn set_keepalive(&self, on: bool, idle_secs: u32) -> Result<()> {
        let fd = self.raw_fd()?;
        if sockaddr::local(fd)?.is_unix() {
            return Ok(());
        }
        set_int_opt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, i32::from(on))?;
        if on && idle_secs > 0 {
            let idle = idle_secs.min(i32::MAX as u32) as i32;
            set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, idle)?;
        }
        Ok(())
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] (`getsockname`).
    pub fn local_addr(&self) -> Result<SockAddr> {
        sockaddr::local(self.socket.query_fd()?)
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] (`getpeername`, `ENOTCONN`).
    pub fn peer_addr(&self) -> Result<SockAddr> {
        sockaddr::peer(self.socket.query_fd()?)
    }

    /// The descriptor (owned by the stream).
    pub fn as_raw_fd(&self) -> RawFd {
        self.socket.raw
    }

    /// Operations on the stream whose final completion has not come.
    pub fn ops_in_flight(&self) -> u32 {
        self.socket.ops.get()
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.socket.closed.get()
    }

    /// Aborts the connection: as [`close`](Self::close), after resetting it
    /// (`SO_LINGER` 0 and, for TCP, a disconnect), so that what is queued to
    /// send is dropped and zero-copy sends waiting for a peer that does not
    /// read get their notification at once. The peer sees `ECONNRESET`.
    pub fn abort(&self) {
        self.socket.abort();
    }

    /// Refuses new operations and cancels those in flight (zero-copy sends
    /// already handed to the network still end with their notification). The
    /// descriptor is closed at once if no operation uses it, else after the
    /// last one's final completion.
    pub fn close(&self) {
        self.socket.close();
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{FromRawFd, IntoRawFd};

    use crate::net::stream::*;
    use crate::ring::close_hook::RingCloseHook;
    use crate::ring::options::RingOptions;

    fn linger(fd: RawFd) -> libc::linger {
        let mut l = libc::linger {
            l_onoff: 0,
            l_linger: 0,
        };
        let mut len = std::mem::size_of::<libc::linger>() as libc::socklen_t;
        syscall!(getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&mut l as *mut libc::linger).cast(),
            &mut len
        ))
        .unwrap();
        l
    }

    /// A stream over a loopback connection whose peer (kept) never reads.
    fn stream(ring: &Ring) -> (TcpStream, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (peer, _) = l.accept().unwrap();
        // SAFETY: into_raw_fd hands over a descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(c.into_raw_fd()) };
        (TcpStream::from_fd(ring, fd).unwrap(), peer)
    }

    #[test]
    fn a_ring_close_aborts_only_connections_with_zero_copy_sends() {
        let Ok(ring) = Ring::new(RingOptions::default()) else {
            eprintln!("SKIPPED: no io_uring here");
            return;
        };
        let (quiet, _peer) = stream(&ring);
        quiet.socket.ring_close_abort();
        assert_eq!(
            linger(quiet.as_raw_fd()).l_onoff,
            0,
            "aborted without a zero-copy send"
        );
        assert!(quiet.peer_addr().is_ok(), "still connected");
        if !crate::probe::report::probe().send_zc {
            eprintln!("SKIPPED: no SEND_ZC here");
            return;
        }
        let (busy, _peer2) = stream(&ring);
        busy.send_zc(vec![7u8; 32 << 20]).unwrap();
        ring.submit().unwrap();
        assert_eq!(busy.socket.zc_ops.get(), 1);
        busy.socket.ring_close_abort();
        assert_eq!(linger(busy.as_raw_fd()).l_onoff, 1, "not aborted");
        let mut out = Vec::new();
        ring.close(&mut out).unwrap();
        assert_eq!(
            busy.ops_in_flight(),
            0,
            "the notification came after the abort"
        );
    }
}
