//! `QpShared`: the state of a queue pair that its handles
//! ([`PreparedQueuePair`](super::PreparedQueuePair),
//! [`QueuePair`](super::QueuePair)) share, and that its completion queues
//! reach through [`WrSink`]: the verbs queue pair, its posted work requests
//! and the close-then-destroy-when-drained policy.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::call::check;
use super::cq::{Cq, WrSink};
use super::ctx::Ctx;
use super::pd::Pd;
use super::qp_options::QpOptions;
use super::sys;
use super::wr_table::WrTable;
use crate::error::{Error, Result};

/// A verbs queue pair, its queues and domain (held while it exists), and
/// its outstanding work requests with their memory holds.
pub(crate) struct QpShared {
    pub(super) pd: Rc<Pd>,
    pub(super) send_cq: Rc<Cq>,
    pub(super) recv_cq: Rc<Cq>,
    /// Null once destroyed.
    pub(super) raw: Cell<*mut sys::ibv_qp>,
    pub(super) qpn: u32,
    pub(super) wrs: RefCell<WrTable>,
    pub(super) options: QpOptions,
    pub(super) gid_index: Option<u8>,
    pub(super) psn: u32,
    /// `close()` ran: no more posts; destroyed once nothing is outstanding.
    pub(super) closed: Cell<bool>,
}

impl WrSink for QpShared {
    /// Drops the request's holds and returns the caller's `wr_id`. The last
    /// one of a closed queue pair destroys it (if `ibv_destroy_qp` fails, it
    /// stays, and `close()` retries and reports the error).
    fn finish(&self, id: u64) -> Option<u64> {
        let (wr_id, live) = {
            let mut wrs = self.wrs.borrow_mut();
            (wrs.remove(id), wrs.live)
        };
        if wr_id.is_some() && live == 0 && self.closed.get() {
            let _ = self.destroy();
        }
        wr_id
    }
}

impl QpShared {
    pub(super) fn qpn(&self) -> u32 {
        self.qpn
    }

    /// The queue a receive (or a send-queue request) completes on.
    pub(super) fn cq_of(&self, recv: bool) -> &Cq {
        if recv {
            &self.recv_cq
        } else {
            &self.send_cq
        }
    }

    pub(super) fn check_open(&self) -> Result<()> {
        if self.closed.get() {
            return Err(Error::Closed { what: "queue pair" });
        }
        Ok(())
    }

    pub(super) fn modify(&self, attr: &mut sys::ibv_qp_attr, mask: i32) -> Result<()> {
        self.check_open()?;
        // SAFETY: a live queue pair (not closed, so not destroyed) and an
        // attribute struct of verbs' layout.
        check("ibv_modify_qp", unsafe {
            (self.pd.ctx.v.modify_qp)(self.raw.get(), attr, mask)
        })
    }

    /// Destroys the verbs queue pair (once) and unregisters it from its
    /// queues; then releases the holds of anything still outstanding, whose
    /// completions may still sit in the queues (counted there as orphans
    /// until polled or until the queue is seen empty).
    ///
    /// When `ibv_destroy_qp` fails nothing changes: the device may still
    /// use the memory of the outstanding requests, so their holds stay.
    fn destroy(&self) -> Result<()> {
        let raw = self.raw.get();
        if raw.is_null() {
            return Ok(());
        }
        // SAFETY: destroying the queue pair stops the device's use of every
        // work request's memory; only then (on success) do the holds (in
        // `wrs`) go. Its queues and domain are open: they refuse to close
        // while it exists.
        let rc = super::fault::or("ibv_destroy_qp", || unsafe {
            (self.pd.ctx.v.destroy_qp)(raw)
        });
        check("ibv_destroy_qp", rc)?;
        self.raw.set(std::ptr::null_mut());
        for cq in [&self.send_cq, &self.recv_cq] {
            cq.detach(self.qpn, self);
        }
        Ctx::child_gone(self.pd.qps());
        let orphans = std::mem::take(&mut *self.wrs.borrow_mut());
        let (recvs, sends) = orphans.counts();
        self.recv_cq.orphaned(recvs);
        self.send_cq.orphaned(sends);
        drop(orphans);
        Ok(())
    }

    /// `close()`: no more posts; flushes what is outstanding and destroys
    /// the queue pair when the last flushed completion is polled. Once
    /// closed, retries a destroy that failed.
    pub(super) fn close(&self) -> Result<()> {
        if self.closed.get() {
            if self.wrs.borrow().live == 0 {
                return self.destroy();
            }
            return Ok(());
        }
        if self.wrs.borrow().live > 0 {
            let mut attr = sys::ibv_qp_attr {
                qp_state: sys::IBV_QPS_ERR,
                ..Default::default()
            };
            self.modify(&mut attr, sys::IBV_QP_STATE)?;
            self.closed.set(true);
            Ok(())
        } else {
            self.closed.set(true);
            self.destroy()
        }
    }
}

impl Drop for QpShared {
    fn drop(&mut self) {
        if self.destroy().is_err() {
            // The device may still use the memory of the outstanding work
            // requests, and the queue pair its queues and domain: keep them
            // all (mapped, registered, counted as in use) for good.
            let wrs = std::mem::take(&mut *self.wrs.borrow_mut());
            std::mem::forget(wrs);
            for cq in [&self.send_cq, &self.recv_cq] {
                cq.stuck_user();
                std::mem::forget(cq.clone());
            }
            std::mem::forget(self.pd.clone());
        }
    }
}
