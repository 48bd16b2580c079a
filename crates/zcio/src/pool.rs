//! `RegisteredBufferPool`: page-aligned memory registered once as io_uring
//! fixed buffers, lent to the kernel by READ_FIXED / WRITE_FIXED.

use std::cell::{Cell, Ref, RefCell, RefMut};
use std::ops::{Deref, DerefMut};
use std::os::fd::RawFd;
use std::rc::Rc;

use crate::backend::uring::buf_table::MAX_REGISTERED_BUFFERS;
use crate::error::{Error, Result};
use crate::net::stream::TcpStream;
use crate::op::{BufferOwner, Direction, FixedRw, Op, OpKind, Send, SendMemory};
use crate::published::Published;
use crate::ring::handle::{Ring, RingInner};
use crate::slots::{Counters, Slot, Slots};
use crate::sys::{self, Mmap};

/// The largest buffer the kernel registers (1 GiB).
pub const MAX_BUFFER_SIZE: usize = 1 << 30;

/// The memory of a pool or a buffer group. Holding an `Rc<Region>` keeps it mapped, even after
/// the pool is closed or dropped; bindings that lend the memory out (as
/// JavaScript `ArrayBuffer`s) keep one until the last view is gone.
#[derive(Debug)]
pub struct Region {
    map: Mmap,
}

impl Region {
    pub(crate) fn new(map: Mmap) -> Region {
        Region { map }
    }

    /// Start of the memory.
    pub fn as_ptr(&self) -> *mut u8 {
        self.map.as_ptr()
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the region is empty (never).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// A snapshot of a pool's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Usable bytes per buffer.
    pub buffer_size: usize,
    /// Buffers in the pool.
    pub total: u32,
    /// Buffers free to acquire.
    pub available: u32,
    /// Buffers acquired and not in flight.
    pub acquired: u32,
    /// Buffers in flight.
    pub in_flight: u32,
    /// Kernel operations outstanding on the pool.
    pub kernel_ops: u64,
    /// Cumulative counters.
    pub counters: Counters,
}

pub(crate) struct PoolShared {
    ring: Rc<RingInner>,
    region: Rc<Region>,
    buffer_size: usize,
    stride: usize,
    /// First index of the pool in the ring's registered-buffer table.
    base: u32,
    slots: RefCell<Slots>,
    closed: Cell<bool>,
}

impl BufferOwner for PoolShared {
    fn op_done(&self, index: u32, result: i32) {
        // Called with the op's last completion (for a zero-copy send, its
        // notification): the buffer has been in flight until now.
        self.slots_mut().end_op(index, result);
    }
}

impl PoolShared {
    /// Mutable access to the slots; the counts are published when it ends.
    fn slots_mut(&self) -> SlotsMut<'_> {
        SlotsMut(self.slots.borrow_mut())
    }

    fn unregister(&self) {
        let count = self.slots.borrow().total();
        if let Some(uring) = self.ring.uring() {
            uring.unregister_buffers(self.base, count);
        }
    }
}

impl Drop for PoolShared {
    fn drop(&mut self) {
        // Reached only once no operation holds the pool (ops own an Rc).
        if !self.closed.get() {
            self.unregister();
        }
    }
}

/// A pool of equally sized, page-aligned buffers registered with a ring as
/// fixed buffers (`IORING_REGISTER_BUFFERS_UPDATE`, Linux 5.13).
///
/// Each buffer is either free, acquired by the user, or in flight (lent to the
/// kernel, or marked by the user). Every transition is checked, in release
/// builds too: a buffer in flight can't be released, borrowed or closed, and
/// its memory stays mapped until the kernel's completion is reaped.
///
/// Registered memory is pinned and charged to `RLIMIT_MEMLOCK` (unless the
/// process has `CAP_IPC_LOCK`).
pub struct RegisteredBufferPool {
    shared: Rc<PoolShared>,
}

impl std::fmt::Debug for RegisteredBufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredBufferPool")
            .field("stats", &self.stats())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl RegisteredBufferPool {
    /// Allocates `buffer_count` buffers of `buffer_size` bytes, each starting
    /// on a page boundary (usable with `O_DIRECT`), and registers them with
    /// `ring`.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`]: `buffer_size` is 0 or above 1 GiB, or
    ///   `buffer_count` is 0 or above 16384.
    /// - [`Error::Memlock`]: the registration exceeds `RLIMIT_MEMLOCK`, in whole
    ///   or in part; nothing of it stays registered.
    /// - [`Error::TableFull`]: the ring's 16384-entry table has no room left.
    /// - [`Error::Unsupported`]: the kernel predates Linux 5.13.
    /// - [`Error::Closed`]: the ring is closed.
    /// - [`Error::Sys`]: `mmap` or `io_uring_register` failed otherwise.
    pub fn new(ring: &Ring, buffer_size: usize, buffer_count: usize) -> Result<Self> {
        if buffer_size == 0 || buffer_size > MAX_BUFFER_SIZE {
            return Err(Error::InvalidArgument {
                name: "bufferSize",
                reason: format!("{buffer_size} is not between 1 and {MAX_BUFFER_SIZE} (1 GiB)"),
            });
        }
        if buffer_count == 0 || buffer_count > MAX_REGISTERED_BUFFERS as usize {
            return Err(Error::InvalidArgument {
                name: "bufferCount",
                reason: format!("{buffer_count} is not between 1 and {MAX_REGISTERED_BUFFERS}"),
            });
        }
        let inner = ring.inner();
        inner.check_open()?;
        let page = sys::page_size();
        let stride = buffer_size.div_ceil(page) * page;
        let bytes = stride
            .checked_mul(buffer_count)
            .ok_or(Error::InvalidArgument {
                name: "bufferCount",
                reason: "bufferSize * bufferCount overflows the address space".into(),
            })?;
        let map = Mmap::anonymous(bytes).map_err(|e| Error::sys("mmap", e))?;
        let region = Rc::new(Region { map });
        let iovecs: Vec<libc::iovec> = (0..buffer_count)
            .map(|i| libc::iovec {
                iov_base: region.as_ptr().wrapping_add(i * stride).cast(),
                iov_len: buffer_size,
            })
            .collect();
        // SAFETY: each iovec lies inside `region`, which the pool keeps
        // mapped until its range is unregistered (`PoolShared::unregister`)
        // or the ring is closed.
        let base = match inner.uring() {
            // SAFETY: as above.
            Some(uring) => unsafe { uring.register_buffers(&iovecs) }?,
            // Nothing to register elsewhere: buffers are named by address.
            None => 0,
        };
        Ok(RegisteredBufferPool {
            shared: Rc::new(PoolShared {
                ring: inner.clone(),
                region,
                buffer_size,
                stride,
                base,
                slots: RefCell::new(Slots::new(buffer_count as u32)),
                closed: Cell::new(false),
            }),
        })
    }

    fn slots(&self) -> Result<SlotsMut<'_>> {
        if self.shared.closed.get() {
            return Err(Error::Closed { what: "pool" });
        }
        // A pool can't outlive its ring's registration.
        self.shared.ring.check_open()?;
        Ok(self.shared.slots_mut())
    }

    fn view(&self) -> Ref<'_, Slots> {
        self.shared.slots.borrow()
    }

    /// Takes a free buffer and returns its index.
    ///
    /// # Errors
    ///
    /// [`Error::PoolExhausted`] when none is free; [`Error::Closed`].
    pub fn acquire(&self) -> Result<u32> {
        let mut slots = self.slots()?;
        let total = slots.total();
        slots.try_acquire().ok_or(Error::PoolExhausted { total })
    }

    /// Takes a free buffer, or `None` when none is free.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`].
    pub fn try_acquire(&self) -> Result<Option<u32>> {
        Ok(self.slots()?.try_acquire())
    }

    /// Returns an acquired buffer to the pool.
    ///
    /// # Errors
    ///
    /// [`Error::NotAcquired`] (double release), [`Error::BufferInFlight`],
    /// [`Error::Borrowed`], [`Error::OutOfRange`], [`Error::Closed`].
    pub fn release(&self, index: u32) -> Result<()> {
        self.slots()?.release(index)
    }

    /// Marks an acquired buffer as in flight (lent to something outside the
    /// pool); it can't be released until [`complete_in_flight`](Self::complete_in_flight).
    ///
    /// # Errors
    ///
    /// [`Error::NotAcquired`], [`Error::BufferInFlight`] (already marked),
    /// [`Error::Borrowed`], [`Error::OutOfRange`], [`Error::Closed`].
    pub fn mark_in_flight(&self, index: u32) -> Result<()> {
        self.slots()?.mark_in_flight(index)
    }

    /// Ends an in-flight mark (from `mark_in_flight` or a `submit_*` call).
    ///
    /// # Errors
    ///
    /// [`Error::BufferInFlight`] while a kernel operation on the buffer has not
    /// been reaped; [`Error::NotInFlight`], [`Error::NotAcquired`],
    /// [`Error::OutOfRange`], [`Error::Closed`].
    pub fn complete_in_flight(&self, index: u32) -> Result<()> {
        self.slots()?.complete_in_flight(index)
    }

    /// Borrows an acquired buffer that is not in flight.
    ///
    /// # Errors
    ///
    /// [`Error::BufferInFlight`], [`Error::NotAcquired`], [`Error::Borrowed`]
    /// (mutably borrowed), [`Error::OutOfRange`], [`Error::Closed`].
    pub fn get(&self, index: u32) -> Result<BufRef<'_>> {
        self.slots()?.borrow(index, false)?;
        Ok(BufRef { pool: self, index })
    }

    /// Borrows an acquired buffer that is not in flight, mutably.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), and [`Error::Borrowed`] if borrowed at all.
    pub fn get_mut(&self, index: u32) -> Result<BufMut<'_>> {
        self.slots()?.borrow(index, true)?;
        Ok(BufMut { pool: self, index })
    }

    /// Queues `IORING_OP_READ_FIXED`: read `len` bytes at file `offset` of
    /// `fd` into buffer `index`, starting `buf_offset` bytes into it.
    /// The buffer becomes in flight and stays so until the completion is
    /// reaped **and** the caller calls [`complete_in_flight`](Self::complete_in_flight).
    /// Returns the operation's `user_data`, found again in its
    /// [`Completion`](crate::Completion). Submit with [`Ring::submit`].
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] when `buf_offset + len` exceeds the buffer;
    /// [`Error::NotAcquired`], [`Error::Borrowed`], [`Error::Closed`] (pool or
    /// ring), [`Error::Sys`] if the submission queue could not be flushed.
    /// Errors of the read itself (`EBADF`...) arrive in the completion.
    pub fn submit_read_fixed(
        &self,
        fd: RawFd,
        index: u32,
        offset: u64,
        len: usize,
        buf_offset: usize,
    ) -> Result<u64> {
        self.submit(OpKind::ReadFixed, fd, index, offset, len, buf_offset, true)
    }

    /// Queues `IORING_OP_WRITE_FIXED` from buffer `index`; as
    /// [`submit_read_fixed`](Self::submit_read_fixed).
    ///
    /// # Errors
    ///
    /// As [`submit_read_fixed`](Self::submit_read_fixed).
    pub fn submit_write_fixed(
        &self,
        fd: RawFd,
        index: u32,
        offset: u64,
        len: usize,
        buf_offset: usize,
    ) -> Result<u64> {
        self.submit(OpKind::WriteFixed, fd, index, offset, len, buf_offset, true)
    }

    /// As [`submit_read_fixed`](Self::submit_read_fixed), but the buffer leaves
    /// the in-flight state by itself when the last of its operations completes.
    ///
    /// # Errors
    ///
    /// As [`submit_read_fixed`](Self::submit_read_fixed).
    pub fn read_fixed(
        &self,
        fd: RawFd,
        index: u32,
        offset: u64,
        len: usize,
        buf_offset: usize,
    ) -> Result<u64> {
        self.submit(OpKind::ReadFixed, fd, index, offset, len, buf_offset, false)
    }

    /// As [`submit_write_fixed`](Self::submit_write_fixed), completing by itself;
    /// see [`read_fixed`](Self::read_fixed).
    ///
    /// # Errors
    ///
    /// As [`submit_read_fixed`](Self::submit_read_fixed).
    pub fn write_fixed(
        &self,
        fd: RawFd,
        index: u32,
        offset: u64,
        len: usize,
        buf_offset: usize,
    ) -> Result<u64> {
        self.submit(
            OpKind::WriteFixed,
            fd,
            index,
            offset,
            len,
            buf_offset,
            false,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn submit(
        &self,
        kind: OpKind,
        fd: RawFd,
        index: u32,
        offset: u64,
        len: usize,
        buf_offset: usize,
        manual: bool,
    ) -> Result<u64> {
        self.check_fixed_op(index, offset, len, buf_offset)?;
        let dir = if kind == OpKind::ReadFixed {
            Direction::Read
        } else {
            Direction::Write
        };
        let pool: Rc<dyn BufferOwner> = self.shared.clone();
        self.submit_with(index, buf_offset, manual, |addr, buf_index| {
            Op::Fixed(FixedRw {
                dir,
                pool,
                index,
                buf_index,
                fd,
                pos: offset,
                addr,
                len: len as u32,
                stream: false,
                plain: false,
            })
        })
    }

    /// Queues a send of `len` bytes of buffer `index` (from `buf_offset`) on
    /// `stream`; a zero-copy send names the buffer as a registered buffer
    /// (no per-send page pinning). The buffer is in flight until the final
    /// completion (for `zc`, the notification): it can't be released meanwhile.
    ///
    /// # Errors
    ///
    /// As [`submit_read_fixed`](Self::submit_read_fixed), plus
    /// [`Error::Closed`] for a closed stream.
    ///
    /// `linked`: as in [`TcpStream::send_borrowed`].
    pub fn submit_send(
        &self,
        stream: &TcpStream,
        index: u32,
        buf_offset: usize,
        len: usize,
        zc: bool,
        linked: bool,
    ) -> Result<u64> {
        self.check_fixed_op(index, 0, len, buf_offset)?;
        if !stream.is_on(&self.shared.ring) {
            return Err(Error::InvalidArgument {
                name: "pool",
                reason: "the pool belongs to another ring than the stream".into(),
            });
        }
        let fd = stream.raw_fd()?;
        if len > i32::MAX as usize {
            return Err(Error::OutOfRange {
                name: "length",
                reason: format!("{len} bytes is above 2^31 - 1"),
            });
        }
        let socket = stream.socket_use(&self.shared.ring, zc);
        let pool: Rc<dyn BufferOwner> = self.shared.clone();
        self.submit_with(index, buf_offset, false, |addr, buf_index| {
            let memory = SendMemory::Pool { pool, index };
            let fixed = zc.then_some(buf_index);
            // SAFETY: `addr..addr + len` lies inside buffer `index` of the
            // pool, which `memory` holds (and with it the mapping) until the
            // final completion.
            Op::Send(unsafe { Send::new(fd, addr, len as u32, zc, fixed, linked, memory, socket) })
        })
    }

    /// Queues the op `build` makes from the buffer's address and its
    /// registered index; the buffer is in flight from now until the op's
    /// final completion.
    fn submit_with(
        &self,
        index: u32,
        buf_offset: usize,
        manual: bool,
        build: impl FnOnce(*mut u8, u16) -> Op,
    ) -> Result<u64> {
        let s = &self.shared;
        // In bounds (checked by the caller): index < total and
        // buf_offset + len <= buffer_size <= stride.
        let addr = s
            .region
            .as_ptr()
            .wrapping_add(index as usize * s.stride + buf_offset);
        let op = build(addr, (s.base + index) as u16);
        let mut slots = self.slots()?;
        let was = slots.state(index)?;
        slots.begin_op(index, manual)?;
        drop(slots);
        match s.ring.push(op) {
            Ok(user_data) => Ok(user_data),
            Err(e) => {
                s.slots_mut().abort_op(index, was);
                Err(e)
            }
        }
    }

    /// Checks, without side effects, everything a `read_fixed` /
    /// `write_fixed` call with these arguments would check before queueing:
    /// lets a caller validate a whole batch before queueing any of it.
    ///
    /// # Errors
    ///
    /// As [`submit_read_fixed`](Self::submit_read_fixed).
    pub fn check_fixed_op(
        &self,
        index: u32,
        offset: u64,
        len: usize,
        buf_offset: usize,
    ) -> Result<()> {
        let s = &self.shared;
        s.ring.check_open()?;
        let slots = self.slots()?;
        match slots.state(index)? {
            Slot::Free => return Err(Error::NotAcquired { index }),
            Slot::Acquired if slots.is_borrowed(index) => return Err(Error::Borrowed { index }),
            _ => {}
        }
        if buf_offset > s.buffer_size || len > s.buffer_size - buf_offset {
            return Err(Error::OutOfRange {
                name: "len",
                reason: format!(
                    "bufferOffset {buf_offset} + len {len} exceeds the buffer size {}",
                    s.buffer_size
                ),
            });
        }
        if offset > i64::MAX as u64 {
            return Err(Error::OutOfRange {
                name: "offset",
                reason: format!("{offset} is above 2^63 - 1"),
            });
        }
        Ok(())
    }

    /// Usable bytes per buffer.
    pub fn buffer_size(&self) -> usize {
        self.shared.buffer_size
    }

    /// Buffers in the pool.
    pub fn total_count(&self) -> u32 {
        self.view().total()
    }

    /// Buffers free to acquire.
    pub fn available_count(&self) -> u32 {
        self.view().available()
    }

    /// Buffers acquired and not in flight.
    pub fn acquired_count(&self) -> u32 {
        self.view().acquired()
    }

    /// Buffers in flight.
    pub fn in_flight_count(&self) -> u32 {
        self.view().in_flight()
    }

    /// Whether no buffer is free.
    pub fn is_exhausted(&self) -> bool {
        self.view().available() == 0
    }

    /// A snapshot of the counts and counters.
    pub fn stats(&self) -> PoolStats {
        let v = self.view();
        PoolStats {
            buffer_size: self.shared.buffer_size,
            total: v.total(),
            available: v.available(),
            acquired: v.acquired(),
            in_flight: v.in_flight(),
            kernel_ops: v.kernel_ops(),
            counters: v.counters,
        }
    }

    /// Whether [`close`](Self::close) succeeded or the ring was closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.get() || self.shared.ring.check_open().is_err()
    }

    /// Unregisters the buffers. The memory itself is unmapped when the pool
    /// and every [`Region`] handle are dropped. Calling it again does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::BufferInFlight`] while any buffer is in flight,
    /// [`Error::Borrowed`] while any is borrowed; the pool stays open.
    pub fn close(&self) -> Result<()> {
        if self.shared.closed.get() {
            return Ok(());
        }
        if self.shared.ring.check_open().is_err() {
            // The ring's close cancelled and reaped every operation and the
            // kernel dropped the registration with the ring.
            self.shared.closed.set(true);
            self.shared.slots.borrow().publish_closed();
            return Ok(());
        }
        self.shared.slots.borrow().check_closable()?;
        self.shared.unregister();
        self.shared.closed.set(true);
        self.shared.slots.borrow().publish_closed();
        Ok(())
    }

    /// The counts and buffer states, mirrored in place after every change
    /// (see [`Published`], [`pool_counts`](crate::pool_counts),
    /// [`buffer_state`](crate::buffer_state)), for bindings that read them
    /// without a call.
    pub fn published(&self) -> Rc<Published> {
        self.shared.slots.borrow().published().clone()
    }

    /// The pool's memory, for bindings that lend it out; see [`Region`].
    pub fn region(&self) -> Rc<Region> {
        self.shared.region.clone()
    }

    /// Address of buffer `index` inside [`region`](Self::region). Reading or
    /// writing through it while the buffer is in flight races with the kernel.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`].
    pub fn buffer_ptr(&self, index: u32) -> Result<*mut u8> {
        self.view().state(index)?;
        Ok(self.slice(index))
    }

    /// Whether buffer `index` is in flight.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`].
    pub fn is_in_flight(&self, index: u32) -> Result<bool> {
        Ok(matches!(self.view().state(index)?, Slot::InFlight { .. }))
    }

    /// Whether buffer `index` is acquired (in flight or not).
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`].
    pub fn is_acquired(&self, index: u32) -> Result<bool> {
        Ok(!matches!(self.view().state(index)?, Slot::Free))
    }

    fn slice(&self, index: u32) -> *mut u8 {
        let s = &self.shared;
        s.region.as_ptr().wrapping_add(index as usize * s.stride)
    }
}

/// Mutable access to a pool's slots that publishes the counts when dropped.
struct SlotsMut<'a>(RefMut<'a, Slots>);

impl Deref for SlotsMut<'_> {
    type Target = Slots;
    fn deref(&self) -> &Slots {
        &self.0
    }
}

impl DerefMut for SlotsMut<'_> {
    fn deref_mut(&mut self) -> &mut Slots {
        &mut self.0
    }
}

impl Drop for SlotsMut<'_> {
    fn drop(&mut self) {
        self.0.publish();
    }
}

/// A shared borrow of an acquired buffer; see [`RegisteredBufferPool::get`].
pub struct BufRef<'a> {
    pool: &'a RegisteredBufferPool,
    index: u32,
}

/// An exclusive borrow of an acquired buffer; see [`RegisteredBufferPool::get_mut`].
pub struct BufMut<'a> {
    pool: &'a RegisteredBufferPool,
    index: u32,
}

impl Deref for BufRef<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the slot is acquired, not in flight and shared-borrowed (so
        // no BufMut exists and no operation can start); the region outlives
        // `self.pool`, which outlives this borrow.
        unsafe { std::slice::from_raw_parts(self.pool.slice(self.index), self.pool.buffer_size()) }
    }
}

impl Deref for BufMut<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: as for BufRef; this borrow is exclusive.
        unsafe { std::slice::from_raw_parts(self.pool.slice(self.index), self.pool.buffer_size()) }
    }
}

impl DerefMut for BufMut<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: the slot is exclusively borrowed by this guard, acquired and
        // not in flight, so nothing else reads or writes it.
        unsafe {
            std::slice::from_raw_parts_mut(self.pool.slice(self.index), self.pool.buffer_size())
        }
    }
}

impl Drop for BufRef<'_> {
    fn drop(&mut self) {
        self.pool.shared.slots.borrow_mut().unborrow(self.index);
    }
}

impl Drop for BufMut<'_> {
    fn drop(&mut self) {
        self.pool.shared.slots.borrow_mut().unborrow(self.index);
    }
}
