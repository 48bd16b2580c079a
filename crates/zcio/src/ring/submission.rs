//! Queuing entries in the submission queue.

use io_uring::squeue;

use super::RingInner;
use crate::error::{Error, Result};
use crate::op::Op;

/// How many times `push` submits to make room in a full submission queue.
pub(super) const PUSH_ATTEMPTS: u32 = 8;

impl RingInner {
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
    pub(super) unsafe fn push_entry(&self, entry: &squeue::Entry) -> Result<()> {
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

    /// Counts an entry queued with `IO_LINK`: the next [`RingInner::submit`]
    /// runs the chain through in one call.
    pub(crate) fn note_linked(&self) {
        self.linked.set(self.linked.get().saturating_add(1));
    }
}
