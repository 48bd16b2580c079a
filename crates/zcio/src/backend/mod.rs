//! What runs the operations: the kernel's io_uring, or (where io_uring is
//! refused) an epoll reactor with a small thread pool. The ring's table and
//! close policy sit above either; each op offers the form each needs.
//!
//! One file per concept: which backend a ring runs on (`kind`), which one it
//! asks for (`choice`) and gets (`select`), one completion as a backend posts
//! it (`raw_cqe`), the calls that go to either (`dispatch`).

pub(crate) mod choice;
pub(crate) mod dispatch;
pub(crate) mod epoll;
#[cfg(test)]
pub(crate) mod fake;
pub(crate) mod kind;
pub(crate) mod raw_cqe;
pub(crate) mod select;
pub(crate) mod uring;

pub use choice::BackendChoice;
pub use kind::BackendKind;
