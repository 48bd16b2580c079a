//! The napi calls the binding makes outside napi-rs's generated glue, each
//! wrapped once, with its status checked: a call that does not return
//! `napi_ok` gives [`Failed`], and the caller decides what that means (throw,
//! skip, or report). Apart from the error module, this is the only file that
//! calls napi-sys.
//!
//! Calls on `ArrayBuffer`s and typed arrays are in `buffers`.
//!
//! Every function takes the env of the calling JS thread and values that are
//! handles of that env, alive in the current handle scope: the preconditions
//! napi-rs's own `Env` methods take for granted. Functions that also take raw
//! memory are `unsafe` and say what they need.

use std::ffi::{c_void, CStr};
use std::ptr;

use napi::sys;

/// A napi call that did not return `napi_ok`, with the status it returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failed(pub sys::napi_status);

impl Failed {
    /// A JS exception is pending (thrown by the code napi called).
    pub fn is_pending_exception(self) -> bool {
        self.0 == sys::Status::napi_pending_exception
    }
}

/// The outcome of a napi call.
pub type Res<T> = Result<T, Failed>;

/// A native function napi can call.
pub type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

/// A finalizer napi calls when it collects a value.
pub type Finalize = unsafe extern "C" fn(sys::napi_env, *mut c_void, *mut c_void);

pub(super) fn check(status: sys::napi_status) -> Res<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Failed(status))
    }
}

/// Runs a napi call that writes one value into an out-pointer.
pub(super) fn out<T>(init: T, call: impl FnOnce(*mut T) -> sys::napi_status) -> Res<T> {
    let mut value = init;
    check(call(&mut value))?;
    Ok(value)
}

/// The libuv loop of the env's thread (never null on success).
pub fn uv_event_loop(env: sys::napi_env) -> Res<*mut c_void> {
    // SAFETY: an out-pointer to a local.
    let l: *mut c_void = out(ptr::null_mut(), |p: *mut *mut c_void| unsafe {
        sys::napi_get_uv_event_loop(env, p.cast())
    })?;
    if l.is_null() {
        return Err(Failed(sys::Status::napi_generic_failure));
    }
    Ok(l)
}

/// `{}`.
pub fn object(env: sys::napi_env) -> Res<sys::napi_value> {
    // SAFETY: an out-pointer to a local.
    out(ptr::null_mut(), |p| unsafe {
        sys::napi_create_object(env, p)
    })
}

/// `[]`.
pub fn array(env: sys::napi_env) -> Res<sys::napi_value> {
    // SAFETY: an out-pointer to a local.
    out(ptr::null_mut(), |p| unsafe {
        sys::napi_create_array(env, p)
    })
}

/// `undefined`.
pub fn undefined(env: sys::napi_env) -> Res<sys::napi_value> {
    // SAFETY: an out-pointer to a local.
    out(ptr::null_mut(), |p| unsafe {
        sys::napi_get_undefined(env, p)
    })
}

/// A JS number.
pub fn double(env: sys::napi_env, n: f64) -> Res<sys::napi_value> {
    // SAFETY: an out-pointer to a local.
    out(ptr::null_mut(), |p| unsafe {
        sys::napi_create_double(env, n, p)
    })
}

/// A JS number from a `u32`.
pub fn uint32(env: sys::napi_env, n: u32) -> Res<sys::napi_value> {
    // SAFETY: an out-pointer to a local.
    out(ptr::null_mut(), |p| unsafe {
        sys::napi_create_uint32(env, n, p)
    })
}

/// A JS string.
pub fn string(env: sys::napi_env, s: &str) -> Res<sys::napi_value> {
    // SAFETY: `s` points at `s.len()` bytes of UTF-8; an out-pointer to a local.
    out(ptr::null_mut(), |p| unsafe {
        sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, p)
    })
}

/// The number a value holds (fails for anything but a number).
pub fn value_double(env: sys::napi_env, v: sys::napi_value) -> Res<f64> {
    // SAFETY: an out-pointer to a local.
    out(0.0, |p| unsafe { sys::napi_get_value_double(env, v, p) })
}

/// `typeof v`.
pub fn type_of(env: sys::napi_env, v: sys::napi_value) -> Res<sys::napi_valuetype> {
    // SAFETY: an out-pointer to a local.
    out(0, |p| unsafe { sys::napi_typeof(env, v, p) })
}

/// `obj[name] = v`.
pub fn set_named(
    env: sys::napi_env,
    obj: sys::napi_value,
    name: &CStr,
    v: sys::napi_value,
) -> Res<()> {
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { sys::napi_set_named_property(env, obj, name.as_ptr(), v) })
}

/// `arr[i] = v`.
pub fn set_element(
    env: sys::napi_env,
    arr: sys::napi_value,
    i: u32,
    v: sys::napi_value,
) -> Res<()> {
    // SAFETY: plain handles of this env.
    check(unsafe { sys::napi_set_element(env, arr, i, v) })
}

/// `arr[i]`.
pub fn element(env: sys::napi_env, arr: sys::napi_value, i: u32) -> Res<sys::napi_value> {
    // SAFETY: an out-pointer to a local.
    out(ptr::null_mut(), |p| unsafe {
        sys::napi_get_element(env, arr, i, p)
    })
}

/// `Array.isArray(v)`.
pub fn is_array(env: sys::napi_env, v: sys::napi_value) -> Res<bool> {
    // SAFETY: an out-pointer to a local.
    out(false, |p| unsafe { sys::napi_is_array(env, v, p) })
}

/// The length of an array.
pub fn array_length(env: sys::napi_env, arr: sys::napi_value) -> Res<u32> {
    // SAFETY: an out-pointer to a local.
    out(0, |p| unsafe { sys::napi_get_array_length(env, arr, p) })
}

/// A reference to `v` with `count` strong counts (0: weak).
pub fn reference(env: sys::napi_env, v: sys::napi_value, count: u32) -> Res<sys::napi_ref> {
    // SAFETY: an out-pointer to a local.
    out(ptr::null_mut(), |p| unsafe {
        sys::napi_create_reference(env, v, count, p)
    })
}

/// The value a reference points at, `None` once a weak one's is collected.
pub fn reference_value(env: sys::napi_env, r: sys::napi_ref) -> Res<Option<sys::napi_value>> {
    // SAFETY: an out-pointer to a local; `r` is a live reference of this env.
    let v = out(ptr::null_mut(), |p| unsafe {
        sys::napi_get_reference_value(env, r, p)
    })?;
    Ok((!v.is_null()).then_some(v))
}

/// Deletes a reference (it must not be used again).
pub fn delete_reference(env: sys::napi_env, r: sys::napi_ref) -> Res<()> {
    // SAFETY: a live reference of this env, not used after this call.
    check(unsafe { sys::napi_delete_reference(env, r) })
}

/// Takes one strong count off a reference; returns the counts left.
pub fn reference_unref(env: sys::napi_env, r: sys::napi_ref) -> Res<u32> {
    // SAFETY: an out-pointer to a local; `r` is a live reference of this env.
    out(0, |p| unsafe { sys::napi_reference_unref(env, r, p) })
}

/// A JS function calling `cb` with `data` as its data pointer.
pub fn function(
    env: sys::napi_env,
    name: &CStr,
    cb: Callback,
    data: *mut c_void,
) -> Res<sys::napi_value> {
    // SAFETY: `name` is NUL-terminated (length -1); `data` is handed back to
    // `cb` untouched; an out-pointer to a local.
    out(ptr::null_mut(), |p| unsafe {
        sys::napi_create_function(env, name.as_ptr(), -1, Some(cb), data, p)
    })
}

/// Runs `finalize(data)` when `obj` is collected.
///
/// # Safety
///
/// `finalize` must accept `data` (once).
pub unsafe fn add_finalizer(
    env: sys::napi_env,
    obj: sys::napi_value,
    data: *mut c_void,
    finalize: Finalize,
) -> Res<()> {
    // SAFETY: per the contract.
    check(unsafe {
        sys::napi_add_finalizer(
            env,
            obj,
            data,
            Some(finalize),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    })
}

/// What a native function was called with: up to `N` arguments (missing ones
/// read `undefined`) and its data pointer.
pub fn call_info<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Res<([sys::napi_value; N], *mut c_void)> {
    let mut argv = [ptr::null_mut(); N];
    let mut argc = N;
    let mut data = ptr::null_mut();
    // SAFETY: `argv` has room for `argc` values; the other out-pointers are locals.
    check(unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            &mut data,
        )
    })?;
    if argc < N {
        let undefined = undefined(env)?;
        for a in argv.iter_mut().skip(argc) {
            *a = undefined;
        }
    }
    Ok((argv, data))
}

/// A new promise: its deferred and the promise.
pub fn promise(env: sys::napi_env) -> Res<(sys::napi_deferred, sys::napi_value)> {
    let mut deferred = ptr::null_mut();
    // SAFETY: out-pointers to locals.
    let promise = out(ptr::null_mut(), |p| unsafe {
        sys::napi_create_promise(env, &mut deferred, p)
    })?;
    Ok((deferred, promise))
}

/// Resolves a deferred (which is then gone, whatever the outcome).
pub fn resolve(env: sys::napi_env, d: sys::napi_deferred, v: sys::napi_value) -> Res<()> {
    // SAFETY: a deferred of this env, settled once.
    check(unsafe { sys::napi_resolve_deferred(env, d, v) })
}

/// Rejects a deferred (which is then gone, whatever the outcome).
pub fn reject(env: sys::napi_env, d: sys::napi_deferred, v: sys::napi_value) -> Res<()> {
    // SAFETY: a deferred of this env, settled once.
    check(unsafe { sys::napi_reject_deferred(env, d, v) })
}

/// `func.call(recv, ...args)`.
pub fn call(
    env: sys::napi_env,
    recv: sys::napi_value,
    func: sys::napi_value,
    args: &[sys::napi_value],
) -> Res<sys::napi_value> {
    // SAFETY: `args` holds `args.len()` values; an out-pointer to a local.
    out(ptr::null_mut(), |p| unsafe {
        sys::napi_call_function(env, recv, func, args.len(), args.as_ptr(), p)
    })
}

/// `func.call(recv)` as a callback from native code: Node enters the JS
/// context around it and runs microtasks and `nextTick` callbacks after it.
pub fn make_callback(
    env: sys::napi_env,
    recv: sys::napi_value,
    func: sys::napi_value,
) -> Res<sys::napi_value> {
    // SAFETY: no arguments; an out-pointer to a local.
    out(ptr::null_mut(), |p| unsafe {
        sys::napi_make_callback(env, ptr::null_mut(), recv, func, 0, ptr::null(), p)
    })
}

/// Takes the pending exception.
pub fn take_exception(env: sys::napi_env) -> Res<sys::napi_value> {
    // SAFETY: an out-pointer to a local.
    out(ptr::null_mut(), |p| unsafe {
        sys::napi_get_and_clear_last_exception(env, p)
    })
}

/// Reports `err` as an uncaught exception.
pub fn fatal_exception(env: sys::napi_env, err: sys::napi_value) -> Res<()> {
    // SAFETY: a value of this env.
    check(unsafe { sys::napi_fatal_exception(env, err) })
}

/// `throw v`.
pub fn throw(env: sys::napi_env, v: sys::napi_value) -> Res<()> {
    // SAFETY: a value of this env.
    check(unsafe { sys::napi_throw(env, v) })
}

/// A hook napi runs when the env is torn down, removed on drop.
pub struct CleanupHook {
    env: sys::napi_env,
    hook: unsafe extern "C" fn(*mut c_void),
    arg: *mut c_void,
}

impl CleanupHook {
    /// Runs `hook(arg)` when the env is torn down, until dropped.
    ///
    /// # Safety
    ///
    /// `hook` must accept `arg` for as long as the returned value lives.
    pub unsafe fn add(
        env: sys::napi_env,
        hook: unsafe extern "C" fn(*mut c_void),
        arg: *mut c_void,
    ) -> Res<CleanupHook> {
        // SAFETY: per the contract.
        check(unsafe { sys::napi_add_env_cleanup_hook(env, Some(hook), arg) })?;
        Ok(CleanupHook { env, hook, arg })
    }
}

impl Drop for CleanupHook {
    fn drop(&mut self) {
        // SAFETY: the pair added in `add`; removing never calls the hook.
        let status =
            unsafe { sys::napi_remove_env_cleanup_hook(self.env, Some(self.hook), self.arg) };
        // A failure means the hook is gone already (it is running, the env
        // being torn down): nothing is left to remove.
        let _ = check(status);
    }
}

/// An async context for callbacks from native code, named `name`.
pub fn async_context(env: sys::napi_env, name: &str) -> Res<sys::napi_async_context> {
    let name = string(env, name)?;
    // SAFETY: no resource object (napi makes one); an out-pointer to a local.
    out(ptr::null_mut(), |p| unsafe {
        sys::napi_async_init(env, ptr::null_mut(), name, p)
    })
}

/// A handle scope, closed on drop.
pub struct HandleScope {
    env: sys::napi_env,
    scope: sys::napi_handle_scope,
}

impl HandleScope {
    /// Opens a scope on the env's thread.
    pub fn open(env: sys::napi_env) -> Res<HandleScope> {
        // SAFETY: an out-pointer to a local.
        let scope = out(ptr::null_mut(), |p| unsafe {
            sys::napi_open_handle_scope(env, p)
        })?;
        Ok(HandleScope { env, scope })
    }
}

impl Drop for HandleScope {
    fn drop(&mut self) {
        // SAFETY: the scope opened in `open`, closed once, innermost first
        // (scopes are locals, dropped in reverse order).
        let status = unsafe { sys::napi_close_handle_scope(self.env, self.scope) };
        // Only a scope closed out of order fails, which the order of drops
        // rules out; nothing could be done about it here anyway.
        debug_assert_eq!(status, sys::Status::napi_ok);
    }
}

/// A callback scope (microtasks run when it closes), closed on drop.
pub struct CallbackScope {
    env: sys::napi_env,
    scope: sys::napi_callback_scope,
}

impl CallbackScope {
    /// Enters `ctx` with a fresh resource object.
    pub fn open(env: sys::napi_env, ctx: sys::napi_async_context) -> Res<CallbackScope> {
        let resource = object(env)?;
        // SAFETY: an out-pointer to a local.
        let scope = out(ptr::null_mut(), |p| unsafe {
            sys::napi_open_callback_scope(env, resource, ctx, p)
        })?;
        Ok(CallbackScope { env, scope })
    }
}

impl Drop for CallbackScope {
    fn drop(&mut self) {
        // SAFETY: the scope opened in `open`, closed once.
        let status = unsafe { sys::napi_close_callback_scope(self.env, self.scope) };
        // As for handle scopes: only misnesting fails.
        debug_assert_eq!(status, sys::Status::napi_ok);
    }
}
