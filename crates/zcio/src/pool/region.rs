//! The memory of a pool or a buffer group.

use crate::sys::Mmap;

/// The memory of a pool or a buffer group. Holding an `Rc<Region>` keeps it mapped, even after
/// the pool is closed or dropped; bindings that lend the memory out (as
/// JavaScript `ArrayBuffer`s) keep one until the last view is gone.
#[derive(Debug)]
pub struct Region {
    map: Mmap,
}

impl Region {
    pub(crate) fn new(map: Mmap) -> Region {
        Region { map }
    }

    /// Start of the memory.
    pub fn as_ptr(&self) -> *mut u8 {
        self.map.as_ptr()
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the region is empty (never).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
