//! `Ring` for JavaScript.

use std::rc::Rc;

use napi::bindgen_prelude::*;
use napi::{sys, JsValue};
use napi_derive::napi;

use crate::args::{MAX_BUSY_POLL_US, MAX_RING_ENTRIES, MAX_U32, MAX_WORKERS};
use crate::driver::{Completion, Driver, StartError};
use crate::error::{int_arg, throw_code, OrThrow};
use crate::raw::external;
use crate::values::{external_or_throw, new_promise, published};

/// The setup flags the kernel accepted.
#[napi(object)]
pub struct RingFeatures {
    /// `IORING_SETUP_SINGLE_ISSUER` (Linux 6.0).
    pub single_issuer: bool,
    /// `IORING_SETUP_DEFER_TASKRUN` (Linux 6.1).
    pub defer_taskrun: bool,
    /// `IORING_SETUP_COOP_TASKRUN` (Linux 5.19).
    pub coop_taskrun: bool,
    /// `IORING_SETUP_TASKRUN_FLAG` (Linux 5.19): the loop wakes once per
    /// batch of completions, and `busyPoll` works on io_uring.
    pub taskrun_flag: bool,
    /// `IORING_SETUP_SQPOLL` (a kernel submission thread).
    pub sqpoll: bool,
}

/// A ring of operations on io_uring (or on epoll and a thread pool, see
/// `backend`) driven by the Node event loop of the thread that created it.
///
/// Completions are reaped when the ring's fd wakes the loop, and all of
/// them settle in one batch; everything queued during one JS turn reaches the
/// kernel in one `io_uring_enter`. The ring keeps the process alive only while
/// operations are in flight. Throws `ERR_ZCIO_URING_UNAVAILABLE` when
/// io_uring is asked for and is disabled, blocked by seccomp or missing (see
/// `probe()`).
#[napi]
pub struct Ring {
    driver: Rc<Driver>,
}

impl Ring {
    pub(crate) fn driver(&self) -> &Rc<Driver> {
        &self.driver
    }
}

#[napi]
impl Ring {
    /// Sets up the ring (`SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN` where
    /// the kernel accepts them, falling back otherwise) on `backend`
    /// (`auto`, `io_uring` or `epoll`; `ZCIO_BACKEND` overrides it) with
    /// `workers` threads for blocking file I/O on epoll. `sqpollIdleMs < 0`:
    /// no kernel submission thread (with one on epoll: `ERR_ZCIO_UNSUPPORTED`).
    /// `settle(n)` is called once per round with `n` `(slot, result, flags,
    /// offset)` quads in `completionArray()`, for the operations the layer
    /// queued.
    #[napi(
        constructor,
        ts_args_type = "entries: number, sqpollIdleMs: number, backend: 'auto' | 'io_uring' | 'epoll', workers: number, settle: (n: number) => void"
    )]
    pub fn new(
        env: Env,
        entries: f64,
        sqpoll_idle_ms: f64,
        backend: String,
        workers: f64,
        settle: Unknown,
    ) -> Result<Self> {
        let entries = int_arg(&env, "entries", entries, MAX_RING_ENTRIES, false)? as u32;
        let workers = int_arg(&env, "workers", workers, MAX_WORKERS, true)? as u32;
        if workers == 0 {
            return Err(zcio::Error::OutOfRange {
                name: "workers",
                reason: format!("it must be an integer >= 1 and <= {MAX_WORKERS}. Received 0"),
            })
            .or_throw(&env);
        }
        let opts = zcio::RingOptions {
            entries,
            sqpoll_idle_ms: if sqpoll_idle_ms < 0.0 {
                None
            } else {
                Some(int_arg(&env, "sqpoll", sqpoll_idle_ms, MAX_U32, true)? as u32)
            },
            backend: zcio::BackendChoice::parse(&backend, "backend").or_throw(&env)?,
            workers,
        };
        if settle.get_type()? != ValueType::Function {
            return Err(throw_code(
                &env,
                "ERR_INVALID_ARG_TYPE",
                "settle must be a function",
            ));
        }
        let ring = zcio::Ring::new(opts).or_throw(&env)?;
        let settle = settle.raw();
        let driver = Driver::start(env.raw(), ring, settle).map_err(|e| match e {
            StartError::NoEventLoop => throw_code(
                &env,
                "ERR_ZCIO_NO_EVENT_LOOP",
                "this runtime does not expose a libuv event loop to addons (zcio needs Node.js)",
            ),
            StartError::Napi => throw_code(
                &env,
                "ERR_ZCIO_NAPI",
                "setting up the ring's loop handles failed",
            ),
        })?;
        driver.js_owners.set(1);
        Ok(Ring { driver })
    }

    /// The `Int32Array` of `(slot, result, flags, offset)` quads read by `settle(n)`.
    #[napi(ts_return_type = "Int32Array")]
    pub fn completion_array(&self, env: Env) -> Result<Unknown<'_>> {
        let cq = self.driver.quads();
        let data = cq.as_ptr() as *mut std::ffi::c_void;
        let len = cq.len();
        // SAFETY: the cells stay valid while the boxed `Rc` lives.
        let v = unsafe {
            external::typed_array(
                env.raw(),
                sys::TypedarrayType::int32_array,
                data,
                len,
                4,
                Box::new(cq),
            )
        };
        external_or_throw(&env, v)
    }

    /// The ring's counts, updated in place (`zcio::ring_counts` order:
    /// inFlight, pending, closed).
    #[napi(ts_return_type = "Float64Array")]
    pub fn counts(&self, env: Env) -> Result<Unknown<'_>> {
        published(&env, self.driver.ring.published(), false)
    }

    /// Hands queued operations to the kernel now (normally done before the
    /// event loop blocks). Returns how many were submitted.
    #[napi]
    pub fn submit(&self, env: Env) -> Result<u32> {
        self.driver.ring.submit().or_throw(&env)
    }

    /// Makes room for `n` queued entries (a chain of linked sends).
    #[napi]
    pub fn reserve(&self, env: Env, n: u32) -> Result<()> {
        self.driver.ring.reserve(n).or_throw(&env)
    }

    /// Cancels the operation in `slot`, if any; returns whether there was one.
    #[napi]
    pub fn cancel_slot(&self, env: Env, slot: u32) -> Result<bool> {
        self.driver.ring.cancel_slot(slot).or_throw(&env)
    }

    /// Drains the completions of low-level submissions reaped so far.
    #[napi(ts_return_type = "Completion[]")]
    pub fn take_completions(&self, env: Env) -> Unknown<'_> {
        // SAFETY: the array is a value of this env.
        unsafe { Unknown::from_raw_unchecked(env.raw(), self.driver.take_completions()) }
    }

    /// Resolves with the completions of low-level submissions as soon as at
    /// least one is available (at once, with `[]`, when none is in flight).
    #[napi(ts_return_type = "Promise<Completion[]>")]
    pub fn completions(&self, env: Env) -> Result<PromiseRaw<'_, Vec<Completion>>> {
        let (deferred, promise) = new_promise(&env)?;
        self.driver.wait_manual(deferred);
        Ok(PromiseRaw::new(env.raw(), promise))
    }

    /// Microseconds the driver spins for the next completion, with operations
    /// in flight, before it lets the event loop sleep (0: never).
    #[napi(getter)]
    pub fn busy_poll(&self) -> u32 {
        self.driver.busy_poll_us.get()
    }

    /// Sets `busyPoll` (0 to 100000 microseconds).
    #[napi]
    pub fn set_busy_poll(&self, env: Env, us: f64) -> Result<()> {
        let us = int_arg(&env, "busyPoll", us, MAX_BUSY_POLL_US, true)? as u32;
        self.driver.busy_poll_us.set(us);
        Ok(())
    }

    /// Whether operations in flight keep the event loop alive (true unless
    /// `setRef(false)`).
    #[napi(getter)]
    pub fn has_ref(&self) -> bool {
        self.driver.holds_loop()
    }

    /// `false`: the ring's operations in flight no longer keep the event loop
    /// alive (as `unref()` of a timer); `true` restores the default.
    #[napi]
    pub fn set_ref(&self, on: bool) {
        self.driver.set_holds_loop(on);
    }

    /// The backend the ring runs on.
    #[napi(getter, ts_return_type = "'io_uring' | 'epoll'")]
    pub fn backend(&self) -> &'static str {
        self.driver.ring.backend().name()
    }

    /// The setup flags the kernel accepted.
    #[napi(getter)]
    pub fn features(&self) -> RingFeatures {
        let f = self.driver.ring.features();
        RingFeatures {
            single_issuer: f.single_issuer,
            defer_taskrun: f.defer_taskrun,
            coop_taskrun: f.coop_taskrun,
            taskrun_flag: f.taskrun_flag,
            sqpoll: f.sqpoll,
        }
    }

    /// Refuses new operations, cancels those in flight (their promises reject
    /// with `ECANCELED`, or resolve if they finished first), closes every pool
    /// of the ring (their views get length 0) and frees the ring. Calling it
    /// twice is harmless.
    #[napi]
    pub fn close(&self, env: Env) -> Result<()> {
        if self.driver.ring.is_closed() && self.driver.is_torn_down() {
            return Ok(());
        }
        self.driver.close(true).or_throw(&env)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        self.driver.js_owners.set(self.driver.js_owners.get() - 1);
        self.driver.maybe_teardown();
    }
}
