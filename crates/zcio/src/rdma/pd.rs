//! `Pd`: a protection domain, shared (`Rc`) by the
//! [`ProtectionDomain`](super::ProtectionDomain) handles and the memory
//! regions and queue pairs in it, which it counts.

use std::cell::Cell;
use std::rc::Rc;

use super::ctx::Ctx;
use super::sys;
use crate::error::{Error, Result};

/// An allocated protection domain and the count of its open memory
/// regions and queue pairs.
pub(crate) struct Pd {
    pub(super) ctx: Rc<Ctx>,
    /// Null once closed.
    pub(super) raw: Cell<*mut sys::ibv_pd>,
    /// Memory regions registered and not deregistered.
    pub(super) open_mrs: Cell<u32>,
    /// Queue pairs created and not destroyed.
    pub(super) open_qps: Cell<u32>,
}

impl Pd {
    /// The verbs domain; only called while it is open.
    pub(crate) fn raw(&self) -> *mut sys::ibv_pd {
        self.raw.get()
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.raw.get().is_null() {
            return Err(Error::Closed {
                what: "protection domain",
            });
        }
        Ok(())
    }

    pub(crate) fn mrs(&self) -> &Cell<u32> {
        &self.open_mrs
    }

    pub(crate) fn qps(&self) -> &Cell<u32> {
        &self.open_qps
    }

    pub(super) fn dealloc(&self) {
        let raw = self.raw.replace(std::ptr::null_mut());
        if !raw.is_null() {
            // SAFETY: no memory region or queue pair of the domain is open
            // (`close` checks; on drop, they hold the domain, so none is left).
            unsafe { (self.ctx.v.dealloc_pd)(raw) };
            Ctx::child_gone(&self.ctx.open_pds);
        }
    }
}

impl Drop for Pd {
    fn drop(&mut self) {
        self.dealloc();
    }
}
