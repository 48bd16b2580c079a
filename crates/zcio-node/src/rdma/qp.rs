//! Queue pairs: prepared (INIT, waiting for the peer's endpoint) and connected.

use std::cell::RefCell;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use zcio::rdma;

use super::region::{as_sges, batch_args, sges, RdmaSgeRef};
use crate::args::safe_integer;
use crate::error::{throw_code, OrThrow};

/// What a peer needs to connect (`gid`: 32 hex digits).
#[napi(object)]
pub struct RdmaEndpoint {
    pub lid: u32,
    pub qpn: u32,
    pub psn: u32,
    pub gid: String,
}

fn wr_id(env: &Env, v: f64) -> Result<u64> {
    safe_integer(env, "wrId", v)
}

/// A peer's address for RDMA READ/WRITE (below 2^53 on every 64-bit Linux).
fn remote_address(env: &Env, v: f64) -> Result<u64> {
    safe_integer(env, "remoteAddr", v)
}

/// A queue pair in INIT, waiting for the peer's endpoint.
#[napi]
pub struct RdmaPreparedQueuePair {
    pub(super) qp: RefCell<Option<rdma::PreparedQueuePair>>,
}

#[napi]
impl RdmaPreparedQueuePair {
    /// Destroys the queue pair (a no-op after `handshake`, whose queue pair
    /// has its own `close`, or when closed).
    #[napi]
    pub fn close(&self, env: Env) -> Result<()> {
        match &*self.qp.borrow() {
            Some(qp) => qp.close().or_throw(&env),
            None => Ok(()),
        }
    }

    #[napi]
    pub fn endpoint(&self, env: Env) -> Result<RdmaEndpoint> {
        let qp = self.qp.borrow();
        let qp = qp.as_ref().ok_or_else(|| used(&env))?;
        let e = qp.endpoint();
        Ok(RdmaEndpoint {
            lid: u32::from(e.lid),
            qpn: e.qpn,
            psn: e.psn,
            gid: e.gid.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }

    /// INIT → RTR → RTS with the peer's endpoint; usable once.
    #[napi]
    pub fn handshake(&self, env: Env, remote: RdmaEndpoint) -> Result<RdmaQueuePair> {
        let mut gid = [0u8; 16];
        let hex = remote.gid.as_bytes();
        if hex.len() != 32 || !hex.iter().all(u8::is_ascii_hexdigit) {
            return Err(throw_code(
                &env,
                "ERR_INVALID_ARG_VALUE",
                "remote.gid must be 32 hex digits",
            ));
        }
        for (i, g) in gid.iter_mut().enumerate() {
            *g = u8::from_str_radix(&remote.gid[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        let ep = rdma::Endpoint {
            lid: u16::try_from(remote.lid).map_err(|_| bad(&env, "remote.lid"))?,
            qpn: remote.qpn,
            psn: remote.psn & 0x00ff_ffff,
            gid,
        };
        let qp = self.qp.borrow_mut().take().ok_or_else(|| used(&env))?;
        Ok(RdmaQueuePair {
            qp: qp.handshake(ep).or_throw(&env)?,
        })
    }
}

fn used(env: &Env) -> napi::Error {
    throw_code(
        env,
        "ERR_ZCIO_CLOSED",
        "this queue pair was already connected",
    )
}

fn bad(env: &Env, name: &str) -> napi::Error {
    throw_code(env, "ERR_OUT_OF_RANGE", &format!("{name} is out of range"))
}

/// A connected queue pair.
#[napi]
pub struct RdmaQueuePair {
    qp: rdma::QueuePair,
}

#[napi]
impl RdmaQueuePair {
    #[napi]
    pub fn post_send(
        &self,
        env: Env,
        sges_: Vec<RdmaSgeRef>,
        wr_id_: f64,
        imm: Option<u32>,
    ) -> Result<()> {
        let held = sges(&env, &sges_)?;
        let list = as_sges(&held);
        self.qp
            .post_send_sges(&list, wr_id(&env, wr_id_)?, imm)
            .or_throw(&env)
    }

    #[napi]
    pub fn post_receive(&self, env: Env, sges_: Vec<RdmaSgeRef>, wr_id_: f64) -> Result<()> {
        let held = sges(&env, &sges_)?;
        let list = as_sges(&held);
        self.qp
            .post_receive_sges(&list, wr_id(&env, wr_id_)?)
            .or_throw(&env)
    }

    #[napi]
    pub fn post_write(
        &self,
        env: Env,
        sges_: Vec<RdmaSgeRef>,
        remote_addr: f64,
        rkey: u32,
        wr_id_: f64,
        imm: Option<u32>,
    ) -> Result<()> {
        let held = sges(&env, &sges_)?;
        let list = as_sges(&held);
        let addr = remote_address(&env, remote_addr)?;
        self.qp
            .post_write(&list, addr, rkey, wr_id(&env, wr_id_)?, imm)
            .or_throw(&env)
    }

    #[napi]
    pub fn post_read(
        &self,
        env: Env,
        sges_: Vec<RdmaSgeRef>,
        remote_addr: f64,
        rkey: u32,
        wr_id_: f64,
    ) -> Result<()> {
        let held = sges(&env, &sges_)?;
        let list = as_sges(&held);
        let addr = remote_address(&env, remote_addr)?;
        self.qp
            .post_read(&list, addr, rkey, wr_id(&env, wr_id_)?)
            .or_throw(&env)
    }

    /// One SEND per `(start, end, wrId)` triple of `batch` from region `mr`,
    /// in one post (one doorbell); returns how many were posted.
    #[napi]
    pub fn post_send_batch(&self, env: Env, mr: u32, batch: Float64ArraySlice) -> Result<u32> {
        let (region, wrs) = batch_args(&env, mr, &batch)?;
        Ok(self.qp.post_send_batch(&region, &wrs).or_throw(&env)? as u32)
    }

    /// One receive per `(start, end, wrId)` triple, as `postSendBatch`.
    #[napi]
    pub fn post_receive_batch(&self, env: Env, mr: u32, batch: Float64ArraySlice) -> Result<u32> {
        let (region, wrs) = batch_args(&env, mr, &batch)?;
        Ok(self.qp.post_receive_batch(&region, &wrs).or_throw(&env)? as u32)
    }

    /// Moves the queue pair to the error state: outstanding requests flush.
    #[napi]
    pub fn set_error(&self, env: Env) -> Result<()> {
        self.qp.set_error().or_throw(&env)
    }

    /// No more posts; outstanding requests flush (to the completion queue)
    /// and the queue pair is destroyed when the last one is polled.
    #[napi]
    pub fn close(&self, env: Env) -> Result<()> {
        self.qp.close().or_throw(&env)
    }

    /// Whether `close()` ran.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.qp.is_closed()
    }

    #[napi(getter)]
    pub fn outstanding(&self) -> u32 {
        self.qp.outstanding()
    }

    #[napi(getter)]
    pub fn qpn(&self) -> u32 {
        self.qp.qpn()
    }
}
