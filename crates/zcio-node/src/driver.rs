//! Drives a ring from Node's own event loop.
//!
//! The ring's eventfd is watched by a libuv poll handle on the loop of the JS
//! thread that made the ring; a prepare handle hands operations queued during
//! the last JS turn to the kernel (one `io_uring_enter`) before the loop
//! blocks. Each wake-up reaps every ready completion, settles their promises
//! inside one callback scope (so promise reactions run right away), submits
//! whatever those reactions queued, and repeats while completions keep coming.
//! No thread hop, no per-operation threadsafe function.
//!
//! Operations of the JavaScript layer (promise calls, multishot receives and
//! accepts, sends) are settled by the layer itself: the driver writes
//! `(slot, result, flags, offset)` quads into an `Int32Array` it shares with
//! the layer and calls the layer's settle function once per round; the layer
//! dispatches each quad to the handler it keeps for that slot. Native code
//! creates no promise, number or object per completion, and nothing here
//! grows with the kinds of operation.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::ptr;
use std::rc::{Rc, Weak};

use napi::sys;

use crate::js_pool::PoolState;
use crate::thread_rings;
use crate::uv::{self, Handle};

/// Rounds of submit → reap → settle in one wake-up before yielding to the loop.
const MAX_ROUNDS: usize = 32;

/// Completions delivered to the layer per call of its settle function.
pub const JS_CHUNK: usize = 1024;
/// `Int32Array` elements per completion: slot, result, flags, offset.
pub const JS_QUAD: usize = 4;

/// Who waits for an operation.
pub enum Waiter {
    Empty,
    /// The JavaScript layer, which keeps a handler in a table by slot; it
    /// stays until the operation's last completion (multishot operations and
    /// zero-copy sends have several).
    Js,
    Batch {
        id: u32,
        pos: u32,
    },
    /// Low-level submission: the completion is queued for `takeCompletions`.
    Manual,
}

pub struct Batch {
    deferred: sys::napi_deferred,
    results: Vec<i32>,
    remaining: u32,
}

pub struct Driver {
    pub ring: zcio::Ring,
    env: sys::napi_env,
    poll: Cell<Handle>,
    prepare: Cell<Handle>,
    /// Receiver object for `napi_make_callback`.
    resource: sys::napi_ref,
    /// Native function run through `napi_make_callback` to settle a batch:
    /// Node enters the context around it and runs microtasks after it.
    settle_fn: sys::napi_ref,
    /// The env is being torn down: no more napi calls.
    env_gone: Cell<bool>,
    reffed: Cell<bool>,
    waiters: RefCell<Vec<Waiter>>,
    batches: RefCell<(Vec<Option<Batch>>, Vec<u32>)>,
    pub manual: RefCell<Vec<zcio::Completion>>,
    /// Low-level operations whose completion has not been reaped.
    manual_in_flight: Cell<u32>,
    /// `completions()` calls waiting, oldest first.
    manual_waiters: RefCell<std::collections::VecDeque<sys::napi_deferred>>,
    pools: RefCell<Vec<Weak<PoolState>>>,
    /// Weak references to the views of pools that were garbage-collected
    /// before their ring closed: closing the ring detaches those still alive.
    orphan_views: RefCell<Vec<sys::napi_ref>>,
    /// The env cleanup hook is registered (removed again at teardown).
    hook_added: Cell<bool>,
    /// JS objects (the ring and its pools) that still reference the driver.
    pub js_owners: Cell<u32>,
    torn_down: Cell<bool>,
    scratch: RefCell<Vec<zcio::Completion>>,
    /// The layer's settle function, `(n: number) => void`.
    js_settle: sys::napi_ref,
    /// `(slot, result, flags, offset)` quads shared with the layer (an `Int32Array`).
    pub js_cq: Rc<[Cell<i32>]>,
    /// JS completions not yet handed to the layer.
    js_backlog: RefCell<std::collections::VecDeque<[i32; JS_QUAD]>>,
    /// The layer's settle function is running (deliveries nest into its loop).
    js_settling: Cell<bool>,
    /// How long `drive` spins for the next completion before it lets the
    /// loop sleep, in microseconds (0: never).
    pub busy_poll_us: Cell<u32>,
}

/// Why the driver could not start.
pub enum StartError {
    NoEventLoop,
    Napi,
}

impl Driver {
    pub fn start(
        env: sys::napi_env,
        ring: zcio::Ring,
        js_settle: sys::napi_value,
    ) -> Result<Rc<Driver>, StartError> {
        let uv = uv::uv().ok_or(StartError::NoEventLoop)?;
        let mut uv_loop = ptr::null_mut();
        // SAFETY: env is the current env; the out-pointer is a local.
        if unsafe { sys::napi_get_uv_event_loop(env, &mut uv_loop) } != sys::Status::napi_ok
            || uv_loop.is_null()
        {
            return Err(StartError::NoEventLoop);
        }
        let poll = uv.alloc_handle(false);
        let prepare = uv.alloc_handle(true);
        if poll.is_null() || prepare.is_null() {
            // SAFETY: plain allocations (or null), never given to libuv.
            unsafe {
                uv::free_handle(poll);
                uv::free_handle(prepare);
            }
            return Err(StartError::Napi);
        }
        // From here on, dropping `driver` deletes whatever references were
        // made (`Drop` skips null ones) and `Handles` frees what libuv never saw.
        let mut driver = Driver {
            ring,
            env,
            poll: Cell::new(poll),
            prepare: Cell::new(prepare),
            resource: ptr::null_mut(),
            settle_fn: ptr::null_mut(),
            env_gone: Cell::new(false),
            reffed: Cell::new(false),
            waiters: RefCell::default(),
            batches: RefCell::default(),
            manual: RefCell::default(),
            manual_in_flight: Cell::new(0),
            manual_waiters: RefCell::default(),
            pools: RefCell::default(),
            orphan_views: RefCell::default(),
            hook_added: Cell::new(true),
            js_owners: Cell::new(0),
            // Until the handles are live, nothing may be closed through libuv.
            torn_down: Cell::new(true),
            scratch: RefCell::default(),
            js_settle: ptr::null_mut(),
            js_cq: (0..JS_CHUNK * JS_QUAD).map(|_| Cell::new(0)).collect(),
            js_backlog: RefCell::default(),
            js_settling: Cell::new(false),
            busy_poll_us: Cell::new(0),
        };
        let fresh = FreshHandles {
            poll: Cell::new(poll),
            prepare: Cell::new(prepare),
        };
        let mut resource_obj = ptr::null_mut();
        // SAFETY: plain napi calls on the current env with out-pointers into
        // `driver`, which has no other user yet.
        let refs_ok = unsafe {
            sys::napi_create_object(env, &mut resource_obj) == sys::Status::napi_ok
                && sys::napi_create_reference(env, resource_obj, 1, &mut driver.resource)
                    == sys::Status::napi_ok
                && sys::napi_create_reference(env, js_settle, 1, &mut driver.js_settle)
                    == sys::Status::napi_ok
        };
        if !refs_ok {
            return Err(StartError::Napi);
        }
        let driver = Rc::new(driver);
        let mut func = ptr::null_mut();
        let mut settle_fn = ptr::null_mut();
        // SAFETY: the function only runs from `drive`, while the driver is
        // alive (the caller holds a strong reference). No other reference to
        // the driver exists yet, so writing `settle_fn` can't race.
        unsafe {
            if sys::napi_create_function(
                env,
                c"zcioSettle".as_ptr(),
                10,
                Some(settle_callback),
                Rc::as_ptr(&driver) as *mut c_void,
                &mut func,
            ) != sys::Status::napi_ok
                || sys::napi_create_reference(env, func, 1, &mut settle_fn) != sys::Status::napi_ok
            {
                return Err(StartError::Napi);
            }
            (*(Rc::as_ptr(&driver) as *mut Driver)).settle_fn = settle_fn;
        }
        // SAFETY: the handles are fresh zeroed allocations of the right size
        // for their types. A handle whose init failed was never seen by libuv
        // and is freed by `fresh`; one that was initialised is closed through
        // libuv, whose close callback frees it and drops the driver reference
        // stored in `data`.
        unsafe {
            if (uv.poll_init)(uv_loop.cast(), poll, driver.ring.eventfd()) != 0 {
                return Err(StartError::Napi);
            }
            uv::set_data(poll, Rc::into_raw(driver.clone()) as *mut c_void);
            if (uv.prepare_init)(uv_loop.cast(), prepare) != 0 {
                fresh.forget_poll();
                (uv.close)(poll, on_close);
                return Err(StartError::Napi);
            }
            uv::set_data(prepare, Rc::into_raw(driver.clone()) as *mut c_void);
            fresh.forget();
            driver.torn_down.set(false);
            (uv.unref)(poll);
            (uv.unref)(prepare);
            if (uv.poll_start)(poll, uv::READABLE, on_poll) != 0
                || (uv.prepare_start)(prepare, on_prepare) != 0
                || sys::napi_add_env_cleanup_hook(
                    env,
                    Some(on_env_cleanup),
                    Rc::as_ptr(&driver) as *mut c_void,
                ) != sys::Status::napi_ok
            {
                driver.hook_added.set(false);
                driver.teardown();
                return Err(StartError::Napi);
            }
        }
        thread_rings::register(&driver);
        Ok(driver)
    }

    pub fn env(&self) -> sys::napi_env {
        self.env
    }

    /// Whether the env is being torn down (no napi calls allowed).
    pub fn env_gone(&self) -> bool {
        self.env_gone.get()
    }

    pub fn is_torn_down(&self) -> bool {
        self.torn_down.get()
    }

    /// Remembers a pool so that closing the ring detaches its views; forgets
    /// pools that are gone (amortized, so a long-lived ring does not grow).
    pub fn add_pool(&self, pool: &Rc<PoolState>) {
        let mut pools = self.pools.borrow_mut();
        if pools.len() >= 64 && pools.len().is_power_of_two() {
            pools.retain(|p| p.strong_count() > 0);
        }
        pools.push(Rc::downgrade(pool));
    }

    /// Records who waits for the operation `user_data`.
    pub fn track(&self, user_data: u64, waiter: Waiter) {
        if matches!(waiter, Waiter::Manual) {
            self.manual_in_flight.set(self.manual_in_flight.get() + 1);
        }
        let slot = user_data as u32 as usize;
        let mut waiters = self.waiters.borrow_mut();
        if waiters.len() <= slot {
            waiters.resize_with(slot + 1, || Waiter::Empty);
        }
        waiters[slot] = waiter;
    }

    /// Starts a batch of `n` operations settled together.
    pub fn new_batch(&self, deferred: sys::napi_deferred, n: u32) -> u32 {
        let mut b = self.batches.borrow_mut();
        let batch = Batch {
            deferred,
            results: vec![0; n as usize],
            remaining: n,
        };
        match b.1.pop() {
            Some(id) => {
                b.0[id as usize] = Some(batch);
                id
            }
            None => {
                b.0.push(Some(batch));
                (b.0.len() - 1) as u32
            }
        }
    }

    /// Records a result for a batch element that never reached the kernel.
    pub fn batch_fail(&self, id: u32, pos: u32, res: i32) {
        if let Some(done) = self.batch_result(id, pos, res) {
            self.resolve_batch(done);
        }
    }

    fn batch_result(&self, id: u32, pos: u32, res: i32) -> Option<Batch> {
        let mut b = self.batches.borrow_mut();
        let batch = b.0.get_mut(id as usize)?.as_mut()?;
        batch.results[pos as usize] = res;
        batch.remaining -= 1;
        if batch.remaining > 0 {
            return None;
        }
        let done = b.0[id as usize].take();
        b.1.push(id);
        done
    }

    fn resolve_batch(&self, batch: Batch) {
        let env = self.env;
        // SAFETY: plain napi calls on the driver's env, on its JS thread.
        unsafe {
            let mut data = ptr::null_mut();
            let mut ab = ptr::null_mut();
            let bytes = batch.results.len() * 4;
            sys::napi_create_arraybuffer(env, bytes, &mut data, &mut ab);
            if !data.is_null() {
                ptr::copy_nonoverlapping(batch.results.as_ptr().cast::<u8>(), data.cast(), bytes);
            }
            let mut arr = ptr::null_mut();
            sys::napi_create_typedarray(
                env,
                sys::TypedarrayType::int32_array,
                batch.results.len(),
                ab,
                0,
                &mut arr,
            );
            sys::napi_resolve_deferred(env, batch.deferred, arr);
        }
    }

    /// Keeps the loop alive exactly while operations are in flight.
    pub fn update_ref(&self) {
        let want = self.ring.in_flight() > 0 && !self.torn_down.get();
        if want != self.reffed.get() {
            if let Some(uv) = uv::uv() {
                // SAFETY: the poll handle is live until teardown, which
                // unrefs first (want == false).
                unsafe {
                    if want {
                        (uv.ref_)(self.poll.get())
                    } else {
                        (uv.unref)(self.poll.get())
                    }
                };
            }
            self.reffed.set(want);
        }
    }

    /// Submit, reap, settle, repeat, until nothing is left to do.
    ///
    /// While it runs, the kernel's eventfd signal is off (where the kernel
    /// flags deferred work): every completion of this round trip is reaped
    /// here, and a signal would only wake the loop again for nothing. Once
    /// the signal is back on, whatever arrived meanwhile is looked for
    /// (`has_work`, shared memory only), so nothing waits for a wake-up that
    /// never comes. The last round enters the kernel only if there is
    /// something to submit or deferred work to run.
    fn drive(&self) {
        let gated = self.ring.features().taskrun_flag;
        self.ring.set_eventfd_enabled(false);
        let mut rounds = 0;
        let mut settled = false;
        loop {
            if self.torn_down.get() {
                break;
            }
            if rounds == MAX_ROUNDS {
                // Leave the rest to the next loop iteration, after the other
                // handles had their turn.
                self.ring.set_eventfd_enabled(true);
                if gated && self.ring.has_work() {
                    self.ring.signal_eventfd();
                }
                break;
            }
            rounds += 1;
            // A failing enter leaves the queued entries for the next round;
            // their operations are still tracked and settled on completion.
            let _ = self.ring.submit();
            let mut done = std::mem::take(&mut *self.scratch.borrow_mut());
            self.ring.reap(&mut done);
            if done.is_empty() {
                *self.scratch.borrow_mut() = done;
                if !gated {
                    break;
                }
                if self.spin() {
                    continue;
                }
                self.ring.set_eventfd_enabled(true);
                if self.ring.has_work() {
                    self.ring.set_eventfd_enabled(false);
                    continue;
                }
                break;
            }
            *self.scratch.borrow_mut() = done;
            self.settle_in_callback();
            self.scratch.borrow_mut().clear();
            settled = true;
        }
        if settled {
            // The reactions may have queued work on other rings whose
            // prepare handle already ran in this loop iteration.
            thread_rings::wake_others(self);
        }
        self.update_ref();
        self.maybe_teardown();
    }

    /// Busy polling (`busy_poll_us` > 0, operations in flight): polls the
    /// ring's shared memory (yielding the CPU between looks) until a completion or deferred work shows up, or
    /// the time is over. Returns whether something showed up.
    fn spin(&self) -> bool {
        let us = self.busy_poll_us.get();
        if us == 0 || self.ring.in_flight() == 0 {
            return false;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_micros(u64::from(us));
        loop {
            if self.ring.has_work() {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            // Yields rather than spins in place: where the peer (or anything
            // else) waits for this CPU, it runs, instead of the spin
            // delaying the very reply it waits for.
            std::thread::yield_now();
        }
    }

    /// Runs `settle_callback` through `napi_make_callback`: Node enters the
    /// JS context around it and, when it returns, runs promise reactions and
    /// `process.nextTick` callbacks, which may queue the next operations.
    fn settle_in_callback(&self) {
        let env = self.env;
        let mut hscope = ptr::null_mut();
        // SAFETY: called from a libuv callback on the driver's JS thread, with
        // no JS on the stack; the handle scope is closed below.
        unsafe {
            sys::napi_open_handle_scope(env, &mut hscope);
            let (mut recv, mut func, mut result) =
                (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
            sys::napi_get_reference_value(env, self.resource, &mut recv);
            sys::napi_get_reference_value(env, self.settle_fn, &mut func);
            let status = sys::napi_make_callback(
                env,
                ptr::null_mut(),
                recv,
                func,
                0,
                ptr::null(),
                &mut result,
            );
            if status == sys::Status::napi_pending_exception {
                // An exception escaped a nextTick callback: report it as
                // uncaught, as Node does for its own callbacks.
                let mut err = ptr::null_mut();
                sys::napi_get_and_clear_last_exception(env, &mut err);
                sys::napi_fatal_exception(env, err);
            }
            sys::napi_close_handle_scope(env, hscope);
        }
    }

    /// Settles the JS side of `done` (JS context entered: from
    /// `settle_callback` or from a JS call such as `close()`).
    pub fn settle(&self, done: &[zcio::Completion]) {
        let env = self.env;
        let mut hscope = ptr::null_mut();
        // SAFETY: called on the driver's JS thread; closed below.
        unsafe { sys::napi_open_handle_scope(env, &mut hscope) };
        let mut manual_added = false;
        for c in done {
            let waiter = {
                let mut waiters = self.waiters.borrow_mut();
                match waiters.get_mut(c.slot() as usize) {
                    // More completions follow: the layer's handler stays.
                    Some(Waiter::Js) if c.more() => Waiter::Js,
                    Some(w) => std::mem::replace(w, Waiter::Empty),
                    None => Waiter::Empty,
                }
            };
            match waiter {
                Waiter::Empty => {}
                Waiter::Js => self.js_backlog.borrow_mut().push_back([
                    c.slot() as i32,
                    c.result,
                    c.flags as i32,
                    c.offset as i32,
                ]),
                Waiter::Batch { id, pos } => {
                    if let Some(batch) = self.batch_result(id, pos, c.result) {
                        self.resolve_batch(batch);
                    }
                }
                Waiter::Manual => {
                    self.manual.borrow_mut().push(*c);
                    self.manual_in_flight
                        .set(self.manual_in_flight.get().saturating_sub(1));
                    manual_added = true;
                }
            }
        }
        if manual_added {
            self.wake_manual_waiters();
        }
        self.deliver_js();
        // SAFETY: closes the scope opened above.
        unsafe { sys::napi_close_handle_scope(env, hscope) };
    }

    /// Hands the backlog of JS completions to the layer, `JS_CHUNK` at a time
    /// (JS context entered). A delivery that starts while the layer's settle
    /// function runs (it called `close()`) only appends to the backlog, which
    /// the outer loop drains. An exception thrown by the settle function does
    /// not stop the delivery; the first one is rethrown at the end.
    fn deliver_js(&self) {
        if self.js_settling.get() || self.js_backlog.borrow().is_empty() {
            return;
        }
        self.js_settling.set(true);
        let env = self.env;
        let mut first_error: sys::napi_value = ptr::null_mut();
        loop {
            let n = {
                let mut backlog = self.js_backlog.borrow_mut();
                let n = backlog.len().min(JS_CHUNK);
                for (k, quad) in backlog.drain(..n).enumerate() {
                    for (i, v) in quad.into_iter().enumerate() {
                        self.js_cq[JS_QUAD * k + i].set(v);
                    }
                }
                n
            };
            if n == 0 {
                break;
            }
            // SAFETY: napi calls on the driver's env, on its JS thread, with
            // JS context entered (the caller's contract); values are local.
            unsafe {
                let (mut recv, mut func, mut arg, mut result) = (
                    ptr::null_mut(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                );
                sys::napi_get_undefined(env, &mut recv);
                sys::napi_get_reference_value(env, self.js_settle, &mut func);
                sys::napi_create_uint32(env, n as u32, &mut arg);
                let status = sys::napi_call_function(env, recv, func, 1, &arg, &mut result);
                if status == sys::Status::napi_pending_exception {
                    let mut err = ptr::null_mut();
                    sys::napi_get_and_clear_last_exception(env, &mut err);
                    if first_error.is_null() {
                        first_error = err;
                    }
                }
            }
        }
        self.js_settling.set(false);
        if !first_error.is_null() {
            // SAFETY: rethrows a value of this env.
            unsafe { sys::napi_throw(env, first_error) };
        }
    }

    /// Queues a promise of `completions()`; resolves at once if possible.
    /// Several calls wait in order: each gets the completions reaped after
    /// the previous one was resolved.
    pub fn wait_manual(&self, deferred: sys::napi_deferred) {
        self.manual_waiters.borrow_mut().push_back(deferred);
        self.wake_manual_waiters();
    }

    /// Resolves waiting `completions()` calls: the oldest with what was
    /// reaped, and any with `[]` once no low-level operation is in flight.
    fn wake_manual_waiters(&self) {
        loop {
            let ready = !self.manual.borrow().is_empty() || self.manual_in_flight.get() == 0;
            if !ready {
                return;
            }
            let Some(d) = self.manual_waiters.borrow_mut().pop_front() else {
                return;
            };
            let arr = crate::js_ring::take_completions(self);
            // SAFETY: resolving a deferred we own on the JS thread.
            unsafe { sys::napi_resolve_deferred(self.env, d, arr) };
        }
    }

    /// Closes the ring: cancels and settles what is in flight, detaches every
    /// view of every pool, and releases the loop handles.
    ///
    /// The loop handles go first: libuv stops watching the eventfd before
    /// the ring closes it, so it never touches the number once the kernel
    /// reuses it for another file.
    pub fn close(&self, in_js: bool) -> Result<(), zcio::Error> {
        self.teardown();
        let mut done = Vec::new();
        let res = self.ring.close(&mut done);
        if in_js {
            self.settle(&done);
            self.manual_in_flight.set(0);
            self.wake_manual_waiters();
            for pool in self.pools.borrow_mut().drain(..) {
                if let Some(pool) = pool.upgrade() {
                    pool.detach_views(self.env);
                }
            }
            for r in self.orphan_views.borrow_mut().drain(..) {
                // SAFETY: a reference of this env, made by the pool's drop.
                unsafe { crate::js_pool::detach_and_delete(self.env, r) };
            }
        }
        res
    }

    /// Keeps weak references to the views of a pool collected before its
    /// ring closed (see `orphan_views`); forgets collected ones as it goes.
    pub fn adopt_views(&self, refs: impl Iterator<Item = sys::napi_ref>) {
        let env = self.env;
        let mut orphans = self.orphan_views.borrow_mut();
        for r in refs {
            if orphans.len() >= 64 && orphans.len().is_power_of_two() {
                orphans.retain(|r| {
                    let mut v = ptr::null_mut();
                    // SAFETY: references of this env; a collected target
                    // reads as null and its reference is deleted.
                    unsafe {
                        sys::napi_get_reference_value(env, *r, &mut v);
                        if v.is_null() {
                            sys::napi_delete_reference(env, *r);
                        }
                    }
                    !v.is_null()
                });
            }
            let mut count = 0;
            // SAFETY: makes the reference weak, so the view can be collected.
            unsafe { sys::napi_reference_unref(env, r, &mut count) };
            orphans.push(r);
        }
    }

    /// Releases the loop handles once nobody can queue operations any more
    /// (no JS object left) and nothing is in flight.
    pub fn maybe_teardown(&self) {
        if self.js_owners.get() == 0 && self.ring.in_flight() == 0 && !self.torn_down.get() {
            let _ = self.close(false);
        }
    }

    fn teardown(&self) {
        if self.torn_down.replace(true) {
            return;
        }
        thread_rings::unregister(self);
        self.update_ref();
        let Some(uv) = uv::uv() else { return };
        // SAFETY: the handles are live (not yet closed: `torn_down` guards
        // this block); `on_close` frees them and drops their driver reference.
        unsafe {
            if self.hook_added.replace(false) {
                sys::napi_remove_env_cleanup_hook(
                    self.env,
                    Some(on_env_cleanup),
                    self as *const Driver as *mut c_void,
                );
            }
            (uv.poll_stop)(self.poll.get());
            (uv.prepare_stop)(self.prepare.get());
            (uv.close)(self.poll.get(), on_close);
            (uv.close)(self.prepare.get(), on_close);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.env_gone.get() {
            return; // the env frees its references itself
        }
        // SAFETY: deleting references needs no JS context; the last driver
        // reference goes from a uv close callback on the JS thread.
        unsafe {
            sys::napi_delete_reference(self.env, self.settle_fn);
            sys::napi_delete_reference(self.env, self.resource);
            sys::napi_delete_reference(self.env, self.js_settle);
            for r in self.orphan_views.borrow_mut().drain(..) {
                sys::napi_delete_reference(self.env, r);
            }
        }
    }
}

unsafe extern "C" fn settle_callback(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let mut data = ptr::null_mut();
    // SAFETY: reads the function's data pointer, set to the driver in `start`;
    // `drive` holds a strong reference for the duration of this call.
    unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            &mut data,
        );
        let driver = &*(data as *const Driver);
        let done = std::mem::take(&mut *driver.scratch.borrow_mut());
        driver.settle(&done);
        *driver.scratch.borrow_mut() = done;
    }
    ptr::null_mut()
}

/// Borrows the driver a handle points at.
///
/// # Safety
///
/// `handle` is a live poll or prepare handle set up by `Driver::start`.
unsafe fn driver_of(handle: Handle) -> Rc<Driver> {
    // SAFETY: `data` holds a strong reference made by Rc::into_raw; take a
    // new strong reference without consuming that one.
    unsafe {
        let p = uv::data(handle) as *const Driver;
        Rc::increment_strong_count(p);
        Rc::from_raw(p)
    }
}

unsafe extern "C" fn on_poll(handle: Handle, _status: i32, _events: i32) {
    // SAFETY: libuv passes our live poll handle.
    let driver = unsafe { driver_of(handle) };
    driver.ring.clear_eventfd();
    driver.drive();
}

unsafe extern "C" fn on_prepare(handle: Handle) {
    // SAFETY: libuv passes our live prepare handle.
    let driver = unsafe { driver_of(handle) };
    if driver.ring.pending() > 0 {
        driver.drive();
    }
}

unsafe extern "C" fn on_close(handle: Handle) {
    // SAFETY: libuv is done with the handle; `data` holds the strong
    // reference made in `start`, consumed here exactly once.
    unsafe {
        drop(Rc::from_raw(uv::data(handle) as *const Driver));
        uv::free_handle(handle);
    }
}

unsafe extern "C" fn on_env_cleanup(arg: *mut c_void) {
    // SAFETY: the hook is removed in `teardown`, so while it is registered the
    // handles (and their references) keep the driver alive.
    let driver = unsafe { &*(arg as *const Driver) };
    driver.env_gone.set(true);
    // JS can't run any more: cancel and wait, leave promises unsettled.
    let _ = driver.close(false);
}

/// Handles allocated for a driver that libuv has not seen yet: freed on drop
/// unless handed over.
struct FreshHandles {
    poll: Cell<Handle>,
    prepare: Cell<Handle>,
}

impl FreshHandles {
    /// The poll handle now belongs to libuv.
    fn forget_poll(&self) {
        self.poll.set(ptr::null_mut());
    }

    /// Both handles now belong to libuv.
    fn forget(self) {
        self.poll.set(ptr::null_mut());
        self.prepare.set(ptr::null_mut());
    }
}

impl Drop for FreshHandles {
    fn drop(&mut self) {
        // SAFETY: handles libuv never initialised (or null).
        unsafe {
            uv::free_handle(self.poll.get());
            uv::free_handle(self.prepare.get());
        }
    }
}
