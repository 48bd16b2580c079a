//! The limits the binding puts on JS numbers, in one place, and the checks of
//! raw arguments for the lean pool calls (napi-rs's generated glue converts
//! the others; `error::int_arg` checks those against these limits).

use napi::sys;

use crate::error;
use crate::raw::napi as raw;

/// Largest fd Node accepts (`2 ** 31 - 1`).
pub const MAX_FD: f64 = 2147483647.0;
/// `Number.MAX_SAFE_INTEGER`: file positions, RDMA addresses, offsets and
/// work request ids.
pub const MAX_SAFE_INTEGER: f64 = 9007199254740991.0;
/// Largest file position.
pub const MAX_POSITION: f64 = MAX_SAFE_INTEGER;
/// A buffer index, length or offset, or a size or count.
pub const MAX_U32: f64 = u32::MAX as f64;
/// A count bounded by a C `int` (listen backlog, CQ entries) or an fd.
pub const MAX_I32: f64 = i32::MAX as f64;
/// A TCP port or a buffer group id.
pub const MAX_U16: f64 = 65535.0;
/// Most submission queue entries a ring may ask for.
pub const MAX_RING_ENTRIES: f64 = 32768.0;
/// Longest busy poll, in microseconds.
pub const MAX_BUSY_POLL_US: f64 = 100_000.0;
/// Most worker threads an epoll-backend ring may ask for.
pub const MAX_WORKERS: f64 = 64.0;

/// The most elements one batch call may queue: queueing is synchronous, and
/// a call must not hold the event loop for long (16384 elements take a few
/// milliseconds).
pub const MAX_BATCH: usize = 16384;

/// A JS number that is an integer in `0..=max`, or throws
/// (`ERR_INVALID_ARG_TYPE` / `ERR_OUT_OF_RANGE`) and returns `None`.
pub fn int(env: sys::napi_env, v: sys::napi_value, name: &'static str, max: f64) -> Option<u64> {
    let Ok(x) = raw::value_double(env, v) else {
        error::throw_raw(
            env,
            "ERR_INVALID_ARG_TYPE",
            &format!("The \"{name}\" argument must be of type number"),
            true,
        );
        return None;
    };
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

/// `(fd, index, position, length, bufferOffset)` checked, or `None` (thrown).
pub fn op_args(
    env: sys::napi_env,
    a: &[sys::napi_value; 5],
) -> Option<(i32, u32, u64, usize, usize)> {
    let fd = int(env, a[0], "fd", MAX_FD)? as i32;
    let index = int(env, a[1], "index", MAX_U32)? as u32;
    let position = int(env, a[2], "position", MAX_POSITION)?;
    let length = int(env, a[3], "length", MAX_U32)? as usize;
    // A failed `typeof` reads as `undefined` (no offset).
    let given = raw::type_of(env, a[4]).is_ok_and(|t| t != sys::ValueType::napi_undefined);
    let boff = if given {
        int(env, a[4], "bufferOffset", MAX_U32)? as usize
    } else {
        0
    };
    Some((fd, index, position, length, boff))
}

/// An integer in `0..=Number.MAX_SAFE_INTEGER` (an RDMA work request id,
/// address, size or offset), or throws `ERR_OUT_OF_RANGE`.
pub fn safe_integer(env: &napi::Env, name: &'static str, v: f64) -> napi::Result<u64> {
    error::int_arg(env, name, v, MAX_SAFE_INTEGER, true)
}
