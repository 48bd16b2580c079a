//! Unit tests of the ring's submission and enter paths (with injected errors).

use std::collections::HashSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::enter::BUSY_RETRIES;
use super::*;
use crate::{probe, RegisteredBufferPool};

/// A ring with a one-entry submission queue, a one-buffer pool with its
/// buffer acquired, and `/dev/zero`; `None` (and a note) without io_uring.
fn setup() -> Option<(Ring, RegisteredBufferPool, File)> {
    let p = probe::probe();
    if !p.io_uring || !p.fixed_buffers {
        eprintln!(
            "SKIPPED: io_uring fixed buffers unavailable ({:?})",
            p.reason
        );
        return None;
    }
    let ring = Ring::new(RingOptions {
        entries: 1,
        ..RingOptions::default()
    })
    .unwrap();
    let pool = RegisteredBufferPool::new(&ring, 4096, 1).unwrap();
    assert_eq!(pool.acquire().unwrap(), 0);
    Some((ring, pool, File::open("/dev/zero").unwrap()))
}

fn read(pool: &RegisteredBufferPool, zero: &File) -> Result<u64> {
    pool.read_fixed(zero.as_raw_fd(), 0, 0, 512, 0)
}

#[test]
fn push_drains_completions_while_the_kernel_is_busy() {
    let Some((ring, pool, zero)) = setup() else {
        return;
    };
    let a = read(&pool, &zero).unwrap();
    assert_eq!(ring.submit().unwrap(), 1); // /dev/zero completes inline
    let b = read(&pool, &zero).unwrap(); // the queue is full again
    ring.inner
        .inject
        .borrow_mut()
        .extend([libc::EBUSY, libc::EAGAIN, libc::EINTR]);
    let c = read(&pool, &zero).unwrap();
    assert!(ring.inner.inject.borrow().is_empty());
    // A's completion was taken from the kernel but not handed out yet.
    assert_eq!(ring.inner.backlog.borrow().len(), 1);
    assert_eq!(ring.in_flight(), 3);

    // Waiting counts the backlog: two more completions, not three, are due.
    let start = Instant::now();
    ring.inner.enter(3, Some(Duration::from_secs(2))).unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
    let mut out = Vec::new();
    while out.len() < 3 {
        ring.reap(&mut out);
        if out.len() < 3 {
            ring.submit_and_wait(1).unwrap();
        }
    }
    assert_eq!(out[0].user_data, a, "the backlog comes first");
    let got: HashSet<u64> = out.iter().map(|c| c.user_data).collect();
    assert_eq!(got, HashSet::from([a, b, c]));
    assert!(out.iter().all(|c| c.result == 512));
    assert_eq!(ring.in_flight(), 0);
    assert_eq!(pool.stats().kernel_ops, 0);
    assert!(!pool.is_in_flight(0).unwrap());
}

#[test]
fn push_gives_up_when_the_kernel_stays_busy() {
    let Some((ring, pool, zero)) = setup() else {
        return;
    };
    let a = read(&pool, &zero).unwrap(); // the queue is full
    ring.inner
        .inject
        .borrow_mut()
        .extend([libc::EBUSY; BUSY_RETRIES as usize + 1]);
    let err = read(&pool, &zero).unwrap_err();
    assert!(ring.inner.inject.borrow().is_empty());
    assert_eq!(err.code(), "EBUSY");
    assert_eq!(err.syscall(), Some("io_uring_enter"));
    // Nothing of the refused operation is left behind.
    assert_eq!(ring.in_flight(), 1);
    assert_eq!(ring.pending(), 1);
    let stats = pool.stats();
    assert_eq!((stats.kernel_ops, stats.counters.submitted), (1, 1));

    // A submit the kernel keeps refusing leaves the entry queued...
    ring.inner
        .inject
        .borrow_mut()
        .extend([libc::EAGAIN; BUSY_RETRIES as usize + 1]);
    assert_eq!(ring.submit().unwrap(), 0);
    assert_eq!(ring.pending(), 1);
    // ...for the next one.
    assert_eq!(ring.submit().unwrap(), 1);
    ring.submit_and_wait(1).unwrap();
    let mut out = Vec::new();
    ring.reap(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].user_data, out[0].result), (a, 512));
    assert_eq!(ring.in_flight(), 0);
    assert_eq!(pool.stats().kernel_ops, 0);
    assert!(!pool.is_in_flight(0).unwrap());
    pool.release(0).unwrap();
}
