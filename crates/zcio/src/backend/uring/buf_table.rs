//! Slots of a ring's registered-buffer table, shared by the pools on it.
//!
//! The table is registered sparse once (`IORING_REGISTER_BUFFERS2` with no
//! buffers, Linux 5.13) and each pool fills a contiguous range of it with
//! `IORING_REGISTER_BUFFERS_UPDATE`, so several pools can live on one ring and
//! be closed independently.

use crate::error::{Error, Result};

/// The kernel's limit on registered buffers per ring (`IORING_MAX_REG_BUFFERS`).
pub const MAX_REGISTERED_BUFFERS: u32 = 1 << 14;

/// First-fit allocator over the table's indices.
#[derive(Debug, Default)]
pub(crate) struct BufTable {
    /// The sparse table has been registered with the kernel.
    pub(crate) registered: bool,
    /// Allocated `(start, len)` ranges, sorted by start.
    ranges: Vec<(u32, u32)>,
}

impl BufTable {
    pub(crate) fn new() -> BufTable {
        BufTable::default()
    }

    /// Reserves `len` consecutive indices.
    pub(crate) fn alloc(&mut self, len: u32) -> Result<u32> {
        let mut start = 0;
        let mut at = self.ranges.len();
        for (i, &(s, l)) in self.ranges.iter().enumerate() {
            if s - start >= len {
                at = i;
                break;
            }
            start = s + l;
        }
        if at == self.ranges.len() && MAX_REGISTERED_BUFFERS - start < len {
            return Err(Error::TableFull {
                capacity: MAX_REGISTERED_BUFFERS,
            });
        }
        self.ranges.insert(at, (start, len));
        Ok(start)
    }

    /// Gives back a range returned by `alloc`.
    pub(crate) fn free(&mut self, start: u32) {
        self.ranges.retain(|&(s, _)| s != start);
    }

    /// The ring is gone: the kernel dropped the whole table.
    pub(crate) fn forget(&mut self) {
        self.ranges.clear();
        self.registered = false;
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::uring::buf_table::*;

    #[test]
    fn first_fit_reuses_holes() {
        let mut t = BufTable::new();
        assert_eq!(t.alloc(10).unwrap(), 0);
        assert_eq!(t.alloc(5).unwrap(), 10);
        assert_eq!(t.alloc(3).unwrap(), 15);
        t.free(10);
        assert_eq!(t.alloc(6).unwrap(), 18);
        assert_eq!(t.alloc(5).unwrap(), 10);
        assert!(matches!(
            t.alloc(MAX_REGISTERED_BUFFERS),
            Err(Error::TableFull { .. })
        ));
        t.forget();
        assert_eq!(t.alloc(MAX_REGISTERED_BUFFERS).unwrap(), 0);
    }
}
