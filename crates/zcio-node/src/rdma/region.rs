//! Registered memory, and the scatter/gather lists that name it by id.

use std::cell::{Cell, RefCell};

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use zcio::rdma;

use crate::args::safe_integer;
use crate::error::{throw_code, OrThrow};
use crate::raw::external;
use crate::values::external_or_throw;

/// Registered memory.
#[napi]
pub struct RdmaMemoryRegion {
    mr: rdma::MemoryRegion,
    id: u32,
}

impl RdmaMemoryRegion {
    /// Gives `mr` an id, by which work requests name it while it lives.
    pub(super) fn register(mr: rdma::MemoryRegion) -> RdmaMemoryRegion {
        let id = NEXT_ID.with(|n| {
            let id = n.get();
            n.set(id.wrapping_add(1).max(1));
            id
        });
        REGIONS.with(|r| r.borrow_mut().insert(id, mr.clone()));
        RdmaMemoryRegion { mr, id }
    }
}

impl Drop for RdmaMemoryRegion {
    fn drop(&mut self) {
        REGIONS.with(|r| r.borrow_mut().remove(&self.id));
    }
}

#[napi]
impl RdmaMemoryRegion {
    /// A `Uint8Array` over the region (no copy); the memory stays mapped
    /// while it exists.
    #[napi(ts_return_type = "Uint8Array")]
    pub fn buffer(&self, env: Env) -> Result<Unknown<'_>> {
        let mr = self.mr.clone();
        // SAFETY: the region's memory stays mapped while the boxed handle
        // (its owner) lives.
        let v = unsafe {
            external::typed_array(
                env.raw(),
                sys::TypedarrayType::uint8_array,
                mr.as_ptr().cast(),
                mr.len(),
                1,
                Box::new(mr),
            )
        };
        external_or_throw(&env, v)
    }

    /// The region's id, as work requests name it.
    #[napi(getter)]
    pub fn id(&self) -> u32 {
        self.id
    }

    #[napi(getter)]
    pub fn lkey(&self) -> u32 {
        self.mr.lkey()
    }

    #[napi(getter)]
    pub fn rkey(&self) -> u32 {
        self.mr.rkey()
    }

    /// The start address (below 2^53 on every 64-bit Linux).
    #[napi(getter)]
    pub fn addr(&self) -> f64 {
        self.mr.addr() as f64
    }

    #[napi(getter)]
    pub fn length(&self) -> f64 {
        self.mr.len() as f64
    }

    /// Work requests outstanding on the region.
    #[napi(getter)]
    pub fn in_use(&self) -> u32 {
        self.mr.in_use()
    }

    /// Deregisters the region; throws `ERR_ZCIO_MR_IN_USE` while work
    /// requests use it. A no-op when closed.
    #[napi]
    pub fn close(&self, env: Env) -> Result<()> {
        self.mr.close().or_throw(&env)
    }
}

/// A scatter/gather entry as the layer passes it: a region's `id`.
#[napi(object)]
pub struct RdmaSgeRef {
    pub id: u32,
    pub start: f64,
    pub end: f64,
}

std::thread_local! {
    /// The live memory regions of this thread, by id (an entry goes with its
    /// JS object), so work requests can name them in plain objects.
    static REGIONS: RefCell<std::collections::HashMap<u32, rdma::MemoryRegion>> =
        RefCell::default();
    static NEXT_ID: Cell<u32> = const { Cell::new(1) };
}

/// An offset or a size within a region (below 2^53).
fn offset(env: &Env, name: &'static str, v: f64) -> Result<usize> {
    Ok(safe_integer(env, name, v)? as usize)
}

/// The regions and ranges of a scatter/gather list, held for one post.
pub(super) fn sges(
    env: &Env,
    list: &[RdmaSgeRef],
) -> Result<Vec<(rdma::MemoryRegion, usize, usize)>> {
    list.iter()
        .map(|s| {
            let mr = REGIONS
                .with(|r| r.borrow().get(&s.id).cloned())
                .ok_or_else(|| throw_code(env, "ERR_ZCIO_CLOSED", "the memory region is gone"))?;
            Ok((
                mr,
                offset(env, "start", s.start)?,
                offset(env, "end", s.end)?,
            ))
        })
        .collect()
}

pub(super) fn as_sges(list: &[(rdma::MemoryRegion, usize, usize)]) -> Vec<rdma::Sge<'_>> {
    list.iter()
        .map(|(mr, start, end)| rdma::Sge {
            mr,
            start: *start,
            end: *end,
        })
        .collect()
}

/// The region and `(start, end, wrId)` triples of a batch post.
#[allow(clippy::type_complexity)]
pub(super) fn batch_args(
    env: &Env,
    mr: u32,
    batch: &[f64],
) -> Result<(rdma::MemoryRegion, Vec<(usize, usize, u64)>)> {
    let region = REGIONS
        .with(|r| r.borrow().get(&mr).cloned())
        .ok_or_else(|| throw_code(env, "ERR_ZCIO_CLOSED", "the memory region is gone"))?;
    if !batch.len().is_multiple_of(3) {
        return Err(throw_code(
            env,
            "ERR_INVALID_ARG_VALUE",
            "batch must hold (start, end, wrId) triples: its length must be a multiple of 3",
        ));
    }
    let wrs = batch
        .chunks_exact(3)
        .map(|t| {
            Ok((
                offset(env, "start", t[0])?,
                offset(env, "end", t[1])?,
                safe_integer(env, "wrId", t[2])?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((region, wrs))
}
