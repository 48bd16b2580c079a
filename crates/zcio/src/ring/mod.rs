//! A ring: the table of operations in flight of one thread, and its close
//! policy, over a backend (io_uring, or epoll and a thread pool).
//!
//! One file per concept: the ring and its shared state (`handle`), its
//! options (`options`), what a finished operation looks like
//! (`completion`), reaping completions (`reap`), closing (`close`,
//! `close_hook`); the table itself is `table.rs`, the backends `backend/`.

pub(crate) mod close;
pub(crate) mod close_hook;
pub(crate) mod completion;
#[cfg(test)]
mod fake_tests;
pub(crate) mod handle;
pub(crate) mod options;
mod reap;
#[cfg(test)]
mod tests;

pub use completion::Completion;
pub use handle::Ring;
pub use options::{RingFeatures, RingOptions};
