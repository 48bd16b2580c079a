//! `read_fixed_now` / `write_fixed_now`: done in the call on epoll where
//! the page cache serves the transfer and nothing is queued before it;
//! queued otherwise (io_uring always), with the same counts either way.

use std::io::Write;
use std::os::fd::AsRawFd;

use zcio::{probe, BackendChoice, RegisteredBufferPool, Ring, RingOptions, Started, NOW_MAX_LEN};

mod common;
use common::wait_all;

/// A ring on `backend`, or `None` (the test skips, saying so) where
/// `ZCIO_BACKEND` forces the other one for the whole process.
fn ring(backend: BackendChoice, test: &str) -> Option<Ring> {
    let r = Ring::new(RingOptions {
        backend,
        ..RingOptions::default()
    })
    .ok()?;
    let want = match backend {
        BackendChoice::Epoll => zcio::BackendKind::Epoll,
        _ => zcio::BackendKind::IoUring,
    };
    if r.backend() != want {
        eprintln!("SKIPPED {test}: ZCIO_BACKEND forces the other backend");
        return None;
    }
    Some(r)
}

fn cached_file(bytes: &[u8]) -> std::fs::File {
    let mut f = tempfile();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
    f
}

fn tempfile() -> std::fs::File {
    let path = std::env::temp_dir().join(format!(
        "zcio-now-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    f
}

#[test]
fn epoll_does_a_cached_read_in_the_call() {
    let Some(ring) = ring(BackendChoice::Epoll, "epoll_does_a_cached_read_in_the_call") else {
        return;
    };
    let pool = RegisteredBufferPool::new(&ring, 4096, 2).unwrap();
    let file = cached_file(b"hello, page cache");
    let i = pool.acquire().unwrap();
    let got = pool.read_fixed_now(file.as_raw_fd(), i, 7, 10, 0).unwrap();
    assert_eq!(got, Started::Done(10));
    assert_eq!(&pool.get(i).unwrap()[..10], b"page cache");
    assert!(!pool.is_in_flight(i).unwrap());
    let s = pool.stats();
    assert_eq!(
        (
            s.counters.submitted,
            s.counters.completed,
            s.counters.failed
        ),
        (1, 1, 0)
    );
    assert_eq!(ring.in_flight(), 0);
    // An error done in the call is its result, counted as failed.
    let got = pool.read_fixed_now(-1, i, 0, 10, 0).unwrap();
    assert_eq!(got, Started::Done(-libc::EBADF));
    assert_eq!(pool.stats().counters.failed, 1);
    // Argument errors are errors, before anything is tried.
    assert!(pool
        .read_fixed_now(file.as_raw_fd(), i, 0, 8192, 0)
        .is_err());
    pool.release(i).unwrap();
}

#[test]
fn epoll_queues_behind_an_op_queued_before() {
    let Some(ring) = ring(
        BackendChoice::Epoll,
        "epoll_queues_behind_an_op_queued_before",
    ) else {
        return;
    };
    let pool = RegisteredBufferPool::new(&ring, 4096, 2).unwrap();
    let file = cached_file(b"abcdef");
    let fd = file.as_raw_fd();
    let (a, b) = (pool.acquire().unwrap(), pool.acquire().unwrap());
    let first = pool.read_fixed(fd, a, 0, 3, 0).unwrap();
    let Started::Queued(second) = pool.read_fixed_now(fd, b, 3, 3, 0).unwrap() else {
        panic!("a transfer overtook the one queued before it");
    };
    assert!(pool.is_in_flight(b).unwrap());
    let seen = wait_all(&ring, 2);
    let ids: Vec<u64> = seen.iter().map(|c| c.user_data).collect();
    assert_eq!(ids, [first, second], "completions in submission order");
    assert_eq!(&pool.get(b).unwrap()[..3], b"def");
}

#[test]
fn epoll_leaves_big_transfers_to_the_workers() {
    let Some(ring) = ring(
        BackendChoice::Epoll,
        "epoll_leaves_big_transfers_to_the_workers",
    ) else {
        return;
    };
    let size = NOW_MAX_LEN + 4096;
    let pool = RegisteredBufferPool::new(&ring, size, 1).unwrap();
    let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let file = cached_file(&bytes);
    let i = pool.acquire().unwrap();
    // The largest size done in the call is.
    let got = pool
        .read_fixed_now(file.as_raw_fd(), i, 0, NOW_MAX_LEN, 0)
        .unwrap();
    assert_eq!(got, Started::Done(NOW_MAX_LEN as i32));
    // One byte more goes through the ring, served the same.
    let Started::Queued(ud) = pool
        .read_fixed_now(file.as_raw_fd(), i, 0, NOW_MAX_LEN + 1, 0)
        .unwrap()
    else {
        panic!("a transfer over NOW_MAX_LEN was done in the call");
    };
    assert!(pool.is_in_flight(i).unwrap());
    let c = wait_all(&ring, 1)[0];
    assert_eq!((c.user_data, c.result), (ud, NOW_MAX_LEN as i32 + 1));
    assert_eq!(
        &pool.get(i).unwrap()[..NOW_MAX_LEN + 1],
        &bytes[..NOW_MAX_LEN + 1]
    );
}

/// A read the page cache holds only the start of: `RWF_NOWAIT` gives a
/// short count, and the whole read must still be served (it went to a
/// worker), never cut short (a sequential bench got 962560 of 1048576).
#[test]
fn epoll_serves_a_read_the_page_cache_holds_only_part_of() {
    let Some(ring) = ring(
        BackendChoice::Epoll,
        "epoll_serves_a_read_the_page_cache_holds_only_part_of",
    ) else {
        return;
    };
    let size = NOW_MAX_LEN;
    let bytes: Vec<u8> = (0..4 * size).map(|i| (i % 253) as u8).collect();
    let file = cached_file(&bytes);
    let fd = file.as_raw_fd();
    // SAFETY: plain advice calls and a read into a local buffer.
    unsafe {
        libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED);
        libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_RANDOM);
        let mut page = [0u8; 4096];
        libc::pread(fd, page.as_mut_ptr().cast(), page.len(), 0);
    }
    let pool = RegisteredBufferPool::new(&ring, size, 1).unwrap();
    let i = pool.acquire().unwrap();
    let result = match pool.read_fixed_now(fd, i, 0, size, 0).unwrap() {
        Started::Done(n) => n,
        Started::Queued(ud) => {
            let c = wait_all(&ring, 1)[0];
            assert_eq!(c.user_data, ud);
            c.result
        }
    };
    assert_eq!(result, size as i32);
    assert_eq!(&pool.get(i).unwrap()[..size], &bytes[..size]);
}

#[test]
fn io_uring_always_queues() {
    let p = probe();
    if !p.io_uring || !p.fixed_buffers {
        eprintln!(
            "SKIPPED io_uring_always_queues: io_uring unavailable ({:?})",
            p.reason
        );
        return;
    }
    let Some(ring) = ring(BackendChoice::IoUring, "io_uring_always_queues") else {
        return;
    };
    let pool = RegisteredBufferPool::new(&ring, 4096, 1).unwrap();
    let file = cached_file(b"xyz");
    let i = pool.acquire().unwrap();
    let Started::Queued(ud) = pool.read_fixed_now(file.as_raw_fd(), i, 0, 3, 0).unwrap() else {
        panic!("io_uring did a transfer in the call");
    };
    assert!(pool.is_in_flight(i).unwrap());
    let c = wait_all(&ring, 1)[0];
    assert_eq!((c.user_data, c.result), (ud, 3));
    assert!(!pool.is_in_flight(i).unwrap());
}
