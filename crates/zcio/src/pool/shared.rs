//! What a pool's operations share: the memory, its place in the ring's
//! registered-buffer table and the state of each buffer.

use std::cell::{Cell, RefCell, RefMut};
use std::ops::{Deref, DerefMut};
use std::rc::Rc;

use super::region::Region;
use crate::op::owner::BufferOwner;
use crate::ring::handle::RingInner;
use crate::slots::Slots;

pub(crate) struct PoolShared {
    pub(super) ring: Rc<RingInner>,
    pub(super) region: Rc<Region>,
    pub(super) buffer_size: usize,
    pub(super) stride: usize,
    /// First index of the pool in the ring's registered-buffer table.
    pub(super) base: u32,
    pub(super) slots: RefCell<Slots>,
    pub(super) closed: Cell<bool>,
}

impl BufferOwner for PoolShared {
    fn op_done(&self, index: u32, result: i32) {
        // Called with the op's last completion (for a zero-copy send, its
        // notification): the buffer has been in flight until now.
        self.slots_mut().end_op(index, result);
    }
}

impl PoolShared {
    /// Mutable access to the slots; the counts are published when it ends.
    pub(super) fn slots_mut(&self) -> SlotsMut<'_> {
        SlotsMut(self.slots.borrow_mut())
    }

    pub(super) fn unregister(&self) {
        let count = self.slots.borrow().total();
        if let Some(uring) = self.ring.uring() {
            uring.unregister_buffers(self.base, count);
        }
    }
}

impl Drop for PoolShared {
    fn drop(&mut self) {
        // Reached only once no operation holds the pool (ops own an Rc).
        if !self.closed.get() {
            self.unregister();
        }
    }
}

/// Mutable access to a pool's slots that publishes the counts when dropped.
pub(super) struct SlotsMut<'a>(pub(super) RefMut<'a, Slots>);

impl Deref for SlotsMut<'_> {
    type Target = Slots;
    fn deref(&self) -> &Slots {
        &self.0
    }
}

impl DerefMut for SlotsMut<'_> {
    fn deref_mut(&mut self) -> &mut Slots {
        &mut self.0
    }
}

impl Drop for SlotsMut<'_> {
    fn drop(&mut self) {
        self.0.publish();
    }
}
