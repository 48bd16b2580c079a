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
            assert_eq!(e.code(), "ERR_ZCIO_RDMA_UNAVAILABLE");
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
    assert_eq!(p.mr_a.close().unwrap_err().code(), "ERR_ZCIO_MR_IN_USE");
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
    assert_eq!(p.mr_b.close().unwrap_err().code(), "ERR_ZCIO_MR_IN_USE");
    p.b.set_error().unwrap();
    let flushed = wait(&p.cq_b, 10);
    let mut ids: Vec<u64> = flushed.iter().map(|c| c.wr_id).collect();
    ids.sort();
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
    assert!(flushed.iter().all(|c| c.is_flushed()));
    assert_eq!(p.b.outstanding(), 0);
    p.mr_b.close().unwrap();
    // Bad ranges never reach the device.
    assert_eq!(
        p.a.post_send(&p.mr_a, 0, (1 << 16) + 1, 1)
            .unwrap_err()
            .code(),
        "ERR_OUT_OF_RANGE"
    );
    assert_eq!(
        p.a.post_send(&p.mr_b, 0, 1, 1).unwrap_err().code(),
        "ERR_ZCIO_CLOSED"
    );
    let _ = rdma::devices().unwrap();
}
