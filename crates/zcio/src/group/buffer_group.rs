//! A buffer group: the buffers, the kernel's provided-buffer ring over them,
//! and who owns each buffer id.

use std::cell::RefCell;
use std::rc::Rc;

use io_uring::cqueue;

use super::group_counts as gc;
use super::options::{GroupOptions, MAX_GROUP_BUFFERS, MAX_GROUP_BUFFER_SIZE};
use super::provider::Provider;
use crate::error::{Error, Result};
use crate::net::stream::TcpStream;
use crate::op::completion::{Cqe, Placed};
use crate::op::dispatch::Op;
use crate::op::owner::{ProvidedBuffers, RecvOwner};
use crate::op::recv::Recv;
use crate::pool::region::Region;
use crate::published::Published;
use crate::ring::handle::{Ring, RingInner};
use crate::sys::Mmap;

#[derive(Default)]
pub(super) struct State {
    /// Per bid: chunks out, in the kernel's ring, bytes consumed (incremental).
    chunks: Vec<u32>,
    pub(super) in_kernel: Vec<bool>,
    head: Vec<u32>,
    pub(super) available: u32,
    /// Buffers the kernel handed back with chunks not all released.
    held: u32,
    pub(super) chunks_out: u32,
    enobufs: u64,
    rearms: u64,
    pub(super) receives: u32,
    closed: bool,
}

pub(crate) struct GroupShared {
    ring: Rc<RingInner>,
    id: u16,
    buffer_size: usize,
    count: u32,
    incremental: bool,
    data: Rc<Region>,
    /// `None` once closed: no receive may name the group any more.
    pub(super) reg: RefCell<Option<Rc<Provider>>>,
    pub(super) state: RefCell<State>,
    published: Rc<Published>,
}

/// A group of receive buffers the kernel chooses from (seed: Zig std's
/// `IoUring.BufferGroup`).
///
/// Receives ([`recv`](Self::recv), [`recv_multishot`](Self::recv_multishot))
/// complete with the buffer id the kernel filled
/// ([`Completion::buffer`](crate::Completion::buffer)) and the chunk's offset
/// in it ([`Completion::offset`](crate::Completion::offset)); the application
/// reads the chunk in place ([`region`](Self::region)) and gives it back with
/// [`release`](Self::release).
#[derive(Clone)]
pub struct BufferGroup {
    pub(super) shared: Rc<GroupShared>,
}

impl std::fmt::Debug for BufferGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferGroup")
            .field("group_id", &self.shared.id)
            .field("buffer_size", &self.shared.buffer_size)
            .field("buffer_count", &self.shared.count)
            .field("incremental", &self.shared.incremental)
            .finish()
    }
}

impl BufferGroup {
    /// Maps `buffer_count × buffer_size` bytes and registers a provided-buffer
    /// ring over them under `group_id`. Needs Linux 5.19 (6.12 with
    /// `incremental`).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`]: a count that is not a power of two up to
    ///   32768, a size of 0 or above 1 GiB.
    /// - [`Error::GroupInUse`]: the ring already has a group with this id (or
    ///   one closed while receives could still land in it).
    /// - [`Error::Unsupported`]: the kernel has no buffer rings, or no
    ///   incremental consumption.
    /// - [`Error::Memlock`]: the ring memory exceeds `RLIMIT_MEMLOCK`.
    /// - [`Error::Closed`], [`Error::Sys`] (`mmap`, `io_uring_register`).
    pub fn new(ring: &Ring, options: GroupOptions) -> Result<BufferGroup> {
        let GroupOptions {
            group_id,
            buffer_size,
            buffer_count,
            incremental,
        } = options;
        if buffer_count == 0 || buffer_count > MAX_GROUP_BUFFERS || !buffer_count.is_power_of_two()
        {
            return Err(Error::InvalidArgument {
                name: "bufferCount",
                reason: format!("{buffer_count} is not a power of two between 1 and 32768"),
            });
        }
        if buffer_size == 0 || buffer_size > MAX_GROUP_BUFFER_SIZE {
            return Err(Error::InvalidArgument {
                name: "bufferSize",
                reason: format!("{buffer_size} is not between 1 and 1073741824 (1 GiB)"),
            });
        }
        let inner = ring.inner().clone();
        inner.check_open()?;
        let bytes =
            buffer_size
                .checked_mul(buffer_count as usize)
                .ok_or(Error::InvalidArgument {
                    name: "bufferCount",
                    reason: "bufferSize * bufferCount overflows the address space".into(),
                })?;
        let data = Rc::new(Region::new(
            Mmap::anonymous(bytes).map_err(|e| Error::sys("mmap", e))?,
        ));
        let provider = Provider::new(
            &inner,
            group_id,
            buffer_count,
            (&data, buffer_size, incremental),
        )?;
        let n = buffer_count as usize;
        let group = GroupShared {
            ring: inner.clone(),
            id: group_id,
            buffer_size,
            count: buffer_count,
            incremental,
            data,
            reg: RefCell::new(Some(Rc::new(provider))),
            state: RefCell::new(State {
                chunks: vec![0; n],
                in_kernel: vec![false; n],
                head: vec![0; n],
                ..State::default()
            }),
            published: Published::new(gc::LEN, 0),
        };
        {
            let reg = group.reg.borrow();
            let reg = reg.as_ref().expect("just registered");
            let mut st = group.state.borrow_mut();
            for bid in 0..buffer_count {
                group.add(reg, &mut st, bid, bid as u16);
            }
            reg.commit(buffer_count as u16);
        }
        group.publish();
        Ok(BufferGroup {
            shared: Rc::new(group),
        })
    }

    /// Queues a one-shot receive on `stream` into a buffer of this group.
    /// Its completion carries the buffer id and the byte count, or `-ENOBUFS`
    /// when every buffer is held.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] (the group, the stream or the ring), [`Error::Sys`]
    /// when the submission queue could not be flushed.
    pub fn recv(&self, stream: &TcpStream) -> Result<u64> {
        self.push(stream, false)
    }

    /// Queues a multishot receive on `stream` (Linux 6.0): one completion per
    /// chunk of data, each with `IORING_CQE_F_MORE` while the receive goes
    /// on. The kernel ends it (a completion without `F_MORE`) at end of
    /// stream (result 0), on an error, or when no buffer is left (`-ENOBUFS`);
    /// in the last case, queue it again once buffers are released — no data
    /// is lost in between, it waits in the socket.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn recv_multishot(&self, stream: &TcpStream) -> Result<u64> {
        self.push(stream, true)
    }

    fn push(&self, stream: &TcpStream, multishot: bool) -> Result<u64> {
        let s = &self.shared;
        let fd = stream.raw_fd()?;
        let reg = s
            .reg
            .borrow()
            .clone()
            .ok_or(Error::Closed { what: "group" })?;
        let group: Rc<dyn RecvOwner> = s.clone();
        let socket = stream.socket_use(&s.ring, false);
        // The op holds the group (and so its memory), the registration (and
        // so the ring the kernel takes buffer addresses from) and the stream
        // (so its descriptor stays open) until its final completion.
        let buffers: Rc<dyn ProvidedBuffers> = reg;
        let op = Recv::new(fd, group, s.id, multishot, buffers, socket);
        s.state.borrow_mut().receives += 1;
        let res = s.ring.push(Op::Recv(op));
        if res.is_err() {
            s.state.borrow_mut().receives -= 1;
        }
        s.publish();
        res
    }

    /// Whether `stream` has something for a receive now: bytes, the end of
    /// stream or an error (`poll(2)` without waiting). The layer uses it to
    /// give a buffer that came back to a receive that will fill it, rather
    /// than to one that would only wait on an idle socket.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] (the stream or the ring), [`Error::Sys`] (`poll`).
    pub fn readable(&self, stream: &TcpStream) -> Result<bool> {
        let fd = stream.raw_fd()?;
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN | libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: `p` is one valid pollfd on the stack for the whole call.
        let n = syscall!(poll(&mut p, 1, 0)).map_err(|e| Error::sys("poll", e))?;
        Ok(n > 0 && p.revents != 0)
    }

    /// Records that a multishot receive was queued again after the kernel
    /// ended it (see [`group_counts::REARMS`](crate::group_counts::REARMS)).
    pub fn note_rearm(&self) {
        self.shared.state.borrow_mut().rearms += 1;
        self.shared.publish();
    }

    /// Gives back one chunk of buffer `buffer_id` (the seed's `put`). The
    /// buffer returns to the kernel once the kernel is done with it and every
    /// chunk cut from it is released. After [`close`](Self::close) the
    /// chunk is only counted back.
    ///
    /// # Errors
    ///
    /// [`Error::NotAcquired`] when no chunk of that buffer is held;
    /// [`Error::OutOfRange`] for an id outside the group.
    pub fn release(&self, buffer_id: u32) -> Result<()> {
        let s = &self.shared;
        if buffer_id >= s.count {
            return Err(Error::OutOfRange {
                name: "bufferId",
                reason: format!("{buffer_id} is not below the buffer count {}", s.count),
            });
        }
        let reg = s.reg.borrow();
        let mut st = s.state.borrow_mut();
        let b = buffer_id as usize;
        if st.chunks[b] == 0 {
            return Err(Error::NotAcquired { index: buffer_id });
        }
        st.chunks[b] -= 1;
        st.chunks_out -= 1;
        if st.chunks[b] == 0 && !st.in_kernel[b] {
            st.held -= 1;
            st.head[b] = 0;
            if let Some(reg) = reg.as_ref() {
                s.add(reg, &mut st, buffer_id, 0);
                reg.commit(1);
            } else {
                // Closed: no ring to return it to, but it is free again.
                st.in_kernel[b] = true;
                st.available += 1;
            }
        }
        drop(st);
        s.publish();
        Ok(())
    }

    /// Stops the group: no new receive may use it; receives in flight are
    /// cancelled by the caller (or end on their own). The kernel's
    /// registration is dropped once no receive can land in the group any
    /// more; the memory stays mapped while [`region`](Self::region) handles
    /// exist. Calling it again does nothing.
    pub fn close(&self) {
        let s = &self.shared;
        s.state.borrow_mut().closed = true;
        s.reg.borrow_mut().take();
        s.publish();
    }

    /// The group's id.
    pub fn group_id(&self) -> u16 {
        self.shared.id
    }

    /// Bytes per buffer.
    pub fn buffer_size(&self) -> usize {
        self.shared.buffer_size
    }

    /// Buffers in the group.
    pub fn buffer_count(&self) -> u32 {
        self.shared.count
    }

    /// Whether buffers are consumed incrementally.
    pub fn is_incremental(&self) -> bool {
        self.shared.incremental
    }

    /// Whether [`close`](Self::close) was called or the ring is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.state.borrow().closed || self.shared.ring.check_open().is_err()
    }

    /// The group's memory: buffer `b` starts at `b × buffer_size`.
    pub fn region(&self) -> Rc<Region> {
        self.shared.data.clone()
    }

    /// The counts, mirrored in place (see [`group_counts`](crate::group_counts)).
    pub fn published(&self) -> Rc<Published> {
        self.shared.published.clone()
    }

    /// Buffers in the kernel's ring.
    pub fn available_count(&self) -> u32 {
        self.shared.state.borrow().available
    }

    /// Buffers handed back by the kernel and not yet fully released.
    /// `available + held == buffer_count` always (after
    /// [`close`](Self::close), released buffers count as available: free,
    /// though no kernel ring takes them any more).
    pub fn held_count(&self) -> u32 {
        self.shared.state.borrow().held
    }

    /// Chunks received and not released.
    pub fn chunks_out(&self) -> u32 {
        self.shared.state.borrow().chunks_out
    }
}

impl GroupShared {
    /// Gives buffer `bid` back to the provider, as entry `tail + at` (not
    /// yet visible).
    fn add(&self, reg: &Provider, st: &mut State, bid: u32, at: u16) {
        let addr = self.data.as_ptr() as u64 + u64::from(bid) * self.buffer_size as u64;
        reg.add(bid as u16, addr, self.buffer_size as u32, at);
        st.in_kernel[bid as usize] = true;
        st.available += 1;
    }

    fn publish(&self) {
        let st = self.state.borrow();
        let p = &self.published;
        p.set_count(gc::BUFFERS, f64::from(self.count));
        p.set_count(gc::AVAILABLE, f64::from(st.available));
        p.set_count(gc::HELD, f64::from(st.held));
        p.set_count(gc::CHUNKS, f64::from(st.chunks_out));
        p.set_count(gc::ENOBUFS, st.enobufs as f64);
        p.set_count(gc::REARMS, st.rearms as f64);
        p.set_count(gc::RECEIVES, f64::from(st.receives));
        let closed = st.closed || self.ring.check_open().is_err();
        p.set_count(gc::CLOSED, f64::from(u8::from(closed)));
    }
}

impl RecvOwner for GroupShared {
    fn received(&self, cqe: Cqe, last: bool) -> Placed {
        let mut st = self.state.borrow_mut();
        if last {
            st.receives -= 1;
        }
        if cqe.result == -libc::ENOBUFS {
            st.enobufs += 1;
        }
        let mut placed = Placed::default();
        if let Some(bid) = cqueue::buffer_select(cqe.flags) {
            let b = usize::from(bid);
            if b < st.chunks.len() {
                placed.buffer = u32::from(bid);
                st.chunks[b] += 1;
                st.chunks_out += 1;
                let done = if self.incremental {
                    placed.offset = st.head[b];
                    st.head[b] += cqe.result.max(0) as u32;
                    !cqueue::buffer_more(cqe.flags)
                } else {
                    true
                };
                if done && st.in_kernel[b] {
                    st.in_kernel[b] = false;
                    st.available -= 1;
                    st.held += 1;
                }
            }
        }
        drop(st);
        self.publish();
        placed
    }
}
