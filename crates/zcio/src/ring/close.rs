//! Closing a ring: cancelling what is in flight, then releasing the kernel side.

use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use super::close_hook::RingCloseHook;
use super::completion::Completion;
use super::handle::RingInner;
use crate::error::Result;

/// How often `close` repeats its cancel while operations remain.
pub(super) const CANCEL_INTERVAL: Duration = Duration::from_millis(500);
/// How long `close` waits for operations to end before it aborts the ring's
/// connections (`RingCloseHook::ring_close_abort`): a zero-copy send whose
/// peer does not read ends only then.
const ABORT_AFTER: Duration = Duration::from_millis(250);

impl RingInner {
    pub(crate) fn close(&self, out: &mut Vec<Completion>) -> Result<()> {
        if self.closed.get() {
            return Ok(());
        }
        // Completions already taken from the kernel are the caller's too.
        self.reap(out);
        // The sockets are told last, once every operation has ended: a
        // socket closed earlier could end a receive of its peer that the
        // cancel has not reached yet with an end of stream. Meanwhile they
        // can be aborted if their operations don't end (see `cancel_all`).
        let hooks: Vec<Rc<dyn RingCloseHook>> = self
            .close_hooks
            .take()
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
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
        // Closing the backend's descriptors releases what the kernel holds
        // (registered buffers, buffer rings).
        self.backend.close();
        for hook in &hooks {
            hook.ring_closed();
        }
        result
    }

    /// Cancels every operation and reaps their completions into `out`,
    /// giving up after the ring's close timeout ([`CLOSE_TIMEOUT`](super::handle::CLOSE_TIMEOUT)). After [`ABORT_AFTER`], `hooks`
    /// (the ring's sockets) abort their connections, which ends what only
    /// the peer could end.
    fn cancel_all(&self, out: &mut Vec<Completion>, hooks: &[Rc<dyn RingCloseHook>]) -> Result<()> {
        let start = Instant::now();
        let deadline = start + self.close_timeout.get();
        let mut aborted = false;
        self.backend.cancel_all(&self.ops)?;
        let mut cancelled_at = Instant::now();
        while self.ops.borrow().live > 0 && Instant::now() < deadline {
            self.backend.wait(Duration::from_millis(100), &self.ops)?;
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
                self.backend.cancel_again(&self.ops)?;
                cancelled_at = Instant::now();
            }
        }
        Ok(())
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
