//! `io_uring_enter`: handing queued entries to the kernel, waiting for completions.

use std::time::Duration;

use io_uring::types;

use super::busy::busy_is_zero;
use super::instance::Uring;
use crate::error::{Error, Result};

/// `IORING_ENTER_GETEVENTS`.
pub(super) const ENTER_GETEVENTS: u32 = 1;
/// How many times one `io_uring_enter` is retried while the kernel answers
/// `EBUSY`/`EAGAIN` (the completion queue is drained before each retry).
pub(crate) const BUSY_RETRIES: u32 = 8;

impl Uring {
    pub(crate) fn submit(&self) -> Result<u32> {
        // Checked first: the early return below must not hide a closed ring.
        self.with_uring(|_| ())?;
        self.end_chain().or_else(busy_is_zero)?;
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

    /// Whether `submit` or `take` has anything to do now (`live`: the
    /// operations in flight).
    pub(crate) fn has_work(&self, live: u32) -> bool {
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
        .map(|now| now || (!flagged && live > 0))
        .unwrap_or(false)
    }

    pub(crate) fn submit_and_wait(&self, want: u32) -> Result<u32> {
        self.end_chain().or_else(busy_is_zero)?;
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
    pub(crate) fn enter(&self, want: u32, timeout: Option<Duration>) -> Result<u32> {
        let mut busy = 0;
        loop {
            let want = want.saturating_sub(self.backlog.borrow().len() as u32);
            let res = self.enter_once(want, timeout)?;
            let e = match res {
                Ok(n) => {
                    self.pending
                        .set(self.pending.get().saturating_sub(n as u32));
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

    pub(super) fn enter_once(
        &self,
        want: u32,
        timeout: Option<Duration>,
    ) -> Result<std::io::Result<usize>> {
        #[cfg(test)]
        if let Some(errno) = self.inject.borrow_mut().pop_front() {
            self.with_uring(|_| ())?;
            return Ok(Err(std::io::Error::from_raw_os_error(errno)));
        }
        self.with_uring(|uring| {
            // What is in the queue (a chain being held is not, yet).
            let queued = uring.submission().len() as u32;
            let submitter = uring.submitter();
            if let Some(t) = timeout {
                let ts = types::Timespec::new()
                    .sec(t.as_secs())
                    .nsec(t.subsec_nanos());
                let args = types::SubmitArgs::new().timespec(&ts);
                submitter.submit_with_args(want as usize, &args)
            } else if want == 0 && self.features.defer_taskrun {
                // SAFETY: no extra argument is passed (`None`), so the size
                // and pointer given to the kernel are 0 and null.
                unsafe { submitter.enter::<libc::sigset_t>(queued, 0, ENTER_GETEVENTS, None) }
            } else {
                submitter.submit_and_wait(want as usize)
            }
        })
    }
}
