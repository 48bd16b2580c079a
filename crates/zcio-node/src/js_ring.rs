//! `Ring` for JavaScript.

use std::ptr;
use std::rc::Rc;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::driver::{Driver, StartError};
use crate::error::{throw_code, OrThrow};
use crate::js_pool::new_promise;

/// Options of `new Ring()`.
#[napi(object)]
pub struct RingOptions {
    /// Submission-queue entries (rounded up to a power of two; default 256).
    pub entries: Option<u32>,
    /// Use a kernel submission thread (`IORING_SETUP_SQPOLL`): `true` for a
    /// 1000 ms idle time, or the idle time in milliseconds. Costs a kernel
    /// thread that spins while busy.
    pub sqpoll: Option<Either<bool, u32>>,
}

/// The setup flags the kernel accepted.
#[napi(object)]
pub struct RingFeatures {
    pub single_issuer: bool,
    pub defer_taskrun: bool,
    pub coop_taskrun: bool,
    pub sqpoll: bool,
}

/// A completion reaped for a low-level `submitReadFixed`/`submitWriteFixed`.
#[napi(object)]
pub struct Completion {
    /// The value the submit call returned.
    pub user_data: BigInt,
    /// Bytes transferred, or `-errno`.
    pub result: i32,
    /// CQE flags.
    pub flags: u32,
    /// The pool buffer the operation used.
    pub buffer: u32,
    /// `'read'` or `'write'`.
    pub op: String,
}

/// An io_uring instance driven by the Node event loop of the thread that
/// created it.
///
/// Completions are reaped when the ring's eventfd wakes the loop, and all of
/// them settle in one batch; everything queued during one JS turn reaches the
/// kernel in one `io_uring_enter`. The ring keeps the process alive only while
/// operations are in flight. Throws `ERR_ZCIO_URING_UNAVAILABLE` when
/// io_uring is disabled, blocked by seccomp or missing (see `probe()`).
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
    /// the kernel accepts them, falling back otherwise).
    #[napi(constructor)]
    pub fn new(env: Env, options: Option<RingOptions>) -> Result<Self> {
        let mut opts = zcio::RingOptions::default();
        if let Some(o) = options {
            if let Some(e) = o.entries {
                opts.entries = e;
            }
            opts.sqpoll_idle_ms = match o.sqpoll {
                Some(Either::A(true)) => Some(1000),
                Some(Either::B(ms)) => Some(ms),
                _ => None,
            };
        }
        let ring = zcio::Ring::new(opts).or_throw(&env)?;
        let driver = Driver::start(env.raw(), ring).map_err(|e| match e {
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

    /// Hands queued operations to the kernel now (normally done before the
    /// event loop blocks). Returns how many were submitted.
    #[napi]
    pub fn submit(&self, env: Env) -> Result<u32> {
        self.driver.ring.submit().or_throw(&env)
    }

    /// Drains the completions of low-level submissions reaped so far.
    #[napi(ts_return_type = "Completion[]")]
    pub fn take_completions(&self, env: Env) -> Unknown<'_> {
        // SAFETY: the array is a value of this env.
        unsafe { Unknown::from_raw_unchecked(env.raw(), take_completions(&self.driver)) }
    }

    /// Resolves with the completions of low-level submissions as soon as at
    /// least one is available (at once, with `[]`, when none is in flight).
    #[napi(ts_return_type = "Promise<Completion[]>")]
    pub fn completions(&self, env: Env) -> PromiseRaw<'_, Vec<Completion>> {
        let (deferred, promise) = new_promise(&env);
        self.driver.wait_manual(deferred);
        PromiseRaw::new(env.raw(), promise)
    }

    /// Operations queued or in flight.
    #[napi(getter)]
    pub fn in_flight(&self) -> u32 {
        self.driver.ring.in_flight()
    }

    /// Whether `close()` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.driver.ring.is_closed()
    }

    /// The setup flags the kernel accepted.
    #[napi(getter)]
    pub fn features(&self) -> RingFeatures {
        let f = self.driver.ring.features();
        RingFeatures {
            single_issuer: f.single_issuer,
            defer_taskrun: f.defer_taskrun,
            coop_taskrun: f.coop_taskrun,
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

/// `[]` on `env`.
pub fn empty_array(env: sys::napi_env) -> sys::napi_value {
    let mut arr = ptr::null_mut();
    // SAFETY: plain napi call with a local out-pointer.
    unsafe { sys::napi_create_array(env, &mut arr) };
    arr
}

/// Moves the queued low-level completions into a JS array.
pub fn take_completions(driver: &Driver) -> sys::napi_value {
    let env = driver.env();
    let done = std::mem::take(&mut *driver.manual.borrow_mut());
    let arr = empty_array(env);
    for (k, c) in done.iter().enumerate() {
        let item = Completion {
            user_data: BigInt::from(c.user_data),
            result: c.result,
            flags: c.flags,
            buffer: c.buffer,
            op: c.kind.syscall().to_owned(),
        };
        // SAFETY: converting a plain object on the current env and storing it.
        unsafe {
            if let Ok(v) = Completion::to_napi_value(env, item) {
                sys::napi_set_element(env, arr, k as u32, v);
            }
        }
    }
    arr
}
