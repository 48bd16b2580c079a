//! `PreparedQueuePair`: a queue pair made and moved to INIT, and its
//! handshake (INIT → RTR → RTS) into a [`QueuePair`].

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use super::call::last_error;
use super::cq::{CompletionQueue, WrSink};
use super::endpoint::Endpoint;
use super::pd::Pd;
use super::qp_options::{mtu_enum, QpOptions};
use super::qp_shared::QpShared;
use super::queue_pair::QueuePair;
use super::sys;
use crate::error::{Error, Result};

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
            let sink: Weak<dyn WrSink> = Rc::<QpShared>::downgrade(&qp);
            cq.attach(qpn, sink);
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
