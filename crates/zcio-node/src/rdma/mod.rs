//! RDMA verbs for JavaScript: conversions over `zcio::rdma`, plus the
//! asynchronous wait of a completion queue, driven by its completion
//! channel's descriptor on the thread's own event loop (a libuv poll handle,
//! as the ring's driver does: no thread hop per completion; the handle keeps
//! the process alive only while a wait is pending).
//!
//! Files: `context` (devices, protection domains), `region` (memory regions
//! and the scatter/gather lists that name them), `qp` (queue pairs), `cq`
//! (completion queues and their wait).

mod context;
mod cq;
mod qp;
mod region;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use zcio::rdma;

use crate::error::OrThrow;

/// An RDMA device.
#[napi(object)]
pub struct RdmaDevice {
    pub name: String,
    /// The node GUID, 16 hex digits.
    pub guid: String,
    pub ports: u32,
}

/// The RDMA devices of this machine (throws `ERR_ZCIO_RDMA_UNAVAILABLE`
/// without libibverbs or kernel support).
#[napi]
pub fn rdma_devices(env: Env) -> Result<Vec<RdmaDevice>> {
    Ok(rdma::devices()
        .or_throw(&env)?
        .into_iter()
        .map(|d| RdmaDevice {
            name: d.name,
            guid: format!("{:016x}", d.guid),
            ports: u32::from(d.ports),
        })
        .collect())
}

/// Why RDMA can't be used here, or `null` when a device is usable.
#[napi]
pub fn rdma_unavailable_reason() -> Option<String> {
    rdma::available().err().map(|e| e.to_string())
}
