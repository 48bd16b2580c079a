//! The epoll backend: where io_uring is refused (a seccomp profile, the
//! `kernel.io_uring_disabled` sysctl, qemu-user, gVisor), the same ops run
//! as non-blocking system calls driven by readiness, and file transfers that
//! would block run on a few worker threads.
//!
//! The ops are the same typed ops as on io_uring (see `op`), attempted in
//! their readiness form; their completions are posted in the same shape the
//! kernel would post them (result, `IORING_CQE_F_*` flags), so the ring's
//! one delivery path, the buffer states and the binding do not know which
//! backend ran them. The descriptor an event loop watches is the epoll
//! instance itself: it is readable whenever a descriptor it watches is
//! ready, or a worker finished a job (its eventfd is in the set).
//!
//! Ownership is the io_uring backend's: an op and the memory it owns stay in
//! the ring's table until its final completion has been taken — for a
//! worker's job, until the thread's result is taken here; for a zero-copy
//! send, until the error queue notified every send call it made.

//!
//! One file per concept: the backend itself (`instance`), readiness and
//! zero-copy bookkeeping (`reactor`), running ops (`run`), cancelling them
//! (`cancel`), the worker threads for file transfers (`blocking`).

pub(crate) mod blocking;
mod cancel;
pub(crate) mod instance;
mod reactor;
mod run;
