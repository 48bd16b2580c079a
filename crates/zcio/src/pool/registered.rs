//! The pool: setting it up, lending buffers out and borrowing their bytes,
//! and what it reports.

use std::cell::{Cell, Ref, RefCell};
use std::ops::{Deref, DerefMut};
use std::rc::Rc;

use super::region::Region;
use super::shared::{PoolShared, SlotsMut};
use super::stats::PoolStats;
use crate::backend::uring::buf_table::MAX_REGISTERED_BUFFERS;
use crate::error::{Error, Result};
use crate::published::Published;
use crate::ring::handle::Ring;
use crate::slots::{Slot, Slots};
use crate::sys::{self, Mmap};

/// The largest buffer the kernel registers (1 GiB).
pub const MAX_BUFFER_SIZE: usize = 1 << 30;

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
    pub(super) shared: Rc<PoolShared>,
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
        let region = Rc::new(Region::new(map));
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

    pub(super) fn slots(&self) -> Result<SlotsMut<'_>> {
        if self.shared.closed.get() {
            return Err(Error::Closed { what: "pool" });
        }
        // A pool can't outlive its ring's registration.
        self.shared.ring.check_open()?;
        Ok(self.shared.slots_mut())
    }

    pub(super) fn view(&self) -> Ref<'_, Slots> {
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

    pub(super) fn slice(&self, index: u32) -> *mut u8 {
        let s = &self.shared;
        s.region.as_ptr().wrapping_add(index as usize * s.stride)
    }
}

/// A shared borrow of an acquired buffer; see [`RegisteredBufferPool::get`].
pub struct BufRef<'a> {
    pub(super) pool: &'a RegisteredBufferPool,
    pub(super) index: u32,
}

/// An exclusive borrow of an acquired buffer; see [`RegisteredBufferPool::get_mut`].
pub struct BufMut<'a> {
    pub(super) pool: &'a RegisteredBufferPool,
    pub(super) index: u32,
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
