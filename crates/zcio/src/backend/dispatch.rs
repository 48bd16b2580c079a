//! The backend of one ring: each call goes to io_uring or to epoll.

use std::cell::RefCell;
use std::os::fd::RawFd;
use std::time::Duration;

use super::epoll::instance::Epoll;
use super::kind::BackendKind;
use super::raw_cqe::RawCqe;
use super::uring::instance::Uring;
use crate::error::Result;
use crate::ring::options::RingFeatures;
use crate::table::Ops;

/// The backend of one ring.
pub(crate) enum Backend {
    Uring(Uring),
    Epoll(Epoll),
    /// Scripted by tests (see `fake`).
    #[cfg(test)]
    Fake(super::fake::Fake),
}

impl Backend {
    pub(crate) fn kind(&self) -> BackendKind {
        match self {
            Backend::Uring(_) => BackendKind::IoUring,
            Backend::Epoll(_) => BackendKind::Epoll,
            #[cfg(test)]
            Backend::Fake(_) => BackendKind::Epoll,
        }
    }

    pub(crate) fn features(&self) -> RingFeatures {
        match self {
            Backend::Uring(u) => u.features,
            Backend::Epoll(_) => RingFeatures::default(),
            #[cfg(test)]
            Backend::Fake(_) => RingFeatures::default(),
        }
    }

    /// The descriptor an event loop watches: readable when `submit` or
    /// `take` has something to do.
    pub(crate) fn eventfd(&self) -> RawFd {
        match self {
            Backend::Uring(u) => u.eventfd(),
            Backend::Epoll(e) => e.eventfd(),
            #[cfg(test)]
            Backend::Fake(_) => -1,
        }
    }

    pub(crate) fn clear_eventfd(&self) -> bool {
        match self {
            Backend::Uring(u) => u.clear_eventfd(),
            Backend::Epoll(e) => e.clear_eventfd(),
            #[cfg(test)]
            Backend::Fake(_) => false,
        }
    }

    pub(crate) fn signal_eventfd(&self) {
        match self {
            Backend::Uring(u) => u.signal_eventfd(),
            Backend::Epoll(e) => e.signal_eventfd(),
            #[cfg(test)]
            Backend::Fake(_) => {}
        }
    }

    pub(crate) fn set_eventfd_enabled(&self, on: bool) {
        match self {
            Backend::Uring(u) => u.set_eventfd_enabled(on),
            // Nothing signals it while the loop reaps anyway.
            Backend::Epoll(_) => {}
            #[cfg(test)]
            Backend::Fake(_) => {}
        }
    }

    /// Operations queued but not yet started.
    pub(crate) fn pending(&self) -> u32 {
        match self {
            Backend::Uring(u) => u.pending(),
            Backend::Epoll(e) => e.pending(),
            #[cfg(test)]
            Backend::Fake(f) => f.pending(),
        }
    }

    pub(crate) fn has_work(&self, live: u32) -> bool {
        match self {
            Backend::Uring(u) => u.has_work(live),
            Backend::Epoll(e) => e.has_work(),
            #[cfg(test)]
            Backend::Fake(f) => f.has_work(),
        }
    }

    pub(crate) fn reserve(&self, n: u32, _ops: &RefCell<Ops>) -> Result<()> {
        match self {
            Backend::Uring(u) => u.reserve(n),
            // Any number of ops can be queued.
            Backend::Epoll(_) => Ok(()),
            #[cfg(test)]
            Backend::Fake(_) => Ok(()),
        }
    }

    /// Starts (or queues) the op stored under `user_data`.
    pub(crate) fn push(&self, user_data: u64, ops: &RefCell<Ops>) -> Result<()> {
        match self {
            Backend::Epoll(e) => e.push(user_data, ops),
            #[cfg(test)]
            Backend::Fake(f) => {
                f.push(user_data);
                Ok(())
            }
            Backend::Uring(u) => {
                let (entry, linked) = {
                    let mut ops = ops.borrow_mut();
                    let op = ops.get_mut(user_data).expect("just inserted");
                    (op.uring_entry().user_data(user_data), op.links())
                };
                // SAFETY: whatever the entry points at is owned by the op
                // (see the rule in `op`), stored in the table under
                // `user_data` until its final completion.
                unsafe { u.push(&entry, linked) }
            }
        }
    }

    pub(crate) fn submit(&self, ops: &RefCell<Ops>) -> Result<u32> {
        match self {
            Backend::Uring(u) => u.submit(),
            Backend::Epoll(e) => e.submit(ops),
            #[cfg(test)]
            Backend::Fake(f) => Ok(f.submit()),
        }
    }

    pub(crate) fn submit_and_wait(&self, want: u32, ops: &RefCell<Ops>) -> Result<u32> {
        match self {
            Backend::Uring(u) => u.submit_and_wait(want),
            Backend::Epoll(e) => e.submit_and_wait(want, ops),
            #[cfg(test)]
            Backend::Fake(f) => Ok(f.submit()),
        }
    }

    /// Moves the completions posted so far into `out`.
    pub(crate) fn take(&self, ops: &RefCell<Ops>, out: &mut Vec<RawCqe>) {
        match self {
            Backend::Uring(u) => u.take(out),
            Backend::Epoll(e) => e.take(ops, out),
            #[cfg(test)]
            Backend::Fake(f) => f.take(out),
        }
    }

    /// Cancels one operation; its completion still comes (`-ECANCELED`
    /// unless it had finished).
    pub(crate) fn cancel(&self, user_data: u64, ops: &RefCell<Ops>) -> Result<()> {
        match self {
            Backend::Uring(u) => u.cancel(user_data),
            Backend::Epoll(e) => {
                e.cancel(user_data, ops);
                Ok(())
            }
            #[cfg(test)]
            Backend::Fake(f) => {
                f.cancel(&[user_data]);
                Ok(())
            }
        }
    }

    pub(crate) fn cancel_fd(&self, fd: RawFd, ops: &RefCell<Ops>) -> Result<()> {
        match self {
            Backend::Uring(u) => u.cancel_fd(fd),
            Backend::Epoll(e) => {
                e.cancel_fd(fd, ops);
                Ok(())
            }
            #[cfg(test)]
            Backend::Fake(f) => {
                let on_fd = ops.borrow_mut().user_data_on(fd);
                f.cancel(&on_fd);
                Ok(())
            }
        }
    }

    /// Ends a chain of linked operations whose last queued entry links to
    /// one that never came.
    pub(crate) fn end_chain(&self) -> Result<()> {
        match self {
            Backend::Uring(u) => u.end_chain_with_nop(),
            Backend::Epoll(e) => {
                e.end_chain();
                Ok(())
            }
            #[cfg(test)]
            Backend::Fake(_) => Ok(()),
        }
    }

    /// Cancels everything in flight (the ring is closing).
    pub(crate) fn cancel_all(&self, ops: &RefCell<Ops>) -> Result<()> {
        match self {
            Backend::Uring(u) => u.cancel_all(),
            Backend::Epoll(e) => {
                e.cancel_all(ops);
                Ok(())
            }
            #[cfg(test)]
            Backend::Fake(f) => {
                let all = ops.borrow_mut().user_data_on(-2);
                f.cancel(&all);
                Ok(())
            }
        }
    }

    /// Asks again to cancel what escaped the first cancel.
    pub(crate) fn cancel_again(&self, ops: &RefCell<Ops>) -> Result<()> {
        match self {
            // What is queued was handed over by the first cancel.
            Backend::Uring(u) => u.queue_cancel_all(),
            // Cancelling what waits is the same the second time.
            _ => self.cancel_all(ops),
        }
    }

    /// Waits up to `timeout` for a completion (the ring is closing).
    pub(crate) fn wait(&self, timeout: Duration, ops: &RefCell<Ops>) -> Result<()> {
        match self {
            Backend::Uring(u) => u.wait(timeout),
            Backend::Epoll(e) => e.wait(timeout, ops),
            #[cfg(test)]
            Backend::Fake(f) => {
                f.wait(timeout);
                Ok(())
            }
        }
    }

    /// Releases the backend's descriptors and threads.
    pub(crate) fn close(&self) {
        match self {
            Backend::Uring(u) => u.close(),
            Backend::Epoll(e) => e.close(),
            #[cfg(test)]
            Backend::Fake(f) => f.closed.set(true),
        }
    }
}
