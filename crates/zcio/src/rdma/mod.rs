//! RDMA verbs (cargo feature `rdma`), safe: seed, the `ibverbs` crate's
//! `QueuePair`, whose post calls are `unsafe`; here every work request holds
//! its memory region until its completion is polled (or flushed), so no
//! sequence of safe calls lets the device touch memory that was freed or
//! deregistered.
//!
//! libibverbs is loaded on first use ([`devices`], [`Context::open`]); where
//! it, a provider or a device is missing the calls fail with
//! [`Error::RdmaUnavailable`], and everything else in the crate works.
//!
//! Objects hold what they need (`Rc`): a memory region its protection
//! domain, a queue pair its domain and completion queues, each of them the
//! device context; so destruction always runs in the order verbs requires,
//! whatever is dropped first.
//!
//! `close()` releases a verbs object explicitly, in verbs' order or not at
//! all: a queue pair first (moved to the error state; destroyed once its
//! flushed work requests are polled), then its completion queues, memory
//! regions and protection domain, then the context. Closing out of order is
//! refused ([`Error::CqInUse`], [`Error::MrInUse`], [`Error::PdInUse`],
//! [`Error::ContextInUse`]) and changes nothing; closing twice does nothing;
//! any other use of a closed object fails with [`Error::Closed`].

mod cq;
mod fault;
mod mr;
mod qp;
mod sys;
mod wr_table;

use std::cell::Cell;
use std::ffi::CStr;
use std::rc::Rc;

pub use cq::{CompletionQueue, WorkCompletion, WorkOpcode};
#[doc(hidden)]
pub use fault::fail_next;
pub use mr::MemoryRegion;
pub use qp::{Endpoint, PreparedQueuePair, QpOptions, QueuePair, Sge};

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

fn unavailable(reason: impl Into<String>) -> Error {
    Error::RdmaUnavailable {
        reason: reason.into(),
    }
}

fn verbs() -> Result<&'static sys::Verbs> {
    sys::verbs().map_err(unavailable)
}

/// `ibv_get_device_list`, with its failure explained.
fn device_list(v: &sys::Verbs) -> Result<(*mut *mut sys::ibv_device, usize)> {
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

/// The errno of the last failed call, as a `Sys` error of `call`.
fn last_error(call: &'static str) -> Error {
    Error::sys(call, std::io::Error::last_os_error())
}

/// A verbs call that returns an errno (0 on success).
fn check(call: &'static str, rc: i32) -> Result<()> {
    match rc {
        0 => Ok(()),
        e if e > 0 => Err(Error::sys(call, std::io::Error::from_raw_os_error(e))),
        _ => Err(last_error(call)),
    }
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

pub(crate) struct Ctx {
    v: &'static sys::Verbs,
    /// Null once closed.
    raw: Cell<*mut sys::ibv_context>,
    /// Protection domains allocated and not deallocated.
    open_pds: Cell<u32>,
    /// Completion queues created and not destroyed.
    open_cqs: Cell<u32>,
}

impl Ctx {
    fn open_raw(v: &'static sys::Verbs, dev: *mut sys::ibv_device) -> Result<Ctx> {
        // SAFETY: `dev` comes from a live device list.
        let raw = unsafe { (v.open_device)(dev) };
        if raw.is_null() {
            return Err(last_error("ibv_open_device"));
        }
        Ok(Ctx {
            v,
            raw: Cell::new(raw),
            open_pds: Cell::new(0),
            open_cqs: Cell::new(0),
        })
    }

    /// The verbs context; only called while a child object is open (so the
    /// context is) or after [`check_open`](Self::check_open).
    pub(crate) fn raw(&self) -> *mut sys::ibv_context {
        self.raw.get()
    }

    fn check_open(&self) -> Result<()> {
        if self.raw.get().is_null() {
            return Err(Error::Closed {
                what: "RDMA context",
            });
        }
        Ok(())
    }

    /// A child (domain or queue) was destroyed.
    pub(crate) fn child_gone(count: &Cell<u32>) {
        count.set(count.get().saturating_sub(1));
    }

    pub(crate) fn cqs(&self) -> &Cell<u32> {
        &self.open_cqs
    }

    fn port_attr(&self, port: u8) -> Result<sys::ibv_port_attr> {
        let mut attr = sys::ibv_port_attr::default();
        // SAFETY: the context is open; `attr` is large enough for the
        // structure the exported function fills (checked by the layout test).
        check("ibv_query_port", unsafe {
            (self.v.query_port)(self.raw(), port, &mut attr)
        })?;
        Ok(attr)
    }

    fn count_ports(&self) -> u8 {
        (1..=u8::MAX)
            .take_while(|&p| self.port_attr(p).is_ok())
            .count() as u8
    }

    /// The first GID of `port` that is set and not link-local (`fe80::/10`),
    /// or 0.
    fn routable_gid(&self, port: u8, table_len: i32) -> u8 {
        (0..table_len.clamp(0, 256))
            .find(|&i| {
                self.gid(port, i)
                    .is_ok_and(|g| g != [0; 16] && !(g[0] == 0xfe && g[1] & 0xc0 == 0x80))
            })
            .map_or(0, |i| i as u8)
    }

    fn gid(&self, port: u8, index: i32) -> Result<[u8; 16]> {
        let mut gid = sys::ibv_gid::default();
        // SAFETY: the context is open; `gid` is an out-parameter.
        check("ibv_query_gid", unsafe {
            (self.v.query_gid)(self.raw(), port, index, &mut gid)
        })?;
        Ok(gid.raw)
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        let raw = self.raw.replace(std::ptr::null_mut());
        if !raw.is_null() {
            // SAFETY: every object made from the context holds an Rc of it,
            // so none is left when this runs.
            unsafe { (self.v.close_device)(raw) };
        }
    }
}

/// An open RDMA device.
#[derive(Clone)]
pub struct Context {
    ctx: Rc<Ctx>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    /// Opens device `name`, or the first device when `None`.
    ///
    /// # Errors
    ///
    /// [`Error::RdmaUnavailable`] (no libibverbs, no device, no such device),
    /// [`Error::Sys`] (`ibv_open_device`).
    pub fn open(name: Option<&str>) -> Result<Context> {
        let v = verbs()?;
        let (list, n) = device_list(v)?;
        let mut found = None;
        for i in 0..n {
            // SAFETY: `list` holds `n` devices until freed below.
            let dev = unsafe { *list.add(i) };
            // SAFETY: a NUL-terminated name owned by libibverbs.
            let dev_name = unsafe { CStr::from_ptr((v.get_device_name)(dev)) };
            if name.is_none_or(|want| dev_name.to_bytes() == want.as_bytes()) {
                found = Some(Ctx::open_raw(v, dev));
                break;
            }
        }
        // SAFETY: freed once; an opened context does not need the list.
        unsafe { (v.free_device_list)(list) };
        match found {
            Some(ctx) => Ok(Context { ctx: Rc::new(ctx?) }),
            None => Err(unavailable(match name {
                Some(want) => format!("no RDMA device named {want:?}"),
                None => "libibverbs found no RDMA device".into(),
            })),
        }
    }

    /// Allocates a protection domain.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after [`close`](Self::close), [`Error::Sys`]
    /// (`ibv_alloc_pd`).
    pub fn alloc_pd(&self) -> Result<ProtectionDomain> {
        let c = &self.ctx;
        c.check_open()?;
        // SAFETY: the context is open.
        let raw = unsafe { (c.v.alloc_pd)(c.raw()) };
        if raw.is_null() {
            return Err(last_error("ibv_alloc_pd"));
        }
        c.open_pds.set(c.open_pds.get() + 1);
        Ok(ProtectionDomain {
            pd: Rc::new(Pd {
                ctx: c.clone(),
                raw: Cell::new(raw),
                open_mrs: Cell::new(0),
                open_qps: Cell::new(0),
            }),
        })
    }

    /// Creates a completion queue of at least `entries` entries, with a
    /// completion channel for event-driven use.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for 0 or more than 2^31 - 1 entries,
    /// [`Error::Closed`] after [`close`](Self::close), [`Error::Sys`]
    /// (`ibv_create_comp_channel`, `ibv_create_cq`).
    pub fn create_cq(&self, entries: u32) -> Result<CompletionQueue> {
        self.ctx.check_open()?;
        CompletionQueue::new(&self.ctx, entries)
    }

    /// Closes the device (`ibv_close_device`) now. Every protection domain
    /// and completion queue made from it must be closed (or dropped) first;
    /// closing twice does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::ContextInUse`] while protection domains or completion queues
    /// of it are open (nothing changes).
    pub fn close(&self) -> Result<()> {
        let c = &self.ctx;
        if c.raw.get().is_null() {
            return Ok(());
        }
        let (domains, queues) = (c.open_pds.get(), c.open_cqs.get());
        if domains > 0 || queues > 0 {
            return Err(Error::ContextInUse { domains, queues });
        }
        let raw = c.raw.replace(std::ptr::null_mut());
        // SAFETY: nothing made from the context is open any more (the counts
        // above); the children still referenced only check that they are
        // closed and never use the context again.
        unsafe { (c.v.close_device)(raw) };
        Ok(())
    }

    /// Whether [`close`](Self::close) ran.
    pub fn is_closed(&self) -> bool {
        self.ctx.raw.get().is_null()
    }
}

pub(crate) struct Pd {
    ctx: Rc<Ctx>,
    /// Null once closed.
    raw: Cell<*mut sys::ibv_pd>,
    /// Memory regions registered and not deregistered.
    open_mrs: Cell<u32>,
    /// Queue pairs created and not destroyed.
    open_qps: Cell<u32>,
}

impl Pd {
    /// The verbs domain; only called while it is open.
    pub(crate) fn raw(&self) -> *mut sys::ibv_pd {
        self.raw.get()
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.raw.get().is_null() {
            return Err(Error::Closed {
                what: "protection domain",
            });
        }
        Ok(())
    }

    pub(crate) fn mrs(&self) -> &Cell<u32> {
        &self.open_mrs
    }

    pub(crate) fn qps(&self) -> &Cell<u32> {
        &self.open_qps
    }

    fn dealloc(&self) {
        let raw = self.raw.replace(std::ptr::null_mut());
        if !raw.is_null() {
            // SAFETY: no memory region or queue pair of the domain is open
            // (`close` checks; on drop, they hold the domain, so none is left).
            unsafe { (self.ctx.v.dealloc_pd)(raw) };
            Ctx::child_gone(&self.ctx.open_pds);
        }
    }
}

impl Drop for Pd {
    fn drop(&mut self) {
        self.dealloc();
    }
}

/// A protection domain: memory regions and queue pairs live in one.
#[derive(Clone)]
pub struct ProtectionDomain {
    pd: Rc<Pd>,
}

impl std::fmt::Debug for ProtectionDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtectionDomain").finish_non_exhaustive()
    }
}

impl ProtectionDomain {
    /// Allocates `size` bytes (page-aligned, zeroed) and registers them with
    /// local write, remote read and remote write access.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for 0 bytes, [`Error::Closed`] after
    /// [`close`](Self::close), [`Error::Sys`] (`mmap`, `ibv_reg_mr`; `ENOMEM`
    /// over `RLIMIT_MEMLOCK`).
    pub fn allocate(&self, size: usize) -> Result<MemoryRegion> {
        self.pd.check_open()?;
        MemoryRegion::new(&self.pd, size)
    }

    /// Creates a reliable-connected queue pair, ready for
    /// [`PreparedQueuePair::handshake`].
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the domain or a queue is closed,
    /// [`Error::InvalidArgument`] for queues of another device context,
    /// [`Error::Sys`] (`ibv_create_qp`, `ibv_modify_qp`, `ibv_query_port`,
    /// `ibv_query_gid`).
    pub fn create_qp(
        &self,
        send_cq: &CompletionQueue,
        recv_cq: &CompletionQueue,
        options: QpOptions,
    ) -> Result<PreparedQueuePair> {
        self.pd.check_open()?;
        PreparedQueuePair::new(&self.pd, send_cq, recv_cq, options)
    }

    /// Deallocates the domain (`ibv_dealloc_pd`) now. Its memory regions
    /// and queue pairs must be closed first (a closed queue pair counts until
    /// its flushed work requests are polled); closing twice does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::PdInUse`] while memory regions or queue pairs of it are open
    /// (nothing changes).
    pub fn close(&self) -> Result<()> {
        let pd = &self.pd;
        if pd.raw.get().is_null() {
            return Ok(());
        }
        let (regions, queue_pairs) = (pd.open_mrs.get(), pd.open_qps.get());
        if regions > 0 || queue_pairs > 0 {
            return Err(Error::PdInUse {
                regions,
                queue_pairs,
            });
        }
        pd.dealloc();
        Ok(())
    }

    /// Whether [`close`](Self::close) ran.
    pub fn is_closed(&self) -> bool {
        self.pd.raw.get().is_null()
    }
}
