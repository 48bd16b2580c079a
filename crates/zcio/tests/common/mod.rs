//! Helpers shared by the kernel integration tests (each test file uses
//! some of them).
#![allow(dead_code, unused_macros)]

use std::os::fd::{FromRawFd, OwnedFd};

use zcio::{Completion, OpKind, Ring, RingOptions, SockAddr, TcpListener, TcpStream};

/// Submits and waits until `n` completions are reaped; returns them all.
pub fn wait_all(ring: &Ring, n: usize) -> Vec<Completion> {
    let mut out = Vec::new();
    while out.len() < n {
        ring.submit_and_wait(1).unwrap();
        ring.reap(&mut out);
    }
    out
}

/// Whether rings here run on epoll (forced by `ZCIO_BACKEND`, or io_uring
/// refused): everything zcio does is there, whatever the kernel's io_uring
/// lacks.
pub fn on_epoll() -> bool {
    Ring::new(RingOptions::default()).is_ok_and(|r| r.backend() == zcio::BackendKind::Epoll)
}

/// Skips the test (saying so) unless the rings here have `$what`: io_uring
/// with that feature, or the epoll backend (which has everything).
macro_rules! require {
    ($what:ident) => {
        let p = zcio::probe();
        if !$crate::common::on_epoll() && (!p.io_uring || !p.$what) {
            assert!(
                std::env::var("ZCIO_REQUIRE_IO_URING").as_deref() != Ok("1"),
                "io_uring {} is required (ZCIO_REQUIRE_IO_URING=1) but unavailable: {:?}",
                stringify!($what),
                p.reason
            );
            eprintln!(
                "SKIPPED {}: io_uring {} unavailable ({:?})",
                module_path!(),
                stringify!($what),
                p.reason
            );
            return;
        }
    };
}

pub fn ring() -> Ring {
    Ring::new(RingOptions::default()).unwrap()
}

/// Waits until `pred` holds for what was reaped so far.
pub fn wait_until(ring: &Ring, out: &mut Vec<Completion>, pred: impl Fn(&[Completion]) -> bool) {
    while !pred(out) {
        ring.submit_and_wait(1).unwrap();
        ring.reap(out);
    }
}

/// A connected pair: (accepted server side, client side).
pub fn pair(ring: &Ring) -> (TcpStream, TcpStream, TcpListener) {
    let addr: SockAddr = "127.0.0.1:0"
        .parse::<std::net::SocketAddr>()
        .unwrap()
        .into();
    let listener = TcpListener::bind(ring, &addr, 16).unwrap();
    let accept = listener.accept_multishot().unwrap();
    let (client, connect) = TcpStream::connect(ring, &listener.local_addr().unwrap()).unwrap();
    let mut out = Vec::new();
    wait_until(ring, &mut out, |o| {
        o.iter().any(|c| c.user_data == accept) && o.iter().any(|c| c.user_data == connect)
    });
    let conn = out.iter().find(|c| c.user_data == connect).unwrap();
    assert_eq!(conn.result, 0);
    let acc = out.iter().find(|c| c.user_data == accept).unwrap();
    assert!(acc.result >= 0 && acc.more(), "{acc:?}");
    assert_eq!(acc.kind, OpKind::AcceptMulti);
    // SAFETY: the accept completion's result is a new descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(acc.result) };
    let server = TcpStream::from_fd(ring, fd).unwrap();
    (server, client, listener)
}
