//! `QueuePair` (reliable connected), with safe posting: each work request
//! holds the memory regions it names until its completion is polled or
//! flushed, or the queue pair is destroyed (after which the device no longer
//! touches them).
//!
//! `close()` moves the queue pair to the error state, so every outstanding
//! work request is flushed, and destroys it when the last flushed completion
//! is polled (at once when nothing is outstanding). Batches of posts are in
//! `post_batch.rs`.

use std::rc::Rc;

use super::call::check;
use super::mr::MemoryRegion;
use super::qp_shared::QpShared;
use super::sys;
use crate::error::{Error, Result};

/// One scatter/gather entry: bytes `start..end` of a memory region.
#[derive(Debug, Clone, Copy)]
pub struct Sge<'a> {
    /// The region.
    pub mr: &'a MemoryRegion,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// A connected queue pair. Every post is safe: the regions it names are
/// held (and can't be closed: [`Error::MrInUse`]) until its completion is
/// polled from the completion queue, flushed, or the queue pair is gone.
///
/// Dropping it destroys the verbs queue pair at once (the device stops, then
/// the holds go; outstanding `wr_id`s are not reported);
/// [`close`](Self::close) lets them come back as flushed completions first.
pub struct QueuePair {
    pub(super) qp: Rc<QpShared>,
}

impl std::fmt::Debug for QueuePair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuePair")
            .field("qpn", &self.qp.qpn())
            .field("outstanding", &self.outstanding())
            .finish()
    }
}

/// What a single post is.
enum Post {
    Send {
        imm: Option<u32>,
    },
    Write {
        addr: u64,
        rkey: u32,
        imm: Option<u32>,
    },
    Read {
        addr: u64,
        rkey: u32,
    },
    Recv,
}

impl QueuePair {
    /// Posts a signaled SEND of `mr[start..end]` (the seed's `post_send`).
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] for a range outside the region, [`Error::Closed`]
    /// for a closed region, [`Error::CqFull`] when the completion queue it
    /// completes on has no room left (counting the work outstanding on
    /// every queue pair that shares it), [`Error::Sys`] (`ibv_post_send`:
    /// `ENOMEM` when the send queue is full, `EINVAL`...).
    pub fn post_send(&self, mr: &MemoryRegion, start: usize, end: usize, wr_id: u64) -> Result<()> {
        self.post(&[Sge { mr, start, end }], wr_id, Post::Send { imm: None })
    }

    /// Posts a SEND of several entries, optionally with immediate data.
    ///
    /// # Errors
    ///
    /// As [`post_send`](Self::post_send).
    pub fn post_send_sges(&self, sges: &[Sge<'_>], wr_id: u64, imm: Option<u32>) -> Result<()> {
        self.post(sges, wr_id, Post::Send { imm })
    }

    /// Posts a receive into `mr[start..end]` (the seed's `post_receive`).
    ///
    /// # Errors
    ///
    /// As [`post_send`](Self::post_send) (`ibv_post_recv`).
    pub fn post_receive(
        &self,
        mr: &MemoryRegion,
        start: usize,
        end: usize,
        wr_id: u64,
    ) -> Result<()> {
        self.post(&[Sge { mr, start, end }], wr_id, Post::Recv)
    }

    /// Posts a receive scattered over several entries.
    ///
    /// # Errors
    ///
    /// As [`post_receive`](Self::post_receive).
    pub fn post_receive_sges(&self, sges: &[Sge<'_>], wr_id: u64) -> Result<()> {
        self.post(sges, wr_id, Post::Recv)
    }

    /// Posts an RDMA WRITE of `sges` to the peer's `remote_addr` (`rkey`),
    /// with immediate data (which consumes a receive at the peer) if given.
    ///
    /// # Errors
    ///
    /// As [`post_send`](Self::post_send).
    pub fn post_write(
        &self,
        sges: &[Sge<'_>],
        remote_addr: u64,
        rkey: u32,
        wr_id: u64,
        imm: Option<u32>,
    ) -> Result<()> {
        self.post(
            sges,
            wr_id,
            Post::Write {
                addr: remote_addr,
                rkey,
                imm,
            },
        )
    }

    /// Posts an RDMA READ of the peer's `remote_addr` (`rkey`) into `sges`.
    ///
    /// # Errors
    ///
    /// As [`post_send`](Self::post_send).
    pub fn post_read(
        &self,
        sges: &[Sge<'_>],
        remote_addr: u64,
        rkey: u32,
        wr_id: u64,
    ) -> Result<()> {
        self.post(
            sges,
            wr_id,
            Post::Read {
                addr: remote_addr,
                rkey,
            },
        )
    }

    fn post(&self, sges: &[Sge<'_>], wr_id: u64, kind: Post) -> Result<()> {
        self.qp.check_open()?;
        if sges.is_empty() || sges.len() > self.qp.options.max_sge as usize {
            return Err(Error::OutOfRange {
                name: "sges",
                reason: format!(
                    "{} entries; between 1 and {} (maxSge) are allowed",
                    sges.len(),
                    self.qp.options.max_sge
                ),
            });
        }
        let mut list = Vec::with_capacity(sges.len());
        let mut holds = Vec::with_capacity(sges.len());
        for s in sges {
            if !Rc::ptr_eq(s.mr.mr.pd(), &self.qp.pd) {
                return Err(Error::InvalidArgument {
                    name: "mr",
                    reason: "the memory region belongs to another protection domain".into(),
                });
            }
            let (addr, length) = s.mr.mr.range(s.start, s.end)?;
            list.push(sys::ibv_sge {
                addr,
                length,
                lkey: s.mr.mr.lkey(),
            });
            holds.push(s.mr.mr.hold());
        }
        let recv = matches!(kind, Post::Recv);
        let cq = self.qp.cq_of(recv);
        cq.room(1)?;
        let id = self.qp.wrs.borrow_mut().insert(wr_id, holds, recv)?;
        let ctx = &self.qp.pd.ctx;
        // SAFETY: the provider's post calls on a live queue pair (not closed,
        // so not destroyed); the WR and SGE list are read during the call
        // only; the memory they name is held (in `wrs`) until the completion.
        let rc = unsafe {
            let mut bad_send = std::ptr::null_mut();
            let mut bad_recv = std::ptr::null_mut();
            match kind {
                Post::Recv => {
                    let mut wr = sys::ibv_recv_wr {
                        wr_id: id,
                        next: std::ptr::null_mut(),
                        sg_list: list.as_mut_ptr(),
                        num_sge: list.len() as i32,
                    };
                    let post = (*ctx.raw())
                        .ops
                        .post_recv
                        .expect("provider without post_recv");
                    post(self.qp.raw.get(), &mut wr, &mut bad_recv)
                }
                _ => {
                    let mut wr: sys::ibv_send_wr = std::mem::zeroed();
                    wr.wr_id = id;
                    wr.sg_list = list.as_mut_ptr();
                    wr.num_sge = list.len() as i32;
                    wr.send_flags = sys::IBV_SEND_SIGNALED;
                    let imm = match kind {
                        Post::Send { imm } => {
                            wr.opcode = if imm.is_some() {
                                sys::IBV_WR_SEND_WITH_IMM
                            } else {
                                sys::IBV_WR_SEND
                            };
                            imm
                        }
                        Post::Write { addr, rkey, imm } => {
                            wr.opcode = if imm.is_some() {
                                sys::IBV_WR_RDMA_WRITE_WITH_IMM
                            } else {
                                sys::IBV_WR_RDMA_WRITE
                            };
                            wr.rdma = sys::ibv_rdma_wr {
                                remote_addr: addr,
                                rkey,
                            };
                            imm
                        }
                        Post::Read { addr, rkey } => {
                            wr.opcode = sys::IBV_WR_RDMA_READ;
                            wr.rdma = sys::ibv_rdma_wr {
                                remote_addr: addr,
                                rkey,
                            };
                            None
                        }
                        Post::Recv => unreachable!(),
                    };
                    wr.imm_data = imm.unwrap_or(0).to_be();
                    let post = (*ctx.raw())
                        .ops
                        .post_send
                        .expect("provider without post_send");
                    post(self.qp.raw.get(), &mut wr, &mut bad_send)
                }
            }
        };
        if rc != 0 {
            // Not posted: the device never saw it.
            self.qp.wrs.borrow_mut().remove(id);
            let call = if matches!(kind, Post::Recv) {
                "ibv_post_recv"
            } else {
                "ibv_post_send"
            };
            return check(call, rc);
        }
        cq.posted(1);
        Ok(())
    }

    /// Work requests posted whose completion was not polled yet (after
    /// [`close`](Self::close): those still to be polled as flushed).
    pub fn outstanding(&self) -> u32 {
        self.qp.wrs.borrow().live
    }

    /// The queue pair's number.
    pub fn qpn(&self) -> u32 {
        self.qp.qpn()
    }

    /// Moves the queue pair to the error state: every outstanding work
    /// request completes as flushed (`IBV_WC_WR_FLUSH_ERR`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after [`close`](Self::close), [`Error::Sys`]
    /// (`ibv_modify_qp`).
    pub fn set_error(&self) -> Result<()> {
        let mut attr = sys::ibv_qp_attr {
            qp_state: sys::IBV_QPS_ERR,
            ..Default::default()
        };
        self.qp.modify(&mut attr, sys::IBV_QP_STATE)
    }

    /// Closes the queue pair: posts fail with [`Error::Closed`] from now on;
    /// if work requests are outstanding the queue pair moves to the error
    /// state, so each comes back through its completion queue as flushed
    /// (status 5, releasing its memory holds as it is polled), and the verbs
    /// queue pair is destroyed when the last one is polled; with nothing
    /// outstanding it is destroyed at once. Its completion queues and domain
    /// can be closed once it is destroyed. Closing twice does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] (`ibv_modify_qp`, and nothing changes;
    /// `ibv_destroy_qp`: the queue pair stays closed but not destroyed, its
    /// work requests keep their memory, and the next `close()` tries
    /// again).
    pub fn close(&self) -> Result<()> {
        self.qp.close()
    }

    /// Whether [`close`](Self::close) ran.
    pub fn is_closed(&self) -> bool {
        self.qp.closed.get()
    }

    /// Whether the verbs queue pair is destroyed (closed and drained).
    pub fn is_destroyed(&self) -> bool {
        self.qp.raw.get().is_null()
    }
}
