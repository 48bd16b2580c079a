//! The ring's table of operations in flight.

use crate::op::dispatch::Op;

pub(crate) struct OpEntry {
    pub(crate) generation: u32,
    pub(crate) op: Option<Op>,
}

/// The ring's table of operations, indexed by the low 32 bits of `user_data`.
///
/// A slot whose completion was reaped is not reused at once: it is *retired*
/// when the completion is handed out by [`Ring::reap`] and becomes free at the
/// next `reap`. A binding that settles completions after reaping them (and
/// may queue new operations while doing so) can therefore key its own state
/// by slot: no new operation takes the slot of a completion it has not
/// finished delivering.
#[derive(Default)]
pub(crate) struct Ops {
    pub(crate) entries: Vec<OpEntry>,
    free: Vec<u32>,
    /// Slots handed out by the last `reap`, free from the next one on.
    retired: Vec<u32>,
    pub(crate) live: u32,
}

impl Ops {
    pub(crate) fn insert(&mut self, op: Op) -> u64 {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.entries.push(OpEntry {
                    generation: 0,
                    op: None,
                });
                (self.entries.len() - 1) as u32
            }
        };
        let entry = &mut self.entries[slot as usize];
        entry.generation = entry.generation.wrapping_add(1);
        entry.op = Some(op);
        self.live += 1;
        (u64::from(entry.generation) << 32) | u64::from(slot)
    }

    /// The op of a slot, left in place (more completions will follow).
    pub(crate) fn get_mut(&mut self, user_data: u64) -> Option<&mut Op> {
        let entry = self.entries.get_mut(user_data as u32 as usize)?;
        if u64::from(entry.generation) != user_data >> 32 {
            return None;
        }
        entry.op.as_mut()
    }

    /// The `user_data` of the op in `slot`, if one is live there.
    pub(crate) fn user_data_of(&self, slot: u32) -> Option<u64> {
        match self.entries.get(slot as usize) {
            Some(e) if e.op.is_some() => Some((u64::from(e.generation) << 32) | u64::from(slot)),
            _ => None,
        }
    }

    /// The `user_data` of every live op on descriptor `fd` (-2: of all).
    #[cfg(test)]
    pub(crate) fn user_data_on(&mut self, fd: std::os::fd::RawFd) -> Vec<u64> {
        let slots = self.entries.len() as u32;
        let live: Vec<u64> = (0..slots).filter_map(|s| self.user_data_of(s)).collect();
        live.into_iter()
            .filter(|&u| fd == -2 || self.get_mut(u).is_some_and(|op| op.fd() == fd))
            .collect()
    }

    /// Takes the op out of its slot; the slot stays reserved until
    /// [`retire`](Self::retire) and the following [`recycle`](Self::recycle).
    pub(crate) fn remove(&mut self, user_data: u64) -> Option<Op> {
        let slot = user_data as u32;
        let entry = self.entries.get_mut(slot as usize)?;
        if u64::from(entry.generation) != user_data >> 32 {
            return None;
        }
        let op = entry.op.take()?;
        self.live -= 1;
        Some(op)
    }

    /// Undoes an `insert` whose entry never reached the kernel.
    pub(crate) fn cancel(&mut self, user_data: u64) -> Option<Op> {
        let op = self.remove(user_data)?;
        self.free.push(user_data as u32);
        Some(op)
    }

    /// The completion of `slot` has been handed out.
    pub(crate) fn retire(&mut self, slot: u32) {
        self.retired.push(slot);
    }

    /// Slots handed out before now may be reused.
    pub(crate) fn recycle(&mut self) {
        self.free.append(&mut self.retired);
    }
}
