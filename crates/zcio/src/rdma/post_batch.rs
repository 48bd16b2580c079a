//! Batches of posts on a [`QueuePair`]: one provider call (one doorbell)
//! for many work requests of one memory region.

use std::rc::Rc;

use super::call::check;
use super::mr::MemoryRegion;
use super::queue_pair::QueuePair;
use super::sys;
use crate::error::{Error, Result};

impl QueuePair {
    /// Posts one signaled SEND per `(start, end, wr_id)` of `mr`, all in one
    /// call to the provider (one doorbell: on Soft-RoCE one system call for
    /// the batch instead of one per request). Each holds `mr` as
    /// [`post_send`](Self::post_send) does.
    ///
    /// Returns how many were posted: all of them, or (when the send queue
    /// or the completion queue fills up) the first ones; the rest were not
    /// posted and hold nothing.
    ///
    /// # Errors
    ///
    /// As [`post_send`](Self::post_send), when none was posted; a bad range
    /// anywhere in `wrs` posts none.
    pub fn post_send_batch(&self, mr: &MemoryRegion, wrs: &[(usize, usize, u64)]) -> Result<usize> {
        self.post_batch(mr, wrs, false)
    }

    /// Posts one receive per `(start, end, wr_id)` of `mr` in one call, as
    /// [`post_send_batch`](Self::post_send_batch) does.
    ///
    /// # Errors
    ///
    /// As [`post_send_batch`](Self::post_send_batch) (`ibv_post_recv`).
    pub fn post_receive_batch(
        &self,
        mr: &MemoryRegion,
        wrs: &[(usize, usize, u64)],
    ) -> Result<usize> {
        self.post_batch(mr, wrs, true)
    }

    fn post_batch(
        &self,
        mr: &MemoryRegion,
        wrs: &[(usize, usize, u64)],
        recv: bool,
    ) -> Result<usize> {
        self.qp.check_open()?;
        if wrs.is_empty() {
            return Ok(0);
        }
        if !Rc::ptr_eq(mr.mr.pd(), &self.qp.pd) {
            return Err(Error::InvalidArgument {
                name: "mr",
                reason: "the memory region belongs to another protection domain".into(),
            });
        }
        let lkey = mr.mr.lkey();
        let mut sges = Vec::with_capacity(wrs.len());
        for &(start, end, _) in wrs {
            let (addr, length) = mr.mr.range(start, end)?;
            sges.push(sys::ibv_sge { addr, length, lkey });
        }
        // No more than the completion queue has room for: the first ones.
        let cq = self.qp.cq_of(recv);
        let n = cq.room(wrs.len())?;
        let ids: Vec<u64> = {
            let mut table = self.qp.wrs.borrow_mut();
            let mut ids = Vec::with_capacity(n);
            for &(_, _, wr_id) in &wrs[..n] {
                match table.insert(wr_id, vec![mr.mr.hold()], recv) {
                    Ok(id) => ids.push(id),
                    Err(e) => {
                        for &id in &ids {
                            table.remove(id);
                        }
                        return Err(e);
                    }
                }
            }
            ids
        };
        let ctx = &self.qp.pd.ctx;
        // SAFETY: the provider's post calls on a live queue pair (not closed,
        // so not destroyed); the linked WRs and their SGEs live in the
        // vectors below (not moved while the call runs) and are read during
        // the call only; the memory they name is held (in `wrs`) until each
        // completion.
        let (rc, posted) = unsafe {
            if recv {
                let mut list: Vec<sys::ibv_recv_wr> = (0..n)
                    .map(|i| sys::ibv_recv_wr {
                        wr_id: ids[i],
                        next: std::ptr::null_mut(),
                        sg_list: sges.as_mut_ptr().add(i),
                        num_sge: 1,
                    })
                    .collect();
                let post = (*ctx.raw())
                    .ops
                    .post_recv
                    .expect("provider without post_recv");
                post_chain(
                    &mut list,
                    |w| &mut w.next,
                    |base, bad| post(self.qp.raw.get(), base, bad),
                )
            } else {
                let mut list: Vec<sys::ibv_send_wr> = (0..n)
                    .map(|i| {
                        let mut wr: sys::ibv_send_wr = std::mem::zeroed();
                        wr.wr_id = ids[i];
                        wr.sg_list = sges.as_mut_ptr().add(i);
                        wr.num_sge = 1;
                        wr.opcode = sys::IBV_WR_SEND;
                        wr.send_flags = sys::IBV_SEND_SIGNALED;
                        wr
                    })
                    .collect();
                let post = (*ctx.raw())
                    .ops
                    .post_send
                    .expect("provider without post_send");
                post_chain(
                    &mut list,
                    |w| &mut w.next,
                    |base, bad| post(self.qp.raw.get(), base, bad),
                )
            }
        };
        if rc == 0 {
            cq.posted(n);
            return Ok(n);
        }
        // From `bad` on, nothing was posted: the device never saw those.
        let posted = posted.min(n);
        cq.posted(posted);
        let mut table = self.qp.wrs.borrow_mut();
        for &id in &ids[posted..] {
            table.remove(id);
        }
        drop(table);
        if posted == 0 {
            check(
                if recv {
                    "ibv_post_recv"
                } else {
                    "ibv_post_send"
                },
                rc,
            )?;
        }
        Ok(posted)
    }
}

/// Links `list` into one chain (each entry's `next` to the following one),
/// hands its head to `post`, and returns the provider's code and how many
/// work requests went in before the one it refused (`bad`; 0 when none was
/// refused).
///
/// # Safety
///
/// `post` is a provider's post call on a live queue pair, and every scatter
/// list the entries point at is valid while it runs.
unsafe fn post_chain<T>(
    list: &mut [T],
    next: impl Fn(&mut T) -> &mut *mut T,
    post: impl FnOnce(*mut T, &mut *mut T) -> i32,
) -> (i32, usize) {
    let base = list.as_mut_ptr();
    for i in 1..list.len() {
        // SAFETY: `i - 1` and `i` are inside `list`.
        unsafe { *next(&mut *base.add(i - 1)) = base.add(i) };
    }
    let mut bad = std::ptr::null_mut();
    let rc = post(base, &mut bad);
    let posted = if bad.is_null() {
        0
    } else {
        // SAFETY: the provider points `bad` at an entry of `list`.
        unsafe { bad.offset_from(base) as usize }
    };
    (rc, posted)
}
