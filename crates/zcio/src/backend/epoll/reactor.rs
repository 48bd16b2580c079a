//! The epoll backend's readiness table: per descriptor, the ops waiting to
//! read and to write (in the order they were started: sends never overtake
//! each other) and the zero-copy sends waiting for their notification.
//!
//! Descriptors are registered level-triggered with exactly the interest
//! their waiting ops have: the registration changes (`EPOLL_CTL_MOD`) only
//! when that interest does, so a multishot receive costs no `epoll_ctl` per
//! message, and a descriptor nothing waits on leaves the set
//! (`EPOLL_CTL_DEL`): a paused socket whose data arrives wakes nobody, and a
//! hung-up one does not report its hang-up for ever. Errors (`EPOLLERR`,
//! the error queue of zero-copy notifications) are reported while a
//! descriptor is in the set.

use std::collections::{HashMap, VecDeque};
use std::os::fd::{OwnedFd, RawFd};

use crate::backend::raw_cqe::RawCqe;
use crate::op::poll::{FdFlags, Interest, F_NOTIF};
use crate::op::zc_flags::NOTIF_USAGE_ZC_COPIED;
use crate::sys::io_calls;

/// A zero-copy send whose memory the kernel still holds: `calls` send
/// calls numbered from `first` (the socket's own count), `left` of them
/// not notified yet.
pub(super) struct ZcWait {
    pub(super) user_data: u64,
    pub(super) first: u32,
    pub(super) calls: u32,
    pub(super) left: u32,
    pub(super) copied: bool,
}

#[derive(Default)]
pub(super) struct FdWait {
    pub(super) readers: VecDeque<u64>,
    pub(super) writers: VecDeque<u64>,
    pub(super) flags: FdFlags,
    pub(super) zc: Vec<ZcWait>,
    /// The number the socket gives its next zero-copy send call.
    pub(super) next_id: u32,
    /// In the epoll set, with these events.
    registered: bool,
    events: u32,
    /// An attempt found it not readable (writable) and no event said
    /// otherwise since: a new op waits without trying (the level-triggered
    /// registration reports readiness that comes meanwhile).
    pub(super) blocked_in: bool,
    pub(super) blocked_out: bool,
    /// The descriptor is a zcio socket's, which tells the backend when it
    /// closes (`forget`): only then is what is known of it kept between
    /// ops. An application's descriptor (a pipe read into a pool buffer)
    /// may be closed and its number reused at any time.
    pub(super) owned: bool,
}

impl FdWait {
    /// Whether a new op for `interest` can only wait: the descriptor is in
    /// the set for it and was not ready when last tried.
    pub(super) fn blocked(&self, interest: Interest) -> bool {
        if !self.owned {
            return false;
        }
        match interest {
            Interest::Read => self.blocked_in && self.events & libc::EPOLLIN as u32 != 0,
            Interest::Write => self.blocked_out && self.events & libc::EPOLLOUT as u32 != 0,
        }
    }

    pub(super) fn queue(&mut self, interest: Interest) -> &mut VecDeque<u64> {
        match interest {
            Interest::Read => &mut self.readers,
            Interest::Write => &mut self.writers,
        }
    }
}

pub(super) struct Reactor {
    pub(super) epfd: OwnedFd,
    pub(super) fds: HashMap<RawFd, FdWait>,
}

impl Reactor {
    pub(super) fn entry(&mut self, fd: RawFd) -> &mut FdWait {
        self.fds.entry(fd).or_default()
    }

    /// Registers `fd` for what its ops wait for now (nothing to do when
    /// that has not changed), or takes it out of the set when nothing waits.
    /// `lazy`: an interest in reading that no op has any more is kept until
    /// the descriptor next reports (the next receive, typically queued at
    /// once, then costs no `epoll_ctl`); interest in writing goes at once (a
    /// writable socket would report at every wait). `Err(errno)` when the
    /// descriptor can't be polled (`EPERM`: a regular file).
    pub(super) fn arm(&mut self, fd: RawFd, lazy: bool) -> Result<(), i32> {
        let Some(w) = self.fds.get_mut(&fd) else {
            return Ok(());
        };
        let read = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
        let mut events = 0;
        if !w.readers.is_empty() {
            events |= read;
        }
        if !w.writers.is_empty() {
            events |= libc::EPOLLOUT as u32;
        }
        if lazy && w.owned && w.registered {
            events |= w.events & read;
        }
        if events == 0 && w.zc.is_empty() {
            if w.registered {
                let _ = io_calls::epoll_ctl(&self.epfd, libc::EPOLL_CTL_DEL, fd, 0, 0);
                w.registered = false;
            }
            return Ok(());
        }
        if w.registered && w.events == events {
            return Ok(());
        }
        let (first, second) = if w.registered {
            (libc::EPOLL_CTL_MOD, libc::EPOLL_CTL_ADD)
        } else {
            (libc::EPOLL_CTL_ADD, libc::EPOLL_CTL_MOD)
        };
        let mut r = io_calls::epoll_ctl(&self.epfd, first, fd, events, fd as u64);
        // The number may have been closed (and dropped from the set) or
        // reused since it was last seen: try the other way.
        if r == -libc::ENOENT || r == -libc::EEXIST {
            r = io_calls::epoll_ctl(&self.epfd, second, fd, events, fd as u64);
        }
        if r < 0 {
            w.registered = false;
            return Err(-r);
        }
        w.registered = true;
        w.events = events;
        Ok(())
    }

    /// Forgets `fd` (its socket is closing): out of the set, unless a
    /// zero-copy send still waits for its notification there.
    pub(super) fn forget(&mut self, fd: RawFd) {
        if let Some(w) = self.fds.get(&fd) {
            if w.zc.is_empty() && w.readers.is_empty() && w.writers.is_empty() {
                if w.registered {
                    let _ = io_calls::epoll_ctl(&self.epfd, libc::EPOLL_CTL_DEL, fd, 0, 0);
                }
                self.fds.remove(&fd);
            }
        }
    }

    /// Reads `fd`'s error queue and posts the notification of each
    /// zero-copy send all of whose calls are notified now.
    pub(super) fn notices(&mut self, fd: RawFd, out: &mut Vec<RawCqe>) {
        let Some(w) = self.fds.get_mut(&fd) else {
            return;
        };
        while !w.zc.is_empty() {
            let n = match io_calls::recv_errqueue(fd) {
                Ok(Some(n)) => n,
                Ok(None) => continue,
                Err(_) => break,
            };
            for z in &mut w.zc {
                let got = overlap(n.lo, n.hi, z.first, z.calls);
                if got > 0 {
                    z.left = z.left.saturating_sub(got);
                    z.copied |= n.copied;
                }
            }
            w.zc.retain(|z| {
                if z.left > 0 {
                    return true;
                }
                let result = if z.copied {
                    NOTIF_USAGE_ZC_COPIED as i32
                } else {
                    0
                };
                out.push(RawCqe {
                    user_data: z.user_data,
                    result,
                    flags: F_NOTIF,
                });
                false
            });
        }
    }
}

/// How many of the `calls` numbers from `first` (wrapping) fall in
/// `lo..=hi` (wrapping).
fn overlap(lo: u32, hi: u32, first: u32, calls: u32) -> u32 {
    if calls == 0 {
        return 0;
    }
    let ranges = |a: u32, b: u32| -> [(u32, u32); 2] {
        if a <= b {
            [(a, b), (1, 0)]
        } else {
            [(a, u32::MAX), (0, b)]
        }
    };
    let last = first.wrapping_add(calls - 1);
    let mut n = 0u64;
    for (a, b) in ranges(lo, hi) {
        for (c, d) in ranges(first, last) {
            if a <= b && c <= d {
                let (s, e) = (a.max(c), b.min(d));
                if s <= e {
                    n += u64::from(e - s) + 1;
                }
            }
        }
    }
    n.min(u64::from(calls)) as u32
}

#[cfg(test)]
mod tests {
    use crate::backend::epoll::reactor::overlap;

    #[test]
    fn notification_ranges_count_their_calls() {
        assert_eq!(overlap(0, 0, 0, 1), 1);
        assert_eq!(overlap(0, 9, 3, 4), 4);
        assert_eq!(overlap(5, 9, 3, 4), 2);
        assert_eq!(overlap(10, 12, 3, 4), 0);
        // Wrapping numbers on both sides.
        assert_eq!(overlap(u32::MAX - 1, 1, u32::MAX, 3), 3);
        assert_eq!(overlap(0, 0, u32::MAX, 2), 1);
    }
}
