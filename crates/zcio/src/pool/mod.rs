//! `RegisteredBufferPool`: page-aligned memory registered once as io_uring
//! fixed buffers, lent to the kernel by READ_FIXED / WRITE_FIXED.
//!
//! One file per concept: the pool (`registered`), queuing its operations
//! (`submit`), doing them at once where the backend can (`now`), what its operations share (`shared`), its memory (`region`),
//! its statistics (`stats`).

mod now;
pub(crate) mod region;
pub(crate) mod registered;
pub(crate) mod shared;
pub(crate) mod stats;
mod submit;

pub use now::{Started, NOW_MAX_LEN};
pub use region::Region;
pub use registered::{BufMut, BufRef, RegisteredBufferPool, MAX_BUFFER_SIZE};
pub use stats::PoolStats;
