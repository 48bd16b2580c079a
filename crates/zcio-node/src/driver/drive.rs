//! The driver of one ring: what it keeps, the submit → reap → settle loop
//! run on each wake-up, and the close of the ring.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use napi::sys;

use super::deliver::Delivery;
use super::manual::Manual;
use super::thread_rings::{self, Wake};
use super::waiters::{Waiter, Waiters};
use crate::raw::napi::{self as raw, CleanupHook, HandleScope};
use crate::raw::uv::LoopHandle;
use crate::views::{ViewSet, Views};

/// Rounds of submit → reap → settle in one wake-up before yielding to the loop.
const MAX_ROUNDS: usize = 32;

/// Fixed-buffer transfers done in the call (no round through the ring) per
/// drive of the ring: a JS loop that awaits one such read after another
/// gets its promises settled at once; after this many the next one is
/// queued and the drive yields to the loop, so timers and other I/O run
/// between such bursts.
const INLINE_TURNS: u32 = 64;

/// What keeps a running driver on the loop; dropped (in field order) at
/// teardown.
pub struct LoopHandles {
    /// The env cleanup hook, which closes the ring when the env goes.
    pub hook: Option<CleanupHook>,
    /// Watches the ring's eventfd.
    pub poll: LoopHandle<Driver>,
    /// Submits what JS queued before the loop blocks (held only to be
    /// closed, by its drop).
    pub _prepare: LoopHandle<Driver>,
}

/// A ring and everything that settles its operations on the loop of the JS
/// thread that made it.
pub struct Driver {
    /// The core ring.
    pub ring: zcio::Ring,
    env: sys::napi_env,
    /// Set once the driver runs; taken at teardown.
    pub(super) handles: RefCell<Option<LoopHandles>>,
    /// Receiver object for `napi_make_callback`.
    resource: sys::napi_ref,
    /// Native function run through `napi_make_callback` to settle a batch:
    /// Node enters the context around it and runs microtasks after it.
    pub(super) settle_fn: Cell<sys::napi_ref>,
    /// The env is being torn down: no more napi calls.
    pub(super) env_gone: Cell<bool>,
    reffed: Cell<bool>,
    /// Whether operations in flight keep the loop alive (`ring.unref()` clears it).
    holds_loop: Cell<bool>,
    waiters: Waiters,
    manual: Manual,
    views: Views,
    /// JS objects (the ring and its pools) that still reference the driver.
    pub js_owners: Cell<u32>,
    pub(super) torn_down: Cell<bool>,
    scratch: RefCell<Vec<zcio::Completion>>,
    delivery: Delivery,
    /// How long `drive` spins for the next completion before it lets the
    /// loop sleep, in microseconds (0: never).
    pub busy_poll_us: Cell<u32>,
    /// Transfers that may still be done in the call before the next drive.
    inline_turns: Cell<u32>,
}

impl Driver {
    /// A driver not yet on the loop (torn down until `start` makes it run).
    pub(super) fn new(
        env: sys::napi_env,
        ring: zcio::Ring,
        resource: sys::napi_ref,
        delivery: Delivery,
    ) -> Driver {
        Driver {
            ring,
            env,
            handles: RefCell::default(),
            resource,
            settle_fn: Cell::new(std::ptr::null_mut()),
            env_gone: Cell::new(false),
            reffed: Cell::new(false),
            holds_loop: Cell::new(true),
            waiters: Waiters::default(),
            manual: Manual::default(),
            views: Views::default(),
            js_owners: Cell::new(0),
            // Until the handles are live, nothing may be closed through libuv.
            torn_down: Cell::new(true),
            scratch: RefCell::default(),
            delivery,
            busy_poll_us: Cell::new(0),
            inline_turns: Cell::new(INLINE_TURNS),
        }
    }

    /// The env of the ring's JS thread.
    pub fn env(&self) -> sys::napi_env {
        self.env
    }

    /// Whether the env is being torn down (no napi calls allowed).
    pub fn env_gone(&self) -> bool {
        self.env_gone.get()
    }

    /// Whether the loop handles are gone (or never came).
    pub fn is_torn_down(&self) -> bool {
        self.torn_down.get()
    }

    /// The cells of the `(slot, result, flags, offset)` quads shared with
    /// the layer.
    pub fn quads(&self) -> Rc<[Cell<i32>]> {
        self.delivery.quads.clone()
    }

    /// Remembers a pool's views so that closing the ring detaches them.
    pub fn add_views(&self, views: &Rc<ViewSet>) {
        self.views.add(views);
    }

    /// Keeps weak references to the views of a pool collected before its
    /// ring closed; closing the ring detaches those still alive.
    pub fn adopt_views(&self, refs: impl Iterator<Item = sys::napi_ref>) {
        self.views.adopt(self.env, refs);
    }

    /// Whether a transfer may be done in the call that makes it (see
    /// [`INLINE_TURNS`]).
    pub fn inline_allowed(&self) -> bool {
        self.inline_turns.get() > 0
    }

    /// A transfer was done in the call: one turn less until the next drive.
    pub fn spent_inline_turn(&self) {
        self.inline_turns
            .set(self.inline_turns.get().saturating_sub(1));
    }

    /// Records who waits for the operation `user_data`.
    pub fn track(&self, user_data: u64, waiter: Waiter) {
        if matches!(waiter, Waiter::Manual) {
            self.manual.started();
        }
        self.waiters.track(user_data as u32 as usize, waiter);
    }

    /// Starts a batch of `n` operations settled together.
    pub fn new_batch(&self, deferred: sys::napi_deferred, n: u32) -> u32 {
        self.waiters.new_batch(deferred, n)
    }

    /// Records a result for a batch element that never reached the kernel.
    pub fn batch_fail(&self, id: u32, pos: u32, res: i32) {
        self.waiters.batch_result(self.env, id, pos, res);
    }

    /// Queues a promise of `completions()`; resolves at once if possible.
    pub fn wait_manual(&self, deferred: sys::napi_deferred) {
        self.manual.wait(self.env, deferred);
    }

    /// Moves the queued low-level completions into a JS array.
    pub fn take_completions(&self) -> sys::napi_value {
        self.manual.take(self.env)
    }

    /// Keeps the loop alive exactly while operations are in flight, unless
    /// the ring was told not to hold it.
    pub fn update_ref(&self) {
        let want = self.holds_loop.get() && self.ring.in_flight() > 0 && !self.torn_down.get();
        if want != self.reffed.get() {
            if let Some(h) = self.handles.borrow().as_ref() {
                h.poll.set_ref(want);
            }
            self.reffed.set(want);
        }
    }

    /// Whether operations in flight keep the loop alive.
    pub fn holds_loop(&self) -> bool {
        self.holds_loop.get()
    }

    /// Sets whether operations in flight keep the loop alive (the loop's
    /// reference is taken or dropped at once).
    pub fn set_holds_loop(&self, on: bool) {
        self.holds_loop.set(on);
        self.update_ref();
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
    pub(super) fn drive(&self) {
        let gated = self.ring.features().taskrun_flag;
        // Whether `has_work` is exact, so that a wake-up can be asked for
        // when a round is cut short: where the kernel flags deferred work,
        // and on epoll (queued ops, posted completions, a ready descriptor).
        let exact = gated || self.ring.backend() == zcio::BackendKind::Epoll;
        self.inline_turns.set(INLINE_TURNS);
        self.ring.set_eventfd_enabled(false);
        let mut rounds = 0;
        let mut settled = false;
        loop {
            if self.torn_down.get() {
                break;
            }
            if rounds == MAX_ROUNDS || self.inline_turns.get() == 0 {
                // Leave the rest to the next loop iteration, after the other
                // handles had their turn (also once JS has had its burst of
                // transfers done in the call).
                self.ring.set_eventfd_enabled(true);
                // The prepare handle has run in this loop iteration: without
                // a wake-up, ops queued by the last round would wait for an
                // unrelated event.
                if exact && self.ring.has_work() {
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
                if !exact {
                    break;
                }
                if self.spin() {
                    continue;
                }
                if !gated {
                    // On epoll the loop's poll of the descriptor sees what
                    // comes next; nothing was turned off to turn back on.
                    break;
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
            thread_rings::wake_others(self as *const Driver as *const ());
        }
        self.update_ref();
        self.maybe_teardown();
    }

    /// Busy polling (`busy_poll_us` > 0, operations in flight): polls the
    /// ring's shared memory (on epoll: the epoll instance, with a `poll(2)`
    /// that does not wait), yielding the CPU between looks, until a
    /// completion or deferred work shows up, or the time is over. Returns
    /// whether something showed up.
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

    /// Runs the settle function (which calls [`Driver::settle_reaped`])
    /// through `napi_make_callback`: Node enters the JS context around it
    /// and, when it returns, runs promise reactions and `process.nextTick`
    /// callbacks, which may queue the next operations. Called from a libuv
    /// callback on the driver's JS thread, with no JS on the stack.
    fn settle_in_callback(&self) {
        let env = self.env;
        let _scope = HandleScope::open(env);
        let call = || -> raw::Res<()> {
            let recv = raw::reference_value(env, self.resource)?;
            let func = raw::reference_value(env, self.settle_fn.get())?;
            let (Some(recv), Some(func)) = (recv, func) else {
                return Err(raw::Failed(sys::Status::napi_generic_failure));
            };
            raw::make_callback(env, recv, func).map(drop)
        };
        if let Err(e) = call() {
            if e.is_pending_exception() {
                // An exception escaped a nextTick callback: report it as
                // uncaught, as Node does for its own callbacks.
                if let Ok(err) = raw::take_exception(env) {
                    let _ = raw::fatal_exception(env, err);
                }
            }
        }
    }

    /// Settles what the current round reaped (from the settle function).
    pub(super) fn settle_reaped(&self) {
        let done = std::mem::take(&mut *self.scratch.borrow_mut());
        self.settle(&done);
        *self.scratch.borrow_mut() = done;
    }

    /// Settles the JS side of `done` (JS context entered: from the settle
    /// function or from a JS call such as `close()`).
    fn settle(&self, done: &[zcio::Completion]) {
        let env = self.env;
        // Without a scope (a dying env) the bookkeeping still happens.
        let _scope = HandleScope::open(env);
        let mut manual_added = false;
        for c in done {
            match self.waiters.take(c.slot() as usize, c.more()) {
                Waiter::Empty => {}
                Waiter::Js => self.delivery.push(c),
                Waiter::Batch { id, pos } => self.waiters.batch_result(env, id, pos, c.result),
                Waiter::Manual => {
                    self.manual.push(*c);
                    manual_added = true;
                }
            }
        }
        if manual_added {
            self.manual.wake(env);
        }
        self.delivery.deliver(env);
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
            self.manual.none_in_flight();
            self.manual.wake(self.env);
            self.views.detach_all(self.env);
        }
        res
    }

    /// Releases the loop handles once nobody can queue operations any more
    /// (no JS object left) and nothing is in flight.
    pub fn maybe_teardown(&self) {
        if self.js_owners.get() == 0 && self.ring.in_flight() == 0 && !self.torn_down.get() {
            let _ = self.close(false);
        }
    }

    /// Unregisters the driver and drops its loop handles (libuv closes them
    /// and drops the references they hold).
    pub(super) fn teardown(&self) {
        if self.torn_down.replace(true) {
            return;
        }
        thread_rings::unregister(self as *const Driver as *const ());
        self.update_ref();
        let handles = self.handles.borrow_mut().take();
        drop(handles);
    }
}

impl Wake for Driver {
    fn wake_if_queued(&self) {
        if self.ring.pending() > 0 && !self.is_torn_down() {
            self.ring.signal_eventfd();
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.env_gone.get() {
            return; // the env frees its references itself
        }
        // Deleting references needs no JS context; the last driver reference
        // goes from a uv close callback on the JS thread.
        let settle_fn = self.settle_fn.get();
        if !settle_fn.is_null() {
            let _ = raw::delete_reference(self.env, settle_fn);
        }
        let _ = raw::delete_reference(self.env, self.resource);
        self.delivery.release(self.env);
        self.views.release(self.env);
    }
}
