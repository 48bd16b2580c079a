//! Typed arrays over memory owned by Rust (no copy), kept alive by the
//! array's finalizer.

use std::any::Any;
use std::ffi::c_void;
use std::ptr;

use napi::sys;

/// A typed array of `len` elements of `ty` over `data`, whose memory `owner`
/// keeps valid; `owner` is dropped when the engine collects the buffer.
///
/// # Safety
///
/// `data` must point at `len * size_of(ty)` bytes that stay valid and are
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
    let mut ab = ptr::null_mut();
    // SAFETY: per the contract, the memory outlives `owner`, which the
    // finalizer drops once the engine no longer uses the buffer.
    let status = unsafe {
        sys::napi_create_external_arraybuffer(
            env,
            data,
            len * elem_size,
            Some(drop_owner),
            hint.cast(),
            &mut ab,
        )
    };
    if status != sys::Status::napi_ok {
        // SAFETY: napi did not take the hint; reclaim it.
        drop(unsafe { Box::from_raw(hint) });
        return None;
    }
    let mut value = ptr::null_mut();
    // SAFETY: a typed array over the whole buffer just created.
    let status = unsafe { sys::napi_create_typedarray(env, ty, len, ab, 0, &mut value) };
    (status == sys::Status::napi_ok).then_some(value)
}

unsafe extern "C" fn drop_owner(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the Box<Box<dyn Any>> leaked in `typed_array`,
    // reclaimed exactly once here.
    drop(unsafe { Box::from_raw(hint as *mut Box<dyn Any>) });
}
