//! Who hands a group's free buffers to receives: the kernel's provided-
//! buffer ring (io_uring, `IORING_REGISTER_PBUF_RING`), or, on the epoll
//! backend, a user-space queue of buffer ids that the receive takes from in
//! the same order and with the same incremental rule.
//!
//! A provider lives while the group or any receive that may still pick a
//! buffer from it holds it; dropping it unregisters the kernel ring (then
//! unmaps its memory) or gives the group id back.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types;

use crate::error::{Error, Result};
use crate::op::owner::ProvidedBuffers;
use crate::op::poll::{F_BUFFER, F_BUF_MORE};
use crate::pool::region::Region;
use crate::ring::handle::RingInner;
use crate::sys::{self, Mmap};

pub(super) enum Provider {
    Kernel(KernelRing),
    Queue(BufferQueue),
}

/// The kernel's registration of the ring memory.
pub(super) struct KernelRing {
    ring: Rc<RingInner>,
    id: u16,
    map: Mmap,
    count: u32,
    /// The ring's tail as this side advanced it.
    tail: Cell<u16>,
}

/// The epoll backend's stand-in: free buffer ids in the order they were
/// given back, and how much of the first one an incremental group used.
pub(super) struct BufferQueue {
    ring: Rc<RingInner>,
    id: u16,
    data: Rc<Region>,
    size: usize,
    incremental: bool,
    free: RefCell<VecDeque<u16>>,
    used: Cell<u32>,
    /// Buffers given to the queue so far (wrapping, as a ring's tail).
    added: Cell<u16>,
}

impl Provider {
    /// Registers a ring of `count` entries for group `id` on io_uring, or a
    /// queue on another backend.
    ///
    /// # Errors
    ///
    /// [`Error::GroupInUse`], [`Error::Memlock`], [`Error::Unsupported`]
    /// (the kernel predates the feature), [`Error::Sys`].
    pub(super) fn new(
        ring: &Rc<RingInner>,
        id: u16,
        count: u32,
        (data, size, incremental): (&Rc<Region>, usize, bool),
    ) -> Result<Provider> {
        let Some(uring) = ring.uring() else {
            if !ring.claim_group(id) {
                return Err(Error::GroupInUse { group_id: id });
            }
            return Ok(Provider::Queue(BufferQueue {
                ring: ring.clone(),
                id,
                data: data.clone(),
                size,
                incremental,
                free: RefCell::new(VecDeque::with_capacity(count as usize)),
                used: Cell::new(0),
                added: Cell::new(0),
            }));
        };
        let map = Mmap::anonymous(count as usize * std::mem::size_of::<types::BufRingEntry>())
            .map_err(|e| Error::sys("mmap", e))?;
        let flags = if incremental {
            types::IOU_PBUF_RING_INC as u16
        } else {
            0
        };
        let registered = uring.with_uring(|uring| {
            // SAFETY: `map` is a zeroed, page-aligned mapping of `count`
            // entries; the `KernelRing` that owns it unregisters the ring
            // before unmapping it.
            unsafe {
                uring.submitter().register_buf_ring_with_flags(
                    map.as_ptr() as u64,
                    count as u16,
                    id,
                    flags,
                )
            }
        })?;
        if let Err(e) = registered {
            return Err(match e.raw_os_error() {
                Some(libc::EEXIST) => Error::GroupInUse { group_id: id },
                Some(libc::ENOMEM) => Error::Memlock {
                    bytes: map.len() as u64,
                    limit: sys::memlock_limit()
                        .map_or_else(|| "unlimited".into(), |l| format!("{l} bytes")),
                    source: e,
                },
                Some(libc::EINVAL) if incremental => Error::Unsupported {
                    feature: "incremental buffer consumption (IOU_PBUF_RING_INC)",
                    needs: "6.12",
                    release: sys::kernel_release(),
                },
                Some(libc::EINVAL) => Error::Unsupported {
                    feature: "provided-buffer rings (IORING_REGISTER_PBUF_RING)",
                    needs: "5.19",
                    release: sys::kernel_release(),
                },
                _ => Error::sys("io_uring_register", e),
            });
        }
        Ok(Provider::Kernel(KernelRing {
            ring: ring.clone(),
            id,
            map,
            count,
            tail: Cell::new(0),
        }))
    }

    /// Gives buffer `bid` (`addr`, `len` bytes) back; it is not the
    /// receives' until [`commit`](Self::commit).
    pub(super) fn add(&self, bid: u16, addr: u64, len: u32, at: u16) {
        match self {
            Provider::Kernel(k) => {
                let mask = k.count - 1;
                let slot = (u32::from(k.tail.get().wrapping_add(at)) & mask) as usize;
                let entries = k.map.as_ptr().cast::<types::BufRingEntry>();
                // SAFETY: `slot < count`, the ring's entry count; the entry
                // is not the kernel's until `commit` publishes the tail. The
                // setters leave entry 0's tail field alone.
                unsafe {
                    let e = &mut *entries.add(slot);
                    e.set_addr(addr);
                    e.set_len(len);
                    e.set_bid(bid);
                }
            }
            Provider::Queue(q) => {
                q.free.borrow_mut().push_back(bid);
                q.added.set(q.added.get().wrapping_add(1));
            }
        }
    }

    /// Hands the last `n` buffers added to the receives.
    pub(super) fn commit(&self, n: u16) {
        if let Provider::Kernel(k) = self {
            k.tail.set(k.tail.get().wrapping_add(n));
            // SAFETY: the tail is the u16 in entry 0, shared with the
            // kernel, which reads it concurrently: a release store orders
            // the entries' writes before it.
            unsafe {
                let tail = types::BufRingEntry::tail(k.map.as_ptr().cast()) as *const AtomicU16;
                (*tail).store(k.tail.get(), Ordering::Release);
            }
        }
    }
}

impl ProvidedBuffers for Provider {
    fn next_buffer(&self) -> Option<(u16, *mut u8, usize)> {
        let Provider::Queue(q) = self else {
            return None;
        };
        let bid = *q.free.borrow().front()?;
        let used = q.used.get() as usize;
        let at = usize::from(bid) * q.size + used;
        Some((bid, q.data.as_ptr().wrapping_add(at), q.size - used))
    }

    /// `n` more bytes went into the queue's first buffer (`bid`): it leaves
    /// the queue unless the group is incremental and room is left (then the
    /// completion says `IORING_CQE_F_BUF_MORE`, as the kernel's would).
    fn filled(&self, bid: u16, n: usize) -> u32 {
        let mut flags = F_BUFFER | (u32::from(bid) << 16);
        if let Provider::Queue(q) = self {
            let used = q.used.get() as usize + n;
            if q.incremental && used < q.size {
                q.used.set(used as u32);
                flags |= F_BUF_MORE;
            } else {
                q.free.borrow_mut().pop_front();
                q.used.set(0);
            }
        }
        flags
    }
}

#[cfg(test)]
impl Provider {
    /// Buffers given back so far (wrapping): the kernel ring's tail.
    pub(super) fn returned(&self) -> u16 {
        match self {
            Provider::Kernel(k) => k.tail.get(),
            Provider::Queue(q) => q.added.get(),
        }
    }
}

impl Drop for KernelRing {
    fn drop(&mut self) {
        // A closed ring took the registration with it.
        if let Some(u) = self.ring.uring() {
            let _ = u.with_uring(|uring| uring.submitter().unregister_buf_ring(self.id));
        }
    }
}

impl Drop for BufferQueue {
    fn drop(&mut self) {
        self.ring.release_group(self.id);
    }
}
