//! Lean entry points for the hot pool calls (acquire, release, readFixed,
//! writeFixed): plain napi functions bound to one pool through their data
//! pointer. Compared with class methods they skip the per-call type-tag check
//! and unwrap of `this` (which JavaScript can forge) and allocate nothing:
//! numbers in, a number out (a slot, or the result of a transfer done in
//! the call). The pool they act on is fixed when they are
//! made, so no argument can point them at anything else; every argument is
//! still checked (type and range) before the core sees it.

use std::ffi::c_void;
use std::ptr;
use std::rc::Rc;

use napi::sys;

use zcio::Started;

use crate::args::{self, op_args, MAX_U32};
use crate::consts;
use crate::driver::{Driver, Waiter};
use crate::error;
use crate::raw::napi as raw;

/// What a fast call acts on.
pub struct PoolCtx {
    pub pool: Rc<zcio::RegisteredBufferPool>,
    pub driver: Rc<Driver>,
}

/// `{ acquire, tryAcquire, release, readFixed, writeFixed }` bound to `ctx`.
pub fn make(env: sys::napi_env, ctx: &Rc<PoolCtx>) -> Option<sys::napi_value> {
    let fns: [(&std::ffi::CStr, raw::Callback); 5] = [
        (c"acquire", acquire),
        (c"tryAcquire", try_acquire),
        (c"release", release),
        (c"readFixed", read_fixed),
        (c"writeFixed", write_fixed),
    ];
    let obj = raw::object(env).ok()?;
    for (name, cb) in fns {
        // Each function owns one `Rc<PoolCtx>` (its data pointer), dropped by
        // the finalizer attached to that function.
        let data = Rc::into_raw(ctx.clone()) as *mut c_void;
        let f = raw::function(env, name, cb, data);
        // SAFETY: `drop_ctx` takes the `Rc` leaked above, once.
        let owned =
            f.and_then(|f| unsafe { raw::add_finalizer(env, f, data, drop_ctx) }.map(|()| f));
        let Ok(f) = owned else {
            // SAFETY: no finalizer took the `Rc`; reclaim it.
            drop(unsafe { Rc::from_raw(data as *const PoolCtx) });
            return None;
        };
        raw::set_named(env, obj, name, f).ok()?;
    }
    Some(obj)
}

unsafe extern "C" fn drop_ctx(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the `Rc` leaked in `make` for this function, reclaimed
    // exactly once when the function is collected.
    drop(unsafe { Rc::from_raw(data as *const PoolCtx) });
}

/// The bound context and up to `N` arguments (missing ones are `undefined`);
/// `None` if napi can't say (nothing is thrown then: the env is dying).
///
/// # Safety
///
/// Called from a function made by [`make`], with its `info`.
unsafe fn args<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Option<(&'static PoolCtx, [sys::napi_value; N])> {
    let (argv, data) = raw::call_info::<N>(env, info).ok()?;
    // SAFETY: the function's finalizer has not run while it is being called,
    // so the `Rc` it owns is alive for the duration of this call.
    Some((unsafe { &*(data as *const PoolCtx) }, argv))
}

/// A number, or null (a pending exception) if napi can't make one.
fn number(env: sys::napi_env, n: f64) -> sys::napi_value {
    raw::double(env, n).unwrap_or(ptr::null_mut())
}

fn undefined(env: sys::napi_env) -> sys::napi_value {
    raw::undefined(env).unwrap_or(ptr::null_mut())
}

unsafe extern "C" fn acquire(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: called by napi for a function made by `make`.
    let Some((ctx, [])) = (unsafe { args::<0>(env, info) }) else {
        return ptr::null_mut();
    };
    match ctx.pool.acquire() {
        Ok(i) => number(env, f64::from(i)),
        Err(e) => {
            error::throw_core(env, &e);
            ptr::null_mut()
        }
    }
}

unsafe extern "C" fn try_acquire(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: called by napi for a function made by `make`.
    let Some((ctx, [])) = (unsafe { args::<0>(env, info) }) else {
        return ptr::null_mut();
    };
    match ctx.pool.try_acquire() {
        Ok(Some(i)) => number(env, f64::from(i)),
        Ok(None) => number(env, -1.0),
        Err(e) => {
            error::throw_core(env, &e);
            ptr::null_mut()
        }
    }
}

unsafe extern "C" fn release(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: called by napi for a function made by `make`.
    let Some((ctx, [i])) = (unsafe { args::<1>(env, info) }) else {
        return ptr::null_mut();
    };
    let Some(i) = args::int(env, i, "index", MAX_U32) else {
        return ptr::null_mut();
    };
    match ctx.pool.release(i as u32) {
        Ok(()) => undefined(env),
        Err(e) => {
            error::throw_core(env, &e);
            ptr::null_mut()
        }
    }
}

fn queue(env: sys::napi_env, info: sys::napi_callback_info, write: bool) -> sys::napi_value {
    // SAFETY: called by napi for a function made by `make`.
    let Some((ctx, a)) = (unsafe { args::<5>(env, info) }) else {
        return ptr::null_mut();
    };
    let Some((fd, index, position, length, boff)) = op_args(env, &a) else {
        return ptr::null_mut();
    };
    let core = &ctx.pool;
    // Done in the call where the backend can, within the loop turn's budget
    // (so that a chain of such reads still lets the loop run).
    let res = match (ctx.driver.inline_allowed(), write) {
        (true, false) => core.read_fixed_now(fd, index, position, length, boff),
        (true, true) => core.write_fixed_now(fd, index, position, length, boff),
        (false, false) => core
            .read_fixed(fd, index, position, length, boff)
            .map(Started::Queued),
        (false, true) => core
            .write_fixed(fd, index, position, length, boff)
            .map(Started::Queued),
    };
    match res {
        Ok(Started::Queued(user_data)) => {
            ctx.driver.track(user_data, Waiter::Js);
            ctx.driver.update_ref();
            number(env, f64::from(user_data as u32))
        }
        Ok(Started::Done(result)) => {
            ctx.driver.spent_inline_turn();
            number(
                env,
                -1.0 - f64::from(consts::FIXED_DONE_BASE) - f64::from(result),
            )
        }
        Err(e) => {
            error::throw_core(env, &e);
            ptr::null_mut()
        }
    }
}

unsafe extern "C" fn read_fixed(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    queue(env, info, false)
}

unsafe extern "C" fn write_fixed(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    queue(env, info, true)
}
