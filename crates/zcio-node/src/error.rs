//! Node-style errors: `code`, `errno`, `syscall`, thrown or handed to a promise.

use std::ptr;

use napi::{sys, Env, Status};

/// The class of a JS error.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Error,
    TypeError,
    RangeError,
}

/// The Node-style `code` of a core error and the class of its JS error:
/// the errno name for kernel errors (`EBADF`), `ERR_INVALID_ARG_VALUE`
/// (`TypeError`) / `ERR_OUT_OF_RANGE` (`RangeError`) for bad arguments,
/// `ERR_ZCIO_*` for the rest. Every variant is listed: a new one does not
/// compile until it has its code (and the README's table of codes, checked by
/// `__test__/readme.spec.ts`, names it).
fn code_and_class(err: &zcio::Error) -> (&'static str, Class) {
    use zcio::Error as E;
    let code = match err {
        E::Sys { source, .. } => zcio::errno_name(source.raw_os_error().unwrap_or(0)),
        E::Memlock { .. } => "ENOMEM",
        E::InvalidArgument { .. } => return ("ERR_INVALID_ARG_VALUE", Class::TypeError),
        E::OutOfRange { .. } => return ("ERR_OUT_OF_RANGE", Class::RangeError),
        E::UringUnavailable { .. } => "ERR_ZCIO_URING_UNAVAILABLE",
        E::PoolExhausted { .. } => "ERR_ZCIO_POOL_EXHAUSTED",
        E::NotAcquired { .. } => "ERR_ZCIO_NOT_ACQUIRED",
        E::BufferInFlight { .. } => "ERR_ZCIO_BUFFER_IN_FLIGHT",
        E::NotInFlight { .. } => "ERR_ZCIO_NOT_IN_FLIGHT",
        E::Borrowed { .. } => "ERR_ZCIO_BUFFER_BORROWED",
        E::Closed { .. } => "ERR_ZCIO_CLOSED",
        E::FdInUse { .. } => "ERR_ZCIO_FD_IN_USE",
        E::WrongThread => "ERR_ZCIO_WRONG_THREAD",
        E::Unsupported { .. } | E::BackendUnsupported { .. } => "ERR_ZCIO_UNSUPPORTED",
        E::GroupInUse { .. } => "ERR_ZCIO_GROUP_IN_USE",
        E::TableFull { .. } => "ERR_ZCIO_TABLE_FULL",
        E::RdmaUnavailable { .. } => "ERR_ZCIO_RDMA_UNAVAILABLE",
        E::MrInUse { .. } => "ERR_ZCIO_MR_IN_USE",
        E::CqInUse { .. } => "ERR_ZCIO_CQ_IN_USE",
        E::PdInUse { .. } => "ERR_ZCIO_PD_IN_USE",
        E::ContextInUse { .. } => "ERR_ZCIO_CONTEXT_IN_USE",
        E::CqFull { .. } => "ERR_ZCIO_CQ_FULL",
    };
    (code, Class::Error)
}

/// The JS error's message: for a kernel error as Node words its own
/// (`EBADF: bad file descriptor, read`), else the core's text.
fn message(err: &zcio::Error, code: &str) -> String {
    if let zcio::Error::Sys { call, source } = err {
        if let Some(errno) = source.raw_os_error() {
            let text = std::io::Error::from_raw_os_error(errno).to_string();
            let text = text
                .split(" (os error")
                .next()
                .unwrap_or(&text)
                .to_lowercase();
            return format!("{code}: {text}, {call}");
        }
    }
    err.to_string()
}

/// Builds the JS error for a core error (null if the env can't make one).
pub fn to_js(env: sys::napi_env, err: &zcio::Error) -> sys::napi_value {
    let (code, class) = code_and_class(err);
    let message = message(err, code);
    let mut value = ptr::null_mut();
    // SAFETY: `env` is the current env; all strings are created by napi.
    unsafe {
        let code_js = string(env, code);
        let msg_js = string(env, &message);
        let status = match class {
            Class::TypeError => sys::napi_create_type_error(env, code_js, msg_js, &mut value),
            Class::RangeError => sys::napi_create_range_error(env, code_js, msg_js, &mut value),
            Class::Error => sys::napi_create_error(env, code_js, msg_js, &mut value),
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

#[cfg(test)]
mod tests {
    use super::{code_and_class, message, Class};

    #[test]
    fn codes_classes_and_messages_are_node_style() {
        let e = zcio::Error::Sys {
            call: "read",
            source: std::io::Error::from_raw_os_error(libc::EBADF),
        };
        assert_eq!(code_and_class(&e), ("EBADF", Class::Error));
        assert_eq!(message(&e, "EBADF"), "EBADF: bad file descriptor, read");
        let e = zcio::Error::InvalidArgument {
            name: "size",
            reason: "it must be > 0".into(),
        };
        assert_eq!(
            code_and_class(&e),
            ("ERR_INVALID_ARG_VALUE", Class::TypeError)
        );
        assert_eq!(message(&e, "x"), "invalid value for size: it must be > 0");
        let e = zcio::Error::OutOfRange {
            name: "index",
            reason: "7".into(),
        };
        assert_eq!(code_and_class(&e), ("ERR_OUT_OF_RANGE", Class::RangeError));
        let e = zcio::Error::from(zcio::UringUnavailable::Enosys);
        assert_eq!(code_and_class(&e).0, "ERR_ZCIO_URING_UNAVAILABLE");
        let e = zcio::Error::BackendUnsupported {
            feature: "SQPOLL",
            backend: "epoll",
        };
        assert_eq!(code_and_class(&e), ("ERR_ZCIO_UNSUPPORTED", Class::Error));
        assert_eq!(
            code_and_class(&zcio::Error::CqFull {
                capacity: 1,
                pending: 1
            })
            .0,
            "ERR_ZCIO_CQ_FULL"
        );
    }
}
