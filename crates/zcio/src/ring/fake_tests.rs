//! Tests over the scripted backend (`backend::fake`): the paths no kernel
//! reaches on demand.

use std::os::fd::{FromRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::handle::Ring;
use crate::backend::raw_cqe::RawCqe;
use crate::group::buffer_group::BufferGroup;
use crate::group::options::GroupOptions;
use crate::net::stream::TcpStream;
use crate::op::poll::{F_BUFFER, F_MORE};
use crate::pool::registered::RegisteredBufferPool;

fn cqe(user_data: u64, result: i32, flags: u32) -> RawCqe {
    RawCqe {
        user_data,
        result,
        flags,
    }
}

#[test]
fn close_leaks_what_a_cancel_never_ends() {
    let ring = Ring::fake();
    ring.set_close_timeout(Duration::from_millis(300));
    let pool = RegisteredBufferPool::new(&ring, 4096, 1).unwrap();
    let i = pool.acquire().unwrap();
    pool.read_fixed(0, i, 0, 512, 0).unwrap();
    ring.submit().unwrap();
    let memory = Rc::downgrade(&pool.region());
    drop(pool);
    let start = Instant::now();
    let mut out = Vec::new();
    ring.close(&mut out).unwrap();
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(out.is_empty(), "{out:?}");
    assert!(ring.script().cancels.get() >= 1);
    assert!(ring.script().closed.get());
    // The backend may still write the buffer: its memory is leaked, never
    // freed under it.
    assert!(memory.upgrade().is_some(), "the memory was freed");
    assert!(ring.is_closed());
}

#[test]
fn close_frees_what_its_cancel_ends() {
    let ring = Ring::fake();
    ring.script().cancel_ends.set(true);
    let pool = RegisteredBufferPool::new(&ring, 4096, 1).unwrap();
    let i = pool.acquire().unwrap();
    let ud = pool.read_fixed(0, i, 0, 512, 0).unwrap();
    ring.submit().unwrap();
    let memory = Rc::downgrade(&pool.region());
    drop(pool);
    let start = Instant::now();
    let mut out = Vec::new();
    ring.close(&mut out).unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].user_data, out[0].result), (ud, -libc::ECANCELED));
    assert!(memory.upgrade().is_none(), "the memory was leaked");
}

#[test]
fn a_completion_for_a_reused_slot_is_dropped() {
    let ring = Ring::fake();
    let pool = RegisteredBufferPool::new(&ring, 4096, 2).unwrap();
    let i = pool.acquire().unwrap();
    let a = pool.read_fixed(0, i, 0, 512, 0).unwrap();
    ring.submit().unwrap();
    ring.script().script.borrow_mut().push_back(cqe(a, 512, 0));
    let mut out = Vec::new();
    assert_eq!(ring.reap(&mut out), 1);
    assert_eq!((out[0].user_data, out[0].buffer), (a, i));
    // Handed out, the slot is retired until the next reap: a new op gets
    // another one, and a second completion for `a` is dropped.
    ring.script().script.borrow_mut().push_back(cqe(a, 7, 0));
    let b = pool.read_fixed(0, i, 0, 512, 0).unwrap();
    assert_ne!(b as u32, a as u32);
    assert_eq!(ring.reap(&mut Vec::new()), 0);
    // Free again: the slot is reused with a new generation, and the old
    // user_data still finds nothing.
    let c = pool.read_fixed(0, i, 0, 512, 0).unwrap();
    assert_eq!(c as u32, a as u32);
    assert_ne!(c, a);
    ring.submit().unwrap();
    ring.script()
        .script
        .borrow_mut()
        .extend([cqe(a, 9, 0), cqe(c, 512, 0), cqe(b, 512, 0)]);
    let mut out = Vec::new();
    ring.reap(&mut out);
    let got: Vec<(u64, i32)> = out.iter().map(|c| (c.user_data, c.result)).collect();
    assert_eq!(got, vec![(c, 512), (b, 512)]);
    assert_eq!(ring.in_flight(), 0);
    assert_eq!(pool.stats().kernel_ops, 0);
    pool.release(i).unwrap();
}

#[test]
fn a_multishot_receive_lives_until_its_final_completion() {
    let ring = Ring::fake();
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two descriptors to fill.
    let made = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
    assert_eq!(made, 0);
    // SAFETY: socketpair returned two new descriptors nothing else owns.
    let (a, _b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let stream = TcpStream::from_fd(&ring, a).unwrap();
    let group = BufferGroup::new(
        &ring,
        GroupOptions {
            group_id: 3,
            buffer_size: 64,
            buffer_count: 4,
            incremental: false,
        },
    )
    .unwrap();
    let ud = group.recv_multishot(&stream).unwrap();
    ring.submit().unwrap();
    ring.script().script.borrow_mut().extend([
        cqe(ud, 10, F_BUFFER | F_MORE),
        cqe(ud, 5, F_BUFFER | (1 << 16) | F_MORE),
    ]);
    let mut out = Vec::new();
    assert_eq!(ring.reap(&mut out), 2);
    assert_eq!((out[0].buffer, out[1].buffer), (0, 1));
    assert_eq!(ring.in_flight(), 1, "still receiving");
    assert_eq!(group.chunks_out(), 2);
    assert_eq!(stream.ops_in_flight(), 1);
    ring.script().script.borrow_mut().push_back(cqe(ud, 0, 0));
    assert_eq!(ring.reap(&mut out), 1);
    assert_eq!(ring.in_flight(), 0);
    assert_eq!(stream.ops_in_flight(), 0, "the op let go of the stream");
    group.release(0).unwrap();
    group.release(1).unwrap();
    assert_eq!(group.chunks_out(), 0);
}
