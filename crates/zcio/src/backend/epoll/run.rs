//! Attempting ops: starting them, running a descriptor's waiting ops when
//! it is ready, and what each attempt's outcome turns into (completions, a
//! wait, a worker's job, a zero-copy send waiting for its notification).

use std::cell::RefCell;
use std::os::fd::RawFd;

use super::instance::{Epoll, MULTISHOT_BURST};
use super::reactor::ZcWait;
use crate::op::dispatch::Op;
use crate::op::poll::{Attempt, Interest, F_MORE, F_NOTIF};
use crate::op::zc_flags::NOTIF_USAGE_ZC_COPIED;
use crate::table::Ops;

/// Where an op is after an attempt.
enum Step {
    /// Ended, or handed to a worker or to the error queue: off its queue.
    Off,
    /// Waits (at the front of its queue) for its descriptor.
    Wait(RawFd, Interest),
    /// A multishot op posted a burst: others get a turn first.
    Again,
}

impl Epoll {
    /// Starts an op: behind the ops already waiting in its descriptor's
    /// queue, or attempted now.
    pub(super) fn start(&self, user_data: u64, ops: &RefCell<Ops>) {
        let place = {
            let mut ops = ops.borrow_mut();
            let Some(op) = ops.get_mut(user_data) else {
                return;
            };
            op.poll_interest().map(|i| (op.fd(), i, op.on_own_socket()))
        };
        if let Some((fd, interest, _)) = place {
            let mut reactor = self.reactor.borrow_mut();
            if let Some(w) = reactor.as_mut().and_then(|r| r.fds.get_mut(&fd)) {
                // Behind the ops started before it; or, where the descriptor
                // was not ready when last tried, waiting without a try.
                let blocked = w.blocked(interest);
                let q = w.queue(interest);
                if !q.is_empty() || blocked {
                    q.push_back(user_data);
                    drop(reactor);
                    self.arm(fd, ops);
                    return;
                }
            }
        }
        match self.drive(user_data, ops) {
            Step::Off => {}
            Step::Wait(fd, interest) => {
                if let Some(r) = self.reactor.borrow_mut().as_mut() {
                    let w = r.entry(fd);
                    w.owned = place.is_some_and(|p| p.2);
                    w.queue(interest).push_back(user_data);
                }
                self.arm(fd, ops);
            }
            Step::Again => {
                self.queued.borrow_mut().push_back(user_data);
                self.workers.signal();
            }
        }
    }

    /// Runs the ops waiting on `fd` for `interest`, in order, until one has
    /// to wait again.
    pub(super) fn run_queue(&self, fd: RawFd, interest: Interest, ops: &RefCell<Ops>) {
        loop {
            let front = {
                let reactor = self.reactor.borrow();
                let w = reactor.as_ref().and_then(|r| r.fds.get(&fd));
                match w.and_then(|w| match interest {
                    Interest::Read => w.readers.front().copied(),
                    Interest::Write => w.writers.front().copied(),
                }) {
                    Some(ud) => ud,
                    None => return,
                }
            };
            match self.drive(front, ops) {
                Step::Off => {
                    if let Some(r) = self.reactor.borrow_mut().as_mut() {
                        let q = r.entry(fd).queue(interest);
                        if q.front() == Some(&front) {
                            q.pop_front();
                        }
                    }
                }
                // Re-armed by the caller: still ready, it comes back at once.
                Step::Wait(..) | Step::Again => return,
            }
        }
    }

    /// Registers `fd` for what its ops wait for (lazily, see
    /// `Reactor::arm`); a descriptor that can't be polled (a regular file
    /// reached through a stream-like path) has its ops done by workers.
    pub(super) fn arm(&self, fd: RawFd, ops: &RefCell<Ops>) {
        self.arm_with(fd, ops, true);
    }

    /// As `arm`, dropping at once what no op waits for (the descriptor has
    /// just reported).
    pub(super) fn settle_fd(&self, fd: RawFd, ops: &RefCell<Ops>) {
        self.arm_with(fd, ops, false);
    }

    fn arm_with(&self, fd: RawFd, ops: &RefCell<Ops>, lazy: bool) {
        let failed = {
            let mut reactor = self.reactor.borrow_mut();
            let Some(r) = reactor.as_mut() else { return };
            match r.arm(fd, lazy) {
                Ok(()) => None,
                Err(errno) => {
                    let w = r.entry(fd);
                    let mut waiting: Vec<u64> = w.readers.drain(..).collect();
                    waiting.extend(w.writers.drain(..));
                    Some((errno, waiting))
                }
            }
        };
        let Some((errno, waiting)) = failed else {
            return;
        };
        for ud in waiting {
            let plain = match ops.borrow_mut().get_mut(ud) {
                Some(Op::Fixed(f)) => {
                    f.plain = true;
                    true
                }
                _ => false,
            };
            if plain {
                self.start(ud, ops);
            } else {
                self.fail(ud, errno, ops);
            }
        }
    }

    /// Attempts the op until it waits, ends or has posted a burst.
    fn drive(&self, user_data: u64, ops: &RefCell<Ops>) -> Step {
        let mut burst = 0;
        loop {
            let (attempt, expected, fd) = {
                let mut table = ops.borrow_mut();
                let Some(op) = table.get_mut(user_data) else {
                    return Step::Off;
                };
                let fd = op.fd();
                let mut reactor = self.reactor.borrow_mut();
                let Some(r) = reactor.as_mut() else {
                    return Step::Off;
                };
                let mut flags = r.fds.get(&fd).map(|w| w.flags).unwrap_or_default();
                let before = flags;
                let a = op.attempt(&mut flags);
                if flags != before {
                    r.entry(fd).flags = flags;
                }
                (a, op.expected(), fd)
            };
            match attempt {
                Attempt::More {
                    result,
                    flags,
                    drained,
                } => {
                    self.post(user_data, result, flags | F_MORE);
                    if drained {
                        if let Some(r) = self.reactor.borrow_mut().as_mut() {
                            r.entry(fd).blocked_in = true;
                        }
                        return Step::Wait(fd, Interest::Read);
                    }
                    burst += 1;
                    if burst == MULTISHOT_BURST {
                        return Step::Again;
                    }
                }
                Attempt::Wait { fd, interest } => {
                    if let Some(r) = self.reactor.borrow_mut().as_mut() {
                        let w = r.entry(fd);
                        match interest {
                            Interest::Read => w.blocked_in = true,
                            Interest::Write => w.blocked_out = true,
                        }
                    }
                    return Step::Wait(fd, interest);
                }
                Attempt::Blocking(job) => {
                    self.in_workers.set(self.in_workers.get() + 1);
                    self.workers.submit(user_data, job);
                    return Step::Off;
                }
                Attempt::DoneDrained { result, flags } => {
                    if let Some(r) = self.reactor.borrow_mut().as_mut() {
                        r.entry(fd).blocked_in = true;
                    }
                    let end = Attempt::Done { result, flags };
                    self.ended(user_data, end, expected, fd, ops);
                    return Step::Off;
                }
                end => {
                    self.ended(user_data, end, expected, fd, ops);
                    return Step::Off;
                }
            }
        }
    }

    /// An op's attempt ended it (`Done`), or ended a zero-copy send's first
    /// phase (`Sent`): its completion, then the op linked after it.
    fn ended(&self, user_data: u64, end: Attempt, expected: i32, fd: RawFd, ops: &RefCell<Ops>) {
        match end {
            Attempt::Done { result, flags } => {
                self.post(user_data, result, flags);
                self.chain(user_data, result == expected, ops);
            }
            Attempt::Sent {
                result,
                calls,
                copied,
            } => {
                self.post(user_data, result, F_MORE);
                self.chain(user_data, result == expected, ops);
                self.await_notice(user_data, fd, calls, copied, ops);
            }
            // Callers pass only the two ends.
            _ => debug_assert!(false, "not an end: {end:?}"),
        }
    }

    /// A zero-copy send made `calls` send calls: its notification comes
    /// once the error queue has notified each (at once if it made none).
    fn await_notice(
        &self,
        user_data: u64,
        fd: RawFd,
        calls: u32,
        copied: bool,
        ops: &RefCell<Ops>,
    ) {
        if calls == 0 {
            self.post(user_data, notif_result(copied), F_NOTIF);
            return;
        }
        if let Some(r) = self.reactor.borrow_mut().as_mut() {
            let w = r.entry(fd);
            w.zc.push(ZcWait {
                user_data,
                first: w.next_id,
                calls,
                left: calls,
                copied,
            });
            w.next_id = w.next_id.wrapping_add(calls);
        }
        self.arm(fd, ops);
    }

    /// An op ended with `full` (its whole length) or not: the op linked to
    /// it starts, or is cancelled with the rest of its chain.
    pub(super) fn chain(&self, user_data: u64, full: bool, ops: &RefCell<Ops>) {
        let next = self.held.borrow_mut().remove(&user_data);
        let Some(next) = next else { return };
        if full {
            self.queued.borrow_mut().push_back(next);
        } else {
            self.fail(next, libc::ECANCELED, ops);
        }
    }

    /// Gives up an op that waits (or never started) with `errno`, as
    /// io_uring would: what it did stands (see `Op::abandoned`), and the ops
    /// linked after it are cancelled.
    pub(super) fn fail(&self, user_data: u64, errno: i32, ops: &RefCell<Ops>) {
        let outcome = {
            let mut table = ops.borrow_mut();
            let Some(op) = table.get_mut(user_data) else {
                return;
            };
            (op.abandoned(errno), op.expected(), op.fd())
        };
        let (end, expected, fd) = outcome;
        self.ended(user_data, end, expected, fd, ops);
    }
}

fn notif_result(copied: bool) -> i32 {
    if copied {
        NOTIF_USAGE_ZC_COPIED as i32
    } else {
        0
    }
}
