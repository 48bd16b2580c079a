//! Node-style errors: `code`, `errno`, `syscall`, thrown or handed to a promise.

use std::ptr;

use napi::{sys, Env, Status};

/// Builds the JS error for a core error (null if the env can't make one).
pub fn to_js(env: sys::napi_env, err: &zcio::Error) -> sys::napi_value {
    let code = err.code();
    let message = match (err.errno(), err.syscall()) {
        (Some(errno), Some(syscall)) if matches!(err, zcio::Error::Sys { .. }) => {
            let text = std::io::Error::from_raw_os_error(errno).to_string();
            let text = text
                .split(" (os error")
                .next()
                .unwrap_or(&text)
                .to_lowercase();
            format!("{code}: {text}, {syscall}")
        }
        _ => err.to_string(),
    };
    let mut value = ptr::null_mut();
    // SAFETY: `env` is the current env; all strings are created by napi.
    unsafe {
        let code_js = string(env, code);
        let msg_js = string(env, &message);
        let status = match code {
            "ERR_INVALID_ARG_VALUE" => {
                sys::napi_create_type_error(env, code_js, msg_js, &mut value)
            }
            "ERR_OUT_OF_RANGE" => sys::napi_create_range_error(env, code_js, msg_js, &mut value),
            _ => sys::napi_create_error(env, code_js, msg_js, &mut value),
        };
        if status != sys::Status::napi_ok {
            return ptr::null_mut();
        }
        if let Some(errno) = err.errno() {
            let mut n = ptr::null_mut();
            sys::napi_create_int32(env, -errno, &mut n);
            sys::napi_set_named_property(env, value, c"errno".as_ptr(), n);
        }
        if let Some(syscall) = err.syscall() {
            sys::napi_set_named_property(env, value, c"syscall".as_ptr(), string(env, syscall));
        }
    }
    value
}

/// Creates a JS string.
///
/// # Safety
///
/// `env` must be the current env.
pub unsafe fn string(env: sys::napi_env, s: &str) -> sys::napi_value {
    let mut v = ptr::null_mut();
    // SAFETY: s points at s.len() bytes of UTF-8.
    unsafe { sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut v) };
    v
}

/// Throws `err` as a Node-style JS error and returns the napi-rs error that
/// tells the generated glue an exception is already pending.
pub fn throw(env: &Env, err: zcio::Error) -> napi::Error {
    let value = to_js(env.raw(), &err);
    if !value.is_null() {
        // SAFETY: `value` is an error object of this env.
        unsafe { sys::napi_throw(env.raw(), value) };
    }
    napi::Error::new(Status::PendingException, err.to_string())
}

/// Throws a plain `Error` with `code` (for failures outside the core).
pub fn throw_code(env: &Env, code: &str, message: &str) -> napi::Error {
    let raw = env.raw();
    let mut value = ptr::null_mut();
    // SAFETY: napi calls on the current env with values it creates.
    unsafe {
        sys::napi_create_error(raw, string(raw, code), string(raw, message), &mut value);
        sys::napi_throw(raw, value);
    }
    napi::Error::new(Status::PendingException, message.to_owned())
}

/// `Result` adapter: `core_call().or_throw(&env)?`.
pub trait OrThrow<T> {
    fn or_throw(self, env: &Env) -> napi::Result<T>;
}

impl<T> OrThrow<T> for Result<T, zcio::Error> {
    fn or_throw(self, env: &Env) -> napi::Result<T> {
        self.map_err(|e| throw(env, e))
    }
}

/// Checks that a JS number is an integer in `0..=max`; `range` selects
/// `ERR_OUT_OF_RANGE` (for indices and offsets) over `ERR_INVALID_ARG_VALUE`
/// (for sizes).
pub fn int_arg(
    env: &Env,
    name: &'static str,
    value: f64,
    max: f64,
    range: bool,
) -> napi::Result<u64> {
    if value.fract() == 0.0 && value >= 0.0 && value <= max {
        return Ok(value as u64);
    }
    let reason = format!("it must be an integer >= 0 and <= {max}. Received {value}");
    Err(throw(
        env,
        if range {
            zcio::Error::OutOfRange { name, reason }
        } else {
            zcio::Error::InvalidArgument { name, reason }
        },
    ))
}

/// Throws a core error as a Node-style JS error (raw env).
pub fn throw_core(env: sys::napi_env, err: &zcio::Error) {
    let value = to_js(env, err);
    if !value.is_null() {
        // SAFETY: `value` is an error object of this env.
        unsafe { sys::napi_throw(env, value) };
    }
}

/// Throws an `Error` (or `TypeError`) with `code` (raw env).
pub fn throw_raw(env: sys::napi_env, code: &str, message: &str, type_error: bool) {
    let mut value = ptr::null_mut();
    // SAFETY: napi calls on the current env with values it creates.
    unsafe {
        let (c, m) = (string(env, code), string(env, message));
        if type_error {
            sys::napi_create_type_error(env, c, m, &mut value);
        } else {
            sys::napi_create_error(env, c, m, &mut value);
        }
        sys::napi_throw(env, value);
    }
}
