//! The io_uring backend: the kernel runs each operation from its submission
//! entry and posts its completions; an eventfd registered with the ring is
//! signalled when it does.
//!
//! One file per concern: setup, queuing entries (`submit`), `io_uring_enter`
//! (`enter`), the registered-buffer table (`buf_table`, `buffers`).
//! The backend itself is `instance`; `busy` is what a call the kernel kept
//! refusing as busy returns.

pub(crate) mod buf_table;
mod buffers;
mod busy;
pub(crate) mod enter;
pub(crate) mod instance;
mod setup;
pub(crate) mod submit;
