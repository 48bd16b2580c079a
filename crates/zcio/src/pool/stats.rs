//! A snapshot of a pool's state.

use crate::slots::Counters;

/// A snapshot of a pool's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Usable bytes per buffer.
    pub buffer_size: usize,
    /// Buffers in the pool.
    pub total: u32,
    /// Buffers free to acquire.
    pub available: u32,
    /// Buffers acquired and not in flight.
    pub acquired: u32,
    /// Buffers in flight.
    pub in_flight: u32,
    /// Kernel operations outstanding on the pool.
    pub kernel_ops: u64,
    /// Cumulative counters.
    pub counters: Counters,
}
