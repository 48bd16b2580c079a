//! Network integration tests over loopback: buffer groups, multishot accept
//! and receive, sends. Each probes first and skips visibly.

use std::os::fd::{FromRawFd, OwnedFd};

use zcio::{
    probe, BufferGroup, Completion, Error, GroupOptions, OpKind, Ring, SockAddr, TcpListener,
    TcpStream,
};

#[macro_use]
mod common;
use common::{pair, ring, wait_until};

/// A group of `count` buffers of `size` bytes, not incremental.
fn plain_group(ring: &Ring, group_id: u16, buffer_size: usize, buffer_count: u32) -> BufferGroup {
    BufferGroup::new(
        ring,
        GroupOptions {
            group_id,
            buffer_size,
            buffer_count,
            incremental: false,
        },
    )
    .unwrap()
}

/// Receives everything until EOF through `group`, re-arming the multishot
/// receive whenever the kernel ends it for want of buffers; shuts `sender`
/// down for writing once its send `send` (of `len` bytes) has completed.
fn receive_all(
    ring: &Ring,
    group: &BufferGroup,
    stream: &TcpStream,
    (sender, send, len): (&TcpStream, u64, usize),
) -> Vec<u8> {
    let mut got = Vec::new();
    let mut op = group.recv_multishot(stream).unwrap();
    let region = group.region();
    let size = group.buffer_size();
    loop {
        ring.submit_and_wait(1).unwrap();
        let mut out = Vec::new();
        ring.reap(&mut out);
        if let Some(c) = out.iter().find(|c| c.user_data == send) {
            assert_eq!(c.result as usize, len);
            sender.shutdown(zcio::Shutdown::Write).unwrap();
        }
        let current = op;
        for c in out.iter().filter(|c| c.user_data == current) {
            if c.result > 0 {
                let start = c.buffer as usize * size + c.offset as usize;
                // SAFETY: the chunk lies inside the group's region and is
                // ours until released below.
                let bytes = unsafe {
                    std::slice::from_raw_parts(region.as_ptr().add(start), c.result as usize)
                };
                got.extend_from_slice(bytes);
                group.release(c.buffer).unwrap();
            } else if c.result == 0 {
                return got;
            }
            if !c.more() {
                assert!(c.result > 0 || c.result == -libc::ENOBUFS, "{c:?}");
                op = group.recv_multishot(stream).unwrap();
                group.note_rearm();
            }
        }
    }
}

fn payload(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn transfer(incremental: bool, count: u32, size: usize) {
    let ring = ring();
    let (server, client, _l) = pair(&ring);
    let group = BufferGroup::new(
        &ring,
        GroupOptions {
            group_id: 7,
            buffer_size: size,
            buffer_count: count,
            incremental,
        },
    )
    .unwrap();
    let data = payload(3 << 20);
    let expect = data.clone();
    let send = client.send(data).unwrap();
    let got = receive_all(&ring, &group, &server, (&client, send, expect.len()));
    assert_eq!(got.len(), expect.len());
    assert!(got == expect, "received bytes differ");
    assert_eq!(group.chunks_out(), 0);
    assert_eq!(group.available_count(), count);
}

#[test]
fn byte_exact_through_plain_and_incremental_groups() {
    require!(buf_ring);
    transfer(false, 64, 64 * 1024);
    if probe().buf_ring_incremental {
        transfer(true, 8, 1 << 20);
    } else {
        eprintln!("SKIPPED incremental part: the kernel lacks IOU_PBUF_RING_INC");
    }
}

#[test]
fn group_id_in_use_and_bad_sizes() {
    require!(buf_ring);
    let ring = ring();
    let opts = GroupOptions {
        group_id: 1,
        buffer_size: 4096,
        buffer_count: 4,
        incremental: false,
    };
    let g = BufferGroup::new(&ring, opts).unwrap();
    let e = BufferGroup::new(&ring, opts).unwrap_err();
    assert!(matches!(e, Error::GroupInUse { .. }));
    for (count, size) in [(3, 4096), (0, 4096), (65536, 4096), (4, 0)] {
        let e = BufferGroup::new(
            &ring,
            GroupOptions {
                group_id: 2,
                buffer_size: size,
                buffer_count: count,
                incremental: false,
            },
        )
        .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    }
    assert!(matches!(
        g.release(0).unwrap_err(),
        Error::NotAcquired { .. }
    ));
    g.close();
    // No receive can land in it: the id is free again.
    BufferGroup::new(&ring, opts).unwrap();
}

#[test]
fn enobufs_storm_loses_nothing() {
    require!(buf_ring);
    let ring = ring();
    let (server, client, _l) = pair(&ring);
    let group = plain_group(&ring, 3, 4096, 4);
    let data = payload(1 << 20);
    let expect = data.clone();
    let send = client.send(data).unwrap();
    let got = receive_all(&ring, &group, &server, (&client, send, expect.len()));
    assert!(got == expect);
    let p = group.published();
    assert!(
        p.count(zcio::group_counts::ENOBUFS) > 0.0,
        "no ENOBUFS seen"
    );
}

/// A listener on 127.0.0.1, any free port.
fn loopback_listener(ring: &Ring, backlog: u32) -> TcpListener {
    let addr: SockAddr = "127.0.0.1:0"
        .parse::<std::net::SocketAddr>()
        .unwrap()
        .into();
    TcpListener::bind(ring, &addr, backlog).unwrap()
}

#[test]
fn refused_connect_and_closed_stream() {
    require!(buf_ring);
    let ring = ring();
    let l = loopback_listener(&ring, 1);
    let port_addr = l.local_addr().unwrap();
    // In use.
    assert_eq!(
        TcpListener::bind(&ring, &port_addr, 1).unwrap_err().errno(),
        Some(libc::EADDRINUSE)
    );
    drop(l);
    let (s, c) = TcpStream::connect(&ring, &port_addr).unwrap();
    let mut out = Vec::new();
    wait_until(&ring, &mut out, |o| o.iter().any(|x| x.user_data == c));
    assert_eq!(out[0].result, -libc::ECONNREFUSED);
    s.close();
    assert!(matches!(
        s.send(vec![1u8]).unwrap_err(),
        Error::Closed { .. }
    ));
}

/// The driver of a JS ring turns the eventfd off while it reaps and relies on
/// `has_work` (shared memory only) to see what arrived meanwhile: data that
/// lands for a receive must show there, as deferred work, before any system
/// call runs it; and a ring with nothing to do must say so.
#[test]
fn has_work_sees_a_deferred_receive_without_a_system_call() {
    require!(buf_ring);
    let ring = ring();
    if !ring.features().taskrun_flag || !ring.features().defer_taskrun {
        eprintln!("SKIPPED has_work: the ring has no TASKRUN_FLAG / DEFER_TASKRUN");
        return;
    }
    let (server, client, _listener) = pair(&ring);
    let group = plain_group(&ring, 3, 64, 4);
    let op = group.recv_multishot(&server).unwrap();
    ring.submit().unwrap();
    let mut out = Vec::new();
    ring.reap(&mut out);
    assert!(!ring.has_work(), "idle ring reports work: {out:?}");
    ring.set_eventfd_enabled(false);
    ring.clear_eventfd();
    let msg = b"ping";
    // SAFETY: writes 4 bytes from a live buffer to the client's socket.
    let n = unsafe { libc::write(client.as_raw_fd(), msg.as_ptr().cast(), msg.len()) };
    assert_eq!(n, 4);
    let start = std::time::Instant::now();
    while !ring.has_work() {
        assert!(
            start.elapsed().as_secs() < 5,
            "the receive never showed as work"
        );
        std::hint::spin_loop();
    }
    assert!(
        !ring.clear_eventfd(),
        "the eventfd was signalled while turned off"
    );
    ring.set_eventfd_enabled(true);
    ring.submit().unwrap();
    out.clear();
    ring.reap(&mut out);
    let c = out
        .iter()
        .find(|c| c.user_data == op)
        .expect("the receive completed");
    assert_eq!(c.result, 4);
    group.release(c.buffer).unwrap();
    assert!(!ring.has_work());
}

/// The ring's eventfd is how an event loop learns of completions: it must
/// be signalled when a receive completes, not later. A kernel that signals
/// a DEFER_TASKRUN ring's eventfd about 16 ms late (Linux 6.18.44) made
/// every round trip of a conversation take 16 ms; rings there are set up
/// without DEFER_TASKRUN.
#[test]
fn the_eventfd_is_signalled_when_a_receive_completes() {
    require!(buf_ring);
    let ring = ring();
    let (server, client, _listener) = pair(&ring);
    let group = plain_group(&ring, 5, 64, 4);
    let op = group.recv_multishot(&server).unwrap();
    ring.submit().unwrap();
    let mut out = Vec::new();
    for round in 0..5 {
        ring.clear_eventfd();
        let msg = b"ping";
        // SAFETY: writes 4 bytes from a live buffer to the client's socket.
        let n = unsafe { libc::write(client.as_raw_fd(), msg.as_ptr().cast(), msg.len()) };
        assert_eq!(n, 4);
        let start = std::time::Instant::now();
        let mut p = libc::pollfd {
            fd: ring.eventfd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd on the stack for the whole call.
        let ready = unsafe { libc::poll(&mut p, 1, 1000) };
        let waited = start.elapsed();
        assert_eq!(ready, 1, "round {round}: the eventfd was never signalled");
        assert!(
            waited < std::time::Duration::from_millis(5),
            "round {round}: the eventfd was signalled {waited:?} after the data came ({:?})",
            ring.features()
        );
        ring.submit().unwrap();
        out.clear();
        ring.reap(&mut out);
        let c = out
            .iter()
            .find(|c| c.user_data == op)
            .expect("the receive completed");
        assert_eq!(c.result, 4);
        group.release(c.buffer).unwrap();
    }
}

/// With DEFER_TASKRUN each next link of a chain is issued by task work; one
/// `submit` must run a whole chain of sends through (it took one call per
/// link), and must not block doing it.
#[test]
fn one_submit_runs_a_linked_chain_through() {
    require!(buf_ring);
    let ring = ring();
    if !ring.features().defer_taskrun {
        eprintln!("SKIPPED linked chain: the ring has no DEFER_TASKRUN");
        return;
    }
    let (server, client, _listener) = pair(&ring);
    let data: std::rc::Rc<Vec<u8>> = std::rc::Rc::new(payload(4096));
    let links = 8;
    ring.reserve(links).unwrap();
    let mut ids = Vec::new();
    for k in 0..links {
        // SAFETY: `data` is kept by every op (the boxed Rc) until its completion.
        let id = unsafe {
            client.send_borrowed(
                data.as_ptr(),
                data.len(),
                false,
                k + 1 < links,
                Box::new(data.clone()),
            )
        }
        .unwrap();
        ids.push(id);
    }
    let start = std::time::Instant::now();
    ring.submit().unwrap();
    assert!(start.elapsed().as_millis() < 500, "submit blocked");
    let mut out = Vec::new();
    ring.reap(&mut out);
    let done: Vec<_> = out.iter().filter(|c| ids.contains(&c.user_data)).collect();
    assert_eq!(done.len(), links as usize, "one submit completed {done:?}");
    assert!(done.iter().all(|c| c.result == 4096), "{done:?}");
    drop(server);
}

/// A group's receive queued on another ring than its stream's: closing the
/// stream, or the stream's ring, cancels it (the socket tells every ring its
/// operations went to).
#[test]
fn closing_a_stream_or_its_ring_cancels_a_receive_on_another_ring() {
    require!(buf_ring);
    for close_ring in [false, true] {
        let a = ring();
        let b = ring();
        let (server, _client, _listener) = pair(&b);
        let group = BufferGroup::new(
            &a,
            GroupOptions {
                group_id: 0,
                buffer_size: 16,
                buffer_count: 2,
                incremental: false,
            },
        )
        .unwrap();
        let op = group.recv(&server).unwrap();
        a.submit().unwrap();
        if close_ring {
            b.close(&mut Vec::new()).unwrap();
        } else {
            server.close();
        }
        let mut out = Vec::new();
        let start = std::time::Instant::now();
        while !out.iter().any(|c: &Completion| c.user_data == op) {
            assert!(
                start.elapsed().as_secs() < 5,
                "the receive never ended (close_ring {close_ring})"
            );
            a.submit_and_wait(1).unwrap();
            a.reap(&mut out);
        }
        let c = out.iter().find(|c| c.user_data == op).unwrap();
        // Closing ring b closes the client too, and its FIN may end the
        // receive first: without DEFER_TASKRUN the kernel runs that
        // completion at the next system call, before the cancel is
        // submitted. Either way the receive ended, and only then.
        let eof_first = close_ring && c.result == 0;
        assert!(
            c.result == -libc::ECANCELED || eof_first,
            "close_ring {close_ring}: {c:?}"
        );
    }
}

/// A one-shot accept takes exactly one connection off the kernel's queue and
/// leaves the others there; accepted and connected TCP streams start with
/// `TCP_NODELAY` on.
#[test]
fn one_shot_accept_takes_one_connection_with_nodelay() {
    require!(buf_ring);
    let ring = ring();
    let addr: SockAddr = "127.0.0.1:0"
        .parse::<std::net::SocketAddr>()
        .unwrap()
        .into();
    let l = TcpListener::bind(&ring, &addr, 16).unwrap();
    let to = l.local_addr().unwrap();
    let (c1, k1) = TcpStream::connect(&ring, &to).unwrap();
    let (c2, k2) = TcpStream::connect(&ring, &to).unwrap();
    let mut out = Vec::new();
    wait_until(&ring, &mut out, |o| {
        o.iter().any(|x| x.user_data == k1) && o.iter().any(|x| x.user_data == k2)
    });
    let a = l.accept().unwrap();
    wait_until(&ring, &mut out, |o| o.iter().any(|x| x.user_data == a));
    let acc = out.iter().find(|x| x.user_data == a).unwrap();
    assert!(acc.result >= 0 && !acc.more(), "{acc:?}");
    assert_eq!(acc.kind, OpKind::Accept);
    // SAFETY: the accept completion's result is a new descriptor we own.
    let server = TcpStream::from_fd(&ring, unsafe { OwnedFd::from_raw_fd(acc.result) }).unwrap();
    // The second connection is still queued: a non-blocking accept finds it.
    // SAFETY: accept4 on our listening descriptor with no address buffer.
    let fd = unsafe {
        libc::accept4(
            l.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: accept4 returned a new descriptor we own.
    let second = TcpStream::from_fd(&ring, unsafe { OwnedFd::from_raw_fd(fd) }).unwrap();
    for s in [&server, &second, &c1, &c2] {
        assert!(s.nodelay().unwrap());
    }
    server.set_nodelay(false).unwrap();
    assert!(!server.nodelay().unwrap());
    l.close();
    let late = l.accept().unwrap_err();
    assert!(matches!(late, Error::Closed { .. }));
}

#[test]
fn readable_tells_an_idle_socket_from_one_with_data_or_end_and_keepalive_sets() {
    require!(buf_ring);
    let ring = ring();
    let (server, client, _l) = pair(&ring);
    let group = plain_group(&ring, 7, 64, 2);
    assert!(!group.readable(&server).unwrap(), "idle");
    let send = client.send(vec![1u8, 2, 3]).unwrap();
    let mut out = Vec::new();
    wait_until(&ring, &mut out, |o| o.iter().any(|c| c.user_data == send));
    assert!(group.readable(&server).unwrap(), "data waiting");
    assert!(!group.readable(&client).unwrap(), "the other way is idle");
    server.shutdown(zcio::Shutdown::Write).unwrap();
    assert!(group.readable(&client).unwrap(), "end of stream waiting");
    client.set_keepalive(true, 30).unwrap();
    client.set_keepalive(false, 0).unwrap();
    server.close();
    assert!(matches!(
        group.readable(&server).unwrap_err(),
        Error::Closed { .. }
    ));
    assert!(matches!(
        server.set_keepalive(true, 1).unwrap_err(),
        Error::Closed { .. }
    ));
}

/// A closed listener refuses connects at once, even while the accept it
/// had in flight still holds the descriptor (its cancellation not reaped).
#[test]
fn a_closed_listener_refuses_connects_before_its_accept_is_reaped() {
    let ring = ring();
    let l = loopback_listener(&ring, 16);
    let port = match l.local_addr().unwrap() {
        SockAddr::Inet(a) => a.port(),
        other => panic!("{other:?}"),
    };
    let accept = l.accept().unwrap();
    ring.submit().unwrap();
    l.close();
    // Nothing reaped yet: the accept still holds the descriptor.
    let refused = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(libc::ECONNREFUSED));
    let mut out = Vec::new();
    wait_until(&ring, &mut out, |o| o.iter().any(|c| c.user_data == accept));
    assert!(out.iter().all(|c| c.user_data != accept || c.result < 0));
}
