//! The napi calls on `ArrayBuffer`s and typed arrays, status checked (the
//! preconditions are those of the `napi` module).

use std::ffi::c_void;
use std::ptr;

use napi::sys;

use super::napi::{check, out, Finalize, Res};

/// A new `ArrayBuffer` holding a copy of `bytes`.
pub fn arraybuffer_from(env: sys::napi_env, bytes: &[u8]) -> Res<sys::napi_value> {
    let mut data: *mut c_void = ptr::null_mut();
    // SAFETY: out-pointers to locals.
    let ab = out(ptr::null_mut(), |p| unsafe {
        sys::napi_create_arraybuffer(env, bytes.len(), &mut data, p)
    })?;
    if !bytes.is_empty() {
        // SAFETY: napi allocated `bytes.len()` bytes at `data`, which nothing
        // else uses yet.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), data.cast::<u8>(), bytes.len()) };
    }
    Ok(ab)
}

/// An `ArrayBuffer` over memory napi does not own; napi calls
/// `finalize(data, hint)` once the engine no longer uses it. On failure napi
/// has not taken `hint`.
///
/// # Safety
///
/// `data..data + len` must stay valid until `finalize` runs, and `finalize`
/// must accept `hint` (once).
pub unsafe fn external_arraybuffer(
    env: sys::napi_env,
    data: *mut c_void,
    len: usize,
    finalize: Finalize,
    hint: *mut c_void,
) -> Res<sys::napi_value> {
    // SAFETY: per the contract; an out-pointer to a local.
    out(ptr::null_mut(), |p| unsafe {
        sys::napi_create_external_arraybuffer(env, data, len, Some(finalize), hint, p)
    })
}

/// A typed array of `len` elements over `ab` from byte `offset`.
pub fn typed_array(
    env: sys::napi_env,
    ty: sys::napi_typedarray_type,
    len: usize,
    ab: sys::napi_value,
    offset: usize,
) -> Res<sys::napi_value> {
    // SAFETY: napi checks the range against the buffer; an out-pointer to a local.
    out(ptr::null_mut(), |p| unsafe {
        sys::napi_create_typedarray(env, ty, len, ab, offset, p)
    })
}

/// What a typed array is over.
pub struct TypedArrayInfo {
    /// The element type.
    pub ty: sys::napi_typedarray_type,
    /// Elements.
    pub len: usize,
    /// The first element.
    pub data: *mut c_void,
    /// The buffer the array is over.
    pub arraybuffer: sys::napi_value,
}

/// Whether `v` is a typed array.
pub fn is_typed_array(env: sys::napi_env, v: sys::napi_value) -> Res<bool> {
    // SAFETY: an out-pointer to a local.
    out(false, |p| unsafe { sys::napi_is_typedarray(env, v, p) })
}

/// The type, length, memory and buffer of the typed array `v`.
pub fn typed_array_info(env: sys::napi_env, v: sys::napi_value) -> Res<TypedArrayInfo> {
    let (mut ty, mut len, mut data, mut ab, mut offset) =
        (0, 0, ptr::null_mut(), ptr::null_mut(), 0);
    // SAFETY: out-pointers to locals.
    check(unsafe {
        sys::napi_get_typedarray_info(env, v, &mut ty, &mut len, &mut data, &mut ab, &mut offset)
    })?;
    Ok(TypedArrayInfo {
        ty,
        len,
        data,
        arraybuffer: ab,
    })
}

/// Whether `v` is an `ArrayBuffer` (not a `SharedArrayBuffer`).
pub fn is_arraybuffer(env: sys::napi_env, v: sys::napi_value) -> Res<bool> {
    // SAFETY: an out-pointer to a local.
    out(false, |p| unsafe { sys::napi_is_arraybuffer(env, v, p) })
}

/// Whether the `ArrayBuffer` `ab` is detached.
pub fn is_detached(env: sys::napi_env, ab: sys::napi_value) -> Res<bool> {
    // SAFETY: an out-pointer to a local.
    out(false, |p| unsafe {
        sys::napi_is_detached_arraybuffer(env, ab, p)
    })
}

/// Detaches an external `ArrayBuffer` (its length becomes 0).
pub fn detach(env: sys::napi_env, ab: sys::napi_value) -> Res<()> {
    // SAFETY: a value of this env.
    check(unsafe { sys::napi_detach_arraybuffer(env, ab) })
}
