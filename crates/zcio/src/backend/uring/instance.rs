//! The io_uring backend of one ring: the kernel's rings, the eventfd it
//! signals and the registered-buffer table.

use std::cell::{Cell, RefCell};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use io_uring::{opcode, squeue, types, IoUring};

use super::buf_table;
use super::busy::busy_is_zero;
use super::setup;
use crate::backend::raw_cqe::RawCqe;
use crate::error::{Error, Result};
use crate::ring::options::{RingFeatures, RingOptions};
use crate::sys;

/// `user_data` of the ring's own requests (cancels, no-ops); never handed
/// out as a completion.
pub(crate) const OWN_USER_DATA: u64 = u64::MAX;

pub(crate) struct Uring {
    pub(super) uring: RefCell<Option<IoUring>>,
    /// Closed with the ring: a closed ring holds no descriptor.
    pub(super) eventfd: RefCell<Option<OwnedFd>>,
    pub(crate) features: RingFeatures,
    /// Completions taken from the kernel's queue to let it accept more work
    /// (`EBUSY`/`EAGAIN`), handed out first by the next `take`.
    pub(crate) backlog: RefCell<Vec<RawCqe>>,
    pub(super) table: RefCell<buf_table::BufTable>,
    /// SQEs pushed but not yet handed to the kernel.
    pub(super) pending: Cell<u32>,
    /// Of those, how many carry `IO_LINK` (see `note_linked`).
    pub(super) linked: Cell<u32>,
    /// The entries of a chain of linked operations not ended yet, held out
    /// of the submission queue until it ends (see `push_entry`); counted in
    /// `pending`.
    pub(crate) chain: RefCell<Vec<squeue::Entry>>,
    /// Errors `io_uring_enter` returns instead of calling the kernel, in order.
    #[cfg(test)]
    pub(crate) inject: RefCell<std::collections::VecDeque<i32>>,
}

impl Uring {
    pub(crate) fn new(options: RingOptions) -> Result<Uring> {
        let (uring, features) = setup::setup(options)?;
        let eventfd = sys::eventfd().map_err(|e| Error::sys("eventfd", e))?;
        uring
            .submitter()
            .register_eventfd(eventfd.as_raw_fd())
            .map_err(|e| Error::sys("io_uring_register", e))?;
        Ok(Uring {
            uring: RefCell::new(Some(uring)),
            eventfd: RefCell::new(Some(eventfd)),
            features,
            backlog: RefCell::default(),
            table: RefCell::new(buf_table::BufTable::new()),
            pending: Cell::new(0),
            linked: Cell::new(0),
            chain: RefCell::default(),
            #[cfg(test)]
            inject: RefCell::default(),
        })
    }

    /// Whether the kernel supports every opcode zcio's operations use (its
    /// opcode probe, `IORING_REGISTER_PROBE`, Linux 5.6): the list of
    /// [`REQUIRED_OPCODES`](crate::REQUIRED_OPCODES) that
    /// [`uring_usable`](crate::uring_usable) checks too. Zero-copy sends and
    /// buffer rings are optional features, refused one by one where missing.
    pub(crate) fn supports_zcio(&self) -> bool {
        let mut probe = io_uring::Probe::new();
        self.with_uring(|u| {
            u.submitter().register_probe(&mut probe).is_ok()
                && crate::probe::opcodes::REQUIRED_OPCODES
                    .iter()
                    .all(|&(code, _)| probe.is_supported(code))
        })
        .unwrap_or(false)
    }

    /// Runs `f` on the io_uring; `Closed` once it is gone.
    pub(crate) fn with_uring<T>(&self, f: impl FnOnce(&mut IoUring) -> T) -> Result<T> {
        let mut guard = self.uring.borrow_mut();
        match guard.as_mut() {
            Some(uring) => Ok(f(uring)),
            None => Err(Error::Closed { what: "ring" }),
        }
    }

    pub(crate) fn eventfd(&self) -> RawFd {
        self.eventfd
            .borrow()
            .as_ref()
            .map_or(-1, AsRawFd::as_raw_fd)
    }

    pub(crate) fn clear_eventfd(&self) -> bool {
        self.eventfd
            .borrow()
            .as_ref()
            .is_some_and(sys::eventfd_drain)
    }

    pub(crate) fn signal_eventfd(&self) {
        if let Some(fd) = self.eventfd.borrow().as_ref() {
            sys::eventfd_signal(fd);
        }
    }

    pub(crate) fn set_eventfd_enabled(&self, on: bool) {
        if !self.features.taskrun_flag {
            return;
        }
        let _ = self.with_uring(|u| {
            if on {
                u.completion().enable_eventfd()
            } else {
                u.completion().disable_eventfd()
            }
        });
    }

    pub(crate) fn pending(&self) -> u32 {
        self.pending.get()
    }

    /// Makes room for `n` entries in the submission queue.
    pub(crate) fn reserve(&self, n: u32) -> Result<()> {
        let (cap, used) = self.with_uring(|u| {
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
            self.submit()?;
        }
        Ok(())
    }

    /// Moves the completions ready (those moved aside first) into `out`,
    /// leaving out the ring's own requests.
    pub(crate) fn take(&self, out: &mut Vec<RawCqe>) {
        out.append(&mut self.backlog.borrow_mut());
        self.collect(out);
    }

    /// Moves the ready completions aside, for the next `take`.
    pub(super) fn drain_to_backlog(&self) {
        self.collect(&mut self.backlog.borrow_mut());
    }

    fn collect(&self, out: &mut Vec<RawCqe>) {
        let mut guard = self.uring.borrow_mut();
        let Some(uring) = guard.as_mut() else {
            return;
        };
        for cqe in uring.completion() {
            if cqe.user_data() != OWN_USER_DATA {
                out.push(RawCqe {
                    user_data: cqe.user_data(),
                    result: cqe.result(),
                    flags: cqe.flags(),
                });
            }
        }
    }

    /// Queues a cancel of the operation with `user_data`.
    pub(crate) fn cancel(&self, user_data: u64) -> Result<()> {
        let cancel = opcode::AsyncCancel::new(user_data)
            .build()
            .user_data(OWN_USER_DATA);
        // SAFETY: a cancel request references no memory.
        unsafe { self.push_untracked(&cancel) }
    }

    /// Queues a cancel of every operation on descriptor `fd`.
    pub(crate) fn cancel_fd(&self, fd: RawFd) -> Result<()> {
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::fd(types::Fd(fd)).all())
            .build()
            .user_data(OWN_USER_DATA);
        // SAFETY: a cancel request references no memory.
        unsafe { self.push_untracked(&cancel) }
    }

    /// Queues a no-op without a link in place of an entry that was meant to
    /// end a chain.
    pub(crate) fn end_chain_with_nop(&self) -> Result<()> {
        let nop = opcode::Nop::new().build().user_data(OWN_USER_DATA);
        // SAFETY: a no-op references no memory.
        unsafe { self.push_untracked(&nop) }
    }

    /// Hands what is queued to the kernel and queues a cancel of every
    /// operation; it goes with the next `io_uring_enter`.
    pub(crate) fn cancel_all(&self) -> Result<()> {
        // A cancel only finds operations the kernel has seen: hand it what
        // is queued first, which also makes room in a full queue.
        self.end_chain()?;
        if self.pending.get() > 0 {
            self.enter(0, None)?;
        }
        self.queue_cancel_all()
    }

    pub(crate) fn queue_cancel_all(&self) -> Result<()> {
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(OWN_USER_DATA);
        // SAFETY: a cancel request references no memory.
        unsafe { self.push_entry(&cancel) }
    }

    /// Waits up to `timeout` for a completion.
    pub(crate) fn wait(&self, timeout: std::time::Duration) -> Result<()> {
        self.enter(1, Some(timeout)).or_else(busy_is_zero).map(drop)
    }

    /// Releases the kernel side: the registered buffers and rings go with
    /// the io_uring's descriptor, then the eventfd it no longer signals.
    pub(crate) fn close(&self) {
        self.table.borrow_mut().forget();
        drop(self.uring.borrow_mut().take());
        drop(self.eventfd.borrow_mut().take());
    }
}
