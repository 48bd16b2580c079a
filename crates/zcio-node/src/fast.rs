//! Lean entry points for the hot pool calls (acquire, release, readFixed,
//! writeFixed): plain napi functions bound to one pool through their data
//! pointer. Compared with class methods they skip the per-call type-tag check
//! and unwrap of `this` (which JavaScript can forge) and allocate nothing:
//! numbers in, a number out. The pool they act on is fixed when they are
//! made, so no argument can point them at anything else; every argument is
//! still checked (type and range) before the core sees it.

use std::ffi::c_void;
use std::ptr;
use std::rc::Rc;

use napi::sys;

use crate::driver::{Driver, Waiter};
use crate::error;
use crate::js_pool::PoolState;

/// What a fast call acts on.
pub struct PoolCtx {
    pub state: Rc<PoolState>,
    pub driver: Rc<Driver>,
}

type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

/// `{ acquire, tryAcquire, release, readFixed, writeFixed }` bound to `ctx`.
pub fn make(env: sys::napi_env, ctx: &Rc<PoolCtx>) -> Option<sys::napi_value> {
    let fns: [(&std::ffi::CStr, Callback); 5] = [
        (c"acquire", acquire),
        (c"tryAcquire", try_acquire),
        (c"release", release),
        (c"readFixed", read_fixed),
        (c"writeFixed", write_fixed),
    ];
    let mut obj = ptr::null_mut();
    // SAFETY: napi calls on the current env with local out-pointers. Each
    // function owns one `Rc<PoolCtx>` (its data pointer), dropped by the
    // finalizer attached to that function.
    unsafe {
        if sys::napi_create_object(env, &mut obj) != sys::Status::napi_ok {
            return None;
        }
        for (name, cb) in fns {
            let data = Rc::into_raw(ctx.clone()) as *mut c_void;
            let mut f = ptr::null_mut();
            if sys::napi_create_function(env, name.as_ptr(), -1, Some(cb), data, &mut f)
                != sys::Status::napi_ok
                || sys::napi_add_finalizer(
                    env,
                    f,
                    data,
                    Some(drop_ctx),
                    ptr::null_mut(),
                    ptr::null_mut(),
                ) != sys::Status::napi_ok
            {
                drop(Rc::from_raw(data as *const PoolCtx));
                return None;
            }
            sys::napi_set_named_property(env, obj, name.as_ptr(), f);
        }
    }
    Some(obj)
}

unsafe extern "C" fn drop_ctx(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the `Rc` leaked in `make` for this function, reclaimed
    // exactly once when the function is collected.
    drop(unsafe { Rc::from_raw(data as *const PoolCtx) });
}

/// The bound context and up to `N` arguments (missing ones are `undefined`).
///
/// # Safety
///
/// Called from a function made by [`make`], with its `info`.
unsafe fn args<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> (&'static PoolCtx, [sys::napi_value; N]) {
    let mut argv = [ptr::null_mut(); N];
    let mut argc = N;
    let mut data = ptr::null_mut();
    // SAFETY: `argv` has room for `argc` values; `data` is the function's.
    unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            &mut data,
        );
        let mut undefined = ptr::null_mut();
        sys::napi_get_undefined(env, &mut undefined);
        for a in argv.iter_mut().skip(argc) {
            *a = undefined;
        }
        // The function's finalizer has not run while it is being called, so
        // the `Rc` it owns is alive for the duration of this call.
        (&*(data as *const PoolCtx), argv)
    }
}

/// A JS number that is an integer in `0..=max`, or throws
/// (`ERR_INVALID_ARG_TYPE` / `ERR_OUT_OF_RANGE`) and returns `None`.
fn int(env: sys::napi_env, v: sys::napi_value, name: &'static str, max: f64) -> Option<u64> {
    let mut x = 0.0;
    // SAFETY: reads a number from a value of this env.
    if unsafe { sys::napi_get_value_double(env, v, &mut x) } != sys::Status::napi_ok {
        error::throw_raw(
            env,
            "ERR_INVALID_ARG_TYPE",
            &format!("The \"{name}\" argument must be of type number"),
            true,
        );
        return None;
    }
    if x.fract() == 0.0 && (0.0..=max).contains(&x) {
        return Some(x as u64);
    }
    error::throw_core(
        env,
        &zcio::Error::OutOfRange {
            name,
            reason: format!("It must be an integer >= 0 and <= {max}. Received {x}"),
        },
    );
    None
}

fn number(env: sys::napi_env, n: f64) -> sys::napi_value {
    let mut v = ptr::null_mut();
    // SAFETY: creates a number on the current env.
    unsafe { sys::napi_create_double(env, n, &mut v) };
    v
}

fn undefined(env: sys::napi_env) -> sys::napi_value {
    let mut v = ptr::null_mut();
    // SAFETY: reads `undefined` on the current env.
    unsafe { sys::napi_get_undefined(env, &mut v) };
    v
}

unsafe extern "C" fn acquire(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: called by napi for a function made by `make`.
    let (ctx, []) = unsafe { args::<0>(env, info) };
    match ctx.state.core.acquire() {
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
    let (ctx, []) = unsafe { args::<0>(env, info) };
    match ctx.state.core.try_acquire() {
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
    let (ctx, [i]) = unsafe { args::<1>(env, info) };
    let Some(i) = int(env, i, "index", f64::from(u32::MAX)) else {
        return ptr::null_mut();
    };
    match ctx.state.core.release(i as u32) {
        Ok(()) => undefined(env),
        Err(e) => {
            error::throw_core(env, &e);
            ptr::null_mut()
        }
    }
}

/// Largest fd Node accepts (`2 ** 31 - 1`).
pub const MAX_FD: f64 = 2147483647.0;
/// Largest file position (`Number.MAX_SAFE_INTEGER`).
pub const MAX_POSITION: f64 = 9007199254740991.0;

/// `(fd, index, position, length, bufferOffset)` checked, or `None` (thrown).
pub fn op_args(
    env: sys::napi_env,
    a: &[sys::napi_value; 5],
) -> Option<(i32, u32, u64, usize, usize)> {
    let fd = int(env, a[0], "fd", MAX_FD)? as i32;
    let index = int(env, a[1], "index", f64::from(u32::MAX))? as u32;
    let position = int(env, a[2], "position", MAX_POSITION)?;
    let length = int(env, a[3], "length", f64::from(u32::MAX))? as usize;
    let mut ty = 0;
    // SAFETY: a value of this env.
    unsafe { sys::napi_typeof(env, a[4], &mut ty) };
    let boff = if ty == sys::ValueType::napi_undefined {
        0
    } else {
        int(env, a[4], "bufferOffset", f64::from(u32::MAX))? as usize
    };
    Some((fd, index, position, length, boff))
}

fn queue(env: sys::napi_env, info: sys::napi_callback_info, write: bool) -> sys::napi_value {
    // SAFETY: called by napi for a function made by `make`.
    let (ctx, a) = unsafe { args::<5>(env, info) };
    let Some((fd, index, position, length, boff)) = op_args(env, &a) else {
        return ptr::null_mut();
    };
    let core = &ctx.state.core;
    let res = if write {
        core.write_fixed(fd, index, position, length, boff)
    } else {
        core.read_fixed(fd, index, position, length, boff)
    };
    match res {
        Ok(user_data) => {
            ctx.driver.track(user_data, Waiter::Js);
            ctx.driver.update_ref();
            number(env, f64::from(user_data as u32))
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
