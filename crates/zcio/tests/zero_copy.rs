//! Zero-copy sends over loopback: notifications, the copy report, and on
//! the epoll backend the kernel's per-socket numbering and the switch to
//! copying once the kernel said it copies.

use zcio::{Completion, Error, RegisteredBufferPool, Ring, RingOptions, NOTIF_USAGE_ZC_COPIED};

#[macro_use]
mod common;
use common::{pair, ring, wait_until};

#[test]
fn send_zc_reports_copy_after_the_notification() {
    require!(send_zc);
    let ring = ring();
    let (server, client, _l) = pair(&ring);
    let pool = RegisteredBufferPool::new(&ring, 65536, 2).unwrap();
    let i = pool.acquire().unwrap();
    pool.get_mut(i).unwrap().fill(0xab);
    let zc = pool.submit_send(&client, i, 0, 65536, true, false).unwrap();
    assert!(matches!(
        pool.release(i).unwrap_err(),
        Error::BufferInFlight { .. }
    ));
    let zc2 = client.send_zc(vec![1u8; 1000]).unwrap();
    let mut out = Vec::new();
    wait_until(&ring, &mut out, |o| {
        o.iter()
            .filter(|c| c.user_data == zc || c.user_data == zc2)
            .filter(|c| !c.more())
            .count()
            == 2
    });
    for id in [zc, zc2] {
        let cs: Vec<&Completion> = out.iter().filter(|c| c.user_data == id).collect();
        assert_eq!(cs.len(), 2, "{cs:?}");
        assert!(cs[0].more() && !cs[0].is_notification());
        assert!(cs[1].is_notification() && !cs[1].more());
        // Loopback always copies.
        assert_ne!(cs[1].result as u32 & NOTIF_USAGE_ZC_COPIED, 0);
    }
    assert_eq!(
        out.iter().find(|c| c.user_data == zc).unwrap().result,
        65536
    );
    pool.release(i).unwrap();
    drop(server);
}

/// On epoll, zero-copy sends are numbered per socket by the kernel; a new
/// socket that gets a closed one's descriptor number starts from 0 again,
/// and its sends must still get their notifications (they hung when the
/// backend kept the old socket's count and `SO_ZEROCOPY` flag).
#[test]
fn zero_copy_sends_on_a_reused_descriptor_are_notified() {
    let ring = Ring::new(RingOptions {
        backend: zcio::BackendChoice::Epoll,
        ..RingOptions::default()
    })
    .unwrap();
    let mut fds = Vec::new();
    for _round in 0..3 {
        let (server, client, listener) = pair(&ring);
        fds.push(client.as_raw_fd());
        let sends: Vec<u64> = (0..4)
            .map(|_| client.send_zc(vec![3u8; 4096]).unwrap())
            .collect();
        let mut out = Vec::new();
        wait_until(&ring, &mut out, |o| {
            o.iter().filter(|c| c.is_notification()).count() == sends.len()
        });
        assert!(out
            .iter()
            .filter(|c| !c.is_notification())
            .all(|c| c.result == 4096));
        client.close();
        server.close();
        listener.close();
        ring.submit().unwrap();
        let mut rest = Vec::new();
        while ring.in_flight() > 0 {
            ring.submit_and_wait(1).unwrap();
            ring.reap(&mut rest);
        }
    }
    // The point of the test: the kernel handed out the same number again.
    assert!(fds.windows(2).any(|w| w[0] == w[1]), "{fds:?}");
}

/// Once a socket's notification said the kernel copied (always, over
/// loopback), later zero-copy sends on it copy at once, on either backend
/// (io_uring: a plain send whose one completion is handed out as the two of
/// a zero-copy send): still two completions each, the second saying
/// `copied`, a pool buffer in flight until it, and the bytes arrive in
/// order whichever way each send went.
#[test]
fn sends_by_copy_once_the_kernel_copies() {
    require!(send_zc);
    let ring = ring();
    let (server, client, _l) = pair(&ring);
    let mut sent = Vec::new();
    let mut out = Vec::new();
    for round in 0..4u8 {
        let data = vec![round; 3000];
        sent.extend_from_slice(&data);
        let id = client.send_zc(data).unwrap();
        wait_until(&ring, &mut out, |o| {
            o.iter().any(|c| c.user_data == id && c.is_notification())
        });
        let cs: Vec<&Completion> = out.iter().filter(|c| c.user_data == id).collect();
        assert_eq!(cs.len(), 2, "round {round}: {cs:?}");
        assert_eq!(cs[0].result, 3000);
        assert!(cs[0].more() && cs[1].is_notification());
        assert_ne!(
            cs[1].result as u32 & NOTIF_USAGE_ZC_COPIED,
            0,
            "round {round}"
        );
    }
    let pool = RegisteredBufferPool::new(&ring, 4096, 1).unwrap();
    let i = pool.acquire().unwrap();
    pool.get_mut(i).unwrap().fill(0x77);
    sent.extend_from_slice(&[0x77; 4096]);
    let id = pool.submit_send(&client, i, 0, 4096, true, false).unwrap();
    assert!(matches!(
        pool.release(i).unwrap_err(),
        Error::BufferInFlight { .. }
    ));
    wait_until(&ring, &mut out, |o| {
        o.iter().any(|c| c.user_data == id && c.is_notification())
    });
    let cs: Vec<&Completion> = out.iter().filter(|c| c.user_data == id).collect();
    assert_eq!((cs.len(), cs[0].result), (2, 4096), "{cs:?}");
    assert_ne!(cs[1].result as u32 & NOTIF_USAGE_ZC_COPIED, 0);
    pool.release(i).unwrap();
    let mut got = vec![0u8; sent.len()];
    let mut have = 0;
    while have < got.len() {
        let rest = &mut got[have..];
        // SAFETY: `rest` is valid for writes of its length.
        let r = unsafe { libc::recv(server.as_raw_fd(), rest.as_mut_ptr().cast(), rest.len(), 0) };
        if r > 0 {
            have += r as usize;
        } else {
            assert_eq!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::EAGAIN),
                "recv gave {r}"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    assert_eq!(got, sent);
}
