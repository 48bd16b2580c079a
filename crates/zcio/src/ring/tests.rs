//! Unit tests of the ring's submission and enter paths (with injected errors).

use std::collections::HashSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue};

use super::completion::Completion;
use super::handle::Ring;
use super::options::RingOptions;
use crate::backend::uring::enter::BUSY_RETRIES;
use crate::backend::uring::instance::Uring;
use crate::backend::uring::submit::{links, unlinked};
use crate::error::{Error, Result};
use crate::op::dispatch::Op;
use crate::op::nop::Nop;
use crate::pool::registered::RegisteredBufferPool;
use crate::probe::report::probe;

/// Whether `ring` runs on io_uring: these tests are of that backend's own
/// paths, skipped (visibly) where `ZCIO_BACKEND` forces another.
fn on_uring(ring: &Ring) -> bool {
    let yes = ring.backend() == crate::backend::kind::BackendKind::IoUring;
    if !yes {
        eprintln!(
            "SKIPPED: the ring runs on {} (ZCIO_BACKEND)",
            ring.backend()
        );
    }
    yes
}

/// The io_uring backend of `ring`.
fn u(ring: &Ring) -> &Uring {
    ring.inner.uring().expect("an io_uring ring")
}

/// A ring with a one-entry submission queue, a one-buffer pool with its
/// buffer acquired, and `/dev/zero`; `None` (and a note) without io_uring.
fn setup() -> Option<(Ring, RegisteredBufferPool, File)> {
    let p = probe();
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
    if !on_uring(&ring) {
        return None;
    }
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
    u(&ring)
        .inject
        .borrow_mut()
        .extend([libc::EBUSY, libc::EAGAIN, libc::EINTR]);
    let c = read(&pool, &zero).unwrap();
    assert!(u(&ring).inject.borrow().is_empty());
    // A's completion was taken from the kernel but not handed out yet.
    assert_eq!(u(&ring).backlog.borrow().len(), 1);
    assert_eq!(ring.in_flight(), 3);

    // Waiting counts the backlog: two more completions, not three, are due.
    let start = Instant::now();
    u(&ring).enter(3, Some(Duration::from_secs(2))).unwrap();
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
    u(&ring)
        .inject
        .borrow_mut()
        .extend([libc::EBUSY; BUSY_RETRIES as usize + 1]);
    let err = read(&pool, &zero).unwrap_err();
    assert!(u(&ring).inject.borrow().is_empty());
    assert_eq!(err.errno(), Some(libc::EBUSY));
    assert_eq!(err.syscall(), Some("io_uring_enter"));
    // Nothing of the refused operation is left behind.
    assert_eq!(ring.in_flight(), 1);
    assert_eq!(ring.pending(), 1);
    let stats = pool.stats();
    assert_eq!((stats.kernel_ops, stats.counters.submitted), (1, 1));

    // A submit the kernel keeps refusing leaves the entry queued...
    u(&ring)
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

/// Queues an `IORING_OP_NOP`, linked to the next entry or not.
fn nop(ring: &Ring, linked: bool) -> Result<u64> {
    ring.inner.push(Op::Nop(Nop { link: linked }))
}

/// Entries the kernel can see in the submission queue (its tail moved).
fn visible(ring: &Ring) -> usize {
    u(ring).with_uring(|u| u.submission().len()).unwrap()
}

fn ring_of(entries: u32, sqpoll: bool) -> Option<Ring> {
    let p = probe();
    if !p.io_uring {
        eprintln!("SKIPPED: io_uring unavailable ({:?})", p.reason);
        return None;
    }
    let sqpoll_idle_ms = sqpoll.then_some(1000);
    match Ring::new(RingOptions {
        entries,
        sqpoll_idle_ms,
        ..RingOptions::default()
    }) {
        Ok(ring) if !on_uring(&ring) => None,
        Ok(ring) => Some(ring),
        Err(e) if sqpoll => {
            eprintln!("SKIPPED: SQPOLL unavailable ({e})");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// Reaps until `n` completions came (or panics after a while).
fn reap_n(ring: &Ring, n: usize) -> Vec<Completion> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} completions",
            out.len()
        );
        u(ring).enter(1, Some(Duration::from_millis(50))).unwrap();
        ring.reap(&mut out);
    }
    out
}

#[test]
fn a_chain_becomes_visible_to_the_kernel_in_one_step() {
    let Some(ring) = ring_of(8, false) else {
        return;
    };
    let ids: Vec<u64> = (0..3).map(|_| nop(&ring, true).unwrap()).collect();
    assert_eq!(visible(&ring), 0, "a chain still open is held back");
    assert_eq!((ring.pending(), ring.in_flight()), (3, 3));
    let last = nop(&ring, false).unwrap();
    assert_eq!(visible(&ring), 4, "the entry ending the chain publishes it");
    assert_eq!(ring.submit().unwrap(), 4);
    let out = reap_n(&ring, 4);
    let got: Vec<u64> = out.iter().map(|c| c.user_data).collect();
    assert_eq!(got, [ids[0], ids[1], ids[2], last]);
    assert!(out.iter().all(|c| c.result == 0));
}

#[test]
fn a_chain_makes_room_for_itself_in_a_full_queue() {
    let Some(ring) = ring_of(4, false) else {
        return;
    };
    for _ in 0..3 {
        nop(&ring, false).unwrap();
    }
    nop(&ring, true).unwrap();
    nop(&ring, false).unwrap();
    // The three single entries went to the kernel to make room; the chain
    // is in the queue whole.
    assert_eq!(visible(&ring), 2);
    assert_eq!(ring.pending(), 2);
    ring.submit().unwrap();
    assert_eq!(reap_n(&ring, 5).len(), 5);
}

#[test]
fn an_open_chain_is_ended_at_submit() {
    let Some(ring) = ring_of(4, false) else {
        return;
    };
    let a = nop(&ring, true).unwrap();
    let b = nop(&ring, true).unwrap();
    // The caller failed before queuing the entry meant to end the chain.
    assert_eq!(ring.submit().unwrap(), 2);
    assert!(u(&ring).chain.borrow().is_empty());
    // What comes next is not linked to the chain.
    let c = nop(&ring, false).unwrap();
    assert_eq!(visible(&ring), 1);
    ring.submit().unwrap();
    let got: HashSet<u64> = reap_n(&ring, 3).iter().map(|c| c.user_data).collect();
    assert_eq!(got, HashSet::from([a, b, c]));
}

#[test]
fn ending_a_chain_clears_only_the_link() {
    let e = opcode::Nop::new()
        .build()
        .flags(squeue::Flags::IO_LINK | squeue::Flags::ASYNC);
    assert!(links(&e));
    let u = unlinked(&e);
    assert!(!links(&u));
    let hard = opcode::Nop::new().build().flags(squeue::Flags::IO_HARDLINK);
    assert!(links(&hard));
    assert!(!links(&opcode::Nop::new().build()));
    // ASYNC survives: the entry still runs as it was asked to.
    let again = unlinked(&u.clone().flags(squeue::Flags::IO_LINK));
    assert!(!links(&again));
}

#[test]
fn a_chain_longer_than_the_queue_is_refused_entry_by_entry() {
    let Some(ring) = ring_of(2, false) else {
        return;
    };
    nop(&ring, true).unwrap();
    nop(&ring, true).unwrap();
    let err = nop(&ring, true).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }));
    // The refused entry left nothing behind; the chain is ended at submit.
    assert_eq!((ring.pending(), ring.in_flight()), (2, 2));
    ring.submit().unwrap();
    assert_eq!(reap_n(&ring, 2).len(), 2);
}

#[test]
fn an_sqpoll_thread_never_sees_half_a_chain() {
    let Some(ring) = ring_of(8, true) else {
        return;
    };
    let first = nop(&ring, true).unwrap();
    nop(&ring, true).unwrap();
    // The kernel thread polls the queue's tail: had it moved, the two
    // entries would have run by now.
    std::thread::sleep(Duration::from_millis(100));
    let mut out = Vec::new();
    ring.reap(&mut out);
    assert!(out.is_empty(), "the kernel ran part of an open chain");
    nop(&ring, false).unwrap();
    ring.submit().unwrap();
    let out = reap_n(&ring, 3);
    assert_eq!(out[0].user_data, first);
}

#[test]
fn close_releases_the_eventfd() {
    let Some(ring) = ring_of(2, false) else {
        return;
    };
    let fd = ring.eventfd();
    assert!(fd >= 0);
    // SAFETY: F_GETFD only reads the descriptor's flags.
    assert!(unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0);
    ring.close(&mut Vec::new()).unwrap();
    assert_eq!(ring.eventfd(), -1);
    assert!(!ring.clear_eventfd());
    ring.signal_eventfd(); // does nothing, touches no descriptor
    assert!(matches!(
        ring.cancel_slot(0).unwrap_err(),
        Error::Closed { .. }
    ));
    assert!(matches!(ring.submit().unwrap_err(), Error::Closed { .. }));
}
