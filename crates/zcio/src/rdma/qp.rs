//! `QueuePair` (reliable connected), with safe posting: each work request
//! holds the memory regions it names until its completion is polled or
//! flushed, or the queue pair is destroyed (after which the device no longer
//! touches them).
//!
//! `close()` moves the queue pair to the error state, so every outstanding
//! work request is flushed, and destroys it when the last flushed completion
//! is polled (at once when nothing is outstanding).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::cq::{CompletionQueue, Cq};
use super::mr::MemoryRegion;
use super::wr_table::WrTable;
use super::{check, last_error, sys, Ctx, Pd};
use crate::error::{Error, Result};

/// Sizes of a queue pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QpOptions {
    /// Send work requests outstanding at most.
    pub max_send_wr: u32,
    /// Receive work requests outstanding at most.
    pub max_recv_wr: u32,
    /// Scatter/gather entries per work request.
    pub max_sge: u32,
    /// The GID table index for RoCE (needed on Ethernet links such as
    /// Soft-RoCE); `None`: on Ethernet links the first GID that is not
    /// link-local (an IP address's, reachable through the IP stack), else
    /// index 0; no GID on InfiniBand.
    pub gid_index: Option<u8>,
    /// The device port (from 1).
    pub port: u8,
    /// The path MTU in bytes: 256, 512, 1024 (the default, as
    /// `ibv_rc_pingpong` uses), 2048 or 4096; at most the port's active MTU
    /// (`ibv_devinfo`), and the peer's must match. Larger packets mean
    /// fewer of them per message (Soft-RoCE's cost is mostly per packet).
    pub path_mtu: u32,
}

impl Default for QpOptions {
    fn default() -> Self {
        QpOptions {
            max_send_wr: 64,
            max_recv_wr: 64,
            max_sge: 2,
            gid_index: None,
            port: 1,
            path_mtu: 1024,
        }
    }
}

/// What a peer needs to connect to a queue pair (exchanged out of band).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// The port's local identifier (0 on RoCE).
    pub lid: u16,
    /// The queue pair number.
    pub qpn: u32,
    /// The initial packet sequence number (24 bits).
    pub psn: u32,
    /// The GID (all zero when none is used).
    pub gid: [u8; 16],
}

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

pub(crate) struct QpShared {
    pd: Rc<Pd>,
    send_cq: Rc<Cq>,
    recv_cq: Rc<Cq>,
    /// Null once destroyed.
    raw: Cell<*mut sys::ibv_qp>,
    qpn: u32,
    wrs: RefCell<WrTable>,
    options: QpOptions,
    gid_index: Option<u8>,
    psn: u32,
    /// `close()` ran: no more posts; destroyed once nothing is outstanding.
    closed: Cell<bool>,
}

impl QpShared {
    /// A work request completed (or was flushed): drops its holds and
    /// returns the caller's `wr_id` (`None`: not one of this queue pair's
    /// outstanding requests). The last one of a closed queue pair destroys
    /// it (if `ibv_destroy_qp` fails, it stays, and `close()` retries and
    /// reports the error).
    pub(crate) fn finish(&self, id: u64) -> Option<u64> {
        let (wr_id, live) = {
            let mut wrs = self.wrs.borrow_mut();
            (wrs.remove(id), wrs.live)
        };
        if wr_id.is_some() && live == 0 && self.closed.get() {
            let _ = self.destroy();
        }
        wr_id
    }

    fn qpn(&self) -> u32 {
        self.qpn
    }

    /// The queue a receive (or a send-queue request) completes on.
    fn cq_of(&self, recv: bool) -> &Cq {
        if recv {
            &self.recv_cq
        } else {
            &self.send_cq
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.get() {
            return Err(Error::Closed { what: "queue pair" });
        }
        Ok(())
    }

    fn modify(&self, attr: &mut sys::ibv_qp_attr, mask: i32) -> Result<()> {
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
            let mut qps = cq.qps.borrow_mut();
            // Only this queue pair's entry: a newer one may have its number.
            if qps
                .get(&self.qpn)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
            {
                qps.remove(&self.qpn);
            }
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
    fn close(&self) -> Result<()> {
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
                cq.stuck.set(cq.stuck.get() + 1);
                std::mem::forget(cq.clone());
            }
            std::mem::forget(self.pd.clone());
        }
    }
}

/// A queue pair made and moved to INIT; [`handshake`](Self::handshake) with
/// the peer's [`Endpoint`] connects it.
pub struct PreparedQueuePair {
    qp: Rc<QpShared>,
    endpoint: Endpoint,
}

impl std::fmt::Debug for PreparedQueuePair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedQueuePair")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

fn random_psn() -> u32 {
    let mut b = [0u8; 4];
    // SAFETY: fills a local buffer.
    unsafe { libc::getrandom(b.as_mut_ptr().cast(), 4, 0) };
    u32::from_ne_bytes(b) & 0x00ff_ffff
}

/// The verbs enum of a path MTU in bytes.
fn mtu_enum(bytes: u32) -> Result<i32> {
    match bytes {
        256 => Ok(1),
        512 => Ok(2),
        1024 => Ok(3),
        2048 => Ok(4),
        4096 => Ok(5),
        _ => Err(Error::InvalidArgument {
            name: "path_mtu",
            reason: format!("{bytes} is not one of 256, 512, 1024, 2048 or 4096"),
        }),
    }
}

impl PreparedQueuePair {
    pub(crate) fn new(
        pd: &Rc<Pd>,
        send_cq: &CompletionQueue,
        recv_cq: &CompletionQueue,
        options: QpOptions,
    ) -> Result<PreparedQueuePair> {
        let v = pd.ctx.v;
        mtu_enum(options.path_mtu)?;
        for cq in [&send_cq.cq, &recv_cq.cq] {
            cq.check_open()?;
            if !Rc::ptr_eq(&cq.ctx, &pd.ctx) {
                return Err(Error::InvalidArgument {
                    name: "cq",
                    reason: "the completion queue belongs to another device context".into(),
                });
            }
        }
        let mut init = sys::ibv_qp_init_attr {
            qp_context: std::ptr::null_mut(),
            send_cq: send_cq.cq.raw(),
            recv_cq: recv_cq.cq.raw(),
            srq: std::ptr::null_mut(),
            cap: sys::ibv_qp_cap {
                max_send_wr: options.max_send_wr,
                max_recv_wr: options.max_recv_wr,
                max_send_sge: options.max_sge,
                max_recv_sge: options.max_sge,
                max_inline_data: 0,
            },
            qp_type: sys::IBV_QPT_RC,
            sq_sig_all: 0,
        };
        // SAFETY: live domain and queues (checked open by the callers and
        // above); `init` has verbs' layout.
        let raw = unsafe { (v.create_qp)(pd.raw(), &mut init) };
        if raw.is_null() {
            return Err(last_error("ibv_create_qp"));
        }
        // SAFETY: the queue pair was just created.
        let qpn = unsafe { (*raw).qp_num };
        let port = match pd.ctx.port_attr(options.port) {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: nothing uses the new queue pair yet.
                unsafe { (v.destroy_qp)(raw) };
                return Err(e);
            }
        };
        let ethernet = port.link_layer == 2;
        let gid_index = match options.gid_index {
            Some(i) => Some(i),
            None if ethernet => Some(pd.ctx.routable_gid(options.port, port.gid_tbl_len)),
            None => None,
        };
        pd.qps().set(pd.qps().get() + 1);
        let qp = Rc::new(QpShared {
            pd: pd.clone(),
            send_cq: send_cq.cq.clone(),
            recv_cq: recv_cq.cq.clone(),
            raw: Cell::new(raw),
            qpn,
            wrs: RefCell::default(),
            options,
            gid_index,
            psn: random_psn(),
            closed: Cell::new(false),
        });
        for cq in [&qp.send_cq, &qp.recv_cq] {
            cq.qps.borrow_mut().insert(qpn, Rc::downgrade(&qp));
        }
        let mut attr = sys::ibv_qp_attr {
            qp_state: sys::IBV_QPS_INIT,
            pkey_index: 0,
            port_num: options.port,
            qp_access_flags: (sys::IBV_ACCESS_LOCAL_WRITE
                | sys::IBV_ACCESS_REMOTE_READ
                | sys::IBV_ACCESS_REMOTE_WRITE) as u32,
            ..Default::default()
        };
        qp.modify(
            &mut attr,
            sys::IBV_QP_STATE
                | sys::IBV_QP_PKEY_INDEX
                | sys::IBV_QP_PORT
                | sys::IBV_QP_ACCESS_FLAGS,
        )?;
        let gid = match gid_index {
            Some(i) => pd.ctx.gid(options.port, i32::from(i))?,
            None => [0; 16],
        };
        let endpoint = Endpoint {
            lid: port.lid,
            qpn,
            psn: qp.psn,
            gid,
        };
        Ok(PreparedQueuePair { qp, endpoint })
    }

    /// What the peer needs: send it out of band.
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint
    }

    /// Destroys the queue pair now (nothing can be outstanding on it);
    /// [`handshake`](Self::handshake) then fails. Closing twice does
    /// nothing.
    ///
    /// # Errors
    ///
    /// None in practice (the signature matches the other `close` methods).
    pub fn close(&self) -> Result<()> {
        self.qp.close()
    }

    /// Connects to the peer's endpoint: INIT → RTR → RTS (with the
    /// options' path MTU, 1024 by default as `ibv_rc_pingpong` uses).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after [`close`](Self::close), [`Error::Sys`]
    /// (`ibv_modify_qp`): a bad endpoint, an unreachable GID.
    pub fn handshake(self, remote: Endpoint) -> Result<QueuePair> {
        let qp = self.qp;
        qp.check_open()?;
        let o = qp.options;
        let mut ah = sys::ibv_ah_attr {
            dlid: remote.lid,
            port_num: o.port,
            ..Default::default()
        };
        if let Some(i) = qp.gid_index {
            ah.is_global = 1;
            ah.grh.hop_limit = 1;
            ah.grh.dgid.raw = remote.gid;
            ah.grh.sgid_index = i;
        }
        let mut rtr = sys::ibv_qp_attr {
            qp_state: sys::IBV_QPS_RTR,
            path_mtu: mtu_enum(o.path_mtu)?,
            dest_qp_num: remote.qpn,
            rq_psn: remote.psn,
            max_dest_rd_atomic: 1,
            min_rnr_timer: 12,
            ah_attr: ah,
            ..Default::default()
        };
        qp.modify(
            &mut rtr,
            sys::IBV_QP_STATE
                | sys::IBV_QP_AV
                | sys::IBV_QP_PATH_MTU
                | sys::IBV_QP_DEST_QPN
                | sys::IBV_QP_RQ_PSN
                | sys::IBV_QP_MAX_DEST_RD_ATOMIC
                | sys::IBV_QP_MIN_RNR_TIMER,
        )?;
        let mut rts = sys::ibv_qp_attr {
            qp_state: sys::IBV_QPS_RTS,
            timeout: 14,
            retry_cnt: 7,
            rnr_retry: 7,
            sq_psn: qp.psn,
            max_rd_atomic: 1,
            ..Default::default()
        };
        qp.modify(
            &mut rts,
            sys::IBV_QP_STATE
                | sys::IBV_QP_TIMEOUT
                | sys::IBV_QP_RETRY_CNT
                | sys::IBV_QP_RNR_RETRY
                | sys::IBV_QP_SQ_PSN
                | sys::IBV_QP_MAX_QP_RD_ATOMIC,
        )?;
        Ok(QueuePair { qp })
    }
}

/// A connected queue pair. Every post is safe: the regions it names are
/// held (and can't be closed: [`Error::MrInUse`]) until its completion is
/// polled from the completion queue, flushed, or the queue pair is gone.
///
/// Dropping it destroys the verbs queue pair at once (the device stops, then
/// the holds go; outstanding `wr_id`s are not reported);
/// [`close`](Self::close) lets them come back as flushed completions first.
pub struct QueuePair {
    qp: Rc<QpShared>,
}

impl std::fmt::Debug for QueuePair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuePair")
            .field("qpn", &self.qp.qpn())
            .field("outstanding", &self.outstanding())
            .finish()
    }
}

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
