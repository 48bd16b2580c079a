//! The epoll backend's worker threads: file transfers that can't be done
//! without blocking (a page-cache miss, `O_DIRECT`) run here.
//!
//! A job carries raw parts only; the op that owns the memory stays in the
//! ring's table until the job's result has been taken on the ring's thread.
//! Threads start on demand up to the pool's size and exit when the ring
//! closes, after the job they are running; the eventfd they signal lives
//! as long as any of them does (it is theirs as much as the ring's), so no
//! thread ever writes to a descriptor number that was reused.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::op::poll::Job;
use crate::sys::{self, io_calls};

/// Worker threads per ring unless the ring's options say otherwise.
pub(crate) const DEFAULT_WORKERS: u32 = 4;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<(u64, Job)>,
    idle: u32,
    threads: u32,
    stop: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    more: Condvar,
    done: Mutex<Vec<(u64, i32)>>,
    wake: OwnedFd,
}

pub(crate) struct Workers {
    /// `None` once stopped: the ring's share of the eventfd is let go (the
    /// threads still running hold theirs until they exit).
    shared: std::cell::RefCell<Option<Arc<Shared>>>,
    max: u32,
}

/// A poisoned lock only means a worker panicked mid-job; the queue itself
/// is still consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Workers {
    pub(crate) fn new(max: u32) -> std::io::Result<Workers> {
        Ok(Workers {
            shared: std::cell::RefCell::new(Some(Arc::new(Shared {
                queue: Mutex::default(),
                more: Condvar::new(),
                done: Mutex::default(),
                wake: sys::eventfd()?,
            }))),
            max: max.max(1),
        })
    }

    fn shared(&self) -> Option<Arc<Shared>> {
        self.shared.borrow().clone()
    }

    /// The eventfd signalled after each job (-1 once stopped).
    pub(crate) fn wake_fd(&self) -> RawFd {
        self.shared().map_or(-1, |s| s.wake.as_raw_fd())
    }

    /// Clears the eventfd.
    pub(crate) fn clear(&self) {
        if let Some(s) = self.shared() {
            sys::eventfd_drain(&s.wake);
        }
    }

    /// Signals the eventfd (a wake-up for the ring's own reasons).
    pub(crate) fn signal(&self) {
        if let Some(s) = self.shared() {
            sys::eventfd_signal(&s.wake);
        }
    }

    /// Runs `job` for the op `user_data` on a worker thread.
    pub(crate) fn submit(&self, user_data: u64, job: Job) {
        let Some(shared) = self.shared() else {
            // Stopped: the ring is closed and refuses new ops first.
            return;
        };
        let mut q = lock(&shared.queue);
        q.jobs.push_back((user_data, job));
        if q.idle == 0 && q.threads < self.max {
            let mine = shared.clone();
            let spawned = std::thread::Builder::new()
                .name("zcio-io".into())
                .spawn(move || work(&mine));
            if spawned.is_ok() {
                q.threads += 1;
            } else if q.threads == 0 {
                // No thread at all: do it here rather than never.
                let (user_data, job) = q.jobs.pop_back().expect("just queued");
                drop(q);
                let r = run(job);
                lock(&shared.done).push((user_data, r));
                sys::eventfd_signal(&shared.wake);
                return;
            }
        }
        drop(q);
        shared.more.notify_one();
    }

    /// Moves the results of finished jobs into `out`.
    pub(crate) fn take(&self, out: &mut Vec<(u64, i32)>) {
        if let Some(s) = self.shared() {
            out.append(&mut lock(&s.done));
        }
    }

    /// Lets the threads exit once the queue is empty, and lets go of the
    /// ring's share of the eventfd; jobs already queued still run (their
    /// ops are still owned by the ring's table, or were leaked with it).
    pub(crate) fn stop(&self) {
        if let Some(s) = self.shared.borrow_mut().take() {
            lock(&s.queue).stop = true;
            s.more.notify_all();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

fn work(shared: &Shared) {
    loop {
        let (user_data, job) = {
            let mut q = lock(&shared.queue);
            loop {
                if let Some(j) = q.jobs.pop_front() {
                    break j;
                }
                if q.stop {
                    q.threads -= 1;
                    return;
                }
                q.idle += 1;
                q = shared.more.wait(q).unwrap_or_else(|p| p.into_inner());
                q.idle -= 1;
            }
        };
        let r = run(job);
        lock(&shared.done).push((user_data, r));
        sys::eventfd_signal(&shared.wake);
    }
}

fn run(job: Job) -> i32 {
    // SAFETY: the job's range lies in memory its op owns until this result
    // has been taken on the ring's thread (see the module's rule).
    unsafe { io_calls::rw_blocking(job.write, job.fd, job.addr as *mut u8, job.len, job.pos) }
}
