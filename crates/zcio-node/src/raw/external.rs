//! Typed arrays over memory owned by Rust (no copy), kept alive by the
//! array's finalizer.

use std::any::Any;
use std::ffi::c_void;

use napi::sys;

use super::buffers as raw;

/// A typed array of `len` elements of `ty` over `data`, whose memory `owner`
/// keeps valid; `owner` is dropped when the engine collects the buffer.
/// `None` when the runtime refuses external buffers (or a napi call failed).
///
/// # Safety
///
/// `data` must point at `len * elem_size` bytes that stay valid and are
/// touched only on this thread for as long as `owner` lives.
pub unsafe fn typed_array(
    env: sys::napi_env,
    ty: sys::napi_typedarray_type,
    data: *mut c_void,
    len: usize,
    elem_size: usize,
    owner: Box<dyn Any>,
) -> Option<sys::napi_value> {
    let hint = Box::into_raw(Box::new(owner));
    // SAFETY: per the contract, the memory outlives `owner`, which the
    // finalizer drops once the engine no longer uses the buffer.
    let ab =
        unsafe { raw::external_arraybuffer(env, data, len * elem_size, drop_owner, hint.cast()) };
    let Ok(ab) = ab else {
        // SAFETY: napi did not take the hint; reclaim it.
        drop(unsafe { Box::from_raw(hint) });
        return None;
    };
    raw::typed_array(env, ty, len, ab, 0).ok()
}

unsafe extern "C" fn drop_owner(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the Box<Box<dyn Any>> leaked in `typed_array`,
    // reclaimed exactly once here.
    drop(unsafe { Box::from_raw(hint as *mut Box<dyn Any>) });
}
