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
use crate::js_ring::Ring;

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
            if r.is_null() {
                continue;
            }
            // SAFETY: `r` is a live reference to a Uint8Array over an external
            // ArrayBuffer made in `view`, which is therefore detachable.
            unsafe {
                let mut view = ptr::null_mut();
                sys::napi_get_reference_value(env, *r, &mut view);
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
                sys::napi_delete_reference(env, *r);
            }
            *r = ptr::null_mut();
        }
    }
}

unsafe extern "C" fn release_region(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the Box<Rc<Region>> leaked in `PoolState::view`,
    // reclaimed exactly once here.
    drop(unsafe { Box::from_raw(hint as *mut Rc<zcio::Region>) });
}

/// A snapshot of a pool's counts and cumulative counters.
#[napi(object)]
pub struct PoolStats {
    pub buffer_size: u32,
    pub total: u32,
    pub available: u32,
    pub acquired: u32,
    pub in_flight: u32,
    /// Kernel operations outstanding on the pool's buffers.
    pub kernel_ops: f64,
    /// Successful `acquire`/`tryAcquire` calls.
    pub acquires: f64,
    /// Acquisitions refused because every buffer was in use.
    pub exhausted: f64,
    pub releases: f64,
    /// Kernel operations submitted / completed / completed with an error.
    pub submitted: f64,
    pub completed: f64,
    pub failed: f64,
}

/// Page-aligned buffers registered once with a ring as io_uring fixed buffers
/// (Linux 5.13+), read and written by the kernel with `readFixed`/`writeFixed`
/// and by JavaScript in place through `Uint8Array` views (no copy).
///
/// A buffer is free, acquired, or in flight (lent to the kernel). Releasing or
/// closing while a buffer is in flight throws `ERR_ZCIO_BUFFER_IN_FLIGHT`.
/// After `close()` (of the pool or its ring) every view has length 0.
/// Registered memory counts against `RLIMIT_MEMLOCK` (`ulimit -l`).
#[napi]
pub struct RegisteredBufferPool {
    state: Rc<PoolState>,
    driver: Rc<Driver>,
}

#[napi]
impl RegisteredBufferPool {
    /// Allocates `bufferCount` buffers of `bufferSize` bytes and registers them.
    ///
    /// Throws `ERR_INVALID_ARG_VALUE` for sizes that are 0, not integers,
    /// above 1 GiB per buffer or above 16384 buffers; `ENOMEM` (naming
    /// `ulimit -l`) when the registration exceeds `RLIMIT_MEMLOCK`;
    /// `ERR_ZCIO_TABLE_FULL` when the ring's 16384-entry table is full;
    /// `ERR_ZCIO_CLOSED` when the ring is closed.
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
        let state = Rc::new(PoolState {
            views: RefCell::new(vec![ptr::null_mut(); core.total_count() as usize]),
            core,
        });
        driver.pools.borrow_mut().push(Rc::downgrade(&state));
        driver.js_owners.set(driver.js_owners.get() + 1);
        Ok(RegisteredBufferPool { state, driver })
    }

    fn acquired(&self, env: &Env, index: u32) -> Result<Unknown<'_>> {
        let view = self.state.view(env, index)?;
        let raw = env.raw();
        let mut obj = ptr::null_mut();
        let mut idx = ptr::null_mut();
        // SAFETY: plain napi calls with local out-pointers on the current env.
        unsafe {
            sys::napi_create_object(raw, &mut obj);
            sys::napi_create_uint32(raw, index, &mut idx);
            sys::napi_set_named_property(raw, obj, c"index".as_ptr(), idx);
            sys::napi_set_named_property(raw, obj, c"buffer".as_ptr(), view);
            Ok(Unknown::from_raw_unchecked(raw, obj))
        }
    }

    /// Takes a free buffer: `{ index, buffer }`, `buffer` being a `Uint8Array`
    /// over the registered memory. Throws `ERR_ZCIO_POOL_EXHAUSTED` when none
    /// is free.
    #[napi(ts_return_type = "{ index: number; buffer: Uint8Array }")]
    pub fn acquire(&self, env: Env) -> Result<Unknown<'_>> {
        let index = self.state.core.acquire().or_throw(&env)?;
        self.acquired(&env, index)
    }

    /// Takes a free buffer, or returns `null` when none is free.
    #[napi(ts_return_type = "{ index: number; buffer: Uint8Array } | null")]
    pub fn try_acquire(&self, env: Env) -> Result<Option<Unknown<'_>>> {
        match self.state.core.try_acquire().or_throw(&env)? {
            Some(index) => self.acquired(&env, index).map(Some),
            None => Ok(None),
        }
    }

    /// Returns an acquired buffer. Throws `ERR_ZCIO_NOT_ACQUIRED` (double
    /// release), `ERR_ZCIO_BUFFER_IN_FLIGHT`, `ERR_OUT_OF_RANGE`.
    #[napi]
    pub fn release(&self, env: Env, index: f64) -> Result<()> {
        let i = self.index(&env, index)?;
        self.state.core.release(i).or_throw(&env)
    }

    /// Marks an acquired buffer in flight (lent out); `release` refuses it
    /// until `completeInFlight`.
    #[napi]
    pub fn mark_in_flight(&self, env: Env, index: f64) -> Result<()> {
        let i = self.index(&env, index)?;
        self.state.core.mark_in_flight(i).or_throw(&env)
    }

    /// Ends an in-flight mark (from `markInFlight` or `submitReadFixed` /
    /// `submitWriteFixed`). Throws `ERR_ZCIO_BUFFER_IN_FLIGHT` while a kernel
    /// operation on it has not completed, `ERR_ZCIO_NOT_IN_FLIGHT` otherwise.
    #[napi]
    pub fn complete_in_flight(&self, env: Env, index: f64) -> Result<()> {
        let i = self.index(&env, index)?;
        self.state.core.complete_in_flight(i).or_throw(&env)
    }

    /// The view of an acquired buffer (the same `Uint8Array` `acquire` gave).
    /// While the buffer is in flight the kernel may be writing it.
    #[napi(ts_return_type = "Uint8Array")]
    pub fn get(&self, env: Env, index: f64) -> Result<Unknown<'_>> {
        let i = self.index(&env, index)?;
        if self.state.core.is_closed() {
            return Err(throw(&env, zcio::Error::Closed { what: "pool" }));
        }
        if !self.state.core.is_acquired(i).or_throw(&env)? {
            return Err(throw(&env, zcio::Error::NotAcquired { index: i }));
        }
        let view = self.state.view(&env, i)?;
        // SAFETY: `view` is a value of this env.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), view) })
    }

    fn index(&self, env: &Env, index: f64) -> Result<u32> {
        Ok(int_arg(env, "index", index, f64::from(u32::MAX), true)? as u32)
    }

    #[allow(clippy::too_many_arguments)]
    fn queue(
        &self,
        env: &Env,
        write: bool,
        manual: bool,
        fd: i32,
        index: f64,
        offset: f64,
        len: f64,
        buffer_offset: Option<f64>,
    ) -> Result<u64> {
        let i = self.index(env, index)?;
        let offset = int_arg(env, "offset", offset, 9007199254740991.0, true)?;
        let len = int_arg(env, "len", len, f64::from(u32::MAX), true)? as usize;
        let boff = int_arg(
            env,
            "bufferOffset",
            buffer_offset.unwrap_or(0.0),
            f64::from(u32::MAX),
            true,
        )? as usize;
        let core = &self.state.core;
        let res = match (write, manual) {
            (false, true) => core.submit_read_fixed(fd, i, offset, len, boff),
            (true, true) => core.submit_write_fixed(fd, i, offset, len, boff),
            (false, false) => core.read_fixed(fd, i, offset, len, boff),
            (true, false) => core.write_fixed(fd, i, offset, len, boff),
        };
        res.or_throw(env)
    }

    #[allow(clippy::too_many_arguments)]
    fn promise(
        &self,
        env: &Env,
        write: bool,
        fd: i32,
        index: f64,
        offset: f64,
        len: f64,
        boff: Option<f64>,
    ) -> Result<PromiseRaw<'_, u32>> {
        let ud = self.queue(env, write, false, fd, index, offset, len, boff)?;
        let (deferred, promise) = new_promise(env);
        self.driver.track(ud, Waiter::Promise(deferred));
        self.driver.update_ref();
        Ok(PromiseRaw::new(env.raw(), promise))
    }

    /// Reads `len` bytes at file `offset` of `fd` into buffer `index` (at
    /// `bufferOffset`, default 0) with `IORING_OP_READ_FIXED`. The buffer is in
    /// flight until the promise settles; it resolves with the bytes read and
    /// rejects with a Node-style error (`code`, `errno`, `syscall: 'read'`).
    #[napi(ts_return_type = "Promise<number>")]
    pub fn read_fixed(
        &self,
        env: Env,
        fd: i32,
        index: f64,
        offset: f64,
        len: f64,
        buffer_offset: Option<f64>,
    ) -> Result<PromiseRaw<'_, u32>> {
        self.promise(&env, false, fd, index, offset, len, buffer_offset)
    }

    /// Writes `len` bytes of buffer `index` (from `bufferOffset`) at file
    /// `offset` of `fd` with `IORING_OP_WRITE_FIXED`; as `readFixed`.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn write_fixed(
        &self,
        env: Env,
        fd: i32,
        index: f64,
        offset: f64,
        len: f64,
        buffer_offset: Option<f64>,
    ) -> Result<PromiseRaw<'_, u32>> {
        self.promise(&env, true, fd, index, offset, len, buffer_offset)
    }

    /// Low level: queues a READ_FIXED and returns its `userData`. The buffer
    /// stays in flight until the caller reaps the completion
    /// (`ring.takeCompletions()` / `ring.completions()`) and calls
    /// `completeInFlight(index)`.
    #[napi]
    pub fn submit_read_fixed(
        &self,
        env: Env,
        fd: i32,
        index: f64,
        offset: f64,
        len: f64,
        buffer_offset: Option<f64>,
    ) -> Result<BigInt> {
        self.submit_manual(&env, false, fd, index, offset, len, buffer_offset)
    }

    /// Low level: queues a WRITE_FIXED; as `submitReadFixed`.
    #[napi]
    pub fn submit_write_fixed(
        &self,
        env: Env,
        fd: i32,
        index: f64,
        offset: f64,
        len: f64,
        buffer_offset: Option<f64>,
    ) -> Result<BigInt> {
        self.submit_manual(&env, true, fd, index, offset, len, buffer_offset)
    }

    #[allow(clippy::too_many_arguments)]
    fn submit_manual(
        &self,
        env: &Env,
        write: bool,
        fd: i32,
        index: f64,
        offset: f64,
        len: f64,
        boff: Option<f64>,
    ) -> Result<BigInt> {
        let ud = self.queue(env, write, true, fd, index, offset, len, boff)?;
        self.driver.track(ud, Waiter::Manual);
        self.driver.update_ref();
        Ok(BigInt::from(ud))
    }

    fn batch(
        &self,
        env: &Env,
        write: bool,
        fd: i32,
        indices: &[u32],
        offsets: &[f64],
        lengths: &[u32],
    ) -> Result<PromiseRaw<'_, Int32Array>> {
        let n = indices.len();
        if n == 0 || offsets.len() != n || lengths.len() != n {
            return Err(throw(env, zcio::Error::InvalidArgument {
                name: "indices",
                reason: format!(
                    "indices, offsets and lengths must be non-empty and of equal length (got {}, {}, {})",
                    n, offsets.len(), lengths.len()
                ),
            }));
        }
        let core = &self.state.core;
        for k in 0..n {
            let off = int_arg(env, "offsets", offsets[k], 9007199254740991.0, true)?;
            core.check_fixed_op(indices[k], off, lengths[k] as usize, 0)
                .or_throw(env)?;
        }
        let (deferred, promise) = new_promise(env);
        let id = self.driver.new_batch(deferred, n as u32);
        for k in 0..n {
            let (i, off, len) = (indices[k], offsets[k] as u64, lengths[k] as usize);
            let res = if write {
                core.write_fixed(fd, i, off, len, 0)
            } else {
                core.read_fixed(fd, i, off, len, 0)
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

    /// Reads many blocks in one call: element `k` reads `lengths[k]` bytes at
    /// file offset `offsets[k]` into buffer `indices[k]`. Resolves once all are
    /// done with an `Int32Array` of results: bytes read, or `-errno` for an
    /// element that failed. Arguments are checked for every element before
    /// anything is queued (a bad one throws and queues nothing).
    #[napi(ts_return_type = "Promise<Int32Array>")]
    pub fn read_fixed_batch(
        &self,
        env: Env,
        fd: i32,
        indices: Uint32ArraySlice,
        offsets: Float64ArraySlice,
        lengths: Uint32ArraySlice,
    ) -> Result<PromiseRaw<'_, Int32Array>> {
        self.batch(&env, false, fd, &indices, &offsets, &lengths)
    }

    /// Writes many blocks in one call; as `readFixedBatch`.
    #[napi(ts_return_type = "Promise<Int32Array>")]
    pub fn write_fixed_batch(
        &self,
        env: Env,
        fd: i32,
        indices: Uint32ArraySlice,
        offsets: Float64ArraySlice,
        lengths: Uint32ArraySlice,
    ) -> Result<PromiseRaw<'_, Int32Array>> {
        self.batch(&env, true, fd, &indices, &offsets, &lengths)
    }

    /// Usable bytes per buffer.
    #[napi(getter)]
    pub fn buffer_size(&self) -> u32 {
        self.state.core.buffer_size() as u32
    }

    /// Buffers in the pool.
    #[napi(getter)]
    pub fn total_count(&self) -> u32 {
        self.state.core.total_count()
    }

    /// Buffers free to acquire.
    #[napi(getter)]
    pub fn available_count(&self) -> u32 {
        self.state.core.available_count()
    }

    /// Buffers acquired and not in flight.
    #[napi(getter)]
    pub fn acquired_count(&self) -> u32 {
        self.state.core.acquired_count()
    }

    /// Buffers in flight.
    #[napi(getter)]
    pub fn in_flight_count(&self) -> u32 {
        self.state.core.in_flight_count()
    }

    /// Whether no buffer is free.
    #[napi(getter)]
    pub fn is_exhausted(&self) -> bool {
        self.state.core.is_exhausted()
    }

    /// Whether the pool (or its ring) is closed.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.state.core.is_closed() || self.driver.ring.is_closed()
    }

    /// Counts and cumulative counters.
    #[napi]
    pub fn stats(&self) -> PoolStats {
        let s = self.state.core.stats();
        PoolStats {
            buffer_size: s.buffer_size as u32,
            total: s.total,
            available: s.available,
            acquired: s.acquired,
            in_flight: s.in_flight,
            kernel_ops: s.kernel_ops as f64,
            acquires: s.counters.acquires as f64,
            exhausted: s.counters.exhausted as f64,
            releases: s.counters.releases as f64,
            submitted: s.counters.submitted as f64,
            completed: s.counters.completed as f64,
            failed: s.counters.failed as f64,
        }
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
        let env = self.driver.env();
        if self.driver.env_gone() {
            return; // the env frees its references itself
        }
        for r in self.state.views.borrow_mut().iter_mut() {
            if !r.is_null() {
                // SAFETY: a live reference of this env; the views themselves
                // keep the memory alive through their own finalizers.
                unsafe { sys::napi_delete_reference(env, *r) };
                *r = ptr::null_mut();
            }
        }
        self.driver.js_owners.set(self.driver.js_owners.get() - 1);
        self.driver.maybe_teardown();
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
