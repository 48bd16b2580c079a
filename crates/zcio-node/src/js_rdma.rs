//! RDMA verbs for JavaScript: conversions over `zcio::rdma`, plus the
//! asynchronous wait of a completion queue, driven by its completion
//! channel's descriptor on the thread's own event loop (a libuv poll handle,
//! as the ring's driver does: no thread hop per completion; the handle keeps
//! the process alive only while a wait is pending).

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::ptr;
use std::rc::Rc;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use zcio::rdma;

use crate::error::{throw_code, to_js, OrThrow};
use crate::external;
use crate::js_pool::new_promise;
use crate::js_ring::external_or_throw;
use crate::uv::{self, Handle};

/// An RDMA device.
#[napi(object)]
pub struct RdmaDevice {
    pub name: String,
    /// The node GUID, 16 hex digits.
    pub guid: String,
    pub ports: u32,
}

/// What a peer needs to connect (`gid`: 32 hex digits).
#[napi(object)]
pub struct RdmaEndpoint {
    pub lid: u32,
    pub qpn: u32,
    pub psn: u32,
    pub gid: String,
}

/// One completed (or flushed) work request.
#[napi(object)]
pub struct RdmaWorkCompletion {
    pub wr_id: f64,
    /// 0 on success; 5 (`IBV_WC_WR_FLUSH_ERR`) for flushed requests.
    pub status: i32,
    #[napi(
        ts_type = "'send' | 'rdma-write' | 'rdma-read' | 'recv' | 'recv-rdma-with-imm' | 'other'"
    )]
    pub opcode: String,
    pub byte_len: u32,
    pub imm_data: Option<u32>,
    /// The queue pair's number.
    pub qp_num: u32,
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

fn wr_id(env: &Env, v: f64) -> Result<u64> {
    crate::error::int_arg(env, "wrId", v, 9007199254740991.0, true)
}

/// A peer's address for RDMA READ/WRITE (below 2^53 on every 64-bit Linux).
fn remote_address(env: &Env, v: f64) -> Result<u64> {
    crate::error::int_arg(env, "remoteAddr", v, 9007199254740991.0, true)
}

fn offset(env: &Env, name: &'static str, v: f64) -> Result<usize> {
    Ok(crate::error::int_arg(env, name, v, 9007199254740991.0, true)? as usize)
}

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
        let n = crate::error::int_arg(&env, "entries", entries, f64::from(i32::MAX), false)? as u32;
        let cq = self.ctx.create_cq(n).or_throw(&env)?;
        Ok(RdmaCompletionQueue {
            watch: Rc::new(Watch {
                cq,
                env: env.raw(),
                handle: Cell::new(ptr::null_mut()),
                waiting: RefCell::default(),
                async_ctx: Cell::new(ptr::null_mut()),
            }),
        })
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
        let size = offset(&env, "size", size)?;
        let mr = self.pd.allocate(size).or_throw(&env)?;
        let id = NEXT_ID.with(|n| {
            let id = n.get();
            n.set(id.wrapping_add(1).max(1));
            id
        });
        REGIONS.with(|r| r.borrow_mut().insert(id, mr.clone()));
        Ok(RdmaMemoryRegion { mr, id })
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
            .create_qp(&send_cq.watch.cq, &recv_cq.watch.cq, opts)
            .or_throw(&env)?;
        Ok(RdmaPreparedQueuePair {
            qp: RefCell::new(Some(qp)),
        })
    }
}

/// Registered memory.
#[napi]
pub struct RdmaMemoryRegion {
    mr: rdma::MemoryRegion,
    id: u32,
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

/// A queue pair in INIT, waiting for the peer's endpoint.
#[napi]
pub struct RdmaPreparedQueuePair {
    qp: RefCell<Option<rdma::PreparedQueuePair>>,
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

fn sges(env: &Env, list: &[RdmaSgeRef]) -> Result<Vec<(rdma::MemoryRegion, usize, usize)>> {
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

fn as_sges(list: &[(rdma::MemoryRegion, usize, usize)]) -> Vec<rdma::Sge<'_>> {
    list.iter()
        .map(|(mr, start, end)| rdma::Sge {
            mr,
            start: *start,
            end: *end,
        })
        .collect()
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

/// The region and `(start, end, wrId)` triples of a batch post.
#[allow(clippy::type_complexity)]
fn batch_args(
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
                wr_id(env, t[2])?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((region, wrs))
}

/// Numbers per completion written by `pollInto`.
const WC_FIELDS: usize = 6;

/// A completion queue's event-loop side.
struct Watch {
    cq: rdma::CompletionQueue,
    env: sys::napi_env,
    /// The poll handle on the channel's descriptor (made on first wait).
    handle: Cell<Handle>,
    /// Pending `wait()` calls, oldest first, with their `max`.
    waiting: RefCell<std::collections::VecDeque<(sys::napi_deferred, usize)>>,
    async_ctx: Cell<sys::napi_async_context>,
}

/// A completion queue.
#[napi]
pub struct RdmaCompletionQueue {
    watch: Rc<Watch>,
}

fn completions(v: Vec<rdma::WorkCompletion>) -> Vec<RdmaWorkCompletion> {
    v.into_iter()
        .map(|c| RdmaWorkCompletion {
            wr_id: c.wr_id as f64,
            status: c.status,
            opcode: c.opcode.name().to_owned(),
            byte_len: c.byte_len,
            imm_data: c.imm_data,
            qp_num: c.qp_num,
        })
        .collect()
}

#[napi]
impl RdmaCompletionQueue {
    /// Takes up to `max` completions now (possibly none).
    #[napi]
    pub fn poll(&self, env: Env, max: u32) -> Result<Vec<RdmaWorkCompletion>> {
        Ok(completions(
            self.watch.cq.poll(max as usize).or_throw(&env)?,
        ))
    }

    /// Takes up to `out.length / 6` completions now into `out`, six numbers
    /// each: wrId, status, opcode (verbs' number), byteLen, immData (-1 when
    /// none), qpNum; returns how many. No object per completion. While none
    /// is there, polls again up to `spin` times before returning 0.
    #[napi]
    pub fn poll_into(
        &self,
        env: Env,
        mut out: Float64ArraySlice,
        spin: Option<u32>,
    ) -> Result<u32> {
        // SAFETY: no JS runs during this call, so nothing else touches the
        // array's memory while it is written.
        let out = unsafe { out.as_mut() };
        let max = (out.len() / WC_FIELDS).min(4096);
        if max == 0 {
            return Ok(0);
        }
        let got = self
            .watch
            .cq
            .poll_spin(max, spin.unwrap_or(0))
            .or_throw(&env)?;
        for (c, o) in got.iter().zip(out.chunks_exact_mut(WC_FIELDS)) {
            o[0] = c.wr_id as f64;
            o[1] = f64::from(c.status);
            o[2] = f64::from(c.opcode.raw());
            o[3] = f64::from(c.byte_len);
            o[4] = c.imm_data.map_or(-1.0, f64::from);
            o[5] = f64::from(c.qp_num);
        }
        Ok(got.len() as u32)
    }

    /// Resolves with up to `max` completions as soon as there is one,
    /// driven by the completion channel on this thread's event loop
    /// (rejects with `ERR_ZCIO_CLOSED` once the queue is closed).
    #[napi(ts_return_type = "Promise<RdmaWorkCompletion[]>")]
    pub fn wait(&self, env: Env, max: u32) -> Result<PromiseRaw<'_, Vec<RdmaWorkCompletion>>> {
        let (deferred, promise) = new_promise(&env);
        if self.watch.cq.is_closed() {
            // SAFETY: rejecting the deferred just made, on the JS thread.
            unsafe { sys::napi_reject_deferred(env.raw(), deferred, closed_error(env.raw())) };
            return Ok(PromiseRaw::new(env.raw(), promise));
        }
        self.watch
            .waiting
            .borrow_mut()
            .push_back((deferred, max.max(1) as usize));
        Watch::start(&self.watch, &env)?;
        self.watch.serve();
        Ok(PromiseRaw::new(env.raw(), promise))
    }

    /// Destroys the queue; throws `ERR_ZCIO_CQ_IN_USE` while queue pairs use
    /// it (a closed one until its flushed requests are polled). Pending
    /// `wait()`s reject with `ERR_ZCIO_CLOSED`. A no-op when closed.
    #[napi]
    pub fn close(&self, env: Env) -> Result<()> {
        let w = &self.watch;
        if w.cq.is_closed() {
            return Ok(());
        }
        if w.cq.users() > 0 {
            // Refused: the core says why.
            return w.cq.close().or_throw(&env);
        }
        // The poll handle stops watching the channel before its descriptor
        // closes with the queue.
        w.stop_for_good();
        w.cq.close().or_throw(&env)?;
        w.reject_all();
        Ok(())
    }

    /// Queue pairs using the queue (open, or closed and not drained).
    #[napi(getter)]
    pub fn users(&self) -> u32 {
        self.watch.cq.users()
    }

    /// Completions the queue holds.
    #[napi(getter)]
    pub fn capacity(&self) -> u32 {
        self.watch.cq.capacity()
    }

    /// Completions to come (posted, not polled); posts past `capacity`
    /// throw `ERR_ZCIO_CQ_FULL`.
    #[napi(getter)]
    pub fn pending(&self) -> u32 {
        self.watch.cq.pending()
    }
}

/// An `ERR_ZCIO_CLOSED` error for waits of a closed or collected queue.
fn closed_error(env: sys::napi_env) -> sys::napi_value {
    to_js(
        env,
        &zcio::Error::Closed {
            what: "completion queue",
        },
    )
}

impl Watch {
    /// Closes the poll handle (for good: the queue is closed or collected).
    fn stop_for_good(&self) {
        let h = self.handle.replace(ptr::null_mut());
        if let (Some(uv), false) = (uv::uv(), h.is_null()) {
            // SAFETY: the live handle made in `start`; stopping it removes
            // the descriptor from the loop at once; libuv frees it through
            // `on_close`, which drops the reference it held.
            unsafe {
                (uv.poll_stop)(h);
                (uv.close)(h, on_close);
            }
        }
    }

    /// Rejects every pending wait with `ERR_ZCIO_CLOSED`.
    fn reject_all(&self) {
        let waiting = std::mem::take(&mut *self.waiting.borrow_mut());
        if waiting.is_empty() {
            return;
        }
        let mut scope = ptr::null_mut();
        // SAFETY: on the JS thread (a method call or a finalizer, which Node
        // runs outside garbage collection for this module's API version);
        // where JS can't run any more the calls fail and nothing is settled.
        unsafe {
            sys::napi_open_handle_scope(self.env, &mut scope);
            for (d, _) in waiting {
                sys::napi_reject_deferred(self.env, d, closed_error(self.env));
            }
            sys::napi_close_handle_scope(self.env, scope);
        }
    }

    fn start(this: &Rc<Watch>, env: &Env) -> Result<()> {
        let uv = uv::uv().ok_or_else(|| throw_code(env, "ERR_ZCIO_NO_EVENT_LOOP", "no libuv"))?;
        if this.handle.get().is_null() {
            let mut uv_loop = ptr::null_mut();
            let mut actx = ptr::null_mut();
            // SAFETY: napi calls on the current env with local out-pointers.
            unsafe {
                sys::napi_get_uv_event_loop(env.raw(), &mut uv_loop);
                let name = crate::error::string(env.raw(), "zcio.RdmaCompletionQueue");
                sys::napi_async_init(env.raw(), ptr::null_mut(), name, &mut actx);
            }
            this.async_ctx.set(actx);
            let h = uv.alloc_handle(false);
            // SAFETY: a fresh handle of poll size on this thread's loop; its
            // data holds a strong reference, dropped by the close callback.
            unsafe {
                if h.is_null() || (uv.poll_init)(uv_loop.cast(), h, this.cq.fd()) != 0 {
                    uv::free_handle(h);
                    return Err(throw_code(env, "ERR_ZCIO_NAPI", "uv_poll_init failed"));
                }
                uv::set_data(h, Rc::into_raw(this.clone()) as *mut c_void);
            }
            this.handle.set(h);
        }
        // SAFETY: a live handle (closed only in `stop_for_good`, after which
        // the queue is closed and `wait` does not get here).
        unsafe { (uv.poll_start)(this.handle.get(), uv::READABLE, on_readable) };
        Ok(())
    }

    /// Resolves waiters while completions are there; arms the queue (and
    /// keeps the handle running) while some still wait.
    fn serve(&self) {
        loop {
            if self.waiting.borrow().is_empty() {
                self.idle();
                return;
            }
            let max = self.waiting.borrow()[0].1;
            let got = match self.cq.poll(max) {
                Ok(g) => g,
                Err(e) => {
                    let (d, _) = self.waiting.borrow_mut().pop_front().expect("non-empty");
                    // SAFETY: rejecting a deferred we own, on the JS thread.
                    unsafe { sys::napi_reject_deferred(self.env, d, to_js(self.env, &e)) };
                    continue;
                }
            };
            if got.is_empty() {
                // Arm, then look again: a completion that came before the
                // arm raises no event.
                let _ = self.cq.arm();
                match self.cq.poll(max) {
                    Ok(g) if !g.is_empty() => self.resolve(g),
                    _ => return,
                }
            } else {
                self.resolve(got);
            }
        }
    }

    fn resolve(&self, got: Vec<rdma::WorkCompletion>) {
        let Some((d, _)) = self.waiting.borrow_mut().pop_front() else {
            return;
        };
        // SAFETY: converting and resolving on the JS thread.
        unsafe {
            let value = Vec::<RdmaWorkCompletion>::to_napi_value(self.env, completions(got))
                .unwrap_or(ptr::null_mut());
            sys::napi_resolve_deferred(self.env, d, value);
        }
    }

    /// No waiter: stop polling so the handle does not keep the loop alive.
    fn idle(&self) {
        if let (Some(uv), false) = (uv::uv(), self.handle.get().is_null()) {
            // SAFETY: a live handle.
            unsafe { (uv.poll_stop)(self.handle.get()) };
        }
    }
}

unsafe extern "C" fn on_readable(handle: Handle, _status: i32, _events: i32) {
    // SAFETY: `data` holds a strong reference made in `start`.
    let watch = unsafe {
        let p = uv::data(handle) as *const Watch;
        Rc::increment_strong_count(p);
        Rc::from_raw(p)
    };
    watch.cq.ack_events();
    let env = watch.env;
    let mut hscope = ptr::null_mut();
    let mut cscope = ptr::null_mut();
    // SAFETY: a libuv callback on the JS thread with no JS on the stack: a
    // callback scope makes promise reactions run when it closes.
    unsafe {
        sys::napi_open_handle_scope(env, &mut hscope);
        let mut resource = ptr::null_mut();
        sys::napi_create_object(env, &mut resource);
        sys::napi_open_callback_scope(env, resource, watch.async_ctx.get(), &mut cscope);
        watch.serve();
        sys::napi_close_callback_scope(env, cscope);
        sys::napi_close_handle_scope(env, hscope);
    }
}

unsafe extern "C" fn on_close(handle: Handle) {
    // SAFETY: the strong reference stored in `start`, released once.
    unsafe {
        drop(Rc::from_raw(uv::data(handle) as *const Watch));
        uv::free_handle(handle);
    }
}

impl Drop for RdmaCompletionQueue {
    fn drop(&mut self) {
        // Collected: stop watching; the queue itself goes with the last
        // reference (queue pairs hold it); waits still pending reject.
        self.watch.stop_for_good();
        self.watch.reject_all();
    }
}
