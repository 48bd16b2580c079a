//! Queuing entries in the submission queue.

use io_uring::squeue;

use super::instance::Uring;
use crate::error::{Error, Result};

/// How many times `push` submits to make room in a full submission queue.
pub(super) const PUSH_ATTEMPTS: u32 = 8;

impl Uring {
    /// Queues an entry that no op owns (a cancel request).
    ///
    /// # Safety
    ///
    /// `entry` references no memory, or only memory that lives forever.
    pub(crate) unsafe fn push_untracked(&self, entry: &squeue::Entry) -> Result<()> {
        // A request of the ring's own never joins a chain of the caller's.
        self.end_chain()?;
        // SAFETY: the caller's contract.
        unsafe { self.push_entry(entry) }
    }

    /// Queues the entry of an op stored in the ring's table under the
    /// entry's `user_data`.
    ///
    /// # Safety
    ///
    /// Whatever `entry` points at stays valid until its final completion
    /// (the op in the table owns it).
    pub(crate) unsafe fn push(&self, entry: &squeue::Entry, linked: bool) -> Result<()> {
        // SAFETY: the caller's contract.
        unsafe { self.push_entry(entry) }?;
        if linked {
            self.note_linked();
        }
        Ok(())
    }

    /// Puts `entry` in the submission queue; when it is full, submits to make
    /// room, a bounded number of times.
    ///
    /// An entry that links to the next (`IO_LINK`, `IO_HARDLINK`) opens a
    /// *chain*: it and the entries after it are held here, not written to
    /// the queue, until the entry that ends the chain (one without a link)
    /// comes; then the whole chain is written and the queue's tail moves
    /// once. The kernel thread of an SQPOLL ring takes entries as soon as
    /// the tail moves, and it (like an `io_uring_enter` while the queue is
    /// full) would otherwise take half a chain and run the rest as a second,
    /// concurrent chain. A chain still open when the ring submits is ended
    /// there ([`end_chain`](Self::end_chain)).
    ///
    /// # Safety
    ///
    /// As for [`Uring::push`]: whatever `entry` points at stays valid
    /// until its completion.
    pub(crate) unsafe fn push_entry(&self, entry: &squeue::Entry) -> Result<()> {
        let chained = links(entry);
        if !chained && self.chain.borrow().is_empty() {
            // SAFETY: the caller's contract.
            unsafe { self.write(std::slice::from_ref(entry)) }?;
            self.pending.set(self.pending.get() + 1);
            return Ok(());
        }
        let cap = self.with_uring(|u| u.submission().capacity())?;
        let len = {
            let mut chain = self.chain.borrow_mut();
            if chain.len() == cap {
                return Err(Error::InvalidArgument {
                    name: "linked",
                    reason: format!(
                        "a chain of more than {cap} linked operations does not fit the \
                         submission queue"
                    ),
                });
            }
            chain.push(entry.clone());
            chain.len()
        };
        self.pending.set(self.pending.get() + 1);
        if chained {
            return Ok(());
        }
        // SAFETY: the caller's contract, for this entry and (by the same
        // contract of the earlier calls) for the chain held before it.
        if let Err(e) = unsafe { self.write_chain() } {
            // Only this entry fails: the chain before it stays open (ended
            // at the next submit), as if this one had never been pushed.
            let mut chain = self.chain.borrow_mut();
            if chain.len() == len {
                chain.pop();
                self.pending.set(self.pending.get() - 1);
            }
            return Err(e);
        }
        Ok(())
    }

    /// Ends a chain left open (its last entry still links to the next, as
    /// when the caller failed before queuing the entry meant to end it): the
    /// link of its last entry is cleared and the chain written to the queue,
    /// so that no later, unrelated entry joins it. Called before every
    /// submission and before queuing an entry no op owns.
    ///
    /// # Errors
    ///
    /// As for [`push_entry`](Self::push_entry) when the queue can't be made
    /// to hold the chain; it then stays held (and ended) for the next call.
    pub(crate) fn end_chain(&self) -> Result<()> {
        {
            let mut chain = self.chain.borrow_mut();
            let Some(last) = chain.last_mut() else {
                return Ok(());
            };
            *last = unlinked(last);
        }
        // SAFETY: the entries were queued by `push_entry`, whose callers
        // guarantee what they point at stays valid until their completion.
        unsafe { self.write_chain() }
    }

    /// Writes the held chain to the queue at once (one move of the tail).
    ///
    /// # Safety
    ///
    /// As for [`Uring::push`], for every entry held.
    unsafe fn write_chain(&self) -> Result<()> {
        // Its entries were counted as pending when they were held.
        let chain = std::mem::take(&mut *self.chain.borrow_mut());
        // SAFETY: the caller's contract.
        let res = unsafe { self.write(&chain) };
        if res.is_err() {
            *self.chain.borrow_mut() = chain;
        }
        res
    }

    /// Writes `entries` to the queue with one move of its tail, submitting
    /// to make room as needed (a bounded number of times).
    ///
    /// # Safety
    ///
    /// As for [`Uring::push`], for every entry.
    unsafe fn write(&self, entries: &[squeue::Entry]) -> Result<()> {
        let mut attempts = 0;
        loop {
            let pushed = self.with_uring(|uring| {
                // SAFETY: the caller guarantees what the entries point at
                // stays valid until their completion. The queue's tail is
                // stored once, when the `SubmissionQueue` is dropped.
                unsafe { uring.submission().push_multiple(entries) }.is_ok()
            })?;
            if pushed {
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
    fn note_linked(&self) {
        self.linked.set(self.linked.get().saturating_add(1));
    }
}

/// Whether `entry` links to the next entry (`IO_LINK` or `IO_HARDLINK`).
pub(crate) fn links(entry: &squeue::Entry) -> bool {
    flags_of(entry).intersects(squeue::Flags::IO_LINK | squeue::Flags::IO_HARDLINK)
}

/// `entry` without its link to the next entry, its other flags kept.
pub(crate) fn unlinked(entry: &squeue::Entry) -> squeue::Entry {
    let keep = flags_of(entry) - (squeue::Flags::IO_LINK | squeue::Flags::IO_HARDLINK);
    entry.clone().clear_flags().flags(keep)
}

// `flags_of` reads the kernel's SQE layout through `Entry`.
const _: () = assert!(std::mem::size_of::<squeue::Entry>() == 64);

/// The flags of an entry (`io_uring_sqe.flags`), which the entry type can set
/// but not read.
fn flags_of(entry: &squeue::Entry) -> squeue::Flags {
    // SAFETY: `Entry` is `repr(C)` around the kernel's 64-byte
    // `io_uring_sqe` (size checked above), whose first two fields are
    // `opcode: u8` and `flags: u8`: byte 1 is in bounds and initialised.
    let byte = unsafe { *(entry as *const squeue::Entry).cast::<u8>().add(1) };
    squeue::Flags::from_bits_retain(byte)
}
