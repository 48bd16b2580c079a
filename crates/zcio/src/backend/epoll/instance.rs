//! The epoll backend of one ring: the epoll instance, its worker threads,
//! and the ops queued, held by a link or posted.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use super::blocking::Workers;
use super::reactor::Reactor;
use crate::backend::raw_cqe::RawCqe;
use crate::error::{Error, Result};
use crate::op::poll::Interest;
use crate::sys::io_calls;
use crate::table::Ops;

/// The epoll token of the workers' eventfd.
const WAKE: u64 = u64::MAX;
/// Completions one multishot op posts in a row before others get a turn.
pub(super) const MULTISHOT_BURST: u32 = 32;

pub(crate) struct Epoll {
    pub(super) reactor: RefCell<Option<Reactor>>,
    pub(super) workers: Workers,
    /// Ops pushed and not started yet; `submit` starts them.
    pub(super) queued: RefCell<VecDeque<u64>>,
    /// Completions posted and not taken yet.
    pub(super) ready: RefCell<Vec<RawCqe>>,
    /// Linked ops: the op that starts once the key completed in full.
    pub(super) held: RefCell<HashMap<u64, u64>>,
    /// The last op pushed, when it links to the next.
    pub(super) link_prev: Cell<Option<u64>>,
    /// Jobs on worker threads.
    pub(super) in_workers: Cell<u32>,
    /// Buffer group ids in use on this ring.
    pub(super) groups: RefCell<HashSet<u16>>,
    pub(super) scratch: RefCell<Vec<(u64, i32)>>,
    /// An event loop watches the epoll instance and says when it woke
    /// (`clear_eventfd`): `take` looks for readiness only then.
    wake_driven: Cell<bool>,
    poll_due: Cell<bool>,
}

fn closed() -> Error {
    Error::Closed { what: "ring" }
}

impl Epoll {
    /// An epoll instance and (started on demand) up to `workers` threads.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] (`epoll_create1`, `eventfd`, `epoll_ctl`).
    pub(crate) fn new(workers: u32) -> Result<Epoll> {
        let epfd = io_calls::epoll_create().map_err(|e| Error::sys("epoll_create1", e))?;
        let workers = Workers::new(workers).map_err(|e| Error::sys("eventfd", e))?;
        let r = io_calls::epoll_ctl(
            &epfd,
            libc::EPOLL_CTL_ADD,
            workers.wake_fd(),
            libc::EPOLLIN as u32,
            WAKE,
        );
        if r < 0 {
            return Err(Error::sys(
                "epoll_ctl",
                std::io::Error::from_raw_os_error(-r),
            ));
        }
        Ok(Epoll {
            reactor: RefCell::new(Some(Reactor {
                epfd,
                fds: HashMap::new(),
            })),
            workers,
            queued: RefCell::default(),
            ready: RefCell::default(),
            held: RefCell::default(),
            link_prev: Cell::new(None),
            in_workers: Cell::new(0),
            groups: RefCell::default(),
            scratch: RefCell::default(),
            wake_driven: Cell::new(false),
            poll_due: Cell::new(true),
        })
    }

    pub(crate) fn eventfd(&self) -> RawFd {
        self.reactor
            .borrow()
            .as_ref()
            .map_or(-1, |r| r.epfd.as_raw_fd())
    }

    /// The event loop saw the epoll instance readable: the next `take`
    /// looks for readiness.
    pub(crate) fn clear_eventfd(&self) -> bool {
        let open = self.reactor.borrow().is_some();
        self.poll_due.set(open);
        open
    }

    /// See [`Ring::set_wake_driven`](crate::Ring::set_wake_driven).
    pub(crate) fn set_wake_driven(&self, on: bool) {
        self.wake_driven.set(on);
        self.poll_due.set(true);
    }

    pub(crate) fn signal_eventfd(&self) {
        if self.reactor.borrow().is_some() {
            self.workers.signal();
        }
    }

    pub(crate) fn pending(&self) -> u32 {
        self.queued.borrow().len() as u32
    }

    pub(crate) fn has_work(&self) -> bool {
        if !self.queued.borrow().is_empty() || !self.ready.borrow().is_empty() {
            return true;
        }
        let fd = self.eventfd();
        let ready = fd >= 0 && io_calls::readable_now(fd);
        if ready {
            self.poll_due.set(true);
        }
        ready
    }

    /// Queues the op stored under `user_data`; it starts at the next
    /// `submit`, or (linked) once the op before it completed in full.
    pub(crate) fn push(&self, user_data: u64, ops: &RefCell<Ops>) -> Result<()> {
        if self.reactor.borrow().is_none() {
            return Err(closed());
        }
        let links = ops
            .borrow_mut()
            .get_mut(user_data)
            .is_some_and(|op| op.links());
        match self.link_prev.get() {
            Some(prev) => {
                self.held.borrow_mut().insert(prev, user_data);
            }
            None => self.queued.borrow_mut().push_back(user_data),
        }
        self.link_prev.set(links.then_some(user_data));
        Ok(())
    }

    /// Whether an op on `fd` for `interest` attempted now, instead of at
    /// the next `submit`, keeps the order of the ops before it: nothing is
    /// queued or held by a link, and no op waits on `fd` for `interest`.
    pub(crate) fn runs_now(&self, fd: RawFd, interest: Interest) -> bool {
        if !self.queued.borrow().is_empty()
            || self.link_prev.get().is_some()
            || !self.held.borrow().is_empty()
        {
            return false;
        }
        let mut reactor = self.reactor.borrow_mut();
        let Some(r) = reactor.as_mut() else {
            return false;
        };
        r.fds
            .get_mut(&fd)
            .is_none_or(|w| w.queue(interest).is_empty())
    }

    /// A chain whose last op links to one that never came ends here.
    pub(crate) fn end_chain(&self) {
        self.link_prev.set(None);
    }

    /// Starts every queued op.
    pub(crate) fn submit(&self, ops: &RefCell<Ops>) -> Result<u32> {
        if self.reactor.borrow().is_none() {
            return Err(closed());
        }
        // A chain still open at submission ends here, as on io_uring.
        self.end_chain();
        let mut started = 0;
        loop {
            let next = self.queued.borrow_mut().pop_front();
            let Some(user_data) = next else { break };
            self.start(user_data, ops);
            started += 1;
        }
        Ok(started)
    }

    pub(crate) fn submit_and_wait(&self, want: u32, ops: &RefCell<Ops>) -> Result<u32> {
        let n = self.submit(ops)?;
        while (self.ready.borrow().len() as u32) < want {
            if !self.queued.borrow().is_empty() {
                self.submit(ops)?;
                continue;
            }
            self.process(ops, -1)?;
        }
        Ok(n)
    }

    /// Takes what is ready: readiness events (without waiting), workers'
    /// results, then every completion posted.
    pub(crate) fn take(&self, ops: &RefCell<Ops>, out: &mut Vec<RawCqe>) {
        if !self.wake_driven.get() || self.poll_due.replace(false) {
            let _ = self.process(ops, 0);
        }
        out.append(&mut self.ready.borrow_mut());
    }

    /// Waits up to `timeout` for readiness, and runs what became ready.
    pub(crate) fn wait(&self, timeout: Duration, ops: &RefCell<Ops>) -> Result<()> {
        if !self.queued.borrow().is_empty() {
            self.submit(ops)?;
        }
        if self.ready.borrow().is_empty() {
            let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
            self.process(ops, ms)?;
        }
        Ok(())
    }

    pub(super) fn post(&self, user_data: u64, result: i32, flags: u32) {
        self.ready.borrow_mut().push(RawCqe {
            user_data,
            result,
            flags,
        });
    }

    /// One `epoll_wait` (`timeout_ms`: 0 polls, -1 waits) and what it found.
    fn process(&self, ops: &RefCell<Ops>, timeout_ms: i32) -> Result<()> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        let n = {
            let reactor = self.reactor.borrow();
            let r = reactor.as_ref().ok_or_else(closed)?;
            io_calls::epoll_wait(&r.epfd, &mut events, timeout_ms)
        };
        for ev in &events[..n] {
            let (token, bits) = (ev.u64, ev.events);
            if token == WAKE {
                self.finished_jobs();
            } else {
                self.ready_fd(token as RawFd, bits, ops);
            }
        }
        Ok(())
    }

    /// Posts the results of the workers' finished jobs.
    fn finished_jobs(&self) {
        self.workers.clear();
        let mut done = std::mem::take(&mut *self.scratch.borrow_mut());
        self.workers.take(&mut done);
        for &(user_data, result) in &done {
            self.in_workers.set(self.in_workers.get() - 1);
            self.post(user_data, result, 0);
        }
        done.clear();
        *self.scratch.borrow_mut() = done;
    }

    /// Runs what became possible on `fd`: zero-copy notifications from its
    /// error queue, then its readers and writers; re-arms it.
    fn ready_fd(&self, fd: RawFd, bits: u32, ops: &RefCell<Ops>) {
        let err = bits & libc::EPOLLERR as u32 != 0;
        if err {
            let mut ready = self.ready.borrow_mut();
            if let Some(r) = self.reactor.borrow_mut().as_mut() {
                r.notices(fd, &mut ready);
            }
        }
        let hup = (libc::EPOLLHUP | libc::EPOLLERR) as u32;
        let read = bits & (libc::EPOLLIN as u32 | libc::EPOLLRDHUP as u32 | hup) != 0;
        let write = bits & (libc::EPOLLOUT as u32 | hup) != 0;
        // An event nobody was waiting for: the interest kept for the next
        // op (see `Reactor::arm`) found none, so it goes now.
        let mut unserved = false;
        if let Some(w) = self
            .reactor
            .borrow_mut()
            .as_mut()
            .and_then(|r| r.fds.get_mut(&fd))
        {
            w.blocked_in &= !read;
            w.blocked_out &= !write;
            unserved = (read && w.readers.is_empty()) || (write && w.writers.is_empty());
        }
        if read {
            self.run_queue(fd, Interest::Read, ops);
        }
        if write {
            self.run_queue(fd, Interest::Write, ops);
        }
        if unserved {
            self.settle_fd(fd, ops);
        } else {
            self.arm(fd, ops);
        }
    }

    /// Forgets descriptor `fd` (about to be closed, no op uses it).
    pub(crate) fn forget_fd(&self, fd: RawFd) {
        if let Some(r) = self.reactor.borrow_mut().as_mut() {
            r.forget(fd);
        }
    }

    /// Claims buffer group `id` (false: in use on this ring).
    pub(crate) fn claim_group(&self, id: u16) -> bool {
        self.groups.borrow_mut().insert(id)
    }

    pub(crate) fn release_group(&self, id: u16) {
        self.groups.borrow_mut().remove(&id);
    }

    /// Closes the epoll instance and lets the workers exit.
    pub(crate) fn close(&self) {
        self.workers.stop();
        drop(self.reactor.borrow_mut().take());
        self.queued.borrow_mut().clear();
        self.held.borrow_mut().clear();
    }
}
