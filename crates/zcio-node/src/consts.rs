//! The numbers the JavaScript layer shares with the core, exported so that
//! the layer reads them from here instead of copying them: the indices of
//! the published counts, the buffer state bytes, the CQE flags the layer
//! tests, and the size limits it checks before calling in.

use napi_derive::napi;

use crate::args;

/// Ring counts: operations queued or in flight (`zcio::ring_counts`).
#[napi]
pub const RING_COUNT_IN_FLIGHT: u32 = zcio::ring_counts::IN_FLIGHT as u32;
/// Ring counts: operations queued, not yet handed to the kernel.
#[napi]
pub const RING_COUNT_PENDING: u32 = zcio::ring_counts::PENDING as u32;
/// Ring counts: 1 once the ring is closed.
#[napi]
pub const RING_COUNT_CLOSED: u32 = zcio::ring_counts::CLOSED as u32;

/// Pool counts: buffers in the pool (`zcio::pool_counts`).
#[napi]
pub const POOL_COUNT_TOTAL: u32 = zcio::pool_counts::TOTAL as u32;
/// Pool counts: buffers free to acquire.
#[napi]
pub const POOL_COUNT_AVAILABLE: u32 = zcio::pool_counts::AVAILABLE as u32;
/// Pool counts: buffers acquired and not in flight.
#[napi]
pub const POOL_COUNT_ACQUIRED: u32 = zcio::pool_counts::ACQUIRED as u32;
/// Pool counts: buffers in flight.
#[napi]
pub const POOL_COUNT_IN_FLIGHT: u32 = zcio::pool_counts::IN_FLIGHT as u32;
/// Pool counts: kernel operations outstanding on the pool.
#[napi]
pub const POOL_COUNT_KERNEL_OPS: u32 = zcio::pool_counts::KERNEL_OPS as u32;
/// Pool counts: successful acquisitions (cumulative).
#[napi]
pub const POOL_COUNT_ACQUIRES: u32 = zcio::pool_counts::ACQUIRES as u32;
/// Pool counts: acquisitions refused, the pool exhausted (cumulative).
#[napi]
pub const POOL_COUNT_EXHAUSTED: u32 = zcio::pool_counts::EXHAUSTED as u32;
/// Pool counts: releases (cumulative).
#[napi]
pub const POOL_COUNT_RELEASES: u32 = zcio::pool_counts::RELEASES as u32;
/// Pool counts: kernel operations submitted (cumulative).
#[napi]
pub const POOL_COUNT_SUBMITTED: u32 = zcio::pool_counts::SUBMITTED as u32;
/// Pool counts: kernel operations completed (cumulative).
#[napi]
pub const POOL_COUNT_COMPLETED: u32 = zcio::pool_counts::COMPLETED as u32;
/// Pool counts: kernel operations that failed (cumulative).
#[napi]
pub const POOL_COUNT_FAILED: u32 = zcio::pool_counts::FAILED as u32;
/// Pool counts: 1 once the pool is closed (by itself or with its ring).
#[napi]
pub const POOL_COUNT_CLOSED: u32 = zcio::pool_counts::CLOSED as u32;

/// A buffer's state byte: in the free list (`zcio::buffer_state`).
#[napi]
pub const BUFFER_FREE: u32 = zcio::buffer_state::FREE as u32;
/// A buffer's state byte: acquired, not in flight.
#[napi]
pub const BUFFER_ACQUIRED: u32 = zcio::buffer_state::ACQUIRED as u32;
/// A buffer's state byte: in flight.
#[napi]
pub const BUFFER_IN_FLIGHT: u32 = zcio::buffer_state::IN_FLIGHT as u32;

/// Group counts: buffers in the group (`zcio::group_counts`).
#[napi]
pub const GROUP_COUNT_BUFFERS: u32 = zcio::group_counts::BUFFERS as u32;
/// Group counts: buffers in the kernel's ring, or free after close.
#[napi]
pub const GROUP_COUNT_AVAILABLE: u32 = zcio::group_counts::AVAILABLE as u32;
/// Group counts: buffers handed back whose chunks are not all released.
#[napi]
pub const GROUP_COUNT_HELD: u32 = zcio::group_counts::HELD as u32;
/// Group counts: chunks received and not yet released.
#[napi]
pub const GROUP_COUNT_CHUNKS: u32 = zcio::group_counts::CHUNKS as u32;
/// Group counts: receives that found no buffer (cumulative).
#[napi]
pub const GROUP_COUNT_ENOBUFS: u32 = zcio::group_counts::ENOBUFS as u32;
/// Group counts: multishot receives re-armed (cumulative).
#[napi]
pub const GROUP_COUNT_REARMS: u32 = zcio::group_counts::REARMS as u32;
/// Group counts: receive operations in flight.
#[napi]
pub const GROUP_COUNT_RECEIVES: u32 = zcio::group_counts::RECEIVES as u32;
/// Group counts: 1 once the group is closed (by itself or with its ring).
#[napi]
pub const GROUP_COUNT_CLOSED: u32 = zcio::group_counts::CLOSED as u32;

// The CQE flags are the kernel's (`IORING_CQE_F_*` in
// include/uapi/linux/io_uring.h): the driver hands them to the layer as the
// kernel wrote them.

/// `IORING_CQE_F_BUFFER`: the upper 16 bits carry a provided buffer's id.
#[napi]
pub const CQE_F_BUFFER: u32 = 1 << 0;
/// `IORING_CQE_F_MORE`: more completions of the operation follow.
#[napi]
pub const CQE_F_MORE: u32 = 1 << 1;
/// `IORING_CQE_F_NOTIF`: a zero-copy send's notification.
#[napi]
pub const CQE_F_NOTIF: u32 = 1 << 3;
/// `IORING_CQE_F_BUF_MORE`: the kernel keeps filling the same buffer.
#[napi]
pub const CQE_F_BUF_MORE: u32 = 1 << 4;

/// Most submission queue entries a ring may ask for.
#[napi]
pub const RING_MAX_ENTRIES: u32 = args::MAX_RING_ENTRIES as u32;
/// Largest pool buffer (`zcio::MAX_BUFFER_SIZE`).
#[napi]
pub const POOL_MAX_BUFFER_SIZE: u32 = zcio::MAX_BUFFER_SIZE as u32;
/// Most buffers a ring's table holds (`zcio::MAX_REGISTERED_BUFFERS`).
#[napi]
pub const POOL_MAX_BUFFERS: u32 = zcio::MAX_REGISTERED_BUFFERS;
/// Largest group buffer (`zcio::MAX_GROUP_BUFFER_SIZE`).
#[napi]
pub const GROUP_MAX_BUFFER_SIZE: u32 = zcio::MAX_GROUP_BUFFER_SIZE as u32;
/// Most buffers in a group (`zcio::MAX_GROUP_BUFFERS`).
#[napi]
pub const GROUP_MAX_BUFFERS: u32 = zcio::MAX_GROUP_BUFFERS;

/// A lean `readFixed`/`writeFixed` done in the call (see
/// `zcio::RegisteredBufferPool::read_fixed_now`) returns
/// `-1 - FIXED_DONE_BASE - result` instead of a slot: always negative, as
/// results are at least -4095.
#[napi]
pub const FIXED_DONE_BASE: u32 = 4096;
