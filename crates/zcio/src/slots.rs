//! The per-buffer state machine of a pool, with no memory and no kernel in it,
//! so it can be tested exhaustively.
//!
//! ```text
//!            acquire                 mark_in_flight / submit
//!   Free ─────────────▶ Acquired ───────────────────────────▶ InFlight
//!        ◀─────────────          ◀───────────────────────────
//!            release              complete_in_flight (manual, no kernel op left)
//!                                 or last kernel completion (auto)
//! ```

use std::rc::Rc;

use crate::error::{Error, Result};
use crate::published::{buffer_state, pool_counts as pc, Published};

/// Where one buffer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// In the free list.
    Free,
    /// Held by the user, not lent to anyone.
    Acquired,
    /// Lent out: `kernel` operations still use it; `manual` means the user
    /// marked it and must call `complete_in_flight`.
    InFlight { kernel: u32, manual: bool },
}

/// Counters that only ever grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Successful acquisitions.
    pub acquires: u64,
    /// Acquisitions refused because the pool was exhausted.
    pub exhausted: u64,
    /// Releases.
    pub releases: u64,
    /// Kernel operations submitted on the pool's buffers.
    pub submitted: u64,
    /// Kernel operations completed (successfully or not).
    pub completed: u64,
    /// Kernel operations that completed with an error.
    pub failed: u64,
}

/// All slots of a pool.
#[derive(Debug)]
pub(crate) struct Slots {
    slots: Vec<Slot>,
    /// Rust borrows: >0 shared, -1 exclusive.
    borrows: Vec<i32>,
    /// Free indices, used as a stack (the most recently released buffer is
    /// the warmest in cache).
    free: Vec<u32>,
    in_flight: u32,
    /// Kernel operations outstanding on all slots.
    kernel_ops: u64,
    pub(crate) counters: Counters,
    /// Counts and states mirrored for bindings (see `published.rs`).
    published: Rc<Published>,
}

impl Slots {
    pub(crate) fn new(count: u32) -> Slots {
        Slots {
            slots: vec![Slot::Free; count as usize],
            borrows: vec![0; count as usize],
            free: (0..count).rev().collect(),
            in_flight: 0,
            kernel_ops: 0,
            counters: Counters::default(),
            published: Published::new(pc::LEN, count as usize),
        }
        .published_now()
    }

    fn published_now(self) -> Slots {
        self.publish();
        self
    }

    pub(crate) fn published(&self) -> &Rc<Published> {
        &self.published
    }

    /// Mirrors the counts into `published` (the states are mirrored as they
    /// change, by `set`).
    pub(crate) fn publish(&self) {
        let p = &self.published;
        p.set_count(pc::TOTAL, f64::from(self.total()));
        p.set_count(pc::AVAILABLE, f64::from(self.available()));
        p.set_count(pc::ACQUIRED, f64::from(self.acquired()));
        p.set_count(pc::IN_FLIGHT, f64::from(self.in_flight));
        p.set_count(pc::KERNEL_OPS, self.kernel_ops as f64);
        let c = &self.counters;
        p.set_count(pc::ACQUIRES, c.acquires as f64);
        p.set_count(pc::EXHAUSTED, c.exhausted as f64);
        p.set_count(pc::RELEASES, c.releases as f64);
        p.set_count(pc::SUBMITTED, c.submitted as f64);
        p.set_count(pc::COMPLETED, c.completed as f64);
        p.set_count(pc::FAILED, c.failed as f64);
    }

    /// Marks the published state as closed.
    pub(crate) fn publish_closed(&self) {
        self.published.set_count(pc::CLOSED, 1.0);
    }

    fn set(&mut self, index: u32, slot: Slot) {
        self.slots[index as usize] = slot;
        let byte = match slot {
            Slot::Free => buffer_state::FREE,
            Slot::Acquired => buffer_state::ACQUIRED,
            Slot::InFlight { .. } => buffer_state::IN_FLIGHT,
        };
        self.published.set_state(index as usize, byte);
    }

    pub(crate) fn total(&self) -> u32 {
        self.slots.len() as u32
    }
    pub(crate) fn available(&self) -> u32 {
        self.free.len() as u32
    }
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight
    }
    pub(crate) fn acquired(&self) -> u32 {
        self.total() - self.available() - self.in_flight
    }
    pub(crate) fn kernel_ops(&self) -> u64 {
        self.kernel_ops
    }

    pub(crate) fn state(&self, index: u32) -> Result<Slot> {
        self.slots
            .get(index as usize)
            .copied()
            .ok_or_else(|| Error::OutOfRange {
                name: "index",
                reason: format!(
                    "{index} is not a buffer index (the pool has {} buffers)",
                    self.total()
                ),
            })
    }

    pub(crate) fn is_borrowed(&self, index: u32) -> bool {
        self.borrows.get(index as usize).is_some_and(|b| *b != 0)
    }

    fn not_borrowed(&self, index: u32) -> Result<()> {
        if self.borrows[index as usize] != 0 {
            return Err(Error::Borrowed { index });
        }
        Ok(())
    }

    pub(crate) fn try_acquire(&mut self) -> Option<u32> {
        let index = self.free.pop();
        match index {
            Some(i) => {
                self.set(i, Slot::Acquired);
                self.counters.acquires += 1;
            }
            None => self.counters.exhausted += 1,
        }
        index
    }

    pub(crate) fn release(&mut self, index: u32) -> Result<()> {
        match self.state(index)? {
            Slot::Free => Err(Error::NotAcquired { index }),
            Slot::InFlight { .. } => Err(Error::BufferInFlight { index }),
            Slot::Acquired => {
                self.not_borrowed(index)?;
                self.set(index, Slot::Free);
                self.free.push(index);
                self.counters.releases += 1;
                Ok(())
            }
        }
    }

    pub(crate) fn mark_in_flight(&mut self, index: u32) -> Result<()> {
        match self.state(index)? {
            Slot::Free => Err(Error::NotAcquired { index }),
            Slot::InFlight { manual: true, .. } => Err(Error::BufferInFlight { index }),
            Slot::InFlight {
                kernel,
                manual: false,
            } => {
                self.set(
                    index,
                    Slot::InFlight {
                        kernel,
                        manual: true,
                    },
                );
                Ok(())
            }
            Slot::Acquired => {
                self.not_borrowed(index)?;
                self.set(
                    index,
                    Slot::InFlight {
                        kernel: 0,
                        manual: true,
                    },
                );
                self.in_flight += 1;
                Ok(())
            }
        }
    }

    pub(crate) fn complete_in_flight(&mut self, index: u32) -> Result<()> {
        match self.state(index)? {
            Slot::Free => Err(Error::NotAcquired { index }),
            Slot::Acquired | Slot::InFlight { manual: false, .. } => {
                Err(Error::NotInFlight { index })
            }
            // The kernel still owns it: completing now would let the user
            // release memory the kernel is about to write.
            Slot::InFlight { kernel: 1.., .. } => Err(Error::BufferInFlight { index }),
            Slot::InFlight {
                kernel: 0,
                manual: true,
            } => {
                self.set(index, Slot::Acquired);
                self.in_flight -= 1;
                Ok(())
            }
        }
    }

    /// A kernel operation starts on the buffer. `manual` marks the buffer so
    /// that the user must call `complete_in_flight` after the completion.
    pub(crate) fn begin_op(&mut self, index: u32, manual: bool) -> Result<()> {
        let next = match self.state(index)? {
            Slot::Free => return Err(Error::NotAcquired { index }),
            Slot::Acquired => {
                self.not_borrowed(index)?;
                self.in_flight += 1;
                Slot::InFlight { kernel: 1, manual }
            }
            Slot::InFlight { kernel, manual: m } => Slot::InFlight {
                kernel: kernel + 1,
                manual: m || manual,
            },
        };
        self.set(index, next);
        self.kernel_ops += 1;
        self.counters.submitted += 1;
        Ok(())
    }

    /// Undoes `begin_op` when the submission itself failed.
    pub(crate) fn abort_op(&mut self, index: u32, was: Slot) {
        if matches!(was, Slot::Acquired) {
            self.in_flight -= 1;
        }
        self.set(index, was);
        self.kernel_ops -= 1;
        self.counters.submitted -= 1;
    }

    /// A kernel operation on the buffer completed with `res`.
    pub(crate) fn end_op(&mut self, index: u32, res: i32) {
        let Some(Slot::InFlight { kernel, manual }) = self.slots.get(index as usize).copied()
        else {
            debug_assert!(false, "completion for buffer {index} that is not in flight");
            return;
        };
        let kernel = kernel.saturating_sub(1);
        let next = if kernel == 0 && !manual {
            self.in_flight -= 1;
            Slot::Acquired
        } else {
            Slot::InFlight { kernel, manual }
        };
        self.set(index, next);
        self.kernel_ops -= 1;
        self.counters.completed += 1;
        if res < 0 {
            self.counters.failed += 1;
        }
    }

    /// Takes a Rust borrow of an acquired buffer.
    pub(crate) fn borrow(&mut self, index: u32, exclusive: bool) -> Result<()> {
        match self.state(index)? {
            Slot::Free => Err(Error::NotAcquired { index }),
            Slot::InFlight { .. } => Err(Error::BufferInFlight { index }),
            Slot::Acquired => {
                let b = &mut self.borrows[index as usize];
                if *b < 0 || (exclusive && *b > 0) {
                    return Err(Error::Borrowed { index });
                }
                *b = if exclusive { -1 } else { *b + 1 };
                Ok(())
            }
        }
    }

    pub(crate) fn unborrow(&mut self, index: u32) {
        let b = &mut self.borrows[index as usize];
        *b = if *b < 0 { 0 } else { *b - 1 };
    }

    /// Whether `close` may proceed: nothing in flight, nothing borrowed.
    pub(crate) fn check_closable(&self) -> Result<()> {
        if let Some(i) = self
            .slots
            .iter()
            .position(|s| matches!(s, Slot::InFlight { .. }))
        {
            return Err(Error::BufferInFlight { index: i as u32 });
        }
        if let Some(i) = self.borrows.iter().position(|b| *b != 0) {
            return Err(Error::Borrowed { index: i as u32 });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::slots::*;
    use proptest::prelude::*;

    #[test]
    fn lifecycle() {
        let mut s = Slots::new(2);
        let a = s.try_acquire().unwrap();
        let b = s.try_acquire().unwrap();
        assert_eq!((a, b), (0, 1));
        assert!(s.try_acquire().is_none());
        assert_eq!(s.counters.exhausted, 1);
        s.mark_in_flight(a).unwrap();
        assert!(matches!(s.release(a), Err(Error::BufferInFlight { .. })));
        assert!(matches!(
            s.mark_in_flight(a),
            Err(Error::BufferInFlight { .. })
        ));
        s.complete_in_flight(a).unwrap();
        assert!(matches!(
            s.complete_in_flight(a),
            Err(Error::NotInFlight { .. })
        ));
        s.release(a).unwrap();
        assert!(matches!(s.release(a), Err(Error::NotAcquired { .. })));
        assert!(matches!(s.release(9), Err(Error::OutOfRange { .. })));
        assert_eq!((s.available(), s.acquired(), s.in_flight()), (1, 1, 0));
    }

    #[test]
    fn manual_complete_waits_for_kernel() {
        let mut s = Slots::new(1);
        let i = s.try_acquire().unwrap();
        s.begin_op(i, true).unwrap();
        assert!(matches!(
            s.complete_in_flight(i),
            Err(Error::BufferInFlight { .. })
        ));
        s.end_op(i, 4096);
        s.complete_in_flight(i).unwrap();
        s.release(i).unwrap();
    }

    #[test]
    fn auto_ops_return_to_acquired_after_the_last_completion() {
        let mut s = Slots::new(1);
        let i = s.try_acquire().unwrap();
        s.begin_op(i, false).unwrap();
        s.begin_op(i, false).unwrap();
        s.end_op(i, -libc::EBADF);
        assert_eq!(s.in_flight(), 1);
        s.end_op(i, 1);
        assert_eq!(s.state(i).unwrap(), Slot::Acquired);
        assert_eq!(s.counters.failed, 1);
        s.release(i).unwrap();
    }

    #[test]
    fn borrows_block_release_and_submission() {
        let mut s = Slots::new(1);
        let i = s.try_acquire().unwrap();
        s.borrow(i, false).unwrap();
        s.borrow(i, false).unwrap();
        assert!(matches!(s.borrow(i, true), Err(Error::Borrowed { .. })));
        assert!(matches!(s.begin_op(i, false), Err(Error::Borrowed { .. })));
        s.unborrow(i);
        s.unborrow(i);
        s.borrow(i, true).unwrap();
        assert!(matches!(s.release(i), Err(Error::Borrowed { .. })));
        s.unborrow(i);
        s.release(i).unwrap();
    }

    /// The model: per slot, (acquired, manual mark, kernel ops).
    #[derive(Debug, Clone)]
    enum Op {
        Acquire,
        Release(u32),
        Mark(u32),
        Complete(u32),
        Begin(u32, bool),
        End(u32),
    }

    fn op(n: u32) -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Acquire),
            (0..n + 1).prop_map(Op::Release),
            (0..n + 1).prop_map(Op::Mark),
            (0..n + 1).prop_map(Op::Complete),
            ((0..n + 1), any::<bool>()).prop_map(|(i, m)| Op::Begin(i, m)),
            (0..n + 1).prop_map(Op::End),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_simple_model(ops in proptest::collection::vec(op(4), 1..200)) {
            let n = 4u32;
            let mut s = Slots::new(n);
            // (acquired, manual, kernel)
            let mut model = vec![(false, false, 0u32); n as usize];
            for op in ops {
                match op {
                    Op::Acquire => {
                        let free = model.iter().filter(|m| !m.0).count();
                        match s.try_acquire() {
                            Some(i) => { prop_assert!(!model[i as usize].0); model[i as usize].0 = true; }
                            None => prop_assert_eq!(free, 0),
                        }
                    }
                    Op::Release(i) => {
                        let r = s.release(i);
                        match model.get(i as usize).copied() {
                            None => prop_assert!(matches!(r, Err(Error::OutOfRange { .. })), "{:?}", r),
                            Some((false, _, _)) => prop_assert!(matches!(r, Err(Error::NotAcquired { .. })), "{:?}", r),
                            Some((true, m, k)) if m || k > 0 => prop_assert!(matches!(r, Err(Error::BufferInFlight { .. })), "{:?}", r),
                            Some(_) => { prop_assert!(r.is_ok()); model[i as usize].0 = false; }
                        }
                    }
                    Op::Mark(i) => {
                        let r = s.mark_in_flight(i);
                        match model.get(i as usize).copied() {
                            None => prop_assert!(r.is_err()),
                            Some((false, _, _)) => prop_assert!(matches!(r, Err(Error::NotAcquired { .. })), "{:?}", r),
                            Some((true, true, _)) => prop_assert!(matches!(r, Err(Error::BufferInFlight { .. })), "{:?}", r),
                            Some(_) => { prop_assert!(r.is_ok()); model[i as usize].1 = true; }
                        }
                    }
                    Op::Complete(i) => {
                        let r = s.complete_in_flight(i);
                        match model.get(i as usize).copied() {
                            None => prop_assert!(r.is_err()),
                            Some((true, true, 0)) => { prop_assert!(r.is_ok()); model[i as usize].1 = false; }
                            Some(_) => prop_assert!(r.is_err()),
                        }
                    }
                    Op::Begin(i, manual) => {
                        let r = s.begin_op(i, manual);
                        match model.get(i as usize).copied() {
                            Some((true, m, k)) => { prop_assert!(r.is_ok()); model[i as usize] = (true, m || manual, k + 1); }
                            _ => prop_assert!(r.is_err()),
                        }
                    }
                    Op::End(i) => {
                        if let Some((true, m, k)) = model.get(i as usize).copied() {
                            if k > 0 {
                                s.end_op(i, 0);
                                model[i as usize] = (true, m, k - 1);
                            }
                        }
                    }
                }
                let in_flight = model.iter().filter(|m| m.0 && (m.1 || m.2 > 0)).count() as u32;
                let free = model.iter().filter(|m| !m.0).count() as u32;
                prop_assert_eq!(s.in_flight(), in_flight);
                prop_assert_eq!(s.available(), free);
                prop_assert_eq!(s.acquired(), n - free - in_flight);
                prop_assert_eq!(s.kernel_ops(), model.iter().map(|m| m.2 as u64).sum::<u64>());
                // What bindings read in place mirrors the bookkeeping.
                s.publish();
                let p = s.published();
                prop_assert_eq!(p.count(pc::IN_FLIGHT), f64::from(in_flight));
                prop_assert_eq!(p.count(pc::AVAILABLE), f64::from(free));
                prop_assert_eq!(p.count(pc::ACQUIRED), f64::from(n - free - in_flight));
                for (i, m) in model.iter().enumerate() {
                    let want = match m {
                        (false, _, _) => buffer_state::FREE,
                        (true, m, k) if *m || *k > 0 => buffer_state::IN_FLIGHT,
                        _ => buffer_state::ACQUIRED,
                    };
                    prop_assert_eq!(p.state(i), want);
                }
            }
        }
    }
}
