//! The posted work requests of a queue pair, by internal `wr_id`.

use super::mr::MrHold;
use crate::error::{Error, Result};

/// A posted work request: the caller's `wr_id`, the regions it holds, and
/// whether it is a receive (it completes on the receive queue's CQ).
struct Posted {
    wr_id: u64,
    holds: Vec<MrHold>,
    recv: bool,
}

/// Bits of an internal `wr_id` that name the slot; the rest is a sequence
/// number drawn from one counter for every queue pair of the process.
const SLOT_BITS: u32 = 24;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;

/// The next sequence number (never 0; wraps after 2^40 posts).
fn next_seq() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(1);
    let s = SEQ.fetch_add(1, Ordering::Relaxed) & ((1 << (64 - SLOT_BITS)) - 1);
    s.max(1)
}

/// Posted work requests by slot. The internal `wr_id` is the slot and a
/// process-wide sequence number, so it is unique across queue pairs: a stale
/// completion (of a destroyed queue pair whose number the device handed out
/// again, or of a slot since reused) never matches a newer request.
#[derive(Default)]
pub(crate) struct WrTable {
    entries: Vec<(u64, Option<Posted>)>,
    free: Vec<u32>,
    pub(crate) live: u32,
}

impl WrTable {
    pub(crate) fn insert(&mut self, wr_id: u64, holds: Vec<MrHold>, recv: bool) -> Result<u64> {
        let slot = match self.free.pop() {
            Some(s) => s,
            None if (self.entries.len() as u64) < SLOT_MASK => {
                self.entries.push((0, None));
                (self.entries.len() - 1) as u32
            }
            None => {
                return Err(Error::sys(
                    if recv {
                        "ibv_post_recv"
                    } else {
                        "ibv_post_send"
                    },
                    std::io::Error::from_raw_os_error(libc::ENOMEM),
                ))
            }
        };
        let seq = next_seq();
        self.entries[slot as usize] = (seq, Some(Posted { wr_id, holds, recv }));
        self.live += 1;
        Ok((seq << SLOT_BITS) | u64::from(slot))
    }

    pub(crate) fn remove(&mut self, id: u64) -> Option<u64> {
        let slot = (id & SLOT_MASK) as u32;
        let e = self.entries.get_mut(slot as usize)?;
        if e.0 != id >> SLOT_BITS {
            return None;
        }
        let posted = e.1.take()?;
        drop(posted.holds);
        self.free.push(slot);
        self.live -= 1;
        Some(posted.wr_id)
    }

    /// Receives and sends still outstanding.
    pub(crate) fn counts(&self) -> (u32, u32) {
        self.entries
            .iter()
            .filter_map(|e| e.1.as_ref())
            .fold(
                (0, 0),
                |(r, s), p| if p.recv { (r + 1, s) } else { (r, s + 1) },
            )
    }
}

#[cfg(test)]
mod tests {
    use crate::rdma::wr_table::{WrTable, SLOT_MASK};

    #[test]
    fn internal_ids_never_match_across_queue_pairs_or_reused_slots() {
        // Two queue pairs (the second may have the first's number, once it
        // is destroyed): a stale completion of one never matches the other.
        let (mut old, mut new) = (WrTable::default(), WrTable::default());
        let stale = old.insert(1, Vec::new(), true).unwrap();
        let fresh = new.insert(2, Vec::new(), true).unwrap();
        assert_ne!(stale, fresh);
        assert_eq!(new.remove(stale), None);
        assert_eq!(new.live, 1);
        // A slot reused within one queue pair: the old id is dead.
        assert_eq!(new.remove(fresh), Some(2));
        let again = new.insert(3, Vec::new(), false).unwrap();
        assert_eq!(again & SLOT_MASK, fresh & SLOT_MASK);
        assert_eq!(new.remove(fresh), None);
        assert_eq!(new.counts(), (0, 1));
        assert_eq!(new.remove(again), Some(3));
    }
}
