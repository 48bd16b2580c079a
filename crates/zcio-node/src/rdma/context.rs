//! An open RDMA device and its protection domains.

use std::cell::RefCell;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use zcio::rdma;

use super::cq::RdmaCompletionQueue;
use super::qp::RdmaPreparedQueuePair;
use super::region::RdmaMemoryRegion;
use crate::args::{safe_integer, MAX_I32};
use crate::error::{int_arg, OrThrow};

/// An open RDMA device.
#[napi]
pub struct RdmaContext {
    ctx: rdma::Context,
}

#[napi]
impl RdmaContext {
    /// Opens device `name`, or the first one.
    #[napi(factory)]
    pub fn open(env: Env, name: Option<String>) -> Result<Self> {
        let ctx = rdma::Context::open(name.as_deref()).or_throw(&env)?;
        Ok(RdmaContext { ctx })
    }

    /// Closes the device; throws `ERR_ZCIO_CONTEXT_IN_USE` while protection
    /// domains or completion queues of it are open. A no-op when closed.
    #[napi]
    pub fn close(&self, env: Env) -> Result<()> {
        self.ctx.close().or_throw(&env)
    }

    #[napi]
    pub fn alloc_pd(&self, env: Env) -> Result<RdmaProtectionDomain> {
        Ok(RdmaProtectionDomain {
            pd: self.ctx.alloc_pd().or_throw(&env)?,
        })
    }

    #[napi]
    pub fn create_cq(&self, env: Env, entries: f64) -> Result<RdmaCompletionQueue> {
        let n = int_arg(&env, "entries", entries, MAX_I32, false)? as u32;
        let cq = self.ctx.create_cq(n).or_throw(&env)?;
        Ok(RdmaCompletionQueue::new(cq, &env))
    }
}

/// A protection domain.
#[napi]
pub struct RdmaProtectionDomain {
    pd: rdma::ProtectionDomain,
}

#[napi]
impl RdmaProtectionDomain {
    /// Deallocates the domain; throws `ERR_ZCIO_PD_IN_USE` while memory
    /// regions or queue pairs of it are open. A no-op when closed.
    #[napi]
    pub fn close(&self, env: Env) -> Result<()> {
        self.pd.close().or_throw(&env)
    }

    /// Allocates and registers `size` bytes (page-aligned).
    #[napi]
    pub fn allocate(&self, env: Env, size: f64) -> Result<RdmaMemoryRegion> {
        let size = safe_integer(&env, "size", size)? as usize;
        let mr = self.pd.allocate(size).or_throw(&env)?;
        Ok(RdmaMemoryRegion::register(mr))
    }

    /// Creates an RC queue pair (`gidIndex < 0`: chosen automatically;
    /// `pathMtu` in bytes).
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn create_qp(
        &self,
        env: Env,
        send_cq: &RdmaCompletionQueue,
        recv_cq: &RdmaCompletionQueue,
        max_send_wr: u32,
        max_recv_wr: u32,
        max_sge: u32,
        gid_index: i32,
        path_mtu: Option<u32>,
    ) -> Result<RdmaPreparedQueuePair> {
        let opts = rdma::QpOptions {
            max_send_wr,
            max_recv_wr,
            max_sge,
            gid_index: u8::try_from(gid_index).ok(),
            port: 1,
            path_mtu: path_mtu.unwrap_or(1024),
        };
        let qp = self
            .pd
            .create_qp(send_cq.core(), recv_cq.core(), opts)
            .or_throw(&env)?;
        Ok(RdmaPreparedQueuePair {
            qp: RefCell::new(Some(qp)),
        })
    }
}
