//! Indices of a group's published counts ([`Published::count`](crate::Published::count)).

/// Buffers in the group.
pub const BUFFERS: usize = 0;
/// Buffers in the kernel's ring (it may fill them), or free after close.
pub const AVAILABLE: usize = 1;
/// Buffers the kernel handed back whose chunks are not all released.
pub const HELD: usize = 2;
/// Chunks received and not yet released.
pub const CHUNKS: usize = 3;
/// Receives that found no buffer (`ENOBUFS`), cumulative.
pub const ENOBUFS: usize = 4;
/// Multishot receives re-armed after the kernel ended them, cumulative.
pub const REARMS: usize = 5;
/// Receive operations in flight.
pub const RECEIVES: usize = 6;
/// 1 once the group is closed (by itself or with its ring), else 0.
pub const CLOSED: usize = 7;
/// Number of cells.
pub const LEN: usize = 8;
