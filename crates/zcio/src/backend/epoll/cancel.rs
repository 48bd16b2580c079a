//! Cancelling ops on the epoll backend: an op still queued, waiting for
//! readiness, or linked behind another ends at once with `-ECANCELED`; an
//! op a worker runs, or a zero-copy send waiting for its notification,
//! ends by itself (as on io_uring, which can't stop those either).

use std::cell::RefCell;
use std::os::fd::RawFd;

use super::instance::Epoll;
use crate::table::Ops;

impl Epoll {
    pub(crate) fn cancel(&self, user_data: u64, ops: &RefCell<Ops>) {
        self.waking(|| self.cancel_now(user_data, ops));
    }

    fn cancel_now(&self, user_data: u64, ops: &RefCell<Ops>) {
        self.start_queued(ops);
        let mut touched = None;
        let mut found = false;
        {
            let mut q = self.queued.borrow_mut();
            let before = q.len();
            q.retain(|&u| u != user_data);
            found |= q.len() != before;
        }
        if let Some(r) = self.reactor.borrow_mut().as_mut() {
            for (&fd, w) in r.fds.iter_mut() {
                for q in [&mut w.readers, &mut w.writers] {
                    let before = q.len();
                    q.retain(|&u| u != user_data);
                    if q.len() != before {
                        found = true;
                        touched = Some(fd);
                    }
                }
            }
        }
        {
            let mut held = self.held.borrow_mut();
            let pred = held.iter().find(|(_, &v)| v == user_data).map(|(&k, _)| k);
            if let Some(k) = pred {
                held.remove(&k);
                found = true;
            }
        }
        if found {
            self.fail(user_data, libc::ECANCELED, ops);
        }
        if let Some(fd) = touched {
            // The op behind it may be able to go now.
            self.arm(fd, ops);
        }
    }

    /// Cancels every op on `fd` that has not reached the kernel for good,
    /// and forgets the descriptor (its socket is closing).
    pub(crate) fn cancel_fd(&self, fd: RawFd, ops: &RefCell<Ops>) {
        self.waking(|| self.cancel_fd_now(fd, ops));
    }

    fn cancel_fd_now(&self, fd: RawFd, ops: &RefCell<Ops>) {
        self.start_queued(ops);
        let mut victims: Vec<u64> = Vec::new();
        if let Some(r) = self.reactor.borrow_mut().as_mut() {
            if let Some(w) = r.fds.get_mut(&fd) {
                victims.extend(w.readers.drain(..));
                victims.extend(w.writers.drain(..));
            }
        }
        {
            let mut table = ops.borrow_mut();
            let mut on_fd = |u: u64| table.get_mut(u).is_some_and(|op| op.fd() == fd);
            victims.extend(self.queued.borrow().iter().copied().filter(|&u| on_fd(u)));
            victims.extend(self.held.borrow().values().copied().filter(|&u| on_fd(u)));
        }
        for u in victims {
            self.cancel_one(u, ops);
        }
        if let Some(r) = self.reactor.borrow_mut().as_mut() {
            r.forget(fd);
        }
    }

    /// Cancels everything not yet with a worker or the error queue.
    pub(crate) fn cancel_all(&self, ops: &RefCell<Ops>) {
        self.waking(|| self.cancel_all_now(ops));
    }

    fn cancel_all_now(&self, ops: &RefCell<Ops>) {
        self.start_queued(ops);
        let mut victims: Vec<u64> = self.queued.borrow_mut().drain(..).collect();
        if let Some(r) = self.reactor.borrow_mut().as_mut() {
            for w in r.fds.values_mut() {
                victims.extend(w.readers.drain(..));
                victims.extend(w.writers.drain(..));
            }
        }
        victims.extend(self.held.borrow().values().copied());
        for u in victims {
            self.cancel_one(u, ops);
        }
    }

    /// Runs a cancel, which is called from JavaScript, outside the event
    /// loop's round: whatever it posts (the cancelled ops' completions, and
    /// those of the queued ops it starts first, such as an end of stream
    /// found at once) wakes the loop to take it, as the kernel's eventfd
    /// signal does for io_uring's cancels.
    fn waking(&self, cancel: impl FnOnce()) {
        let before = self.ready.borrow().len();
        cancel();
        if self.ready.borrow().len() > before {
            self.workers.signal();
        }
    }

    /// Starts what is queued before a cancel, as io_uring hands queued
    /// entries to the kernel before the cancel behind them: a send queued
    /// just before a close still sends what the socket takes at once.
    fn start_queued(&self, ops: &RefCell<Ops>) {
        if self.reactor.borrow().is_some() {
            let _ = self.submit(ops);
        }
    }

    /// Ends one op with `-ECANCELED`, once, wherever it was.
    fn cancel_one(&self, user_data: u64, ops: &RefCell<Ops>) {
        self.queued.borrow_mut().retain(|&u| u != user_data);
        {
            let mut held = self.held.borrow_mut();
            let pred = held.iter().find(|(_, &v)| v == user_data).map(|(&k, _)| k);
            if let Some(k) = pred {
                held.remove(&k);
            }
        }
        // A completion already posted for it means it was cancelled through
        // its chain: don't end it twice.
        let posted = self
            .ready
            .borrow()
            .iter()
            .any(|c| c.user_data == user_data && !io_uring::cqueue::more(c.flags));
        if !posted {
            self.fail(user_data, libc::ECANCELED, ops);
        }
    }
}
