//! Operations in flight: one typed struct per kind, each in a file of its
//! own, owning everything the kernel uses for it.
//!
//! An op is built by whatever starts it (a pool, a buffer group, a socket),
//! stored in the ring's table under its `user_data`, and ended by its
//! completions: [`Op::update`] for those that say more will follow
//! (`IORING_CQE_F_MORE`: multishot receives and accepts, a zero-copy send's
//! first completion), [`Op::complete`] for the final one, after which the
//! ring drops it. Each op gives the backend the form it needs: an io_uring
//! submission entry ([`Op::uring_entry`]), or, for the epoll backend, an
//! [`Op::attempt`] that makes the system call without blocking and says
//! what to wait for when it would block (see `poll`).
//!
//! The rule of this module: memory the kernel sees lives on the heap (a
//! pool's or group's mapping held through an `Rc`, a `Box`), never inline in
//! an op, because the ring's table stores ops by value and moves them when
//! it grows. An op built from raw pointers is built by an `unsafe`
//! constructor whose caller guarantees the memory until the final
//! completion; every other op owns what it points at.

//! One file per concept besides the ops: the enum of them all (`dispatch`),
//! their kinds (`kind`), a completion as an op sees it (`completion`), what
//! an op's memory and socket owners do (`owner`), the readiness form
//! (`poll`), the flags of zero-copy sends (`zc_flags`).

pub(crate) mod accept;
pub(crate) mod completion;
pub(crate) mod connect;
pub(crate) mod dispatch;
pub(crate) mod fixed_rw;
pub(crate) mod kind;
#[cfg(test)]
pub(crate) mod nop;
pub(crate) mod owner;
pub(crate) mod poll;
pub(crate) mod recv;
pub(crate) mod send;
pub(crate) mod send_msg;
pub(crate) mod zc_flags;

pub use kind::OpKind;
