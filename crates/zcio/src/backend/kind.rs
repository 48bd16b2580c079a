//! Which backend a ring runs on.

use std::fmt;

/// Which backend a ring runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// io_uring: the kernel runs each operation from its submission entry.
    IoUring,
    /// epoll and a thread pool: readiness for sockets, pipes and the like;
    /// file reads and writes tried at once without blocking, else on a
    /// worker thread.
    Epoll,
}

impl BackendKind {
    /// `"io_uring"` or `"epoll"`.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::IoUring => "io_uring",
            BackendKind::Epoll => "epoll",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
