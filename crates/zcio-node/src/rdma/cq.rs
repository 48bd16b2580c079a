//! Completion queues, and their asynchronous wait: the completion channel's
//! descriptor watched by a poll handle on this thread's loop, which keeps the
//! process alive only while a wait is pending.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ptr;
use std::rc::Rc;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use zcio::rdma;

use crate::error::{throw_code, to_js, OrThrow};
use crate::raw::napi::{self as raw, CallbackScope, HandleScope};
use crate::raw::uv::{self, LoopHandle};
use crate::values::new_promise;

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

/// Numbers per completion written by `pollInto`.
const WC_FIELDS: usize = 6;

/// A completion queue's event-loop side.
struct Watch {
    cq: rdma::CompletionQueue,
    env: sys::napi_env,
    /// The poll handle on the channel's descriptor (made on first wait).
    handle: RefCell<Option<LoopHandle<Watch>>>,
    /// Pending `wait()` calls, oldest first, with their `max`.
    waiting: RefCell<VecDeque<(sys::napi_deferred, usize)>>,
    async_ctx: Cell<sys::napi_async_context>,
}

/// A completion queue.
#[napi]
pub struct RdmaCompletionQueue {
    watch: Rc<Watch>,
}

impl RdmaCompletionQueue {
    /// The queue `cq` of `env`'s thread, not yet watched.
    pub(super) fn new(cq: rdma::CompletionQueue, env: &Env) -> RdmaCompletionQueue {
        RdmaCompletionQueue {
            watch: Rc::new(Watch {
                cq,
                env: env.raw(),
                handle: RefCell::default(),
                waiting: RefCell::default(),
                async_ctx: Cell::new(ptr::null_mut()),
            }),
        }
    }

    /// The core's queue.
    pub(super) fn core(&self) -> &rdma::CompletionQueue {
        &self.watch.cq
    }
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
        let (deferred, promise) = new_promise(&env)?;
        if self.watch.cq.is_closed() {
            // A deferred is gone once settled, whatever napi says.
            let _ = raw::reject(env.raw(), deferred, closed_error(env.raw()));
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
    /// Dropping it stops it, which removes the descriptor from the loop at
    /// once; libuv then drops the reference to the watch it held.
    fn stop_for_good(&self) {
        let handle = self.handle.borrow_mut().take();
        drop(handle);
    }

    /// Rejects every pending wait with `ERR_ZCIO_CLOSED`.
    fn reject_all(&self) {
        let waiting = std::mem::take(&mut *self.waiting.borrow_mut());
        if waiting.is_empty() {
            return;
        }
        // On the JS thread (a method call or a finalizer, which Node runs
        // outside garbage collection for this module's API version); where JS
        // can't run any more the calls fail and nothing is settled.
        let _scope = HandleScope::open(self.env);
        for (d, _) in waiting {
            let _ = raw::reject(self.env, d, closed_error(self.env));
        }
    }

    fn start(this: &Rc<Watch>, env: &Env) -> Result<()> {
        if !uv::available() {
            return Err(throw_code(env, "ERR_ZCIO_NO_EVENT_LOOP", "no libuv"));
        }
        if this.handle.borrow().is_none() {
            // Without an async context the callbacks still run (in the root
            // context), as napi allows.
            let actx = raw::async_context(env.raw(), "zcio.RdmaCompletionQueue")
                .unwrap_or(ptr::null_mut());
            this.async_ctx.set(actx);
            let handle = raw::uv_event_loop(env.raw())
                .ok()
                .and_then(|l| LoopHandle::poll(l, this.cq.fd(), this.clone(), on_readable).ok())
                .ok_or_else(|| throw_code(env, "ERR_ZCIO_NAPI", "uv_poll_init failed"))?;
            *this.handle.borrow_mut() = Some(handle);
        }
        if let Some(h) = this.handle.borrow().as_ref() {
            // A handle that fails to start leaves the wait to a later
            // `wait()` or `close()`, as a start that never fires would.
            let _ = h.start();
        }
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
                    // A deferred is gone once settled, whatever napi says.
                    let _ = raw::reject(self.env, d, to_js(self.env, &e));
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
        // SAFETY: converts plain objects on the JS thread.
        let value = unsafe { Vec::<RdmaWorkCompletion>::to_napi_value(self.env, completions(got)) }
            .unwrap_or(ptr::null_mut());
        // A deferred is gone once settled, whatever napi says.
        let _ = raw::resolve(self.env, d, value);
    }

    /// No waiter: stop polling so the handle does not keep the loop alive.
    fn idle(&self) {
        if let Some(h) = self.handle.borrow().as_ref() {
            h.stop();
        }
    }
}

/// The channel is readable: a libuv callback on the JS thread with no JS on
/// the stack, so a callback scope makes promise reactions run when it closes.
fn on_readable(watch: &Rc<Watch>) {
    watch.cq.ack_events();
    let env = watch.env;
    let _hscope = HandleScope::open(env);
    let _cscope = CallbackScope::open(env, watch.async_ctx.get());
    watch.serve();
}

impl Drop for RdmaCompletionQueue {
    fn drop(&mut self) {
        // Collected: stop watching; the queue itself goes with the last
        // reference (queue pairs hold it); waits still pending reject.
        self.watch.stop_for_good();
        self.watch.reject_all();
    }
}
