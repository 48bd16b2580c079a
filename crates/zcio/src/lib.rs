//! Zero-copy I/O for Linux: memory registered once with io_uring, lent to the
//! kernel by fixed-buffer operations and read or written in place by the
//! program, with every hand-over checked.
//!
//! - [`Ring`]: an io_uring owned by one thread (`SINGLE_ISSUER |
//!   DEFER_TASKRUN` where available), with an eventfd for event loops.
//! - [`RegisteredBufferPool`]: page-aligned buffers registered as io_uring
//!   fixed buffers, used by `READ_FIXED` / `WRITE_FIXED`.
//! - [`probe`]: what the running kernel supports.
//!
//! # Quick start
//!
//! ```no_run
//! use std::os::fd::AsRawFd;
//! use zcio::{Ring, RingOptions, RegisteredBufferPool};
//!
//! # fn main() -> zcio::Result<()> {
//! let ring = Ring::new(RingOptions::default())?;
//! let pool = RegisteredBufferPool::new(&ring, 4096, 64)?;
//! let file = std::fs::File::open("/etc/hostname").unwrap();
//!
//! let index = pool.acquire()?;
//! pool.read_fixed(file.as_raw_fd(), index, 0, 4096, 0)?;
//! ring.submit_and_wait(1)?;
//! let mut done = Vec::new();
//! ring.reap(&mut done);
//! let n = done[0].into_result()? as usize;
//! println!("{:?}", &pool.get(index)?[..n]);
//! pool.release(index)?;
//! # Ok(()) }
//! ```
//!
//! # Ownership
//!
//! A buffer is *free*, *acquired* (the program owns it) or *in flight* (the
//! kernel, or whoever the program lent it to, owns it). Submitting an
//! operation makes the buffer in flight and stores the pool in the ring's
//! operation table until the completion is reaped, so the memory can't be
//! unmapped or unregistered under the kernel, whatever the program drops.
//! Borrowing ([`RegisteredBufferPool::get`]), releasing and closing are refused
//! while a buffer is in flight. See `DESIGN.md` in the repository.
//!
//! # Requirements
//!
//! Linux 5.13 or later with io_uring enabled (`kernel.io_uring_disabled=0`, no
//! seccomp filter blocking `io_uring_*`; Docker's default profile blocks it).
//! Registered memory counts against `RLIMIT_MEMLOCK` for processes without
//! `CAP_IPC_LOCK`.
#![cfg(target_os = "linux")]
#![warn(missing_docs)]

#[macro_use]
mod sys;
mod buf_table;
mod error;
mod pool;
mod probe;
mod published;
mod ring;
mod slots;

pub use buf_table::MAX_REGISTERED_BUFFERS;
pub use error::{errno_name, Error, Result};
pub use pool::{BufMut, BufRef, PoolStats, Region, RegisteredBufferPool, MAX_BUFFER_SIZE};
pub use probe::{probe, ProbeReport};
pub use published::{buffer_state, pool_counts, ring_counts, Published};
pub use ring::{Completion, OpKind, Ring, RingFeatures, RingOptions};
pub use slots::Counters;
