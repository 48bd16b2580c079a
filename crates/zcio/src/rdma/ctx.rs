//! `Ctx`: an open device context, shared (`Rc`) by the
//! [`Context`](super::Context) handles and everything made from it, which
//! counts its open children.

use std::cell::Cell;

use super::call::{check, last_error};
use super::sys;
use crate::error::{Error, Result};

/// An open device context and the count of its open children (a
/// context refuses to close while some are open).
pub(crate) struct Ctx {
    pub(super) v: &'static sys::Verbs,
    /// Null once closed.
    pub(super) raw: Cell<*mut sys::ibv_context>,
    /// Protection domains allocated and not deallocated.
    pub(super) open_pds: Cell<u32>,
    /// Completion queues created and not destroyed.
    pub(super) open_cqs: Cell<u32>,
}

impl Ctx {
    pub(super) fn open_raw(v: &'static sys::Verbs, dev: *mut sys::ibv_device) -> Result<Ctx> {
        // SAFETY: `dev` comes from a live device list.
        let raw = unsafe { (v.open_device)(dev) };
        if raw.is_null() {
            return Err(last_error("ibv_open_device"));
        }
        Ok(Ctx {
            v,
            raw: Cell::new(raw),
            open_pds: Cell::new(0),
            open_cqs: Cell::new(0),
        })
    }

    /// The verbs context; only called while a child object is open (so the
    /// context is) or after [`check_open`](Self::check_open).
    pub(crate) fn raw(&self) -> *mut sys::ibv_context {
        self.raw.get()
    }

    pub(super) fn check_open(&self) -> Result<()> {
        if self.raw.get().is_null() {
            return Err(Error::Closed {
                what: "RDMA context",
            });
        }
        Ok(())
    }

    /// A child (domain or queue) was destroyed.
    pub(crate) fn child_gone(count: &Cell<u32>) {
        count.set(count.get().saturating_sub(1));
    }

    pub(crate) fn cqs(&self) -> &Cell<u32> {
        &self.open_cqs
    }

    pub(super) fn port_attr(&self, port: u8) -> Result<sys::ibv_port_attr> {
        let mut attr = sys::ibv_port_attr::default();
        // SAFETY: the context is open; `attr` is large enough for the
        // structure the exported function fills (checked by the layout test).
        check("ibv_query_port", unsafe {
            (self.v.query_port)(self.raw(), port, &mut attr)
        })?;
        Ok(attr)
    }

    pub(super) fn count_ports(&self) -> u8 {
        (1..=u8::MAX)
            .take_while(|&p| self.port_attr(p).is_ok())
            .count() as u8
    }

    /// The first GID of `port` that is set and not link-local (`fe80::/10`),
    /// or 0.
    pub(super) fn routable_gid(&self, port: u8, table_len: i32) -> u8 {
        (0..table_len.clamp(0, 256))
            .find(|&i| {
                self.gid(port, i)
                    .is_ok_and(|g| g != [0; 16] && !(g[0] == 0xfe && g[1] & 0xc0 == 0x80))
            })
            .map_or(0, |i| i as u8)
    }

    pub(super) fn gid(&self, port: u8, index: i32) -> Result<[u8; 16]> {
        let mut gid = sys::ibv_gid::default();
        // SAFETY: the context is open; `gid` is an out-parameter.
        check("ibv_query_gid", unsafe {
            (self.v.query_gid)(self.raw(), port, index, &mut gid)
        })?;
        Ok(gid.raw)
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        let raw = self.raw.replace(std::ptr::null_mut());
        if !raw.is_null() {
            // SAFETY: every object made from the context holds an Rc of it,
            // so none is left when this runs.
            unsafe { (self.v.close_device)(raw) };
        }
    }
}
