//! JS values the methods hand back, each with the error thrown when it can't
//! be made: typed arrays over memory the core keeps and publishes in place
//! (counts, buffer states, regions), and promises.

use std::rc::Rc;

use napi::bindgen_prelude::*;
use napi::sys;

use crate::error::throw_code;
use crate::raw::external;

/// A typed array over published state: the counts (`Float64Array`) or the
/// buffer states (`Uint8Array`).
pub fn published<'a>(env: &Env, p: Rc<zcio::Published>, states: bool) -> Result<Unknown<'a>> {
    let (ty, data, len, size) = if states {
        let data: *mut u8 = p.states_ptr();
        (
            sys::TypedarrayType::uint8_array,
            data.cast(),
            p.states_len(),
            1,
        )
    } else {
        let data: *mut f64 = p.counts_ptr();
        (
            sys::TypedarrayType::float64_array,
            data.cast(),
            p.counts_len(),
            8,
        )
    };
    // SAFETY: the cells stay valid while the boxed `Rc` lives.
    let v = unsafe { external::typed_array(env.raw(), ty, data, len, size, Box::new(p)) };
    external_or_throw(env, v)
}

/// Wraps a value made by `external::typed_array`, or throws.
pub fn external_or_throw<'a>(env: &Env, v: Option<sys::napi_value>) -> Result<Unknown<'a>> {
    match v {
        // SAFETY: a value of this env.
        Some(v) => Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), v) }),
        None => Err(throw_code(
            env,
            "ERR_ZCIO_EXTERNAL_BUFFERS_UNSUPPORTED",
            "this runtime refuses external ArrayBuffers (Electron's V8 sandbox); \
             zcio's zero-copy views can't work here",
        )),
    }
}

/// A new promise and its deferred, or throws (`ERR_ZCIO_NAPI`).
pub fn new_promise(env: &Env) -> Result<(sys::napi_deferred, sys::napi_value)> {
    crate::raw::napi::promise(env.raw())
        .map_err(|_| throw_code(env, "ERR_ZCIO_NAPI", "creating a promise failed"))
}
