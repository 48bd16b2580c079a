//! How to set up a ring, and what the kernel accepted.

use crate::backend::choice::BackendChoice;
use crate::backend::epoll::blocking::DEFAULT_WORKERS;

/// How to set up a [`Ring`](crate::Ring).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingOptions {
    /// Submission-queue entries (a power of two is used; default 256, max 32768).
    pub entries: u32,
    /// Use a kernel submission thread (`IORING_SETUP_SQPOLL`) that sleeps after
    /// this many idle milliseconds. It costs a kernel thread that spins while
    /// busy. `None` (the default) submits through `io_uring_enter`. io_uring
    /// only: a ring that would run on epoll fails with
    /// [`Error::BackendUnsupported`](crate::Error::BackendUnsupported).
    pub sqpoll_idle_ms: Option<u32>,
    /// The backend (default [`BackendChoice::Auto`]); the `ZCIO_BACKEND`
    /// environment variable overrides it for the process.
    pub backend: BackendChoice,
    /// Worker threads of the epoll backend for file transfers that would
    /// block (default 4; started on demand). Unused on io_uring.
    pub workers: u32,
}

impl Default for RingOptions {
    fn default() -> Self {
        RingOptions {
            entries: 256,
            sqpoll_idle_ms: None,
            backend: BackendChoice::Auto,
            workers: DEFAULT_WORKERS,
        }
    }
}

/// The setup flags the kernel accepted for a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingFeatures {
    /// `IORING_SETUP_SINGLE_ISSUER` (Linux 6.0).
    pub single_issuer: bool,
    /// `IORING_SETUP_DEFER_TASKRUN` (Linux 6.1).
    pub defer_taskrun: bool,
    /// `IORING_SETUP_COOP_TASKRUN` (Linux 5.19).
    pub coop_taskrun: bool,
    /// `IORING_SETUP_TASKRUN_FLAG` (Linux 5.19, with `COOP_TASKRUN`): the
    /// kernel flags deferred completion work in the submission ring, so
    /// [`Ring::has_work`](crate::Ring::has_work) and [`Ring::submit`](crate::Ring::submit) know without a system call
    /// whether there is any.
    pub taskrun_flag: bool,
    /// `IORING_SETUP_SQPOLL`.
    pub sqpoll: bool,
}
