//! Which backend a new ring gets: asked for in `RingOptions::backend`, or forced for the whole process by the
//! `ZCIO_BACKEND` environment variable (`epoll`, `io_uring`; `auto` or unset
//! leaves it to the options).

use super::epoll::Epoll;
use super::uring::Uring;
use super::Backend;
use crate::error::{Error, Result};
use crate::ring::RingOptions;

/// The backend asked for when a ring is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// io_uring where it sets up and supports every operation zcio uses,
    /// else epoll.
    #[default]
    Auto,
    /// io_uring, or an error saying why it can't be had.
    IoUring,
    /// epoll and a thread pool, even where io_uring works.
    Epoll,
}

impl BackendChoice {
    /// Parses `"auto"`, `"io_uring"` or `"epoll"`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming `what` for anything else.
    pub fn parse(value: &str, what: &'static str) -> Result<BackendChoice> {
        match value {
            "auto" => Ok(BackendChoice::Auto),
            "io_uring" => Ok(BackendChoice::IoUring),
            "epoll" => Ok(BackendChoice::Epoll),
            other => Err(Error::InvalidArgument {
                name: what,
                reason: format!("{other:?} is not one of \"auto\", \"io_uring\", \"epoll\""),
            }),
        }
    }

    /// What `ZCIO_BACKEND` forces, if it is set (and not `auto`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a value it can't mean.
    pub fn forced() -> Result<Option<BackendChoice>> {
        match std::env::var("ZCIO_BACKEND") {
            Ok(v) if v.is_empty() => Ok(None),
            Ok(v) => match BackendChoice::parse(&v, "ZCIO_BACKEND")? {
                BackendChoice::Auto => Ok(None),
                c => Ok(Some(c)),
            },
            Err(_) => Ok(None),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::BackendChoice;
    use crate::error::Error;
    use crate::ring::{Ring, RingOptions};

    #[test]
    fn sqpoll_on_epoll_is_refused_naming_the_backend() {
        if BackendChoice::forced().ok().flatten() == Some(BackendChoice::IoUring) {
            eprintln!("SKIPPED: ZCIO_BACKEND=io_uring forces io_uring");
            return;
        }
        let err = Ring::new(RingOptions {
            backend: BackendChoice::Epoll,
            sqpoll_idle_ms: Some(10),
            ..RingOptions::default()
        })
        .err()
        .expect("an epoll ring with sqpoll set up");
        assert!(
            matches!(
                err,
                Error::BackendUnsupported {
                    backend: "epoll",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("sqpoll"), "{err}");
    }

    #[test]
    fn parse_knows_the_three_names() {
        assert_eq!(
            BackendChoice::parse("auto", "b").unwrap(),
            BackendChoice::Auto
        );
        assert_eq!(
            BackendChoice::parse("io_uring", "b").unwrap(),
            BackendChoice::IoUring
        );
        assert_eq!(
            BackendChoice::parse("epoll", "b").unwrap(),
            BackendChoice::Epoll
        );
        assert!(BackendChoice::parse("uring", "b").is_err());
    }
}
