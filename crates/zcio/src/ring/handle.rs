//! The ring handle and the state its clones share.

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::rc::{Rc, Weak};

use super::close_hook::RingCloseHook;
use super::completion::Completion;
use super::options::{RingFeatures, RingOptions};
use crate::backend::dispatch::Backend;
use crate::backend::kind::BackendKind;
use crate::backend::raw_cqe::RawCqe;
use crate::backend::select;
use crate::backend::uring::instance::Uring;
use crate::error::{Error, Result};
use crate::op::dispatch::Op;
use crate::op::poll::Interest;
use crate::published::{ring_counts as rc, Published};
use crate::table::Ops;

/// How long `close` waits for cancelled operations before leaking their
/// memory (the kernel, or a worker, may still write it).
pub(crate) const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub(crate) struct RingInner {
    pub(crate) backend: Backend,
    pub(crate) ops: RefCell<Ops>,
    /// Ops whose completion was reaped, dropped once no borrow is held (the
    /// last reference to a pool may go with them).
    pub(super) graveyard: RefCell<Vec<Op>>,
    /// Completions taken from the backend by `reap`, kept to reuse its room.
    pub(super) scratch: RefCell<Vec<RawCqe>>,
    /// Told when the ring closes (see `on_close`).
    pub(super) close_hooks: RefCell<Vec<Weak<dyn RingCloseHook>>>,
    pub(super) closed: Cell<bool>,
    /// How long `close` waits for cancelled operations (see `close`).
    pub(super) close_timeout: Cell<std::time::Duration>,
    /// Counts mirrored for bindings (see `published.rs`).
    published: Rc<Published>,
}

/// A ring of operations in flight and its completion bookkeeping, over
/// io_uring (or epoll, see [`BackendKind`]).
///
/// A ring belongs to the thread that created it (`Ring` is neither `Send` nor
/// `Sync`): with `IORING_SETUP_SINGLE_ISSUER` the kernel itself enforces it.
/// Operations are queued by the pools, groups and sockets that use the ring,
/// started by [`Ring::submit`] (on io_uring, handed to the kernel in one
/// `io_uring_enter`; on epoll, attempted without blocking), and collected by
/// [`Ring::reap`]. The descriptor [`Ring::eventfd`] (io_uring's eventfd, or
/// the epoll instance) is readable whenever there is something to reap, so
/// an event loop can watch it.
///
/// On io_uring it requires Linux 5.13 (sparse registered-buffer tables) and
/// uses `SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN` where the kernel has
/// them (6.1), falling back when it doesn't. The epoll backend needs no
/// io_uring at all (see [`RingOptions::backend`]).
#[derive(Clone)]
pub struct Ring {
    pub(crate) inner: Rc<RingInner>,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("backend", &self.backend())
            .field("features", &self.features())
            .field("in_flight", &self.in_flight())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Ring {
    /// Sets up a ring on the backend `options` (and `ZCIO_BACKEND`) ask for:
    /// by default io_uring where it sets up and has every opcode zcio uses,
    /// else epoll.
    ///
    /// # Errors
    ///
    /// - [`Error::UringUnavailable`] when io_uring was asked for and
    ///   `io_uring_setup` is refused (sysctl `kernel.io_uring_disabled`, a
    ///   seccomp filter, no kernel support); the message says what to do.
    /// - [`Error::InvalidArgument`] when `entries` is 0 or above 32768.
    /// - [`Error::Sys`] for other setup failures (`io_uring_setup`,
    ///   `io_uring_register` of the eventfd).
    pub fn new(options: RingOptions) -> Result<Ring> {
        if options.entries == 0 || options.entries > 32768 {
            return Err(Error::InvalidArgument {
                name: "entries",
                reason: format!("{} is not between 1 and 32768", options.entries),
            });
        }
        Ok(Ring::over(select::setup(options)?))
    }

    fn over(backend: Backend) -> Ring {
        Ring {
            inner: Rc::new(RingInner {
                backend,
                ops: RefCell::default(),
                graveyard: RefCell::default(),
                scratch: RefCell::default(),
                close_hooks: RefCell::new(Vec::new()),
                closed: Cell::new(false),
                close_timeout: Cell::new(CLOSE_TIMEOUT),
                published: Published::new(rc::LEN, 0),
            }),
        }
    }

    /// A ring over the scripted backend of tests (see `backend::fake`).
    #[cfg(test)]
    pub(crate) fn fake() -> Ring {
        Ring::over(Backend::Fake(crate::backend::fake::Fake::default()))
    }

    /// The scripted backend of a ring made by [`Ring::fake`].
    #[cfg(test)]
    pub(crate) fn script(&self) -> &crate::backend::fake::Fake {
        match &self.inner.backend {
            Backend::Fake(f) => f,
            _ => panic!("not a fake ring"),
        }
    }

    /// Shortens how long `close` waits before leaking what does not end.
    #[cfg(test)]
    pub(crate) fn set_close_timeout(&self, t: std::time::Duration) {
        self.inner.close_timeout.set(t);
    }

    /// The backend the ring runs on.
    pub fn backend(&self) -> BackendKind {
        self.inner.backend.kind()
    }

    /// The setup flags the kernel accepted.
    pub fn features(&self) -> RingFeatures {
        self.inner.backend.features()
    }

    /// The eventfd the kernel signals when it posts completions. Treat a
    /// wake-up as a hint: call [`Ring::submit`] and [`Ring::reap`].
    ///
    /// It is closed by [`Ring::close`] (-1 from then on): an event loop
    /// watching it stops watching before closing the ring, so that it never
    /// sees the number again once the kernel hands it out for another file.
    pub fn eventfd(&self) -> RawFd {
        self.inner.backend.eventfd()
    }

    /// Clears the eventfd's counter; returns whether it was signalled
    /// (`false` once the ring is closed). On the epoll backend (where
    /// [`eventfd`](Self::eventfd) is the epoll instance) it says that the
    /// caller's event loop saw it readable; see
    /// [`set_wake_driven`](Self::set_wake_driven).
    pub fn clear_eventfd(&self) -> bool {
        self.inner.backend.clear_eventfd()
    }

    /// For an event loop that watches [`eventfd`](Self::eventfd) and calls
    /// [`clear_eventfd`](Self::clear_eventfd) each time it wakes: on the
    /// epoll backend, [`reap`](Self::reap) then looks for readiness (an
    /// `epoll_wait`) only after such a wake-up or a [`has_work`](Self::has_work)
    /// that saw one, sparing a system call per reap; what is ready meanwhile
    /// keeps the descriptor readable for the loop's next wake-up. Off (the
    /// default), every reap looks. Nothing changes on io_uring.
    pub fn set_wake_driven(&self, on: bool) {
        if let Backend::Epoll(e) = &self.inner.backend {
            e.set_wake_driven(on);
        }
    }

    /// Signals the eventfd, as the kernel does: a caller that stops reaping
    /// with work left uses it to be woken again. Does nothing once the ring
    /// is closed.
    pub fn signal_eventfd(&self) {
        self.inner.backend.signal_eventfd();
    }

    /// Turns the kernel's eventfd signal off (`false`) or on again
    /// (`IORING_CQ_EVENTFD_DISABLED`, Linux 5.8), for a caller that is
    /// reaping anyway and would only be woken for completions it has
    /// already seen. After turning it on again, call [`Ring::has_work`]:
    /// what arrived meanwhile signalled nothing. Does nothing on a closed
    /// ring, or where the kernel can't flag deferred work
    /// ([`RingFeatures::taskrun_flag`]): there the signal stays on.
    pub fn set_eventfd_enabled(&self, on: bool) {
        self.inner.backend.set_eventfd_enabled(on);
    }

    /// Whether [`Ring::submit`] or [`Ring::reap`] has anything to do now:
    /// entries queued, completions ready, or completion work the kernel
    /// deferred to this thread (`IORING_SQ_TASKRUN`). Reads shared memory
    /// only, no system call. Where the kernel can't flag deferred work
    /// ([`RingFeatures::taskrun_flag`]), it answers `true` while operations
    /// are in flight.
    pub fn has_work(&self) -> bool {
        self.inner.has_work()
    }

    /// Operations submitted (or queued) whose completion has not been reaped.
    pub fn in_flight(&self) -> u32 {
        self.inner.in_flight()
    }

    /// Operations queued but not yet handed to the kernel.
    pub fn pending(&self) -> u32 {
        self.inner.backend.pending()
    }

    /// Whether [`Ring::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Hands every queued operation to the kernel in one `io_uring_enter`,
    /// and (with `DEFER_TASKRUN`) runs the completion work the kernel deferred
    /// to this thread, so that [`Ring::reap`] finds it.
    ///
    /// When the kernel answers `EBUSY`/`EAGAIN` (it wants the completion
    /// queue drained first), the ready completions are moved aside for the
    /// next [`Ring::reap`] and the call is retried a few times; if the kernel
    /// still refuses, the operations stay queued for the next call and 0 is
    /// returned. Interrupted calls (`EINTR`) are retried.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after `close`; [`Error::Sys`] (`io_uring_enter`) when
    /// the kernel rejects the call for another reason.
    pub fn submit(&self) -> Result<u32> {
        self.inner.submit()
    }

    /// Makes room for `n` entries in the submission queue (handing what is
    /// queued to the kernel if needed), so that a chain of linked operations
    /// queued next reaches the kernel in one submission.
    ///
    /// # Errors
    ///
    /// As [`Ring::submit`]; [`Error::InvalidArgument`] when `n` exceeds the
    /// queue's size.
    pub fn reserve(&self, n: u32) -> Result<()> {
        self.inner.check_open()?;
        self.inner.backend.reserve(n, &self.inner.ops)
    }

    /// Cancels the operation in `slot` (the low 32 bits of its `user_data`),
    /// if one is in flight there; its completion still comes, usually with
    /// `-ECANCELED`. Returns whether there was one.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::Sys`] when the queue could not be flushed.
    pub fn cancel_slot(&self, slot: u32) -> Result<bool> {
        self.inner.check_open()?;
        let Some(user_data) = self.inner.ops.borrow().user_data_of(slot) else {
            return Ok(false);
        };
        self.inner.backend.cancel(user_data, &self.inner.ops)?;
        self.inner.publish();
        Ok(true)
    }

    /// Blocks until at least `want` completions are ready for [`Ring::reap`]
    /// (after submitting what is queued); completions already moved aside by
    /// an earlier call count.
    ///
    /// # Errors
    ///
    /// As [`Ring::submit`].
    pub fn submit_and_wait(&self, want: u32) -> Result<u32> {
        self.inner.submit_and_wait(want)
    }

    /// Moves every ready completion into `out` (appending), updating the
    /// pools' buffer states. Returns how many were added.
    ///
    /// The [`slot`](Completion::slot) of a completion handed out here is not
    /// given to a new operation before the next call to `reap`, so code that
    /// delivers completions (and may queue operations meanwhile) can index its
    /// own per-operation state by slot.
    pub fn reap(&self, out: &mut Vec<Completion>) -> usize {
        self.inner.reap(out)
    }

    /// Stops the ring: refuses new operations, cancels those in flight
    /// (`IORING_OP_ASYNC_CANCEL`, any; on epoll, every op still waiting),
    /// waits for their completions (which are appended to `out`, most with
    /// `-ECANCELED`), then closes the backend's descriptors (the io_uring and
    /// its eventfd, or the epoll instance; the epoll backend's worker threads
    /// exit). Calling it again does nothing.
    ///
    /// Operations still queued are started first, so they are cancelled
    /// like the others. If the kernel (or a worker thread) does not finish
    /// the cancelled operations within 10 seconds, their buffers are leaked
    /// rather than freed, so nothing can ever write into freed memory.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] if submitting or cancelling fails (the operations still
    /// live are then leaked as above); the ring is closed anyway.
    pub fn close(&self, out: &mut Vec<Completion>) -> Result<()> {
        self.inner.close(out)
    }

    /// The ring's counts, mirrored in place after every change (see
    /// [`Published`] and [`ring_counts`](crate::ring_counts)), for bindings
    /// that read them without a call.
    pub fn published(&self) -> Rc<Published> {
        self.inner.published.clone()
    }

    pub(crate) fn inner(&self) -> &Rc<RingInner> {
        &self.inner
    }
}

impl RingInner {
    /// Mirrors the counts into `published`.
    pub(super) fn publish(&self) {
        let p = &self.published;
        p.set_count(rc::IN_FLIGHT, f64::from(self.in_flight()));
        p.set_count(rc::PENDING, f64::from(self.backend.pending()));
        p.set_count(rc::CLOSED, if self.closed.get() { 1.0 } else { 0.0 });
    }

    /// Operations whose final completion has not been handed out.
    fn in_flight(&self) -> u32 {
        self.ops.borrow().live
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.get() {
            return Err(Error::Closed { what: "ring" });
        }
        Ok(())
    }

    /// Queues `op`, which is kept (with the memory it owns) until its final
    /// completion is reaped. On error nothing is queued and the op is
    /// dropped again.
    pub(crate) fn push(&self, op: Op) -> Result<u64> {
        self.check_open()?;
        let user_data = self.ops.borrow_mut().insert(op);
        if let Err(e) = self.backend.push(user_data, &self.ops) {
            let op = self.ops.borrow_mut().cancel(user_data);
            drop(op);
            return Err(e);
        }
        self.publish();
        Ok(user_data)
    }

    /// Whether an op on `fd` for `interest` may be attempted in the call
    /// that makes it, without being queued: on epoll, when that keeps the
    /// order of the ops before it (see `Epoll::runs_now`).
    pub(crate) fn runs_now(&self, fd: RawFd, interest: Interest) -> bool {
        !self.closed.get() && matches!(&self.backend, Backend::Epoll(e) if e.runs_now(fd, interest))
    }

    /// Cancels every operation on descriptor `fd` (a socket being closed).
    pub(crate) fn cancel_fd(&self, fd: RawFd) {
        if self.check_open().is_ok() {
            // If it can't be queued, the operations end by themselves (or
            // with the ring).
            let _ = self.backend.cancel_fd(fd, &self.ops);
            self.publish();
        }
    }

    /// Forgets what the backend keeps of descriptor `fd`, which is about to
    /// be closed (no operation uses it any more).
    pub(crate) fn forget_fd(&self, fd: RawFd) {
        if let Backend::Epoll(e) = &self.backend {
            e.forget_fd(fd);
        }
    }

    /// Ends a chain of linked operations left open by a failed queuing.
    pub(crate) fn end_chain(&self) -> Result<()> {
        self.check_open()?;
        self.backend.end_chain()?;
        self.publish();
        Ok(())
    }

    pub(crate) fn submit(&self) -> Result<u32> {
        self.check_open()?;
        let n = self.backend.submit(&self.ops);
        self.publish();
        n
    }

    pub(crate) fn submit_and_wait(&self, want: u32) -> Result<u32> {
        self.check_open()?;
        let n = self.backend.submit_and_wait(want, &self.ops);
        self.publish();
        n
    }

    /// The io_uring backend, for what only it has (registered buffers,
    /// provided-buffer rings); `None` on another backend.
    pub(crate) fn uring(&self) -> Option<&Uring> {
        match &self.backend {
            Backend::Uring(u) => Some(u),
            _ => None,
        }
    }

    /// Claims buffer group `id` where no kernel keeps the ids (false: in
    /// use on this ring).
    pub(crate) fn claim_group(&self, id: u16) -> bool {
        match &self.backend {
            Backend::Epoll(e) => e.claim_group(id),
            _ => true,
        }
    }

    pub(crate) fn release_group(&self, id: u16) {
        if let Backend::Epoll(e) = &self.backend {
            e.release_group(id);
        }
    }

    pub(crate) fn has_work(&self) -> bool {
        !self.closed.get() && self.backend.has_work(self.in_flight())
    }

    /// Registers `hook`, told once the ring has closed (while it lives).
    pub(crate) fn on_close(&self, hook: Weak<dyn RingCloseHook>) {
        let mut hooks = self.close_hooks.borrow_mut();
        if hooks.len() >= 64 && hooks.len().is_power_of_two() {
            hooks.retain(|h| h.strong_count() > 0);
        }
        hooks.push(hook);
    }
}
