//! RDMA verbs against a real device: two queue pairs of one context
//! connected to each other. Outside a machine with a device (the Soft-RoCE
//! VM of `npm run test:rdma`) these are ignored; `unavailable_is_explained`
//! runs everywhere.
#![cfg(feature = "rdma")]

use std::time::{Duration, Instant};

use zcio::rdma::{
    self, CompletionQueue, Context, MemoryRegion, QpOptions, QueuePair, Sge, WorkCompletion,
    WorkOpcode,
};
use zcio::Error;

struct Pair {
    _ctx: Context,
    a: QueuePair,
    b: QueuePair,
    cq_a: CompletionQueue,
    cq_b: CompletionQueue,
    mr_a: MemoryRegion,
    mr_b: MemoryRegion,
}

fn pair() -> Pair {
    let ctx = Context::open(std::env::var("ZCIO_RDMA_DEVICE").ok().as_deref()).unwrap();
    let pd = ctx.alloc_pd().unwrap();
    let cq_a = ctx.create_cq(64).unwrap();
    let cq_b = ctx.create_cq(64).unwrap();
    let opts = QpOptions {
        gid_index: std::env::var("ZCIO_RDMA_GID")
            .ok()
            .map(|g| g.parse().unwrap()),
        ..QpOptions::default()
    };
    let pa = pd.create_qp(&cq_a, &cq_a, opts).unwrap();
    let pb = pd.create_qp(&cq_b, &cq_b, opts).unwrap();
    let (ea, eb) = (pa.endpoint(), pb.endpoint());
    let a = pa.handshake(eb).unwrap();
    let b = pb.handshake(ea).unwrap();
    let mr_a = pd.allocate(1 << 16).unwrap();
    let mr_b = pd.allocate(1 << 16).unwrap();
    Pair {
        _ctx: ctx,
        a,
        b,
        cq_a,
        cq_b,
        mr_a,
        mr_b,
    }
}

fn wait(cq: &CompletionQueue, n: usize) -> Vec<WorkCompletion> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < n {
        out.extend(cq.poll(n - out.len()).unwrap());
        assert!(Instant::now() < deadline, "timed out with {out:?}");
    }
    out
}

#[allow(clippy::mut_from_ref)]
fn bytes(mr: &MemoryRegion) -> &mut [u8] {
    // SAFETY: the test is the only user of the memory between posts.
    unsafe { std::slice::from_raw_parts_mut(mr.as_ptr(), mr.len()) }
}

#[test]
fn unavailable_is_explained() {
    match Context::open(Some("no-such-device-zcio")) {
        Err(e) => {
            assert!(matches!(e, Error::RdmaUnavailable { .. }));
            eprintln!("{e}");
        }
        Ok(_) => panic!("a device named no-such-device-zcio"),
    }
}

#[test]
#[ignore = "needs an RDMA device"]
fn send_receive_byte_exact_and_immediate_data() {
    let p = pair();
    for (i, b) in bytes(&p.mr_a)[..4096].iter_mut().enumerate() {
        *b = (i * 31 % 251) as u8;
    }
    p.b.post_receive(&p.mr_b, 0, 4096, 7).unwrap();
    p.a.post_send(&p.mr_a, 0, 4096, 8).unwrap();
    assert!(matches!(p.mr_a.close().unwrap_err(), Error::MrInUse { .. }));
    let sent = wait(&p.cq_a, 1);
    assert_eq!(
        (sent[0].wr_id, sent[0].opcode, sent[0].status),
        (8, WorkOpcode::Send, 0)
    );
    let got = wait(&p.cq_b, 1);
    assert_eq!((got[0].wr_id, got[0].byte_len), (7, 4096));
    assert_eq!(got[0].opcode, WorkOpcode::Recv);
    assert_eq!(bytes(&p.mr_b)[..4096], bytes(&p.mr_a)[..4096]);
    assert_eq!(p.a.outstanding() + p.b.outstanding(), 0);

    // Two SGEs and immediate data.
    p.b.post_receive(&p.mr_b, 0, 8192, 9).unwrap();
    let sges = [
        Sge {
            mr: &p.mr_a,
            start: 0,
            end: 100,
        },
        Sge {
            mr: &p.mr_a,
            start: 1000,
            end: 1100,
        },
    ];
    p.a.post_send_sges(&sges, 10, Some(0xdead_beef)).unwrap();
    wait(&p.cq_a, 1);
    let got = wait(&p.cq_b, 1);
    assert_eq!((got[0].byte_len, got[0].imm_data), (200, Some(0xdead_beef)));
    assert_eq!(bytes(&p.mr_b)[100..200], bytes(&p.mr_a)[1000..1100]);
}

#[test]
#[ignore = "needs an RDMA device"]
fn rdma_write_and_read() {
    let p = pair();
    bytes(&p.mr_a)[..64].fill(0x5a);
    let sg = [Sge {
        mr: &p.mr_a,
        start: 0,
        end: 64,
    }];
    p.a.post_write(&sg, p.mr_b.addr() + 128, p.mr_b.rkey(), 1, None)
        .unwrap();
    assert_eq!(wait(&p.cq_a, 1)[0].opcode, WorkOpcode::RdmaWrite);
    assert!(bytes(&p.mr_b)[128..192].iter().all(|b| *b == 0x5a));
    bytes(&p.mr_b)[1024..1088].fill(0xa5);
    let sg = [Sge {
        mr: &p.mr_a,
        start: 4096,
        end: 4160,
    }];
    p.a.post_read(&sg, p.mr_b.addr() + 1024, p.mr_b.rkey(), 2)
        .unwrap();
    let c = wait(&p.cq_a, 1);
    assert_eq!(
        (c[0].opcode, c[0].wr_id, c[0].status),
        (WorkOpcode::RdmaRead, 2, 0)
    );
    assert!(bytes(&p.mr_a)[4096..4160].iter().all(|b| *b == 0xa5));
}

#[test]
#[ignore = "needs an RDMA device"]
fn error_state_flushes_every_outstanding_request() {
    let p = pair();
    for id in 0..10 {
        p.b.post_receive(&p.mr_b, id * 100, id * 100 + 100, id as u64)
            .unwrap();
    }
    assert_eq!(p.b.outstanding(), 10);
    assert!(matches!(p.mr_b.close().unwrap_err(), Error::MrInUse { .. }));
    p.b.set_error().unwrap();
    let flushed = wait(&p.cq_b, 10);
    let mut ids: Vec<u64> = flushed.iter().map(|c| c.wr_id).collect();
    ids.sort();
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
    assert!(flushed.iter().all(|c| c.is_flushed()));
    assert_eq!(p.b.outstanding(), 0);
    p.mr_b.close().unwrap();
    // Bad ranges never reach the device.
    assert!(matches!(
        p.a.post_send(&p.mr_a, 0, (1 << 16) + 1, 1).unwrap_err(),
        Error::OutOfRange { .. }
    ));
    assert!(matches!(
        p.a.post_send(&p.mr_b, 0, 1, 1).unwrap_err(),
        Error::Closed { .. }
    ));
    let _ = rdma::devices().unwrap();
}

fn err<T: std::fmt::Debug>(r: zcio::Result<T>) -> Error {
    r.unwrap_err()
}

#[test]
#[ignore = "needs an RDMA device"]
fn close_out_of_order_is_refused_then_in_order_works() {
    let ctx = Context::open(std::env::var("ZCIO_RDMA_DEVICE").ok().as_deref()).unwrap();
    let pd = ctx.alloc_pd().unwrap();
    let cq = ctx.create_cq(16).unwrap();
    let prepared = pd.create_qp(&cq, &cq, QpOptions::default()).unwrap();
    let peer = pd.create_qp(&cq, &cq, QpOptions::default()).unwrap();
    let ep = peer.endpoint();
    let qp = prepared.handshake(ep).unwrap();
    let mr = pd.allocate(4096).unwrap();

    // Every wrong order is refused and changes nothing.
    assert!(matches!(err(ctx.close()), Error::ContextInUse { .. }));
    assert!(matches!(err(pd.close()), Error::PdInUse { .. }));
    assert!(matches!(err(cq.close()), Error::CqInUse { .. }));
    assert_eq!(cq.users(), 2);
    qp.post_receive(&mr, 0, 64, 1).unwrap();
    assert!(matches!(err(mr.close()), Error::MrInUse { .. }));
    qp.set_error().unwrap();
    assert_eq!(wait(&cq, 1)[0].wr_id, 1);

    // In order: queue pairs, then queue and region, domain, context.
    qp.close().unwrap();
    assert!(qp.is_closed() && qp.is_destroyed());
    assert!(matches!(err(cq.close()), Error::CqInUse { .. })); // the prepared one
    peer.close().unwrap();
    assert_eq!(cq.users(), 0);
    assert!(matches!(err(pd.close()), Error::PdInUse { .. })); // the region
    assert!(matches!(err(ctx.close()), Error::ContextInUse { .. }));
    cq.close().unwrap();
    mr.close().unwrap();
    pd.close().unwrap();
    ctx.close().unwrap();
    assert!(cq.is_closed() && mr.is_closed() && pd.is_closed() && ctx.is_closed());

    // Twice: nothing happens.
    qp.close().unwrap();
    peer.close().unwrap();
    cq.close().unwrap();
    mr.close().unwrap();
    pd.close().unwrap();
    ctx.close().unwrap();

    // Any use after close.
    assert!(matches!(
        err(qp.post_send(&mr, 0, 1, 1)),
        Error::Closed { .. }
    ));
    assert!(matches!(
        err(qp.post_receive(&mr, 0, 1, 1)),
        Error::Closed { .. }
    ));
    assert!(matches!(err(qp.set_error()), Error::Closed { .. }));
    assert!(matches!(err(peer.handshake(ep)), Error::Closed { .. }));
    assert!(matches!(err(cq.poll(1)), Error::Closed { .. }));
    assert!(matches!(err(cq.arm()), Error::Closed { .. }));
    assert_eq!(cq.ack_events(), 0);
    assert!(matches!(err(pd.allocate(64)), Error::Closed { .. }));
    assert!(matches!(
        err(pd.create_qp(&cq, &cq, QpOptions::default())),
        Error::Closed { .. }
    ));
    assert!(matches!(err(ctx.alloc_pd()), Error::Closed { .. }));
    assert!(matches!(err(ctx.create_cq(4)), Error::Closed { .. }));
    // The closed region's memory is still mapped.
    assert_eq!(bytes(&mr)[..4], [0, 0, 0, 0]);
}

#[test]
#[ignore = "needs an RDMA device"]
fn close_with_work_outstanding_flushes_then_destroys() {
    let p = pair();
    for id in 0..8 {
        p.b.post_receive(&p.mr_b, id * 64, id * 64 + 64, 100 + id as u64)
            .unwrap();
    }
    // A send racing the close: it lands in the first receive or is flushed.
    p.a.post_send(&p.mr_a, 0, 64, 7).unwrap();
    p.b.close().unwrap();
    p.a.close().unwrap();
    assert!(p.b.is_closed() && !p.b.is_destroyed());
    assert!(matches!(
        err(p.b.post_receive(&p.mr_b, 0, 1, 1)),
        Error::Closed { .. }
    ));
    assert!(matches!(err(p.cq_b.close()), Error::CqInUse { .. }));
    assert!(matches!(err(p.mr_b.close()), Error::MrInUse { .. }));
    // Poll the flushed requests: every wr_id comes back, with its holds.
    let mut flushed = Vec::new();
    while flushed.len() < 8 {
        flushed.extend(wait(&p.cq_b, 1));
    }
    let mut ids: Vec<u64> = flushed.iter().map(|c| c.wr_id).collect();
    ids.sort();
    assert_eq!(ids, (100..108).collect::<Vec<_>>());
    assert!(flushed.iter().filter(|c| c.is_flushed()).count() >= 7);
    assert!(flushed.iter().all(|c| c.is_flushed() || c.wr_id == 100));
    assert!(p.b.is_destroyed());
    assert_eq!(p.b.outstanding(), 0);
    let sent = wait(&p.cq_a, 1);
    assert_eq!(sent[0].wr_id, 7);
    assert!(p.a.is_destroyed());
    p.cq_b.close().unwrap();
    p.cq_a.close().unwrap();
    p.mr_b.close().unwrap();
    p.mr_a.close().unwrap();
}

#[test]
#[ignore = "needs an RDMA device"]
fn dropping_in_any_order_mid_flight_is_safe() {
    // Everything dropped while work requests are outstanding, the context
    // handle first: the holds keep memory and objects until the queue pair
    // is destroyed.
    for order in 0..3 {
        let Pair {
            _ctx,
            a,
            b,
            cq_a,
            cq_b,
            mr_a,
            mr_b,
        } = pair();
        b.post_receive(&mr_b, 0, 4096, 1).unwrap();
        a.post_send(&mr_a, 0, 64, 2).unwrap();
        a.post_send(&mr_a, 64, 128, 3).unwrap();
        match order {
            0 => {
                drop((_ctx, mr_a, mr_b, cq_a, cq_b));
                drop((a, b));
            }
            1 => {
                a.close().unwrap();
                drop((_ctx, cq_a, cq_b, mr_a));
                drop((b, mr_b, a));
            }
            _ => {
                drop((cq_b, b, mr_b));
                let _ = wait(&cq_a, 1);
                drop((a, _ctx));
                drop((mr_a, cq_a));
            }
        }
    }
}

#[test]
#[ignore = "needs an RDMA device"]
fn a_closed_queue_pair_dropped_later_leaves_newer_ones_on_its_queue() {
    let ctx = Context::open(std::env::var("ZCIO_RDMA_DEVICE").ok().as_deref()).unwrap();
    let pd = ctx.alloc_pd().unwrap();
    let cq = ctx.create_cq(16).unwrap();
    let connect = || {
        let pa = pd.create_qp(&cq, &cq, QpOptions::default()).unwrap();
        let pb = pd.create_qp(&cq, &cq, QpOptions::default()).unwrap();
        let (ea, eb) = (pa.endpoint(), pb.endpoint());
        (pa.handshake(eb).unwrap(), pb.handshake(ea).unwrap())
    };
    let (old_a, old_b) = connect();
    old_a.close().unwrap();
    old_b.close().unwrap();
    // A device may hand the destroyed queue pairs' numbers out again.
    let (a, b) = connect();
    drop((old_a, old_b));
    let mr = pd.allocate(4096).unwrap();
    b.post_receive(&mr, 0, 64, 5).unwrap();
    a.post_send(&mr, 64, 128, 6).unwrap();
    let mut ids: Vec<u64> = wait(&cq, 2).iter().map(|c| c.wr_id).collect();
    ids.sort();
    assert_eq!(ids, [5, 6]);
}

#[test]
#[ignore = "needs an RDMA device"]
fn batch_posts_path_mtu_and_spinning_poll() {
    let ctx = Context::open(std::env::var("ZCIO_RDMA_DEVICE").ok().as_deref()).unwrap();
    let pd = ctx.alloc_pd().unwrap();
    let cq = ctx.create_cq(64).unwrap();
    let bad = QpOptions {
        path_mtu: 1000,
        ..QpOptions::default()
    };
    assert!(matches!(
        err(pd.create_qp(&cq, &cq, bad)),
        Error::InvalidArgument { .. }
    ));
    let opts = QpOptions {
        path_mtu: 4096,
        max_send_wr: 8,
        max_recv_wr: 16,
        ..QpOptions::default()
    };
    let pa = pd.create_qp(&cq, &cq, opts).unwrap();
    let pb = pd.create_qp(&cq, &cq, opts).unwrap();
    let (ea, eb) = (pa.endpoint(), pb.endpoint());
    let (a, b) = (pa.handshake(eb).unwrap(), pb.handshake(ea).unwrap());
    let src = pd.allocate(1 << 16).unwrap();
    let dst = pd.allocate(1 << 16).unwrap();
    for (i, x) in bytes(&src).iter_mut().enumerate() {
        *x = (i * 7 % 253) as u8;
    }
    // A bad range anywhere posts none.
    assert!(matches!(
        err(b.post_receive_batch(&dst, &[(0, 10, 1), (0, 1 << 20, 2)])),
        Error::OutOfRange { .. }
    ));
    assert_eq!(b.outstanding(), 0);
    let recvs: Vec<_> = (0..4)
        .map(|i| (i * 8192, i * 8192 + 8192, 100 + i as u64))
        .collect();
    assert_eq!(b.post_receive_batch(&dst, &recvs).unwrap(), 4);
    assert_eq!(dst.in_use(), 4);
    // Messages larger than one 4096-byte packet.
    let sends: Vec<_> = (0..4)
        .map(|i| (i * 8192, i * 8192 + 8192, i as u64))
        .collect();
    assert_eq!(a.post_send_batch(&src, &sends).unwrap(), 4);
    assert_eq!(src.in_use(), 4);
    // More than the send queue holds: the first ones go, the rest hold nothing.
    // (No receive is left for them at the peer: they stay outstanding.)
    let more: Vec<_> = (0..40).map(|i| (0, 64, 50 + i as u64)).collect();
    let n = a.post_send_batch(&src, &more).unwrap();
    assert!(n > 0 && n < 40, "{n} posted on an 8-entry send queue");
    assert_eq!(src.in_use() as usize, 4 + n);
    let mut got = Vec::new();
    while got.len() < 8 {
        got.extend(cq.poll_spin(16, 100_000).unwrap());
    }
    let mut recv_ids: Vec<u64> = got
        .iter()
        .filter(|c| c.opcode == WorkOpcode::Recv)
        .map(|c| c.wr_id)
        .collect();
    recv_ids.sort();
    assert_eq!(recv_ids, [100, 101, 102, 103]);
    assert!(got.iter().all(|c| c.is_ok()));
    assert_eq!(bytes(&dst)[..1 << 15], bytes(&src)[..1 << 15]);
    a.close().unwrap();
    let mut flushed = 0;
    while a.outstanding() > 0 {
        flushed += cq.poll_spin(16, 1000).unwrap().len();
    }
    assert!(flushed <= n);
    assert_eq!(src.in_use(), 0);
    assert!(cq.poll_spin(4, 10).unwrap().is_empty());
}

/// Two queue pairs connected to each other, both on `cq`.
fn pair_on(pd: &rdma::ProtectionDomain, cq: &CompletionQueue) -> (QueuePair, QueuePair) {
    let pa = pd.create_qp(cq, cq, QpOptions::default()).unwrap();
    let pb = pd.create_qp(cq, cq, QpOptions::default()).unwrap();
    let (ea, eb) = (pa.endpoint(), pb.endpoint());
    (pa.handshake(eb).unwrap(), pb.handshake(ea).unwrap())
}

#[test]
#[ignore = "needs an RDMA device"]
fn posts_that_could_overflow_the_completion_queue_are_refused() {
    let ctx = Context::open(std::env::var("ZCIO_RDMA_DEVICE").ok().as_deref()).unwrap();
    let pd = ctx.alloc_pd().unwrap();
    // Both queue pairs' sends complete on a 1-entry queue, receives on another.
    let small = ctx.create_cq(1).unwrap();
    let big = ctx.create_cq(256).unwrap();
    let cap = small.capacity() as usize;
    assert!((1..64).contains(&cap), "{cap}");
    let connect = || {
        let pa = pd.create_qp(&small, &big, QpOptions::default()).unwrap();
        let pb = pd.create_qp(&small, &big, QpOptions::default()).unwrap();
        let (ea, eb) = (pa.endpoint(), pb.endpoint());
        (pa.handshake(eb).unwrap(), pb.handshake(ea).unwrap())
    };
    let (a, b) = connect();
    let mr = pd.allocate(1 << 16).unwrap();
    for i in 0..64 {
        b.post_receive(&mr, i * 64, i * 64 + 64, 1000 + i as u64)
            .unwrap();
    }
    // 64 sends through `cap` entries: a post that would overflow the queue
    // is refused, so every send comes back.
    let (mut posted, mut sent) = (0u64, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent.len() < 64 {
        assert!(Instant::now() < deadline, "{} of 64 came back", sent.len());
        if posted < 64 {
            match a.post_send(&mr, 8192, 8192 + 64, posted) {
                Ok(()) => posted += 1,
                Err(e) => assert!(matches!(e, Error::CqFull { .. }), "{e}"),
            }
        }
        assert!(small.pending() as usize <= cap);
        sent.extend(small.poll(16).unwrap().into_iter().map(|c| {
            assert!(c.is_ok(), "{c:?}");
            c.wr_id
        }));
    }
    sent.sort();
    assert_eq!(sent, (0..64).collect::<Vec<_>>());
    assert_eq!(wait(&big, 64).len(), 64);
    assert_eq!(small.pending() + big.pending(), 0);

    // Full, with no receive left at the peer: a batch posts the first ones
    // that fit; both queue pairs' sends are refused, holding nothing.
    let batch: Vec<_> = (0..cap + 5).map(|i| (0, 64, i as u64)).collect();
    assert_eq!(a.post_send_batch(&mr, &batch).unwrap(), cap);
    assert_eq!(small.pending() as usize, cap);
    assert!(matches!(
        err(a.post_send(&mr, 0, 64, 1)),
        Error::CqFull { .. }
    ));
    assert!(matches!(
        err(b.post_send(&mr, 0, 64, 1)),
        Error::CqFull { .. }
    ));
    assert!(matches!(
        err(b.post_send_batch(&mr, &batch)),
        Error::CqFull { .. }
    ));
    assert_eq!(mr.in_use() as usize, cap);
    b.post_receive(&mr, 0, 64, 1).unwrap();
    // Closing flushes them; then everything closes.
    a.close().unwrap();
    b.close().unwrap();
    assert_eq!(wait(&small, cap).len(), cap);
    assert_eq!(wait(&big, 1).len(), 1);
    assert!(a.is_destroyed() && b.is_destroyed());
    assert_eq!(small.pending() + big.pending(), 0);
    small.close().unwrap();
    big.close().unwrap();
    mr.close().unwrap();
    pd.close().unwrap();
    ctx.close().unwrap();
}

#[test]
#[ignore = "needs an RDMA device"]
fn a_queue_pair_dropped_with_work_outstanding_frees_its_share_of_the_queue() {
    let ctx = Context::open(std::env::var("ZCIO_RDMA_DEVICE").ok().as_deref()).unwrap();
    let pd = ctx.alloc_pd().unwrap();
    let cq = ctx.create_cq(4).unwrap();
    let cap = cq.capacity() as usize;
    let mr = pd.allocate(4096).unwrap();
    for round in 0..3 {
        let (a, b) = pair_on(&pd, &cq);
        let recvs: Vec<_> = (0..cap).map(|i| (0, 64, i as u64)).collect();
        assert_eq!(b.post_receive_batch(&mr, &recvs).unwrap(), cap);
        assert!(matches!(
            err(a.post_send(&mr, 0, 64, 1)),
            Error::CqFull { .. }
        ));
        // Destroyed at once: its completions, if the device made any, are
        // stale; none is reported, and once the queue is seen empty the
        // room is back for the next queue pairs (which may get the same
        // numbers).
        drop((a, b));
        assert_eq!(mr.in_use(), 0);
        assert!(cq.poll(16).unwrap().is_empty(), "round {round}");
        assert_eq!(cq.pending(), 0);
    }
    let (a, b) = pair_on(&pd, &cq);
    b.post_receive(&mr, 0, 64, 7).unwrap();
    a.post_send(&mr, 64, 128, 8).unwrap();
    let mut ids: Vec<u64> = wait(&cq, 2).iter().map(|c| c.wr_id).collect();
    ids.sort();
    assert_eq!(ids, [7, 8]);
}

#[test]
#[ignore = "needs an RDMA device"]
fn a_failed_destroy_or_deregistration_keeps_the_memory_and_reports_it() {
    let ctx = Context::open(std::env::var("ZCIO_RDMA_DEVICE").ok().as_deref()).unwrap();
    let pd = ctx.alloc_pd().unwrap();
    let cq = ctx.create_cq(16).unwrap();
    let mr = pd.allocate(4096).unwrap();

    // close() with nothing outstanding: the error is reported, the queue
    // pair stays (its queue and domain refuse to close), close() retries.
    let (a, b) = pair_on(&pd, &cq);
    rdma::fail_next("ibv_destroy_qp", libc::EBUSY);
    let e = a.close().unwrap_err();
    assert_eq!(
        (e.errno(), e.syscall()),
        (Some(libc::EBUSY), Some("ibv_destroy_qp"))
    );
    assert!(a.is_closed() && !a.is_destroyed());
    b.close().unwrap();
    assert!(matches!(err(cq.close()), Error::CqInUse { .. }));
    a.close().unwrap();
    assert!(a.is_destroyed());

    // The last flushed completion of a closed queue pair destroys it: a
    // failure there leaves it for close() to retry and report.
    let (a, b) = pair_on(&pd, &cq);
    b.post_receive(&mr, 0, 64, 1).unwrap();
    b.close().unwrap();
    rdma::fail_next("ibv_destroy_qp", libc::EIO);
    assert_eq!(wait(&cq, 1)[0].wr_id, 1);
    assert!(!b.is_destroyed());
    assert!(matches!(err(cq.close()), Error::CqInUse { .. }));
    // close() retries, and reports a failure of its own.
    rdma::fail_next("ibv_destroy_qp", libc::EIO);
    assert_eq!(err(b.close()).errno(), Some(libc::EIO));
    b.close().unwrap();
    assert!(b.is_destroyed());
    a.close().unwrap();

    // Dropped with work outstanding and the destroy failing: the memory of
    // that work stays held (mapped, registered), and so do the queue and
    // domain.
    let leaked_pd = ctx.alloc_pd().unwrap();
    let leaked_cq = ctx.create_cq(4).unwrap();
    let held = leaked_pd.allocate(4096).unwrap();
    let (a, b) = pair_on(&leaked_pd, &leaked_cq);
    b.post_receive(&held, 0, 64, 1).unwrap();
    rdma::fail_next("ibv_destroy_qp", libc::EBUSY);
    drop(b);
    assert_eq!(held.in_use(), 1);
    assert!(matches!(err(held.close()), Error::MrInUse { .. }));
    a.close().unwrap();
    assert!(matches!(err(leaked_cq.close()), Error::CqInUse { .. }));
    assert!(matches!(err(leaked_pd.close()), Error::PdInUse { .. }));

    // A failed deregistration changes nothing; closing again retries.
    rdma::fail_next("ibv_dereg_mr", libc::EBUSY);
    let e = mr.close().unwrap_err();
    assert_eq!(
        (e.errno(), e.syscall()),
        (Some(libc::EBUSY), Some("ibv_dereg_mr"))
    );
    assert!(!mr.is_closed());
    assert!(matches!(err(pd.close()), Error::PdInUse { .. }));
    mr.close().unwrap();
    assert!(mr.is_closed());
    // Dropped and failing: still counted in its domain (registered, mapped).
    let dropped = pd.allocate(4096).unwrap();
    rdma::fail_next("ibv_dereg_mr", libc::EBUSY);
    drop(dropped);
    assert!(matches!(err(pd.close()), Error::PdInUse { .. }));
    cq.close().unwrap();
}
