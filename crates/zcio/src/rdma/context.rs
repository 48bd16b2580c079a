//! `Context`: an open RDMA device, and what is made from it directly
//! (protection domains, completion queues).

use std::cell::Cell;
use std::ffi::CStr;
use std::rc::Rc;

use super::call::{last_error, unavailable, verbs};
use super::cq::CompletionQueue;
use super::ctx::Ctx;
use super::device::device_list;
use super::domain::ProtectionDomain;
use super::pd::Pd;
use crate::error::{Error, Result};

/// An open RDMA device.
#[derive(Clone)]
pub struct Context {
    ctx: Rc<Ctx>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    /// Opens device `name`, or the first device when `None`.
    ///
    /// # Errors
    ///
    /// [`Error::RdmaUnavailable`] (no libibverbs, no device, no such device),
    /// [`Error::Sys`] (`ibv_open_device`).
    pub fn open(name: Option<&str>) -> Result<Context> {
        let v = verbs()?;
        let (list, n) = device_list(v)?;
        let mut found = None;
        for i in 0..n {
            // SAFETY: `list` holds `n` devices until freed below.
            let dev = unsafe { *list.add(i) };
            // SAFETY: a NUL-terminated name owned by libibverbs.
            let dev_name = unsafe { CStr::from_ptr((v.get_device_name)(dev)) };
            if name.is_none_or(|want| dev_name.to_bytes() == want.as_bytes()) {
                found = Some(Ctx::open_raw(v, dev));
                break;
            }
        }
        // SAFETY: freed once; an opened context does not need the list.
        unsafe { (v.free_device_list)(list) };
        match found {
            Some(ctx) => Ok(Context { ctx: Rc::new(ctx?) }),
            None => Err(unavailable(match name {
                Some(want) => format!("no RDMA device named {want:?}"),
                None => "libibverbs found no RDMA device".into(),
            })),
        }
    }

    /// Allocates a protection domain.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after [`close`](Self::close), [`Error::Sys`]
    /// (`ibv_alloc_pd`).
    pub fn alloc_pd(&self) -> Result<ProtectionDomain> {
        let c = &self.ctx;
        c.check_open()?;
        // SAFETY: the context is open.
        let raw = unsafe { (c.v.alloc_pd)(c.raw()) };
        if raw.is_null() {
            return Err(last_error("ibv_alloc_pd"));
        }
        c.open_pds.set(c.open_pds.get() + 1);
        Ok(ProtectionDomain {
            pd: Rc::new(Pd {
                ctx: c.clone(),
                raw: Cell::new(raw),
                open_mrs: Cell::new(0),
                open_qps: Cell::new(0),
            }),
        })
    }

    /// Creates a completion queue of at least `entries` entries, with a
    /// completion channel for event-driven use.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for 0 or more than 2^31 - 1 entries,
    /// [`Error::Closed`] after [`close`](Self::close), [`Error::Sys`]
    /// (`ibv_create_comp_channel`, `ibv_create_cq`).
    pub fn create_cq(&self, entries: u32) -> Result<CompletionQueue> {
        self.ctx.check_open()?;
        CompletionQueue::new(&self.ctx, entries)
    }

    /// Closes the device (`ibv_close_device`) now. Every protection domain
    /// and completion queue made from it must be closed (or dropped) first;
    /// closing twice does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::ContextInUse`] while protection domains or completion queues
    /// of it are open (nothing changes).
    pub fn close(&self) -> Result<()> {
        let c = &self.ctx;
        if c.raw.get().is_null() {
            return Ok(());
        }
        let (domains, queues) = (c.open_pds.get(), c.open_cqs.get());
        if domains > 0 || queues > 0 {
            return Err(Error::ContextInUse { domains, queues });
        }
        let raw = c.raw.replace(std::ptr::null_mut());
        // SAFETY: nothing made from the context is open any more (the counts
        // above); the children still referenced only check that they are
        // closed and never use the context again.
        unsafe { (c.v.close_device)(raw) };
        Ok(())
    }

    /// Whether [`close`](Self::close) ran.
    pub fn is_closed(&self) -> bool {
        self.ctx.raw.get().is_null()
    }
}
