//! `MemoryRegion`: page-aligned memory registered with a protection domain,
//! held by every work request that uses it.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::rc::Rc;

use super::call::{check, last_error};
use super::ctx::Ctx;
use super::pd::Pd;
use super::sys;
use crate::error::{Error, Result};
use crate::sys::Mmap;

pub(crate) struct Mr {
    pd: Rc<Pd>,
    /// Null once deregistered (closed).
    raw: Cell<*mut sys::ibv_mr>,
    /// Unmapped on drop only once deregistered (kept for good otherwise).
    map: ManuallyDrop<Mmap>,
    len: usize,
    lkey: u32,
    rkey: u32,
    /// Work requests posted and not yet completed that use the region.
    in_use: Cell<u32>,
}

impl Mr {
    pub(crate) fn pd(&self) -> &Rc<Pd> {
        &self.pd
    }

    pub(crate) fn lkey(&self) -> u32 {
        self.lkey
    }

    /// The address of `start..end`, checked against the region.
    pub(crate) fn range(&self, start: usize, end: usize) -> Result<(u64, u32)> {
        if self.raw.get().is_null() {
            return Err(Error::Closed {
                what: "memory region",
            });
        }
        if start > end || end > self.len || end - start > u32::MAX as usize {
            return Err(Error::OutOfRange {
                name: "end",
                reason: format!(
                    "{start}..{end} is not a range inside the region's {} bytes",
                    self.len
                ),
            });
        }
        Ok((
            self.map.as_ptr() as u64 + start as u64,
            (end - start) as u32,
        ))
    }

    pub(crate) fn hold(self: &Rc<Self>) -> MrHold {
        self.in_use.set(self.in_use.get() + 1);
        MrHold(self.clone())
    }

    /// Deregisters (once). When `ibv_dereg_mr` fails nothing changes: the
    /// registration stays, and with it the memory the device may use.
    fn dereg(&self) -> Result<()> {
        let raw = self.raw.get();
        if raw.is_null() {
            return Ok(());
        }
        // SAFETY: no work request holds the region (`close` checks; on drop
        // each would hold an Rc), so the device no longer uses it for local
        // access; a peer's RDMA READ/WRITE naming its rkey fails from now on.
        // Deregistered before the memory is unmapped (the mapping goes with
        // `self`, and only once this succeeded).
        let rc = super::fault::or("ibv_dereg_mr", || unsafe { (self.pd.ctx.v.dereg_mr)(raw) });
        check("ibv_dereg_mr", rc)?;
        self.raw.set(std::ptr::null_mut());
        Ctx::child_gone(self.pd.mrs());
        Ok(())
    }
}

impl Drop for Mr {
    fn drop(&mut self) {
        if self.dereg().is_ok() {
            // SAFETY: deregistered: the device can't reach the memory, and
            // the map is dropped once, here.
            unsafe { ManuallyDrop::drop(&mut self.map) };
        } else {
            // Still registered: the memory stays mapped and the domain
            // (counting the region as open) stays, for good.
            std::mem::forget(self.pd.clone());
        }
    }
}

/// A work request's hold on a region: counted, released on drop.
pub(crate) struct MrHold(Rc<Mr>);

impl Drop for MrHold {
    fn drop(&mut self) {
        self.0.in_use.set(self.0.in_use.get() - 1);
    }
}

/// Registered memory: `lkey` for local work requests, `rkey` and `addr` for
/// a peer's RDMA READ/WRITE.
#[derive(Clone)]
pub struct MemoryRegion {
    pub(crate) mr: Rc<Mr>,
}

impl std::fmt::Debug for MemoryRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRegion")
            .field("len", &self.mr.len)
            .field("lkey", &self.lkey())
            .field("rkey", &self.rkey())
            .field("in_use", &self.mr.in_use.get())
            .finish()
    }
}

impl MemoryRegion {
    pub(crate) fn new(pd: &Rc<Pd>, size: usize) -> Result<MemoryRegion> {
        if size == 0 {
            return Err(Error::InvalidArgument {
                name: "size",
                reason: "a memory region needs at least one byte".into(),
            });
        }
        let map = Mmap::anonymous(size).map_err(|e| Error::sys("mmap", e))?;
        let access = sys::IBV_ACCESS_LOCAL_WRITE
            | sys::IBV_ACCESS_REMOTE_READ
            | sys::IBV_ACCESS_REMOTE_WRITE;
        // SAFETY: the memory is a live mapping owned by the region, which
        // deregisters it before unmapping.
        let raw = unsafe { (pd.ctx.v.reg_mr)(pd.raw(), map.as_ptr().cast(), size, access) };
        if raw.is_null() {
            return Err(last_error("ibv_reg_mr"));
        }
        // SAFETY: a registration just returned by ibv_reg_mr.
        let (lkey, rkey) = unsafe { ((*raw).lkey, (*raw).rkey) };
        pd.mrs().set(pd.mrs().get() + 1);
        Ok(MemoryRegion {
            mr: Rc::new(Mr {
                pd: pd.clone(),
                raw: Cell::new(raw),
                map: ManuallyDrop::new(map),
                len: size,
                lkey,
                rkey,
                in_use: Cell::new(0),
            }),
        })
    }

    /// Start of the memory (the address a peer names in RDMA READ/WRITE).
    pub fn addr(&self) -> u64 {
        self.mr.map.as_ptr() as u64
    }

    /// Usable bytes.
    pub fn len(&self) -> usize {
        self.mr.len
    }

    /// Whether the region is empty (never).
    pub fn is_empty(&self) -> bool {
        self.mr.len == 0
    }

    /// The local key.
    pub fn lkey(&self) -> u32 {
        self.mr.lkey()
    }

    /// The remote key (invalid at the device once the region is closed).
    pub fn rkey(&self) -> u32 {
        self.mr.rkey
    }

    /// Start of the memory, for reading and writing in place (bindings).
    /// The device may write into ranges a posted receive or a peer's RDMA
    /// WRITE targets until their completion. The memory stays mapped while
    /// a handle of the region exists, closed or not.
    pub fn as_ptr(&self) -> *mut u8 {
        self.mr.map.as_ptr()
    }

    /// Work requests posted and not completed that use the region.
    pub fn in_use(&self) -> u32 {
        self.mr.in_use.get()
    }

    /// Deregisters the region (`ibv_dereg_mr`) now: posts naming it fail
    /// with [`Error::Closed`] and a peer's access with its rkey fails; the
    /// memory stays mapped (readable through [`as_ptr`](Self::as_ptr)) until
    /// the last handle goes. Closing twice does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::MrInUse`] while work requests use it, [`Error::Sys`]
    /// (`ibv_dereg_mr`: the region stays registered and open, and its
    /// memory mapped); nothing changes.
    pub fn close(&self) -> Result<()> {
        let n = self.mr.in_use.get();
        if n > 0 {
            return Err(Error::MrInUse { count: n });
        }
        self.mr.dereg()
    }

    /// Whether [`close`](Self::close) ran.
    pub fn is_closed(&self) -> bool {
        self.mr.raw.get().is_null()
    }
}
