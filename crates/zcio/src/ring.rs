//! An io_uring owned by one thread, with the table of operations in flight.

use std::cell::{Cell, RefCell};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types, IoUring};

use crate::buf_table::BufTable;
use crate::error::{Error, Result};
use crate::op::{Cqe, Op, OpKind, RingCloseHook};
use crate::published::{ring_counts as rc, Published};
use crate::{probe, sys};

/// `user_data` of the ring's own cancel requests; never handed to users.
pub(crate) const CANCEL_USER_DATA: u64 = u64::MAX;
/// `IORING_ENTER_GETEVENTS`.
const ENTER_GETEVENTS: u32 = 1;
/// How long `close` waits for cancelled operations before leaking their memory.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `close` waits for operations to end before it aborts the ring's
/// connections (`RingCloseHook::ring_close_abort`): a zero-copy send whose
/// peer does not read ends only then.
const ABORT_AFTER: Duration = Duration::from_millis(250);
/// How often `close` repeats its cancel while operations remain.
const CANCEL_INTERVAL: Duration = Duration::from_millis(500);
/// How many times one `io_uring_enter` is retried while the kernel answers
/// `EBUSY`/`EAGAIN` (the completion queue is drained before each retry).
const BUSY_RETRIES: u32 = 8;
/// How many times `push` submits to make room in a full submission queue.
const PUSH_ATTEMPTS: u32 = 8;

/// How to set up a [`Ring`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingOptions {
    /// Submission-queue entries (a power of two is used; default 256, max 32768).
    pub entries: u32,
    /// Use a kernel submission thread (`IORING_SETUP_SQPOLL`) that sleeps after
    /// this many idle milliseconds. It costs a kernel thread that spins while
    /// busy. `None` (the default) submits through `io_uring_enter`.
    pub sqpoll_idle_ms: Option<u32>,
}

impl Default for RingOptions {
    fn default() -> Self {
        RingOptions {
            entries: 256,
            sqpoll_idle_ms: None,
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

/// One finished operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The value [`RegisteredBufferPool::submit_read_fixed`](crate::RegisteredBufferPool::submit_read_fixed)
    /// (or another submit call) returned.
    pub user_data: u64,
    /// Bytes transferred, or `-errno`.
    pub result: i32,
    /// The CQE flags.
    pub flags: u32,
    /// What the operation was.
    pub kind: OpKind,
    /// The buffer the completion refers to: the pool buffer of a fixed
    /// read or write, the buffer id the kernel chose from a buffer group for
    /// a receive; 0 otherwise.
    pub buffer: u32,
    /// Where the received bytes start inside `buffer` (non-zero only for
    /// incrementally consumed buffer groups).
    pub offset: u32,
}

impl Completion {
    /// Whether the kernel will post more completions for this operation
    /// (`IORING_CQE_F_MORE`): a multishot operation goes on, or a zero-copy
    /// send's notification is still to come.
    pub fn more(&self) -> bool {
        io_uring::cqueue::more(self.flags)
    }

    /// Whether this is a zero-copy send's notification (`IORING_CQE_F_NOTIF`):
    /// the kernel no longer uses the send's memory.
    pub fn is_notification(&self) -> bool {
        io_uring::cqueue::notif(self.flags)
    }
}

impl Completion {
    /// The operation's outcome: bytes transferred, or the kernel's error.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] with the operation's errno when `result` is negative.
    pub fn into_result(self) -> Result<u32> {
        if self.result < 0 {
            Err(Error::from_cqe(self.kind.syscall(), self.result))
        } else {
            Ok(self.result as u32)
        }
    }

    /// The index of the operation in the ring's table (the low 32 bits of
    /// `user_data`): unique among operations in flight, so bindings can keep
    /// their own per-operation state in a dense table.
    pub fn slot(&self) -> u32 {
        self.user_data as u32
    }
}

struct OpEntry {
    generation: u32,
    op: Option<Op>,
}

/// The ring's table of operations, indexed by the low 32 bits of `user_data`.
///
/// A slot whose completion was reaped is not reused at once: it is *retired*
/// when the completion is handed out by [`Ring::reap`] and becomes free at the
/// next `reap`. A binding that settles completions after reaping them (and
/// may queue new operations while doing so) can therefore key its own state
/// by slot: no new operation takes the slot of a completion it has not
/// finished delivering.
#[derive(Default)]
struct Ops {
    entries: Vec<OpEntry>,
    free: Vec<u32>,
    /// Slots handed out by the last `reap`, free from the next one on.
    retired: Vec<u32>,
    live: u32,
}

impl Ops {
    fn insert(&mut self, op: Op) -> u64 {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.entries.push(OpEntry {
                    generation: 0,
                    op: None,
                });
                (self.entries.len() - 1) as u32
            }
        };
        let entry = &mut self.entries[slot as usize];
        entry.generation = entry.generation.wrapping_add(1);
        entry.op = Some(op);
        self.live += 1;
        (u64::from(entry.generation) << 32) | u64::from(slot)
    }

    /// The op of a slot, left in place (more completions will follow).
    fn get(&self, user_data: u64) -> Option<&Op> {
        let entry = self.entries.get(user_data as u32 as usize)?;
        if u64::from(entry.generation) != user_data >> 32 {
            return None;
        }
        entry.op.as_ref()
    }

    /// Takes the op out of its slot; the slot stays reserved until
    /// [`retire`](Self::retire) and the following [`recycle`](Self::recycle).
    fn remove(&mut self, user_data: u64) -> Option<Op> {
        let slot = user_data as u32;
        let entry = self.entries.get_mut(slot as usize)?;
        if u64::from(entry.generation) != user_data >> 32 {
            return None;
        }
        let op = entry.op.take()?;
        self.live -= 1;
        Some(op)
    }

    /// Undoes an `insert` whose entry never reached the kernel.
    fn cancel(&mut self, user_data: u64) -> Option<Op> {
        let op = self.remove(user_data)?;
        self.free.push(user_data as u32);
        Some(op)
    }

    /// The completion of `slot` has been handed out.
    fn retire(&mut self, slot: u32) {
        self.retired.push(slot);
    }

    /// Slots handed out before now may be reused.
    fn recycle(&mut self) {
        self.free.append(&mut self.retired);
    }
}

pub(crate) struct RingInner {
    uring: RefCell<Option<IoUring>>,
    eventfd: OwnedFd,
    features: RingFeatures,
    ops: RefCell<Ops>,
    /// Ops whose completion was reaped, dropped once no borrow is held (the
    /// last reference to a pool may go with them).
    graveyard: RefCell<Vec<Op>>,
    /// Completions taken from the kernel's queue to let it accept more work
    /// (`EBUSY`/`EAGAIN`), handed out first by the next `reap`.
    backlog: RefCell<Vec<Completion>>,
    pub(crate) table: RefCell<BufTable>,
    /// SQEs pushed but not yet handed to the kernel.
    pending: Cell<u32>,
    /// Of those, how many carry `IO_LINK` (see `note_linked`).
    linked: Cell<u32>,
    /// Told when the ring closes (see `on_close`).
    close_hooks: RefCell<Vec<Weak<dyn RingCloseHook>>>,
    closed: Cell<bool>,
    /// Counts mirrored for bindings (see `published.rs`).
    published: Rc<Published>,
    /// Errors `io_uring_enter` returns instead of calling the kernel, in order.
    #[cfg(test)]
    inject: RefCell<std::collections::VecDeque<i32>>,
}

/// An io_uring instance and its completion bookkeeping.
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
            .field("features", &self.inner.features)
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
        let (uring, features) = setup(options)?;
        let eventfd = sys::eventfd().map_err(|e| Error::sys("eventfd", e))?;
        uring
            .submitter()
            .register_eventfd(eventfd.as_raw_fd())
            .map_err(|e| Error::sys("io_uring_register", e))?;
        Ok(Ring {
            inner: Rc::new(RingInner {
                uring: RefCell::new(Some(uring)),
                eventfd,
                features,
                ops: RefCell::default(),
                graveyard: RefCell::default(),
                table: RefCell::new(BufTable::new()),
                pending: Cell::new(0),
                linked: Cell::new(0),
                close_hooks: RefCell::new(Vec::new()),
                closed: Cell::new(false),
                published: Published::new(rc::LEN, 0),
                backlog: RefCell::default(),
                #[cfg(test)]
                inject: RefCell::default(),
            }),
        })
    }

    /// The setup flags the kernel accepted.
    pub fn features(&self) -> RingFeatures {
        self.inner.features
    }

    /// The eventfd the kernel signals when it posts completions. Treat a
    /// wake-up as a hint: call [`Ring::submit`] and [`Ring::reap`].
    pub fn eventfd(&self) -> RawFd {
        self.inner.eventfd.as_raw_fd()
    }

    /// Clears the eventfd's counter; returns whether it was signalled.
    pub fn clear_eventfd(&self) -> bool {
        sys::eventfd_drain(&self.inner.eventfd)
    }

    /// Signals the eventfd, as the kernel does: a caller that stops reaping
    /// with work left uses it to be woken again.
    pub fn signal_eventfd(&self) {
        sys::eventfd_signal(&self.inner.eventfd)
    }

    /// Turns the kernel's eventfd signal off (`false`) or on again
    /// (`IORING_CQ_EVENTFD_DISABLED`, Linux 5.8), for a caller that is
    /// reaping anyway and would only be woken for completions it has
    /// already seen. After turning it on again, call [`Ring::has_work`]:
    /// what arrived meanwhile signalled nothing. Does nothing on a closed
    /// ring, or where the kernel can't flag deferred work
    /// ([`RingFeatures::taskrun_flag`]): there the signal stays on.
    pub fn set_eventfd_enabled(&self, on: bool) {
        if !self.inner.features.taskrun_flag {
            return;
        }
        let _ = self.inner.with_uring(|u| {
            if on {
                u.completion().enable_eventfd()
            } else {
                u.completion().disable_eventfd()
            }
        });
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
        self.inner.pending.get()
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
        let (cap, used) = self.inner.with_uring(|u| {
            let sq = u.submission();
            (sq.capacity(), sq.len())
        })?;
        if n as usize > cap {
            return Err(Error::InvalidArgument {
                name: "n",
                reason: format!("{n} entries do not fit a submission queue of {cap}"),
            });
        }
        if cap - used < n as usize {
            self.inner.submit()?;
        }
        Ok(())
    }

    /// Cancels the operation in `slot` (the low 32 bits of its `user_data`),
    /// if one is in flight there; its completion still comes, usually with
    /// `-ECANCELED`. Returns whether there was one.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::Sys`] when the queue could not be flushed.
    pub fn cancel_slot(&self, slot: u32) -> Result<bool> {
        let user_data = {
            let ops = self.inner.ops.borrow();
            match ops.entries.get(slot as usize) {
                Some(e) if e.op.is_some() => (u64::from(e.generation) << 32) | u64::from(slot),
                _ => return Ok(false),
            }
        };
        let cancel = opcode::AsyncCancel::new(user_data)
            .build()
            .user_data(CANCEL_USER_DATA);
        // SAFETY: a cancel request references no memory.
        unsafe { self.inner.push_untracked(&cancel) }?;
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
    /// appended to `out`, most with `-ECANCELED`), then closes the io_uring.
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

fn setup(options: RingOptions) -> Result<(IoUring, RingFeatures)> {
    let entries = options.entries.next_power_of_two();
    let cq = (entries * 4).max(64);
    let mut attempts: Vec<RingFeatures> = Vec::new();
    let sqpoll = options.sqpoll_idle_ms.is_some();
    // Preferred first; SQPOLL can't be combined with DEFER_TASKRUN.
    attempts.push(RingFeatures {
        single_issuer: true,
        defer_taskrun: !sqpoll,
        coop_taskrun: !sqpoll,
        taskrun_flag: !sqpoll,
        sqpoll,
    });
    attempts.push(RingFeatures {
        coop_taskrun: !sqpoll,
        taskrun_flag: !sqpoll,
        sqpoll,
        ..RingFeatures::default()
    });
    attempts.push(RingFeatures {
        sqpoll,
        ..RingFeatures::default()
    });
    let mut last = None;
    for f in attempts {
        let mut b = IoUring::builder();
        b.setup_cqsize(cq).setup_clamp().dontfork();
        if f.single_issuer {
            b.setup_single_issuer();
        }
        if f.defer_taskrun {
            b.setup_defer_taskrun();
        }
        if f.coop_taskrun {
            b.setup_coop_taskrun();
        }
        if f.taskrun_flag {
            b.setup_taskrun_flag();
        }
        if let Some(idle) = options.sqpoll_idle_ms {
            b.setup_sqpoll(idle);
        }
        match b.build(entries) {
            Ok(uring) => return Ok((uring, f)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
            Err(e) => {
                return Err(match e.raw_os_error() {
                    Some(libc::EPERM) | Some(libc::EACCES) | Some(libc::ENOSYS) => {
                        Error::UringUnavailable {
                            reason: probe::unavailable_reason(&e),
                            source: e,
                        }
                    }
                    _ => Error::sys("io_uring_setup", e),
                })
            }
        }
    }
    Err(Error::sys(
        "io_uring_setup",
        last.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL)),
    ))
}

impl RingInner {
    /// Mirrors the counts into `published`.
    fn publish(&self) {
        let p = &self.published;
        let in_flight = self.in_flight();
        p.set_count(rc::IN_FLIGHT, f64::from(in_flight));
        p.set_count(rc::PENDING, f64::from(self.pending.get()));
        p.set_count(rc::CLOSED, if self.closed.get() { 1.0 } else { 0.0 });
    }

    /// Live ops plus final completions moved aside but not handed out.
    fn in_flight(&self) -> u32 {
        let backlog = self.backlog.borrow();
        let finals = backlog.iter().filter(|c| !c.more()).count() as u32;
        self.ops.borrow().live + finals
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.get() {
            return Err(Error::Closed { what: "ring" });
        }
        Ok(())
    }

    /// Runs `f` on the io_uring; `Closed` once it is gone.
    pub(crate) fn with_uring<T>(&self, f: impl FnOnce(&mut IoUring) -> T) -> Result<T> {
        let mut guard = self.uring.borrow_mut();
        match guard.as_mut() {
            Some(uring) if !self.closed.get() => Ok(f(uring)),
            _ => Err(Error::Closed { what: "ring" }),
        }
    }

    /// Queues `entry` for `op`; the op (and the pool memory it references) is
    /// kept until the completion is reaped. On error nothing is queued and the
    /// op is dropped again.
    ///
    /// # Safety
    ///
    /// Every buffer `entry` points at must stay valid until its completion:
    /// `op.pool` must own that memory.
    pub(crate) unsafe fn push(&self, entry: squeue::Entry, op: Op) -> Result<u64> {
        self.check_open()?;
        let user_data = self.ops.borrow_mut().insert(op);
        let entry = entry.user_data(user_data);
        // SAFETY: the caller guarantees the buffers stay valid; the op holding
        // them was stored under `user_data` above.
        if let Err(e) = unsafe { self.push_entry(&entry) } {
            let op = self.ops.borrow_mut().cancel(user_data);
            drop(op);
            return Err(e);
        }
        self.publish();
        Ok(user_data)
    }

    /// Queues an entry that no op owns (a cancel request).
    ///
    /// # Safety
    ///
    /// `entry` references no memory, or only memory that lives forever.
    pub(crate) unsafe fn push_untracked(&self, entry: &squeue::Entry) -> Result<()> {
        self.check_open()?;
        // SAFETY: the caller's contract.
        unsafe { self.push_entry(entry) }?;
        self.publish();
        Ok(())
    }

    /// Puts `entry` in the submission queue; when it is full, submits to make
    /// room, a bounded number of times.
    ///
    /// # Safety
    ///
    /// As for [`RingInner::push`]: whatever `entry` points at stays valid
    /// until its completion.
    unsafe fn push_entry(&self, entry: &squeue::Entry) -> Result<()> {
        let mut attempts = 0;
        loop {
            let pushed = self.with_uring(|uring| {
                // SAFETY: the caller guarantees what `entry` points at stays
                // valid until its completion.
                unsafe { uring.submission().push(entry) }.is_ok()
            })?;
            if pushed {
                self.pending.set(self.pending.get() + 1);
                return Ok(());
            }
            if attempts == PUSH_ATTEMPTS {
                // The kernel took nothing from the queue however often it was
                // asked: give up rather than spin.
                return Err(Error::sys(
                    "io_uring_enter",
                    std::io::Error::from_raw_os_error(libc::EBUSY),
                ));
            }
            attempts += 1;
            // The queue is full: hand it to the kernel. `enter` retries an
            // EBUSY/EAGAIN itself, draining completions first, and gives up
            // with that error after a few tries.
            self.enter(0, None)?;
            if self.features.sqpoll {
                // The kernel thread empties the queue: wait until it has. An
                // error here (EINTR) only costs one of the bounded attempts.
                let _ = self.with_uring(|uring| uring.submitter().squeue_wait());
            }
        }
    }

    /// Registers `hook`, told once the ring has closed (while it lives).
    pub(crate) fn on_close(&self, hook: Weak<dyn RingCloseHook>) {
        let mut hooks = self.close_hooks.borrow_mut();
        if hooks.len() >= 64 && hooks.len().is_power_of_two() {
            hooks.retain(|h| h.strong_count() > 0);
        }
        hooks.push(hook);
    }

    /// Counts an entry queued with `IO_LINK`: the next [`RingInner::submit`]
    /// runs the chain through in one call.
    pub(crate) fn note_linked(&self) {
        self.linked.set(self.linked.get().saturating_add(1));
    }

    pub(crate) fn submit(&self) -> Result<u32> {
        // Checked first: the early return below must not hide a closed ring.
        self.check_open()?;
        let linked = self.linked.replace(0);
        if linked > 0 && self.features.defer_taskrun && self.pending.get() > 0 {
            // With DEFER_TASKRUN each next link of a chain is issued by task
            // work, and one enter that waits for nothing runs one batch of
            // it: a chain of n sends took n calls. Asking for up to two
            // completions per link (a zero-copy send has two) with a zero
            // timeout makes the kernel run the chain's task work through, and
            // never blocks: what can't complete yet times out at once (ETIME,
            // counted as 0 here).
            return self
                .enter(
                    linked.saturating_mul(2).saturating_add(2),
                    Some(Duration::ZERO),
                )
                .or_else(busy_is_zero);
        }
        let (overflow, taskrun) = self
            .with_uring(|uring| {
                let sq = uring.submission();
                (sq.cq_overflow(), sq.taskrun())
            })
            .unwrap_or((false, false));
        // With DEFER_TASKRUN, completion work waits for an enter; the flag
        // (when the kernel sets it) says whether there is any.
        let deferred = self.features.defer_taskrun && (taskrun || !self.features.taskrun_flag);
        if self.pending.get() == 0 && !deferred && !overflow {
            return Ok(0);
        }
        self.enter(0, None).or_else(busy_is_zero)
    }

    pub(crate) fn has_work(&self) -> bool {
        if self.pending.get() > 0 || !self.backlog.borrow().is_empty() {
            return true;
        }
        let flagged = self.features.taskrun_flag;
        self.with_uring(|u| {
            let overflow = u.submission().cq_overflow();
            let taskrun = u.submission().taskrun();
            let ready = !u.completion().is_empty();
            ready || overflow || taskrun
        })
        .map(|now| now || (!flagged && self.in_flight() > 0))
        .unwrap_or(false)
    }

    pub(crate) fn submit_and_wait(&self, want: u32) -> Result<u32> {
        self.enter(want, None).or_else(busy_is_zero)
    }

    /// One `io_uring_enter`: submits what is queued and waits for `want`
    /// completions (less those already in the backlog) or `timeout`.
    ///
    /// `EINTR` is retried. `EBUSY`/`EAGAIN` mean the kernel wants its
    /// completion queue drained: the ready completions go to the backlog (the
    /// caller has not reaped them yet) and the call is retried, up to
    /// [`BUSY_RETRIES`] times, after which the error is returned with nothing
    /// lost: the queued entries stay queued. `ETIME` (the timeout) gives 0.
    fn enter(&self, want: u32, timeout: Option<Duration>) -> Result<u32> {
        let mut busy = 0;
        loop {
            let want = want.saturating_sub(self.backlog.borrow().len() as u32);
            let res = self.enter_once(want, timeout)?;
            let e = match res {
                Ok(n) => {
                    self.pending
                        .set(self.pending.get().saturating_sub(n as u32));
                    self.publish();
                    return Ok(n as u32);
                }
                Err(e) => e,
            };
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::ETIME) => return Ok(0),
                Some(libc::EBUSY) | Some(libc::EAGAIN) if busy < BUSY_RETRIES => {
                    busy += 1;
                    self.drain_to_backlog();
                }
                _ => return Err(Error::sys("io_uring_enter", e)),
            }
        }
    }

    fn enter_once(&self, want: u32, timeout: Option<Duration>) -> Result<std::io::Result<usize>> {
        #[cfg(test)]
        if let Some(errno) = self.inject.borrow_mut().pop_front() {
            self.check_open()?;
            return Ok(Err(std::io::Error::from_raw_os_error(errno)));
        }
        self.with_uring(|uring| {
            let submitter = uring.submitter();
            if let Some(t) = timeout {
                let ts = types::Timespec::new()
                    .sec(t.as_secs())
                    .nsec(t.subsec_nanos());
                let args = types::SubmitArgs::new().timespec(&ts);
                submitter.submit_with_args(want as usize, &args)
            } else if want == 0 && self.features.defer_taskrun {
                let to_submit = self.pending.get();
                // SAFETY: no extra argument is passed (`None`), so the size
                // and pointer given to the kernel are 0 and null.
                unsafe { submitter.enter::<libc::sigset_t>(to_submit, 0, ENTER_GETEVENTS, None) }
            } else {
                submitter.submit_and_wait(want as usize)
            }
        })
    }

    /// Moves the ready completions into the backlog, for the next `reap`.
    fn drain_to_backlog(&self) {
        let mut backlog = self.backlog.borrow_mut();
        self.reap_locked(&mut backlog);
    }

    pub(crate) fn reap(&self, out: &mut Vec<Completion>) -> usize {
        let before = out.len();
        self.ops.borrow_mut().recycle();
        // Completions drained earlier came first.
        out.append(&mut self.backlog.borrow_mut());
        self.reap_locked(out);
        // Handed out now: these slots are free from the next `reap` on.
        let mut ops = self.ops.borrow_mut();
        for c in &out[before..] {
            if !c.more() {
                ops.retire(c.slot());
            }
        }
        drop(ops);
        self.graveyard.borrow_mut().clear();
        self.publish();
        out.len() - before
    }

    fn reap_locked(&self, out: &mut Vec<Completion>) {
        let mut guard = self.uring.borrow_mut();
        let Some(uring) = guard.as_mut() else {
            return;
        };
        let mut ops = self.ops.borrow_mut();
        let mut graveyard = self.graveyard.borrow_mut();
        for cqe in uring.completion() {
            let user_data = cqe.user_data();
            if user_data == CANCEL_USER_DATA {
                continue;
            }
            let flags = cqe.flags();
            let c = Cqe {
                result: cqe.result(),
                flags,
                last: !io_uring::cqueue::more(flags),
            };
            // The op stays in the table while more completions will follow,
            // and goes (to be dropped after the borrows end) with the last.
            let (kind, placed) = if c.last {
                let Some(op) = ops.remove(user_data) else {
                    continue;
                };
                let placed = op.owner.complete(&op, c);
                let kind = op.kind;
                graveyard.push(op);
                (kind, placed)
            } else {
                let Some(op) = ops.get(user_data) else {
                    continue;
                };
                (op.kind, op.owner.complete(op, c))
            };
            out.push(Completion {
                user_data,
                result: c.result,
                flags,
                kind,
                buffer: placed.buffer,
                offset: placed.offset,
            });
        }
    }

    pub(crate) fn close(&self, out: &mut Vec<Completion>) -> Result<()> {
        if self.closed.get() {
            return Ok(());
        }
        // Completions already taken from the kernel are the caller's too.
        self.reap(out);
        // Sockets first: they refuse new work and cancel their own, and can
        // be aborted if their operations don't end.
        let hooks: Vec<_> = self
            .close_hooks
            .take()
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for hook in &hooks {
            hook.ring_closed();
        }
        let mut result = Ok(());
        if self.ops.borrow().live > 0 {
            result = self.cancel_all(out, &hooks);
            // Whatever is still live keeps its pool (and memory) forever: the
            // entries stay in `ops`, which is never dropped while they exist.
            if self.ops.borrow().live > 0 {
                std::mem::forget(std::mem::take(&mut *self.ops.borrow_mut()));
            }
        }
        self.closed.set(true);
        self.publish();
        self.table.borrow_mut().forget();
        // Closing the fd releases the registered buffers and the rings.
        drop(self.uring.borrow_mut().take());
        result
    }

    /// Cancels every operation and reaps their completions into `out`,
    /// giving up after [`CLOSE_TIMEOUT`].
    /// After [`ABORT_AFTER`], `hooks` (the ring's sockets) abort their
    /// connections, which ends what only the peer could end.
    fn cancel_all(&self, out: &mut Vec<Completion>, hooks: &[Rc<dyn RingCloseHook>]) -> Result<()> {
        let start = Instant::now();
        let deadline = start + CLOSE_TIMEOUT;
        let mut aborted = false;
        // A cancel only finds operations the kernel has seen: hand it what is
        // queued first, which also makes room for the cancel in a full queue.
        if self.pending.get() > 0 {
            self.enter(0, None)?;
        }
        self.queue_cancel()?;
        let mut cancelled_at = Instant::now();
        while self.ops.borrow().live > 0 && Instant::now() < deadline {
            self.enter(1, Some(Duration::from_millis(100)))
                .or_else(busy_is_zero)?;
            self.reap(out);
            if !aborted && self.ops.borrow().live > 0 && start.elapsed() >= ABORT_AFTER {
                aborted = true;
                for hook in hooks {
                    hook.ring_close_abort();
                }
            }
            if self.ops.borrow().live > 0 && cancelled_at.elapsed() >= CANCEL_INTERVAL {
                // Something escaped the cancel (issued after it, or busy
                // when it ran): ask again.
                self.queue_cancel()?;
                cancelled_at = Instant::now();
            }
        }
        Ok(())
    }

    /// Queues an `IORING_OP_ASYNC_CANCEL` of every operation; it goes to the
    /// kernel with the next `io_uring_enter`.
    fn queue_cancel(&self) -> Result<()> {
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(CANCEL_USER_DATA);
        // SAFETY: a cancel request references no memory.
        unsafe { self.push_entry(&cancel) }
    }
}

/// The kernel kept refusing with `EBUSY`/`EAGAIN`: nothing was submitted,
/// and the entries stay queued for the next call.
fn busy_is_zero(e: Error) -> Result<u32> {
    match e.errno() {
        Some(libc::EBUSY) | Some(libc::EAGAIN) => Ok(0),
        _ => Err(e),
    }
}

impl Drop for RingInner {
    fn drop(&mut self) {
        // Ops hold their pool, and pools hold the ring, so a ring with live
        // ops is never dropped; closing here only releases the kernel side.
        let mut sink = Vec::new();
        let _ = self.close(&mut sink);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::fs::File;
    use std::os::fd::AsRawFd;

    use super::*;
    use crate::RegisteredBufferPool;

    /// A ring with a one-entry submission queue, a one-buffer pool with its
    /// buffer acquired, and `/dev/zero`; `None` (and a note) without io_uring.
    fn setup() -> Option<(Ring, RegisteredBufferPool, File)> {
        let p = probe::probe();
        if !p.io_uring || !p.fixed_buffers {
            eprintln!(
                "SKIPPED: io_uring fixed buffers unavailable ({:?})",
                p.reason
            );
            return None;
        }
        let ring = Ring::new(RingOptions {
            entries: 1,
            ..RingOptions::default()
        })
        .unwrap();
        let pool = RegisteredBufferPool::new(&ring, 4096, 1).unwrap();
        assert_eq!(pool.acquire().unwrap(), 0);
        Some((ring, pool, File::open("/dev/zero").unwrap()))
    }

    fn read(pool: &RegisteredBufferPool, zero: &File) -> Result<u64> {
        pool.read_fixed(zero.as_raw_fd(), 0, 0, 512, 0)
    }

    #[test]
    fn push_drains_completions_while_the_kernel_is_busy() {
        let Some((ring, pool, zero)) = setup() else {
            return;
        };
        let a = read(&pool, &zero).unwrap();
        assert_eq!(ring.submit().unwrap(), 1); // /dev/zero completes inline
        let b = read(&pool, &zero).unwrap(); // the queue is full again
        ring.inner
            .inject
            .borrow_mut()
            .extend([libc::EBUSY, libc::EAGAIN, libc::EINTR]);
        let c = read(&pool, &zero).unwrap();
        assert!(ring.inner.inject.borrow().is_empty());
        // A's completion was taken from the kernel but not handed out yet.
        assert_eq!(ring.inner.backlog.borrow().len(), 1);
        assert_eq!(ring.in_flight(), 3);

        // Waiting counts the backlog: two more completions, not three, are due.
        let start = Instant::now();
        ring.inner.enter(3, Some(Duration::from_secs(2))).unwrap();
        assert!(start.elapsed() < Duration::from_secs(1));
        let mut out = Vec::new();
        while out.len() < 3 {
            ring.reap(&mut out);
            if out.len() < 3 {
                ring.submit_and_wait(1).unwrap();
            }
        }
        assert_eq!(out[0].user_data, a, "the backlog comes first");
        let got: HashSet<u64> = out.iter().map(|c| c.user_data).collect();
        assert_eq!(got, HashSet::from([a, b, c]));
        assert!(out.iter().all(|c| c.result == 512));
        assert_eq!(ring.in_flight(), 0);
        assert_eq!(pool.stats().kernel_ops, 0);
        assert!(!pool.is_in_flight(0).unwrap());
    }

    #[test]
    fn push_gives_up_when_the_kernel_stays_busy() {
        let Some((ring, pool, zero)) = setup() else {
            return;
        };
        let a = read(&pool, &zero).unwrap(); // the queue is full
        ring.inner
            .inject
            .borrow_mut()
            .extend([libc::EBUSY; BUSY_RETRIES as usize + 1]);
        let err = read(&pool, &zero).unwrap_err();
        assert!(ring.inner.inject.borrow().is_empty());
        assert_eq!(err.code(), "EBUSY");
        assert_eq!(err.syscall(), Some("io_uring_enter"));
        // Nothing of the refused operation is left behind.
        assert_eq!(ring.in_flight(), 1);
        assert_eq!(ring.pending(), 1);
        let stats = pool.stats();
        assert_eq!((stats.kernel_ops, stats.counters.submitted), (1, 1));

        // A submit the kernel keeps refusing leaves the entry queued...
        ring.inner
            .inject
            .borrow_mut()
            .extend([libc::EAGAIN; BUSY_RETRIES as usize + 1]);
        assert_eq!(ring.submit().unwrap(), 0);
        assert_eq!(ring.pending(), 1);
        // ...for the next one.
        assert_eq!(ring.submit().unwrap(), 1);
        ring.submit_and_wait(1).unwrap();
        let mut out = Vec::new();
        ring.reap(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].user_data, out[0].result), (a, 512));
        assert_eq!(ring.in_flight(), 0);
        assert_eq!(pool.stats().kernel_ops, 0);
        assert!(!pool.is_in_flight(0).unwrap());
        pool.release(0).unwrap();
    }
}
