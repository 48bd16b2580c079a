//! A ring: the table of operations in flight of one thread, and its close
//! policy, over a backend (io_uring, or epoll and a thread pool).
//!
//! One file per concept: reaping completions (`completion`), closing
//! (`close`); the table itself is `table.rs`, the backends `backend/`.

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::rc::{Rc, Weak};

use crate::backend::epoll::DEFAULT_WORKERS;
use crate::backend::uring::Uring;
use crate::backend::{self, Backend, BackendChoice, BackendKind};
use crate::error::{Error, Result};
use crate::op::Op;
use crate::published::{ring_counts as rc, Published};
use crate::table::Ops;

mod close;
mod completion;
#[cfg(test)]
mod tests;

pub(crate) use close::RingCloseHook;
pub use completion::Completion;

/// How to set up a [`Ring`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingOptions {
    /// Submission-queue entries (a power of two is used; default 256, max 32768).
    pub entries: u32,
    /// Use a kernel submission thread (`IORING_SETUP_SQPOLL`) that sleeps after
    /// this many idle milliseconds. It costs a kernel thread that spins while
    /// busy. `None` (the default) submits through `io_uring_enter`. io_uring
    /// only: a ring that would run on epoll fails with
    /// [`Error::BackendUnsupported`].
    pub sqpoll_idle_ms: Option<u32>,
    /// The backend (default [`BackendChoice::Auto`]); the `ZCIO_BACKEND`
    /// environment variable overrides it for the process.
    pub backend: BackendChoice,
    /// Worker threads of the epoll backend for file transfers that would
    /// block (default 4; started on demand). Unused on io_uring.
    pub workers: u32,
}

impl Default for RingOptions {
    fn default() -> Self {
        RingOptions {
            entries: 256,
            sqpoll_idle_ms: None,
            backend: BackendChoice::Auto,
            workers: DEFAULT_WORKERS,
        }
    }
}

/// The setup flags the kernel accepted for a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingFeatures {
    /// `IORING_SETUP_SINGLE_ISSUER` (Linux 6.0).
    pub single_issuer: bool,
    /// `IORING_SETUP_DEFER_TASKRUN` (Linux 6.1).
    pub defer_taskrun: bool,
    /// `IORING_SETUP_COOP_TASKRUN` (Linux 5.19).
    pub coop_taskrun: bool,
    /// `IORING_SETUP_TASKRUN_FLAG` (Linux 5.19, with `COOP_TASKRUN`): the
    /// kernel flags deferred completion work in the submission ring, so
    /// [`Ring::has_work`] and [`Ring::submit`] know without a system call
    /// whether there is any.
    pub taskrun_flag: bool,
    /// `IORING_SETUP_SQPOLL`.
    pub sqpoll: bool,
}

pub(crate) struct RingInner {
    pub(crate) backend: Backend,
    pub(crate) ops: RefCell<Ops>,
    /// Ops whose completion was reaped, dropped once no borrow is held (the
    /// last reference to a pool may go with them).
    graveyard: RefCell<Vec<Op>>,
    /// Completions taken from the backend by `reap`, kept to reuse its room.
    scratch: RefCell<Vec<crate::backend::RawCqe>>,
    /// Told when the ring closes (see `on_close`).
    close_hooks: RefCell<Vec<Weak<dyn RingCloseHook>>>,
    closed: Cell<bool>,
    /// Counts mirrored for bindings (see `published.rs`).
    published: Rc<Published>,
}

/// A ring of operations in flight and its completion bookkeeping, over
/// io_uring (or epoll, see [`BackendKind`]).
///
/// A ring belongs to the thread that created it (`Ring` is neither `Send` nor
/// `Sync`): with `IORING_SETUP_SINGLE_ISSUER` the kernel itself enforces it.
/// Operations are queued by the pools that use the ring, handed to the kernel
/// in one `io_uring_enter` by [`Ring::submit`], and collected by
/// [`Ring::reap`]. The ring signals an eventfd ([`Ring::eventfd`]) whenever
/// completions are posted, so an event loop can watch it.
///
/// Requires Linux 5.13 (sparse registered-buffer tables); uses
/// `SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN` where the kernel has them
/// (6.1) and falls back when it doesn't.
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
    /// Sets up a ring.
    ///
    /// # Errors
    ///
    /// - [`Error::UringUnavailable`] when `io_uring_setup` is refused (sysctl
    ///   `kernel.io_uring_disabled`, a seccomp filter, no kernel support); the
    ///   message says what to do.
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
        let backend = backend::setup(options)?;
        Ok(Ring {
            inner: Rc::new(RingInner {
                backend,
                ops: RefCell::default(),
                graveyard: RefCell::default(),
                scratch: RefCell::default(),
                close_hooks: RefCell::new(Vec::new()),
                closed: Cell::new(false),
                published: Published::new(rc::LEN, 0),
            }),
        })
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
    /// (`false` once the ring is closed).
    pub fn clear_eventfd(&self) -> bool {
        self.inner.backend.clear_eventfd()
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
    /// (`IORING_OP_ASYNC_CANCEL`, any), waits for their completions (which are
    /// appended to `out`, most with `-ECANCELED`), then closes the io_uring and its eventfd.
    /// Calling it again does nothing.
    ///
    /// Operations still queued are handed to the kernel first, so they are
    /// cancelled like the others. If the kernel does not finish the cancelled
    /// operations within 10 seconds, their buffers are leaked rather than
    /// freed, so the kernel can never write into freed memory.
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
    fn publish(&self) {
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
            Backend::Epoll(_) => None,
        }
    }

    /// Claims buffer group `id` where no kernel keeps the ids (false: in
    /// use on this ring).
    pub(crate) fn claim_group(&self, id: u16) -> bool {
        match &self.backend {
            Backend::Epoll(e) => e.claim_group(id),
            Backend::Uring(_) => true,
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
