//! Kernel integration tests: each one probes first and says so when it skips.

use std::collections::HashSet;
use std::io::Write;
use std::os::fd::AsRawFd;

use zcio::{probe, Error, RegisteredBufferPool, Ring, RingOptions};

mod common;
use common::wait_all;

/// Skips (visibly) when the kernel lacks what the test needs.
/// Whether `ZCIO_BACKEND=epoll` forces every ring of this process onto
/// epoll: tests of io_uring's own limits (its buffer table, locked memory)
/// skip then, visibly.
fn forced_epoll(test: &str) -> bool {
    let forced = std::env::var("ZCIO_BACKEND").as_deref() == Ok("epoll");
    if forced {
        eprintln!("SKIPPED {test}: an io_uring limit, and ZCIO_BACKEND=epoll");
    }
    forced
}

/// Whether rings here run on epoll (forced by `ZCIO_BACKEND`, or io_uring
/// refused): everything zcio does is there, whatever the kernel's io_uring
/// lacks.
fn on_epoll() -> bool {
    Ring::new(RingOptions::default()).is_ok_and(|r| r.backend() == zcio::BackendKind::Epoll)
}

macro_rules! require_fixed_buffers {
    () => {
        let p = probe();
        if !on_epoll() && (!p.io_uring || !p.fixed_buffers) {
            assert!(
                std::env::var("ZCIO_REQUIRE_IO_URING").as_deref() != Ok("1"),
                "io_uring is required (ZCIO_REQUIRE_IO_URING=1) but unavailable: {:?}",
                p.reason
            );
            eprintln!(
                "SKIPPED {}: io_uring fixed buffers unavailable ({:?})",
                module_path!(),
                p.reason
            );
            return;
        }
    };
}

#[test]
fn write_then_read_back() {
    require_fixed_buffers!();
    let ring = Ring::new(RingOptions::default()).unwrap();
    let pool = RegisteredBufferPool::new(&ring, 8192, 4).unwrap();
    let file = tempfile::tempfile().unwrap();
    let fd = file.as_raw_fd();

    let w = pool.acquire().unwrap();
    pool.get_mut(w).unwrap()[..5].copy_from_slice(b"hello");
    let ud = pool.write_fixed(fd, w, 100, 5, 0).unwrap();
    assert!(pool.is_in_flight(w).unwrap());
    assert!(matches!(pool.release(w), Err(Error::BufferInFlight { .. })));
    assert!(matches!(pool.get(w), Err(Error::BufferInFlight { .. })));
    let done = wait_all(&ring, 1);
    assert_eq!(done[0].user_data, ud);
    assert_eq!(done[0].into_result().unwrap(), 5);
    assert!(!pool.is_in_flight(w).unwrap());

    let r = pool.acquire().unwrap();
    pool.submit_read_fixed(fd, r, 100, 5, 10).unwrap();
    let done = wait_all(&ring, 1);
    assert_eq!(done[0].into_result().unwrap(), 5);
    // Manual submissions stay in flight until completed by the caller.
    assert!(matches!(pool.release(r), Err(Error::BufferInFlight { .. })));
    pool.complete_in_flight(r).unwrap();
    assert_eq!(&pool.get(r).unwrap()[10..15], b"hello");
    pool.release(r).unwrap();
    pool.release(w).unwrap();
    pool.close().unwrap();
    pool.close().unwrap();
    assert!(matches!(
        pool.acquire(),
        Err(Error::Closed { what: "pool" })
    ));
}

#[test]
fn kernel_errors_keep_their_errno() {
    require_fixed_buffers!();
    let ring = Ring::new(RingOptions::default()).unwrap();
    let pool = RegisteredBufferPool::new(&ring, 4096, 1).unwrap();
    let i = pool.acquire().unwrap();
    pool.read_fixed(-1, i, 0, 4096, 0).unwrap();
    let done = wait_all(&ring, 1);
    let err = done[0].into_result().unwrap_err();
    assert_eq!(err.errno(), Some(libc::EBADF));
    assert_eq!(err.errno(), Some(libc::EBADF));
    assert_eq!(err.syscall(), Some("read"));
    assert_eq!(pool.stats().counters.failed, 1);
}

#[test]
fn bad_arguments_are_refused() {
    require_fixed_buffers!();
    let ring = Ring::new(RingOptions::default()).unwrap();
    for (size, count) in [(0, 1), (1, 0), (1, 16385), ((1 << 30) + 1, 1)] {
        let err = RegisteredBufferPool::new(&ring, size, count).unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument { .. }),
            "{size}x{count}"
        );
    }
    let pool = RegisteredBufferPool::new(&ring, 4096, 2).unwrap();
    let i = pool.acquire().unwrap();
    let err = pool.read_fixed(0, i, 0, 4097, 0).unwrap_err();
    assert!(matches!(err, Error::OutOfRange { .. }));
    let err = pool.read_fixed(0, i, 0, 1, 4096).unwrap_err();
    assert!(matches!(err, Error::OutOfRange { .. }));
    assert!(matches!(
        pool.release(7).unwrap_err(),
        Error::OutOfRange { .. }
    ));
    pool.acquire().unwrap();
    assert!(matches!(
        pool.acquire().unwrap_err(),
        Error::PoolExhausted { .. }
    ));
    assert_eq!(pool.try_acquire().unwrap(), None);
}

#[test]
fn pools_share_the_table_and_close_independently() {
    require_fixed_buffers!();
    if forced_epoll("pools_share_the_table_and_close_independently") {
        return;
    }
    let ring = Ring::new(RingOptions::default()).unwrap();
    let a = RegisteredBufferPool::new(&ring, 4096, 8000).unwrap();
    let b = RegisteredBufferPool::new(&ring, 4096, 8000).unwrap();
    let err = RegisteredBufferPool::new(&ring, 4096, 1000).unwrap_err();
    assert!(matches!(err, Error::TableFull { .. }));
    a.close().unwrap();
    let c = RegisteredBufferPool::new(&ring, 4096, 1000).unwrap();
    // The new pool's buffers work: a write lands.
    let file = tempfile::tempfile().unwrap();
    let i = c.acquire().unwrap();
    c.write_fixed(file.as_raw_fd(), i, 0, 4096, 0).unwrap();
    assert_eq!(wait_all(&ring, 1)[0].into_result().unwrap(), 4096);
    drop(b);
}

#[test]
fn completions_beyond_the_completion_queue_are_not_lost() {
    require_fixed_buffers!();
    // One submission-queue entry (each push submits the previous one) and a
    // 64-entry completion queue, with 500 operations that nobody reaps.
    let ring = Ring::new(RingOptions {
        entries: 1,
        ..RingOptions::default()
    })
    .unwrap();
    let pool = RegisteredBufferPool::new(&ring, 4096, 1).unwrap();
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let i = pool.acquire().unwrap();
    let queued: HashSet<u64> = (0..500)
        .map(|_| pool.read_fixed(zero.as_raw_fd(), i, 0, 512, 0).unwrap())
        .collect();
    assert_eq!(queued.len(), 500);
    ring.submit().unwrap();
    let done = wait_all(&ring, 500);
    assert_eq!(done.len(), 500);
    let reaped: HashSet<u64> = done.iter().map(|c| c.user_data).collect();
    assert_eq!(reaped, queued);
    assert!(done.iter().all(|c| c.result == 512));
    assert_eq!(ring.in_flight(), 0);
    let stats = pool.stats();
    assert_eq!((stats.kernel_ops, stats.counters.completed), (0, 500));
    assert!(!pool.is_in_flight(i).unwrap());
    // Nothing arrives twice.
    ring.submit().unwrap();
    let mut more = Vec::new();
    assert_eq!(ring.reap(&mut more), 0);
}

#[test]
fn dropping_everything_mid_flight_keeps_memory_until_completion() {
    require_fixed_buffers!();
    let ring = Ring::new(RingOptions::default()).unwrap();
    let pool = RegisteredBufferPool::new(&ring, 4096, 1).unwrap();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let i = pool.acquire().unwrap();
    pool.read_fixed(reader.as_raw_fd(), i, 0, 4096, 0).unwrap();
    ring.submit().unwrap();
    assert!(matches!(pool.close(), Err(Error::BufferInFlight { .. })));
    drop(pool); // the ring's op table still holds the memory
    writer.write_all(b"late data").unwrap();
    let done = wait_all(&ring, 1);
    assert_eq!(done[0].into_result().unwrap(), 9);
    assert_eq!(ring.in_flight(), 0);
}

#[test]
fn close_cancels_what_is_in_flight() {
    require_fixed_buffers!();
    let ring = Ring::new(RingOptions::default()).unwrap();
    let pool = RegisteredBufferPool::new(&ring, 4096, 2).unwrap();
    let (reader, _writer) = std::io::pipe().unwrap();
    let i = pool.acquire().unwrap();
    pool.read_fixed(reader.as_raw_fd(), i, 0, 4096, 0).unwrap();
    ring.submit().unwrap();
    let mut out = Vec::new();
    ring.close(&mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].result, -libc::ECANCELED);
    assert!(ring.is_closed());
    ring.close(&mut out).unwrap();
    assert!(matches!(
        pool.read_fixed(0, i, 0, 1, 0).unwrap_err(),
        Error::Closed { .. }
    ));
    pool.close().unwrap();
}

/// Queues `n` reads on a pipe nobody writes to, without submitting the last
/// of them (a ring of 256 entries flushes its queue when full), drops the
/// pool, and closes the ring: every operation comes back cancelled, promptly,
/// and the pool's memory is freed.
fn close_with_queued_reads(n: usize) {
    let ring = Ring::new(RingOptions::default()).unwrap();
    let pool = RegisteredBufferPool::new(&ring, 4096, 4).unwrap();
    let memory = std::rc::Rc::downgrade(&pool.region());
    let (reader, _writer) = std::io::pipe().unwrap();
    let i = pool.acquire().unwrap();
    let queued: HashSet<u64> = (0..n)
        .map(|_| pool.read_fixed(reader.as_raw_fd(), i, 0, 4096, 0).unwrap())
        .collect();
    if ring.backend() == zcio::BackendKind::IoUring {
        assert_eq!(ring.pending(), 256, "the queue is full");
    } else {
        assert_eq!(ring.pending() as usize, n, "nothing started yet");
    }
    drop(pool);
    let start = std::time::Instant::now();
    let mut out = Vec::new();
    ring.close(&mut out).unwrap();
    let took = start.elapsed();
    assert!(
        took < std::time::Duration::from_secs(2),
        "close took {took:?}"
    );
    assert_eq!(out.len(), n);
    let done: HashSet<u64> = out.iter().map(|c| c.user_data).collect();
    assert_eq!(done, queued);
    assert!(out.iter().all(|c| c.result == -libc::ECANCELED));
    assert_eq!(ring.in_flight(), 0);
    assert!(memory.upgrade().is_none(), "the pool's memory was leaked");
}

#[test]
fn close_with_a_full_submission_queue() {
    require_fixed_buffers!();
    close_with_queued_reads(256);
}

#[test]
fn close_with_a_full_queue_after_earlier_flushes() {
    require_fixed_buffers!();
    close_with_queued_reads(1024);
}

/// Runs in a child process (see `memlock_limit_gives_enomem`) whose memlock
/// limit is 64 KiB and which has no `CAP_IPC_LOCK`.
#[test]
#[ignore = "runs inside memlock_limit_gives_enomem's child process"]
fn memlock_child() {
    let ring = Ring::new(RingOptions::default()).unwrap();
    assert_eq!(ring.backend(), zcio::BackendKind::IoUring, "{:?}", probe());
    let err = RegisteredBufferPool::new(&ring, 1 << 20, 64).unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENOMEM));
    assert!(err.to_string().contains("ulimit -l"), "{err}");
    // Small registrations still fit.
    RegisteredBufferPool::new(&ring, 4096, 4).unwrap();
}

/// This process's pages pinned for io_uring (`VmPin`), in KiB.
fn pinned_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmPin:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Writes a pattern through buffer `index` of `pool` and reads it back.
fn check_buffer_works(ring: &Ring, pool: &RegisteredBufferPool, index: u32) {
    let file = tempfile::tempfile().unwrap();
    let fd = file.as_raw_fd();
    pool.get_mut(index).unwrap()[..4].copy_from_slice(&index.to_le_bytes());
    pool.write_fixed(fd, index, 0, 4, 0).unwrap();
    assert_eq!(wait_all(ring, 1)[0].into_result().unwrap(), 4);
    pool.get_mut(index).unwrap()[..4].fill(0xff);
    pool.read_fixed(fd, index, 0, 4, 0).unwrap();
    assert_eq!(wait_all(ring, 1)[0].into_result().unwrap(), 4);
    assert_eq!(pool.get(index).unwrap()[..4], index.to_le_bytes());
}

/// A pool of 4 KiB buffers, each acquired, checked to work and released.
fn working_pool(ring: &Ring, count: usize) -> RegisteredBufferPool {
    let pool = RegisteredBufferPool::new(ring, 4096, count).unwrap();
    for _ in 0..count {
        let i = pool.acquire().unwrap();
        check_buffer_works(ring, &pool, i);
    }
    for i in 0..count as u32 {
        pool.release(i).unwrap();
    }
    pool
}

/// Runs in a child process (see `memlock_limit_gives_enomem`) whose memlock
/// limit is 256 KiB and which has no `CAP_IPC_LOCK`: a registration the limit
/// admits only in part.
#[test]
#[ignore = "runs inside memlock_limit_gives_enomem's child process"]
fn memlock_partial_child() {
    let ring = Ring::new(RingOptions::default()).unwrap();
    let limit_kib = 256;
    let before = pinned_kib();
    // The kernel registers some 4 KiB buffers of the 128 and stops.
    assert!(
        before + 4 <= limit_kib && before + 512 > limit_kib,
        "{before} KiB pinned"
    );
    // The ring's first pool: the sparse table goes in in the same call.
    let err = RegisteredBufferPool::new(&ring, 4096, 128).unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENOMEM), "{err}");
    assert_eq!(err.errno(), Some(libc::ENOMEM));
    assert!(err.to_string().contains("ulimit -l"), "{err}");
    // What went in was cleared, and its charge returned.
    assert_eq!(pinned_kib(), before);
    let small = working_pool(&ring, 32);
    assert_eq!(pinned_kib(), before + 32 * 4);

    // Once the table is registered: the same.
    let before = pinned_kib();
    let err = RegisteredBufferPool::new(&ring, 4096, 128).unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENOMEM), "{err}");
    assert_eq!(pinned_kib(), before);
    let more = working_pool(&ring, 8);
    // The failed ranges went back to the table and the first pool is intact.
    check_buffer_works(&ring, &small, small.acquire().unwrap());
    drop((small, more));
    let _whole = working_pool(&ring, 40);
}

/// `CAP_IPC_LOCK` from `linux/capability.h`.
const CAP_IPC_LOCK: libc::c_ulong = 14;

/// Runs the ignored test `name` in a child with a memlock limit of
/// `limit_kib` and without `CAP_IPC_LOCK`.
///
/// io_uring charges locked memory to the real user, and a ring's charge is
/// returned only after its process is gone (teardown runs in a kernel
/// worker): children sharing a user would eat into each other's limit, across
/// test runs too. So, where it may (as root), each child runs under a real
/// user id of its own, keeping effective id 0 and its other capabilities.
fn run_memlock_child(name: &str, limit_kib: u64, n: u32) {
    use std::os::unix::process::CommandExt;
    let uid = 2_000_000_000 + std::process::id() * 4 + n;
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    // SAFETY: only async-signal-safe calls (setrlimit, prctl, setresuid) run
    // between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit_kib << 10,
                rlim_max: limit_kib << 10,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Without CAP_IPC_LOCK the limit applies to root too: drop it from
            // the bounding set, so the exec'd child never gets it back.
            // Unprivileged callers (EPERM) don't have it anyway.
            if libc::prctl(libc::PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0) != 0
                && *libc::__errno_location() != libc::EPERM
            {
                return Err(std::io::Error::last_os_error());
            }
            // Unprivileged callers (EPERM) share their user's charge.
            let keep = libc::uid_t::MAX;
            if libc::setresuid(uid, keep, keep) != 0 && *libc::__errno_location() != libc::EPERM {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    run_child(cmd, name);
}

#[test]
fn memlock_limit_gives_enomem() {
    require_fixed_buffers!();
    if forced_epoll("memlock_limit_gives_enomem") {
        return;
    }
    run_memlock_child("memlock_child", 64, 0);
    run_memlock_child("memlock_partial_child", 256, 1);
}

/// Runs in a child whose memlock limit is 64 KiB (see
/// `epoll_pools_need_no_locked_memory`).
#[test]
#[ignore = "runs inside epoll_pools_need_no_locked_memory's child process"]
fn memlock_epoll_child() {
    let ring = Ring::new(RingOptions {
        backend: zcio::BackendChoice::Epoll,
        ..RingOptions::default()
    })
    .unwrap();
    assert_eq!(ring.backend(), zcio::BackendKind::Epoll);
    // 64 MiB of buffers under a 64 KiB limit: nothing is pinned.
    let pool = RegisteredBufferPool::new(&ring, 1 << 20, 64).unwrap();
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(&[7u8; 4096]).unwrap();
    let i = pool.acquire().unwrap();
    pool.read_fixed(file.as_raw_fd(), i, 0, 4096, 0).unwrap();
    let done = wait_all(&ring, 1);
    assert_eq!(done[0].into_result().unwrap(), 4096);
    assert!(pool.get(i).unwrap()[..4096].iter().all(|&b| b == 7));
}

#[test]
fn epoll_pools_need_no_locked_memory() {
    run_memlock_child("memlock_epoll_child", 64, 2);
}

/// Runs in a child whose seccomp filter denies `io_uring_setup`.
#[test]
#[ignore = "runs inside uring_unavailable_is_explained's child process"]
fn uring_unavailable_child() {
    // Left to choose, a ring falls back to epoll...
    let ring = Ring::new(RingOptions::default()).unwrap();
    assert_eq!(ring.backend(), zcio::BackendKind::Epoll);
    // ...and says why io_uring was refused when it is asked for.
    let err = Ring::new(RingOptions {
        backend: zcio::BackendChoice::IoUring,
        ..RingOptions::default()
    })
    .unwrap_err();
    assert!(matches!(err, Error::UringUnavailable { .. }));
    assert_eq!(err.errno(), Some(libc::EPERM));
    assert!(err.to_string().contains("seccomp"), "{err}");
    assert_eq!(err.syscall(), Some("io_uring_setup"));
    match &err {
        Error::UringUnavailable { reason, .. } => assert_eq!(reason.kind(), "seccomp"),
        other => panic!("not UringUnavailable: {other}"),
    }
    let p = probe();
    assert!(!p.io_uring);
    assert!(p.reason.unwrap().contains("seccomp"));
    assert_eq!(
        p.uring_unavailable,
        Some(zcio::UringUnavailable::Seccomp { errno: libc::EPERM })
    );
    assert_eq!(
        zcio::uring_usable(),
        Err(zcio::UringUnavailable::Seccomp { errno: libc::EPERM })
    );
}

#[test]
fn uring_unavailable_is_explained() {
    // target/<profile>/deps/uring-* → target/<profile>/examples/deny_io_uring
    let exe = std::env::current_exe().unwrap();
    let helper = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/deny_io_uring");
    assert!(
        helper.exists(),
        "{helper:?} is missing: run the whole `cargo test -p zcio`, which builds the examples"
    );
    let mut cmd = std::process::Command::new(helper);
    cmd.arg(exe).env_remove("ZCIO_BACKEND");
    run_child(cmd, "uring_unavailable_child");
}

/// Runs the ignored test `name` of this binary through `cmd` (which already
/// names the program) and checks that it passed.
fn run_child(mut cmd: std::process::Command, name: &str) {
    let out = cmd
        .args(["--exact", name, "--ignored", "--nocapture"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {text}{err}");
    assert!(text.contains(&format!("{name} ... ok")), "{text}");
}

#[test]
fn a_reaped_slot_is_not_reused_before_the_next_reap() {
    require_fixed_buffers!();
    let ring = Ring::new(RingOptions::default()).unwrap();
    let pool = RegisteredBufferPool::new(&ring, 4096, 2).unwrap();
    let file = tempfile::tempfile().unwrap();
    let (a, b) = (pool.acquire().unwrap(), pool.acquire().unwrap());
    pool.read_fixed(file.as_raw_fd(), a, 0, 16, 0).unwrap();
    let first = wait_all(&ring, 1);
    let slot = first[0].slot();
    // Queued while the first completion is being delivered: another slot.
    let ud = pool.read_fixed(file.as_raw_fd(), b, 0, 16, 0).unwrap();
    assert_ne!(ud as u32, slot);
    let second = wait_all(&ring, 1);
    assert_eq!(second[0].user_data, ud);
    // Both delivered: their slots are free again.
    let ud = pool.read_fixed(file.as_raw_fd(), a, 0, 16, 0).unwrap();
    assert_eq!(ud as u32, slot);
    wait_all(&ring, 1);
}

#[test]
fn published_counts_follow_the_bookkeeping() {
    use zcio::{buffer_state, pool_counts, ring_counts};
    require_fixed_buffers!();
    let ring = Ring::new(RingOptions::default()).unwrap();
    let pool = RegisteredBufferPool::new(&ring, 4096, 3).unwrap();
    let (p, r) = (pool.published(), ring.published());
    assert_eq!(p.count(pool_counts::TOTAL), 3.0);
    assert_eq!(p.count(pool_counts::AVAILABLE), 3.0);
    let file = tempfile::tempfile().unwrap();
    let i = pool.acquire().unwrap();
    assert_eq!(p.state(i as usize), buffer_state::ACQUIRED);
    pool.read_fixed(file.as_raw_fd(), i, 0, 16, 0).unwrap();
    assert_eq!(p.state(i as usize), buffer_state::IN_FLIGHT);
    assert_eq!(p.count(pool_counts::IN_FLIGHT), 1.0);
    assert_eq!(r.count(ring_counts::IN_FLIGHT), 1.0);
    assert_eq!(r.count(ring_counts::PENDING), 1.0);
    wait_all(&ring, 1);
    assert_eq!(r.count(ring_counts::IN_FLIGHT), 0.0);
    assert_eq!(p.state(i as usize), buffer_state::ACQUIRED);
    assert_eq!(p.count(pool_counts::COMPLETED), 1.0);
    pool.release(i).unwrap();
    assert_eq!(p.state(i as usize), buffer_state::FREE);
    assert_eq!(p.count(pool_counts::RELEASES), 1.0);
    pool.close().unwrap();
    assert_eq!(p.count(pool_counts::CLOSED), 1.0);
    let mut sink = Vec::new();
    ring.close(&mut sink).unwrap();
    assert_eq!(r.count(ring_counts::CLOSED), 1.0);
}

#[test]
fn submit_after_close_is_closed_whatever_the_setup_flags() {
    require_fixed_buffers!();
    // SQPOLL rings have no DEFER_TASKRUN: submit() used to return 0 early
    // when nothing was queued, without looking at the ring.
    let epoll = on_epoll();
    for sqpoll in [None, Some(10)] {
        let ring = Ring::new(RingOptions {
            entries: 1,
            sqpoll_idle_ms: sqpoll,
            ..RingOptions::default()
        });
        // A kernel submission thread is io_uring's: epoll refuses it.
        let ring = match ring {
            Err(Error::BackendUnsupported { backend, .. }) if epoll && sqpoll.is_some() => {
                assert_eq!(backend, "epoll");
                continue;
            }
            ring => ring.unwrap(),
        };
        let mut sink = Vec::new();
        ring.close(&mut sink).unwrap();
        assert!(
            matches!(ring.submit(), Err(Error::Closed { .. })),
            "{sqpoll:?}"
        );
    }
}

#[test]
fn sqpoll_on_epoll_is_refused_naming_the_backend() {
    if std::env::var("ZCIO_BACKEND").as_deref() == Ok("io_uring") {
        eprintln!("SKIPPED sqpoll_on_epoll: ZCIO_BACKEND=io_uring forces io_uring");
        return;
    }
    let Err(err) = Ring::new(RingOptions {
        backend: zcio::BackendChoice::Epoll,
        sqpoll_idle_ms: Some(10),
        ..RingOptions::default()
    }) else {
        panic!("an epoll ring with sqpoll set up");
    };
    assert!(
        matches!(
            err,
            Error::BackendUnsupported {
                backend: "epoll",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("sqpoll"), "{err}");
}
