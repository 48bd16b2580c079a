//! Which backend a new ring gets: asked for in `RingOptions::backend`, or
//! forced for the whole process by the `ZCIO_BACKEND` environment variable
//! (`epoll`, `io_uring`; `auto` or unset leaves it to the options).

use crate::error::{Error, Result};

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

#[cfg(test)]
mod tests {
    use crate::backend::choice::BackendChoice;

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
