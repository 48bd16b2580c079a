//! The RDMA devices of this machine: `ibv_get_device_list`.

use std::ffi::CStr;

use super::call::{unavailable, verbs};
use super::ctx::Ctx;
use super::sys;
use crate::error::{Error, Result};

/// An RDMA device as `ibv_get_device_list` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The kernel's name (`rxe0`, `mlx5_0`).
    pub name: String,
    /// The node GUID, host byte order.
    pub guid: u64,
    /// Ports, numbered from 1.
    pub ports: u8,
}

/// `ibv_get_device_list`, with its failure explained.
pub(super) fn device_list(v: &sys::Verbs) -> Result<(*mut *mut sys::ibv_device, usize)> {
    let mut n = 0;
    // SAFETY: plain call with an out-pointer to a local.
    let list = unsafe { (v.get_device_list)(&mut n) };
    if list.is_null() {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ENOSYS) => unavailable(
                "the kernel offers no RDMA verbs (ib_uverbs is not loaded, or no RDMA stack): \
                 load ib_uverbs and a device driver, or add a Soft-RoCE link \
                 (`modprobe rdma_rxe; rdma link add rxe0 type rxe netdev <if>`)",
            ),
            _ => Error::sys("ibv_get_device_list", e),
        });
    }
    Ok((list, n.max(0) as usize))
}

/// Whether libibverbs loads and sees at least one device; `Err` says what
/// is missing.
///
/// # Errors
///
/// [`Error::RdmaUnavailable`].
pub fn available() -> Result<()> {
    if devices()?.is_empty() {
        return Err(unavailable(
            "libibverbs found no RDMA device (no hardware, no provider for it in ibverbs-providers, \
             or no Soft-RoCE link: `rdma link add rxe0 type rxe netdev <if>`)",
        ));
    }
    Ok(())
}

/// The RDMA devices of this machine.
///
/// # Errors
///
/// [`Error::RdmaUnavailable`] without libibverbs; [`Error::Sys`]
/// (`ibv_get_device_list`).
pub fn devices() -> Result<Vec<DeviceInfo>> {
    let v = verbs()?;
    let (list, n) = device_list(v)?;
    let mut out = Vec::new();
    for i in 0..n {
        // SAFETY: `list` holds `n` device pointers until freed below.
        let dev = unsafe { *list.add(i) };
        // SAFETY: a device of the list; the name is a NUL-terminated string
        // owned by libibverbs.
        let name = unsafe { CStr::from_ptr((v.get_device_name)(dev)) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: as above.
        let guid = u64::from_be(unsafe { (v.get_device_guid)(dev) });
        let ports = Ctx::open_raw(v, dev)
            .map(|ctx| ctx.count_ports())
            .unwrap_or(0);
        out.push(DeviceInfo { name, guid, ports });
    }
    // SAFETY: the list came from ibv_get_device_list and is freed once.
    unsafe { (v.free_device_list)(list) };
    Ok(out)
}
