//! `BufferGroup`: a provided-buffer ring (`IORING_REGISTER_PBUF_RING`, Linux
//! 5.19) over one contiguous block of equal buffers, from which the kernel
//! picks a buffer when data arrives.
//!
//! Ownership of each buffer id (bid) is tracked here: a bid is either in the
//! kernel's ring (*available*) or handed back by a completion and waiting for
//! the application to release every chunk cut from it (*held*). With
//! incremental consumption (`IOU_PBUF_RING_INC`, Linux 6.12) the kernel fills
//! one buffer across several receives; the bid stays in the kernel's ring
//! until a completion without `IORING_CQE_F_BUF_MORE`, and returns to the
//! ring only once every chunk of it is released.

//!
//! One file per concept: the group (`buffer_group`), its options and limits
//! (`options`), the kernel's ring of provided buffers (`provider`), the
//! indices of its published counts (`group_counts`).

pub(crate) mod buffer_group;
pub mod group_counts;
pub(crate) mod options;
mod provider;
#[cfg(test)]
mod tests;

pub use buffer_group::BufferGroup;
pub use options::{GroupOptions, MAX_GROUP_BUFFERS, MAX_GROUP_BUFFER_SIZE};
