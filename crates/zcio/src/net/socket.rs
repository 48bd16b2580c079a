//! What a socket's operations share: its descriptor, the ring and the
//! operations in flight, closed once none can use it.

use std::cell::{Cell, RefCell};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::rc::{Rc, Weak};

use crate::error::{Error, Result};
use crate::fd_registry::TrackedFd;
use crate::op::owner::{SocketCount, SocketUse};
use crate::ring::close_hook::RingCloseHook;
use crate::ring::handle::RingInner;
use crate::sockaddr::{self, SockAddr};

pub(crate) struct SocketShared {
    pub(super) ring: Rc<RingInner>,
    /// The descriptor's number, kept for messages after it is closed.
    pub(super) raw: RawFd,
    /// The descriptor, closed once the socket is closed and no operation
    /// uses it any more.
    pub(super) fd: RefCell<Option<TrackedFd>>,
    pub(super) ops: Cell<u32>,
    /// Of those, zero-copy sends: the ones a peer that does not read can
    /// hold for ever (see `ring_close_abort`).
    pub(super) zc_ops: Cell<u32>,
    pub(super) closed: Cell<bool>,
    /// A zero-copy send's notification said the kernel copied: later ones
    /// copy at once ([`SocketCount::copies`]).
    pub(super) zc_copied: Cell<bool>,
    /// Other rings this socket's operations were queued on (a group's
    /// receive on another ring): `close()` cancels there too.
    pub(super) foreign: RefCell<Vec<Weak<RingInner>>>,
}

impl SocketCount for SocketShared {
    fn op_ended(&self, zc: bool) {
        self.ops.set(self.ops.get() - 1);
        if zc {
            self.zc_ops.set(self.zc_ops.get() - 1);
        }
        self.close_if_idle();
    }

    fn saw_copy(&self) {
        self.zc_copied.set(true);
    }

    fn copies(&self) -> bool {
        self.zc_copied.get()
    }
}

impl RingCloseHook for SocketShared {
    fn ring_closed(&self) {
        self.close();
    }

    fn ring_close_abort(&self) {
        // Only a zero-copy send waits for the peer; anything else ends with
        // the ring's cancel, and aborting under it would turn a cancelled
        // receive into an end of stream.
        if self.zc_ops.get() > 0 {
            self.abort();
        }
    }
}

impl SocketShared {
    pub(super) fn new(ring: &Rc<RingInner>, fd: TrackedFd) -> Rc<SocketShared> {
        let s = Rc::new(SocketShared {
            ring: ring.clone(),
            raw: fd.as_raw_fd(),
            fd: RefCell::new(Some(fd)),
            ops: Cell::new(0),
            zc_ops: Cell::new(0),
            closed: Cell::new(false),
            zc_copied: Cell::new(false),
            foreign: RefCell::new(Vec::new()),
        });
        let hook: Weak<dyn RingCloseHook> = Rc::downgrade(&s) as Weak<dyn RingCloseHook>;
        ring.on_close(hook);
        s
    }

    pub(super) fn raw_fd(&self, what: &'static str) -> Result<RawFd> {
        self.ring.check_open()?;
        if self.closed.get() {
            return Err(Error::Closed { what });
        }
        Ok(self.raw)
    }

    /// The descriptor for a query (`getsockname`...), while it is open.
    pub(super) fn query_fd(&self) -> Result<RawFd> {
        if self.fd.borrow().is_none() {
            return Err(Error::Closed { what: "stream" });
        }
        Ok(self.raw)
    }

    pub(super) fn close_if_idle(&self) {
        if self.closed.get() && self.ops.get() == 0 {
            if let Some(fd) = self.fd.borrow_mut().take() {
                // What a backend remembers of the descriptor (zero-copy
                // numbering, readiness registration) must not carry over to
                // the next socket that gets its number.
                self.ring.forget_fd(self.raw);
                for ring in self.foreign.take().iter().filter_map(Weak::upgrade) {
                    ring.forget_fd(self.raw);
                }
                drop(fd);
            }
        }
    }

    /// Counts one more operation on the socket (`zc`: a zero-copy send),
    /// ended when the returned use is dropped with its op.
    pub(super) fn use_for_op(self: &Rc<Self>, zc: bool) -> SocketUse {
        self.ops.set(self.ops.get() + 1);
        if zc {
            self.zc_ops.set(self.zc_ops.get() + 1);
        }
        SocketUse::counted(self.clone(), zc)
    }

    /// Resets the connection while the descriptor is open (closed or not):
    /// `SO_LINGER` 0, so that closing sends a reset instead of waiting for
    /// the peer, and for TCP a disconnect (`connect` to `AF_UNSPEC`), which
    /// drops what is queued to send at once — the kernel then lets go of the
    /// memory of zero-copy sends, and their notifications come. Then closes.
    pub(super) fn abort(&self) {
        if let Some(fd) = self.fd.borrow().as_ref().map(TrackedFd::as_raw_fd) {
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            // Failures leave the connection as it was: `close` still ends
            // what it can, and the rest ends when the peer lets it.
            let _ = syscall!(setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t
            ));
            if !sockaddr::local(fd).is_ok_and(|a| a.is_unix()) {
                // SAFETY: sockaddr is plain data; all zeros with the family
                // set is the `AF_UNSPEC` address connect(2) takes to disconnect.
                let mut unspec: libc::sockaddr = unsafe { std::mem::zeroed() };
                unspec.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
                let _ = syscall!(connect(
                    fd,
                    &unspec,
                    std::mem::size_of::<libc::sockaddr>() as libc::socklen_t
                ));
            }
        }
        self.close();
    }

    /// Marks the socket closed and cancels its operations; the descriptor
    /// closes when the last of them (and the last handle) is gone.
    pub(super) fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        if self.ops.get() == 0 {
            self.close_if_idle();
            return;
        }
        self.ring.cancel_fd(self.raw);
        let foreign: Vec<Rc<RingInner>> = self
            .foreign
            .borrow()
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for ring in foreign {
            // It cancels only operations on this descriptor, which is
            // still open (they hold it).
            ring.cancel_fd(self.raw);
        }
    }
}

/// A send's length, which the kernel takes as a 32-bit count.
pub(super) fn send_len(len: usize) -> Result<u32> {
    if len > i32::MAX as usize {
        return Err(Error::OutOfRange {
            name: "length",
            reason: format!("{len} bytes is above 2^31 - 1"),
        });
    }
    Ok(len as u32)
}

pub(super) fn new_socket(family: i32) -> Result<TrackedFd> {
    let fd = syscall!(socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0))
        .map_err(|e| Error::sys("socket", e))?;
    // SAFETY: socket returned a new descriptor that nothing else owns.
    Ok(TrackedFd::new(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// `bind(2)` of a new socket to `addr` (a listener's address, or a
/// connecting stream's source address).
pub(super) fn bind_to(fd: RawFd, addr: &SockAddr) -> Result<()> {
    let (storage, len) = addr.to_raw();
    syscall!(bind(
        fd,
        (&storage as *const libc::sockaddr_storage).cast(),
        len
    ))
    .map(drop)
    .map_err(|e| Error::sys("bind", e))
}
