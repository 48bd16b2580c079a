//! `RegisteredBufferPool` for JavaScript: conversions, views and promises over
//! the core pool.

use std::rc::Rc;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::args::{MAX_BATCH, MAX_FD, MAX_POSITION, MAX_U32};
use crate::driver::{Driver, Waiter};
use crate::error::{int_arg, throw, throw_code, OrThrow};
use crate::raw::{external, napi as raw};
use crate::ring::Ring;
use crate::values::{external_or_throw, new_promise, published};
use crate::views::ViewSet;

mod fast;

/// Page-aligned buffers registered once with a ring as io_uring fixed buffers
/// (the binding under the layer's `RegisteredBufferPool`).
#[napi]
pub struct RegisteredBufferPool {
    core: Rc<zcio::RegisteredBufferPool>,
    /// The views handed out, which the ring's driver detaches when the ring
    /// closes.
    views: Rc<ViewSet>,
    driver: Rc<Driver>,
}

impl RegisteredBufferPool {
    pub(crate) fn core(&self) -> &zcio::RegisteredBufferPool {
        &self.core
    }

    /// The view of buffer `index` (created on first use): a `Uint8Array`
    /// over an external `ArrayBuffer` of that buffer alone.
    fn view_of(&self, env: &Env, index: u32) -> Result<sys::napi_value> {
        let raw_env = env.raw();
        if let Some(v) = self.views.get(raw_env, index) {
            return Ok(v);
        }
        let data = self.core.buffer_ptr(index).or_throw(env)?;
        let len = self.core.buffer_size();
        // SAFETY: `data..data+len` lies in the pool's region, which the boxed
        // `Rc<Region>` keeps mapped until the engine collects the buffer.
        let v = unsafe {
            external::typed_array(
                raw_env,
                sys::TypedarrayType::uint8_array,
                data.cast(),
                len,
                1,
                Box::new(self.core.region()),
            )
        };
        let view = external_or_throw(env, v)?.raw();
        // Should keeping it fail, the next call makes another view.
        let _ = self.views.insert(raw_env, index, view);
        Ok(view)
    }
}

#[napi]
impl RegisteredBufferPool {
    /// Allocates `bufferCount` buffers of `bufferSize` bytes and registers them.
    #[napi(constructor)]
    pub fn new(env: Env, ring: &Ring, buffer_size: f64, buffer_count: f64) -> Result<Self> {
        let size = int_arg(&env, "bufferSize", buffer_size, MAX_U32, false)?;
        let count = int_arg(&env, "bufferCount", buffer_count, MAX_U32, false)?;
        let driver = ring.driver().clone();
        let core = zcio::RegisteredBufferPool::new(&driver.ring, size as usize, count as usize)
            .or_throw(&env)?;
        crate::send_memory::register_region(&core.region());
        let views = ViewSet::new(core.total_count() as usize);
        driver.add_views(&views);
        driver.js_owners.set(driver.js_owners.get() + 1);
        Ok(RegisteredBufferPool {
            core: Rc::new(core),
            views,
            driver,
        })
    }

    /// `{ acquire, tryAcquire, release, readFixed, writeFixed }`: lean
    /// functions bound to this pool (see `pool/fast.rs`). `tryAcquire` returns -1
    /// when no buffer is free; `readFixed`/`writeFixed` return the operation's
    /// slot, settled through the ring's `settle` function.
    #[napi(
        ts_return_type = "{ acquire(): number; tryAcquire(): number; release(index: number): void; readFixed(fd: number, index: number, position: number, length: number, bufferOffset?: number): number; writeFixed(fd: number, index: number, position: number, length: number, bufferOffset?: number): number }"
    )]
    pub fn fast_calls(&self, env: Env) -> Result<Unknown<'_>> {
        let ctx = Rc::new(fast::PoolCtx {
            pool: self.core.clone(),
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
        published(&env, self.core.published(), false)
    }

    /// One state byte per buffer, updated in place (`zcio::buffer_state`:
    /// 0 free, 1 acquired, 2 in flight).
    #[napi(ts_return_type = "Uint8Array")]
    pub fn states(&self, env: Env) -> Result<Unknown<'_>> {
        published(&env, self.core.published(), true)
    }

    /// The `Uint8Array` over buffer `index` (one per buffer, made on first
    /// use). Throws `ERR_ZCIO_CLOSED` once the pool is closed.
    #[napi(ts_return_type = "Uint8Array")]
    pub fn view(&self, env: Env, index: f64) -> Result<Unknown<'_>> {
        let i = self.index(&env, index)?;
        if self.core.is_closed() {
            return Err(throw(&env, zcio::Error::Closed { what: "pool" }));
        }
        let view = self.view_of(&env, i)?;
        // SAFETY: `view` is a value of this env.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), view) })
    }

    /// Marks an acquired buffer in flight (lent out); `release` refuses it
    /// until `completeInFlight`.
    #[napi]
    pub fn mark_in_flight(&self, env: Env, index: f64) -> Result<()> {
        let i = self.index(&env, index)?;
        self.core.mark_in_flight(i).or_throw(&env)
    }

    /// Ends an in-flight mark.
    #[napi]
    pub fn complete_in_flight(&self, env: Env, index: f64) -> Result<()> {
        let i = self.index(&env, index)?;
        self.core.complete_in_flight(i).or_throw(&env)
    }

    fn index(&self, env: &Env, index: f64) -> Result<u32> {
        Ok(int_arg(env, "index", index, MAX_U32, true)? as u32)
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
        let fd = int_arg(env, "fd", a[0], MAX_FD, true)? as i32;
        let i = self.index(env, a[1])?;
        let pos = int_arg(env, "position", a[2], MAX_POSITION, true)?;
        let len = int_arg(env, "length", a[3], MAX_U32, true)? as usize;
        let boff = int_arg(env, "bufferOffset", a[4], MAX_U32, true)? as usize;
        let core = &self.core;
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
        let fd = int_arg(env, "fd", fd, MAX_FD, true)? as i32;
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
        let core = &self.core;
        for k in 0..n {
            let pos = int_arg(env, "positions", positions[k], MAX_POSITION, true)?;
            core.check_fixed_op(indices[k], pos, lengths[k] as usize, 0)
                .or_throw(env)?;
        }
        let (deferred, promise) = new_promise(env)?;
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
        self.core.buffer_size() as u32
    }

    /// Unregisters the buffers and detaches every view (length 0). Throws
    /// `ERR_ZCIO_BUFFER_IN_FLIGHT` while any buffer is in flight. Calling it
    /// again does nothing.
    #[napi]
    pub fn close(&self, env: Env) -> Result<()> {
        self.core.close().or_throw(&env)?;
        self.views.detach_all(env.raw());
        Ok(())
    }
}

impl Drop for RegisteredBufferPool {
    fn drop(&mut self) {
        if self.driver.env_gone() {
            return; // the env frees its references itself
        }
        let refs = self.views.take_all();
        if self.core.is_closed() {
            for r in refs {
                // The view is already detached, its memory kept by its own
                // finalizer; a failed delete leaves it to the env.
                let _ = raw::delete_reference(self.driver.env(), r);
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
