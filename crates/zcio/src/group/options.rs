//! How to make a buffer group, and its limits.

/// The largest buffer of a group: the kernel's per-buffer length is a `u32`,
/// and one receive transfers at most `INT_MAX` bytes.
pub const MAX_GROUP_BUFFER_SIZE: usize = 1 << 30;
/// The most buffers a group may have (the kernel's limit on ring entries).
pub const MAX_GROUP_BUFFERS: u32 = 32768;

/// How to make a [`BufferGroup`](crate::BufferGroup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupOptions {
    /// The group id receives name (`buf_group`), unique per ring.
    pub group_id: u16,
    /// Bytes per buffer, 1 to 1 GiB.
    pub buffer_size: usize,
    /// Buffers, a power of two up to 32768.
    pub buffer_count: u32,
    /// Incremental consumption (`IOU_PBUF_RING_INC`, Linux 6.12).
    pub incremental: bool,
}
