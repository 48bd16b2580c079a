//! Which backend a new ring gets, from its options and the environment.

use super::choice::BackendChoice;
use super::dispatch::Backend;
use super::epoll::instance::Epoll;
use super::uring::instance::Uring;
use crate::error::{Error, Result};
use crate::ring::options::RingOptions;

/// The choice a ring set up with `choice` makes (the environment first).
///
/// # Errors
///
/// As [`BackendChoice::forced`].
pub(crate) fn effective(choice: BackendChoice) -> Result<BackendChoice> {
    Ok(BackendChoice::forced()?.unwrap_or(choice))
}

/// Sets up the backend for `options`: with `Auto`, io_uring where it sets
/// up and supports the operations zcio uses (a kernel that sets io_uring up
/// and then refuses the opcodes, as gVisor's does, gets epoll), else epoll.
///
/// # Errors
///
/// [`Error::UringUnavailable`] (and the other setup errors) when io_uring
/// was asked for; [`Error::BackendUnsupported`] when the ring would end up
/// on epoll with `sqpoll_idle_ms` set (a kernel submission thread is
/// io_uring's alone); [`Error::Sys`] when even epoll can't be set up.
pub(crate) fn setup(options: RingOptions) -> Result<Backend> {
    let epoll = || {
        if options.sqpoll_idle_ms.is_some() {
            return Err(Error::BackendUnsupported {
                feature: "a kernel submission thread (sqpoll)",
                backend: "epoll",
            });
        }
        Ok(Backend::Epoll(Epoll::new(options.workers)?))
    };
    match effective(options.backend)? {
        BackendChoice::IoUring => Ok(Backend::Uring(Uring::new(options)?)),
        BackendChoice::Epoll => epoll(),
        BackendChoice::Auto => match Uring::new(options) {
            Ok(u) if u.supports_zcio() => Ok(Backend::Uring(u)),
            Ok(u) => {
                u.close();
                epoll()
            }
            Err(Error::UringUnavailable { .. }) => epoll(),
            Err(e) => Err(e),
        },
    }
}
