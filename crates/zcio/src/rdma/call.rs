//! Calling libibverbs: the loaded library, and the errors of its calls.

use super::sys;
use crate::error::{Error, Result};

/// [`Error::RdmaUnavailable`] with `reason`.
pub(super) fn unavailable(reason: impl Into<String>) -> Error {
    Error::RdmaUnavailable {
        reason: reason.into(),
    }
}

/// libibverbs, loaded on first use.
pub(super) fn verbs() -> Result<&'static sys::Verbs> {
    sys::verbs().map_err(unavailable)
}

/// The errno of the last failed call, as a `Sys` error of `call`.
pub(super) fn last_error(call: &'static str) -> Error {
    Error::sys(call, std::io::Error::last_os_error())
}

/// A verbs call that returns an errno (0 on success).
pub(super) fn check(call: &'static str, rc: i32) -> Result<()> {
    match rc {
        0 => Ok(()),
        e if e > 0 => Err(Error::sys(call, std::io::Error::from_raw_os_error(e))),
        _ => Err(last_error(call)),
    }
}
