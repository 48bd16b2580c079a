//! `RegisteredBufferPool` for JavaScript: conversions, views and promises over
//! the core pool.

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;
use std::rc::Rc;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::driver::{Driver, Waiter};
use crate::error::{int_arg, throw, throw_code, OrThrow};
use crate::fast::{self, PoolCtx};
use crate::js_ring::{published, Ring};

/// The JS-facing state of a pool, shared with its ring's driver (which
/// detaches the views when the ring closes).
pub struct PoolState {
    pub core: zcio::RegisteredBufferPool,
    /// One `Uint8Array` per buffer, made on first use, over one external
    /// `ArrayBuffer` per buffer (so a view never reaches another buffer).
    views: RefCell<Vec<sys::napi_ref>>,
}

impl PoolState {
    /// The view of buffer `index` (created on first use).
    fn view(&self, env: &Env, index: u32) -> Result<sys::napi_value> {
        let raw = env.raw();
        let mut views = self.views.borrow_mut();
        let mut value = ptr::null_mut();
        let slot = &mut views[index as usize];
        if !slot.is_null() {
            // SAFETY: the reference is live (deleted only with the pool state).
            unsafe { sys::napi_get_reference_value(raw, *slot, &mut value) };
            return Ok(value);
        }
        let data = self.core.buffer_ptr(index).or_throw(env)?;
        let len = self.core.buffer_size();
        let hint = Box::into_raw(Box::new(self.core.region()));
        let mut ab = ptr::null_mut();
        // SAFETY: `data..data+len` lies in the pool's region, which the boxed
        // `Rc<Region>` hint keeps mapped until V8 finalizes the ArrayBuffer.
        let status = unsafe {
            sys::napi_create_external_arraybuffer(
                raw,
                data.cast(),
                len,
                Some(release_region),
                hint.cast(),
                &mut ab,
            )
        };
        if status != sys::Status::napi_ok {
            // SAFETY: the hint was not taken by napi; reclaim it.
            drop(unsafe { Box::from_raw(hint) });
            return Err(throw_code(
                env,
                "ERR_ZCIO_EXTERNAL_BUFFERS_UNSUPPORTED",
                "this runtime refuses external ArrayBuffers (Electron's V8 sandbox); \
                 zcio's zero-copy views can't work here",
            ));
        }
        // SAFETY: plain napi calls with local out-pointers.
        unsafe {
            sys::napi_create_typedarray(
                raw,
                sys::TypedarrayType::uint8_array,
                len,
                ab,
                0,
                &mut value,
            );
            sys::napi_create_reference(raw, value, 1, slot);
        }
        Ok(value)
    }

    /// Detaches every view handed out (their `byteLength` becomes 0) and
    /// drops the references to them.
    pub fn detach_views(&self, env: sys::napi_env) {
        for r in self.views.borrow_mut().iter_mut() {
            if !r.is_null() {
                // SAFETY: a live reference of this env to a view made in `view`.
                unsafe { detach_and_delete(env, *r) };
                *r = ptr::null_mut();
            }
        }
    }
}

unsafe extern "C" fn release_region(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the Box<Rc<Region>> leaked in `PoolState::view`,
    // reclaimed exactly once here.
    drop(unsafe { Box::from_raw(hint as *mut Rc<zcio::Region>) });
}

/// The most elements one batch call may queue: queueing is synchronous, and
/// a call must not hold the event loop for long (16384 elements take a few
/// milliseconds).
pub const MAX_BATCH: usize = 16384;

/// Page-aligned buffers registered once with a ring as io_uring fixed buffers
/// (the binding under the layer's `RegisteredBufferPool`).
#[napi]
pub struct RegisteredBufferPool {
    state: Rc<PoolState>,
    driver: Rc<Driver>,
}

impl RegisteredBufferPool {
    pub(crate) fn core(&self) -> &zcio::RegisteredBufferPool {
        &self.state.core
    }
}

#[napi]
impl RegisteredBufferPool {
    /// Allocates `bufferCount` buffers of `bufferSize` bytes and registers them.
    #[napi(constructor)]
    pub fn new(env: Env, ring: &Ring, buffer_size: f64, buffer_count: f64) -> Result<Self> {
        let size = int_arg(&env, "bufferSize", buffer_size, f64::from(u32::MAX), false)?;
        let count = int_arg(
            &env,
            "bufferCount",
            buffer_count,
            f64::from(u32::MAX),
            false,
        )?;
        let driver = ring.driver().clone();
        let core = zcio::RegisteredBufferPool::new(&driver.ring, size as usize, count as usize)
            .or_throw(&env)?;
        crate::send_memory::register_region(&core.region());
        let state = Rc::new(PoolState {
            views: RefCell::new(vec![ptr::null_mut(); core.total_count() as usize]),
            core,
        });
        driver.add_pool(&state);
        driver.js_owners.set(driver.js_owners.get() + 1);
        Ok(RegisteredBufferPool { state, driver })
    }

    /// `{ acquire, tryAcquire, release, readFixed, writeFixed }`: lean
    /// functions bound to this pool (see `fast.rs`). `tryAcquire` returns -1
    /// when no buffer is free; `readFixed`/`writeFixed` return the operation's
    /// slot, settled through the ring's `settle` function.
    #[napi(
        ts_return_type = "{ acquire(): number; tryAcquire(): number; release(index: number): void; readFixed(fd: number, index: number, position: number, length: number, bufferOffset?: number): number; writeFixed(fd: number, index: number, position: number, length: number, bufferOffset?: number): number }"
    )]
    pub fn fast_calls(&self, env: Env) -> Result<Unknown<'_>> {
        let ctx = Rc::new(PoolCtx {
            state: self.state.clone(),
            driver: self.driver.clone(),
        });
        match fast::make(env.raw(), &ctx) {
            // SAFETY: a value of this env.
            Some(v) => Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), v) }),
            None => Err(throw_code(
                &env,
                "ERR_ZCIO_NAPI",
                "creating the pool's functions failed",
            )),
        }
    }

    /// The pool's counts, updated in place (`zcio::pool_counts` order).
    #[napi(ts_return_type = "Float64Array")]
    pub fn counts(&self, env: Env) -> Result<Unknown<'_>> {
        published(&env, self.state.core.published(), false)
    }

    /// One state byte per buffer, updated in place (`zcio::buffer_state`:
    /// 0 free, 1 acquired, 2 in flight).
    #[napi(ts_return_type = "Uint8Array")]
    pub fn states(&self, env: Env) -> Result<Unknown<'_>> {
        published(&env, self.state.core.published(), true)
    }

    /// The `Uint8Array` over buffer `index` (one per buffer, made on first
    /// use). Throws `ERR_ZCIO_CLOSED` once the pool is closed.
    #[napi(ts_return_type = "Uint8Array")]
    pub fn view(&self, env: Env, index: f64) -> Result<Unknown<'_>> {
        let i = self.index(&env, index)?;
        if self.state.core.is_closed() {
            return Err(throw(&env, zcio::Error::Closed { what: "pool" }));
        }
        let view = self.state.view(&env, i)?;
        // SAFETY: `view` is a value of this env.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), view) })
    }

    /// Marks an acquired buffer in flight (lent out); `release` refuses it
    /// until `completeInFlight`.
    #[napi]
    pub fn mark_in_flight(&self, env: Env, index: f64) -> Result<()> {
        let i = self.index(&env, index)?;
        self.state.core.mark_in_flight(i).or_throw(&env)
    }

    /// Ends an in-flight mark.
    #[napi]
    pub fn complete_in_flight(&self, env: Env, index: f64) -> Result<()> {
        let i = self.index(&env, index)?;
        self.state.core.complete_in_flight(i).or_throw(&env)
    }

    fn index(&self, env: &Env, index: f64) -> Result<u32> {
        Ok(int_arg(env, "index", index, f64::from(u32::MAX), true)? as u32)
    }

    /// Low level: queues a READ_FIXED and returns its `userData`; the buffer
    /// stays in flight until `completeInFlight`.
    #[napi]
    pub fn submit_read_fixed(
        &self,
        env: Env,
        fd: f64,
        index: f64,
        position: f64,
        length: f64,
        buffer_offset: Option<f64>,
    ) -> Result<BigInt> {
        self.submit_manual(
            &env,
            false,
            [fd, index, position, length, buffer_offset.unwrap_or(0.0)],
        )
    }

    /// Low level: queues a WRITE_FIXED; as `submitReadFixed`.
    #[napi]
    pub fn submit_write_fixed(
        &self,
        env: Env,
        fd: f64,
        index: f64,
        position: f64,
        length: f64,
        buffer_offset: Option<f64>,
    ) -> Result<BigInt> {
        self.submit_manual(
            &env,
            true,
            [fd, index, position, length, buffer_offset.unwrap_or(0.0)],
        )
    }

    fn submit_manual(&self, env: &Env, write: bool, a: [f64; 5]) -> Result<BigInt> {
        let fd = int_arg(env, "fd", a[0], fast::MAX_FD, true)? as i32;
        let i = self.index(env, a[1])?;
        let pos = int_arg(env, "position", a[2], fast::MAX_POSITION, true)?;
        let len = int_arg(env, "length", a[3], f64::from(u32::MAX), true)? as usize;
        let boff = int_arg(env, "bufferOffset", a[4], f64::from(u32::MAX), true)? as usize;
        let core = &self.state.core;
        let ud = if write {
            core.submit_write_fixed(fd, i, pos, len, boff)
        } else {
            core.submit_read_fixed(fd, i, pos, len, boff)
        }
        .or_throw(env)?;
        self.driver.track(ud, Waiter::Manual);
        self.driver.update_ref();
        Ok(BigInt::from(ud))
    }

    fn batch(
        &self,
        env: &Env,
        write: bool,
        fd: f64,
        indices: &[u32],
        positions: &[f64],
        lengths: &[u32],
    ) -> Result<PromiseRaw<'_, Int32Array>> {
        let fd = int_arg(env, "fd", fd, fast::MAX_FD, true)? as i32;
        let n = indices.len();
        if n == 0 || positions.len() != n || lengths.len() != n {
            return Err(throw(env, zcio::Error::InvalidArgument {
                name: "indices",
                reason: format!(
                    "indices, positions and lengths must be non-empty and of equal length (got {}, {}, {})",
                    n, positions.len(), lengths.len()
                ),
            }));
        }
        if n > MAX_BATCH {
            return Err(throw(env, zcio::Error::OutOfRange {
                name: "indices",
                reason: format!(
                    "a batch has at most {MAX_BATCH} elements (got {n}): one call must not hold the event loop; split it"
                ),
            }));
        }
        let core = &self.state.core;
        for k in 0..n {
            let pos = int_arg(env, "positions", positions[k], fast::MAX_POSITION, true)?;
            core.check_fixed_op(indices[k], pos, lengths[k] as usize, 0)
                .or_throw(env)?;
        }
        let (deferred, promise) = new_promise(env);
        let id = self.driver.new_batch(deferred, n as u32);
        for k in 0..n {
            let (i, pos, len) = (indices[k], positions[k] as u64, lengths[k] as usize);
            let res = if write {
                core.write_fixed(fd, i, pos, len, 0)
            } else {
                core.read_fixed(fd, i, pos, len, 0)
            };
            match res {
                Ok(ud) => self.driver.track(ud, Waiter::Batch { id, pos: k as u32 }),
                Err(e) => self
                    .driver
                    .batch_fail(id, k as u32, -e.errno().unwrap_or(libc::EINVAL)),
            }
        }
        self.driver.update_ref();
        Ok(PromiseRaw::new(env.raw(), promise))
    }

    /// Reads many blocks in one call; resolves with an `Int32Array` of
    /// results (bytes, or `-errno` per element).
    #[napi(ts_return_type = "Promise<Int32Array>")]
    pub fn read_fixed_batch(
        &self,
        env: Env,
        fd: f64,
        indices: Uint32ArraySlice,
        positions: Float64ArraySlice,
        lengths: Uint32ArraySlice,
    ) -> Result<PromiseRaw<'_, Int32Array>> {
        self.batch(&env, false, fd, &indices, &positions, &lengths)
    }

    /// Writes many blocks in one call; as `readFixedBatch`.
    #[napi(ts_return_type = "Promise<Int32Array>")]
    pub fn write_fixed_batch(
        &self,
        env: Env,
        fd: f64,
        indices: Uint32ArraySlice,
        positions: Float64ArraySlice,
        lengths: Uint32ArraySlice,
    ) -> Result<PromiseRaw<'_, Int32Array>> {
        self.batch(&env, true, fd, &indices, &positions, &lengths)
    }

    /// Usable bytes per buffer.
    #[napi(getter)]
    pub fn buffer_size(&self) -> u32 {
        self.state.core.buffer_size() as u32
    }

    /// Unregisters the buffers and detaches every view (length 0). Throws
    /// `ERR_ZCIO_BUFFER_IN_FLIGHT` while any buffer is in flight. Calling it
    /// again does nothing.
    #[napi]
    pub fn close(&self, env: Env) -> Result<()> {
        self.state.core.close().or_throw(&env)?;
        self.state.detach_views(env.raw());
        Ok(())
    }
}

impl Drop for RegisteredBufferPool {
    fn drop(&mut self) {
        if self.driver.env_gone() {
            return; // the env frees its references itself
        }
        let refs: Vec<_> = self
            .state
            .views
            .borrow_mut()
            .iter_mut()
            .filter(|r| !r.is_null())
            .map(|r| std::mem::replace(r, ptr::null_mut()))
            .collect();
        if self.state.core.is_closed() {
            for r in refs {
                // SAFETY: a live reference of this env; the view is already
                // detached, its memory kept by its own finalizer.
                unsafe { sys::napi_delete_reference(self.driver.env(), r) };
            }
        } else {
            // Views the program kept must still go to length 0 when the ring
            // closes: the driver keeps (weak) references to them.
            self.driver.adopt_views(refs.into_iter());
        }
        self.driver.js_owners.set(self.driver.js_owners.get() - 1);
        self.driver.maybe_teardown();
    }
}

/// Detaches the `ArrayBuffer` of the view `r` refers to (if it is still
/// alive) and deletes the reference.
///
/// # Safety
///
/// `r` is a reference of `env` to a `Uint8Array` over an external buffer.
pub unsafe fn detach_and_delete(env: sys::napi_env, r: sys::napi_ref) {
    // SAFETY: per the contract; a collected view reads as null.
    unsafe {
        let mut view = ptr::null_mut();
        sys::napi_get_reference_value(env, r, &mut view);
        let mut ab = ptr::null_mut();
        let (mut ty, mut len, mut offset) = (0, 0, 0);
        let mut data = ptr::null_mut();
        if !view.is_null()
            && sys::napi_get_typedarray_info(
                env,
                view,
                &mut ty,
                &mut len,
                &mut data,
                &mut ab,
                &mut offset,
            ) == sys::Status::napi_ok
        {
            sys::napi_detach_arraybuffer(env, ab);
        }
        sys::napi_delete_reference(env, r);
    }
}

/// A new promise and its deferred.
pub fn new_promise(env: &Env) -> (sys::napi_deferred, sys::napi_value) {
    let mut deferred = ptr::null_mut();
    let mut promise = ptr::null_mut();
    // SAFETY: plain napi call with local out-pointers.
    unsafe { sys::napi_create_promise(env.raw(), &mut deferred, &mut promise) };
    (deferred, promise)
}
