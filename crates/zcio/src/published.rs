//! State the core publishes in place, for bindings that read it without a call.
//!
//! A binding (the Node one) maps these cells into its runtime once, as typed
//! arrays over the same memory, and reads counts and buffer states from there:
//! a property read instead of a call across the language boundary. The core
//! stays the only writer; the cells only mirror what its bookkeeping decided.

use std::cell::Cell;
use std::rc::Rc;

/// Indices of a pool's counts ([`Published::count`]).
pub mod pool_counts {
    /// Buffers in the pool.
    pub const TOTAL: usize = 0;
    /// Buffers free to acquire.
    pub const AVAILABLE: usize = 1;
    /// Buffers acquired and not in flight.
    pub const ACQUIRED: usize = 2;
    /// Buffers in flight.
    pub const IN_FLIGHT: usize = 3;
    /// Kernel operations outstanding on the pool.
    pub const KERNEL_OPS: usize = 4;
    /// Successful acquisitions (cumulative).
    pub const ACQUIRES: usize = 5;
    /// Acquisitions refused because the pool was exhausted (cumulative).
    pub const EXHAUSTED: usize = 6;
    /// Releases (cumulative).
    pub const RELEASES: usize = 7;
    /// Kernel operations submitted (cumulative).
    pub const SUBMITTED: usize = 8;
    /// Kernel operations completed (cumulative).
    pub const COMPLETED: usize = 9;
    /// Kernel operations that failed (cumulative).
    pub const FAILED: usize = 10;
    /// 1 once the pool is closed (by itself or with its ring), else 0.
    pub const CLOSED: usize = 11;
    /// Number of cells.
    pub const LEN: usize = 12;
}

/// Indices of a ring's counts ([`Published::count`]).
pub mod ring_counts {
    /// Operations queued or in flight whose completion was not reaped.
    pub const IN_FLIGHT: usize = 0;
    /// Operations queued but not yet handed to the kernel.
    pub const PENDING: usize = 1;
    /// 1 once the ring is closed, else 0.
    pub const CLOSED: usize = 2;
    /// Number of cells.
    pub const LEN: usize = 3;
}

/// The values of a buffer's state byte ([`Published::state`]).
pub mod buffer_state {
    /// In the free list.
    pub const FREE: u8 = 0;
    /// Acquired, not in flight.
    pub const ACQUIRED: u8 = 1;
    /// In flight (kernel operations pending, or marked by the program).
    pub const IN_FLIGHT: u8 = 2;
}

/// Counts (as `f64`, exact up to 2^53) and one state byte per buffer, written
/// by the core after every change, read by whoever holds an `Rc` of it.
///
/// Hold it through an `Rc`: the memory stays valid (and is no longer
/// updated) after its pool or ring is gone.
#[derive(Debug)]
pub struct Published {
    counts: Box<[Cell<f64>]>,
    states: Box<[Cell<u8>]>,
}

impl Published {
    pub(crate) fn new(counts: usize, states: usize) -> Rc<Published> {
        Rc::new(Published {
            counts: (0..counts).map(|_| Cell::new(0.0)).collect(),
            states: (0..states).map(|_| Cell::new(0)).collect(),
        })
    }

    pub(crate) fn set_count(&self, index: usize, value: f64) {
        self.counts[index].set(value);
    }

    pub(crate) fn set_state(&self, index: usize, value: u8) {
        self.states[index].set(value);
    }

    /// The count at `index` (see [`pool_counts`], [`ring_counts`]).
    ///
    /// # Panics
    ///
    /// When `index` is not below [`counts_len`](Self::counts_len).
    pub fn count(&self, index: usize) -> f64 {
        self.counts[index].get()
    }

    /// The state byte of buffer `index` (see [`buffer_state`]).
    ///
    /// # Panics
    ///
    /// When `index` is not below [`states_len`](Self::states_len).
    pub fn state(&self, index: usize) -> u8 {
        self.states[index].get()
    }

    /// Start of the counts: `counts_len()` native-endian `f64`s. Memory
    /// written only by the core, on the thread that owns it; valid while this
    /// `Published` lives.
    pub fn counts_ptr(&self) -> *mut f64 {
        // `Cell<f64>` has the layout of `f64`.
        self.counts.as_ptr() as *mut f64
    }

    /// Number of counts.
    pub fn counts_len(&self) -> usize {
        self.counts.len()
    }

    /// Start of the state bytes: `states_len()` bytes; as [`counts_ptr`](Self::counts_ptr).
    pub fn states_ptr(&self) -> *mut u8 {
        // `Cell<u8>` has the layout of `u8`.
        self.states.as_ptr() as *mut u8
    }

    /// Number of state bytes (the pool's buffer count; 0 for a ring).
    pub fn states_len(&self) -> usize {
        self.states.len()
    }
}
