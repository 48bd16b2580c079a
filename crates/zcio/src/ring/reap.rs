//! Reaping: the backend's completions become the caller's, and the ops they
//! end leave the table.

use super::completion::Completion;
use super::handle::RingInner;
use crate::backend::raw_cqe::RawCqe;
use crate::op::completion::{Cqe, Placed};
use crate::op::dispatch::Op;
use crate::op::kind::OpKind;
use crate::op::poll::{F_MORE, F_NOTIF};
use crate::op::zc_flags::NOTIF_USAGE_ZC_COPIED;
use crate::table::Ops;

impl RingInner {
    pub(crate) fn reap(&self, out: &mut Vec<Completion>) -> usize {
        let before = out.len();
        self.ops.borrow_mut().recycle();
        let mut raw = std::mem::take(&mut *self.scratch.borrow_mut());
        self.backend.take(&self.ops, &mut raw);
        self.deliver(&raw, out);
        raw.clear();
        *self.scratch.borrow_mut() = raw;
        // Handed out now: these slots are free from the next `reap` on.
        let mut ops = self.ops.borrow_mut();
        for c in &out[before..] {
            if !c.more() {
                ops.retire(c.slot());
            }
        }
        drop(ops);
        self.graveyard.borrow_mut().clear();
        self.publish();
        out.len() - before
    }

    /// Ends (or updates) the op of each completion and appends what the
    /// caller sees to `out`; a completion whose op is unknown (its slot was
    /// reused, which the generation tells) is dropped.
    fn deliver(&self, raw: &[RawCqe], out: &mut Vec<Completion>) {
        let mut ops = self.ops.borrow_mut();
        let mut graveyard = self.graveyard.borrow_mut();
        for r in raw {
            deliver_one(&mut ops, &mut graveyard, r, out);
        }
    }
}

/// [`RingInner::deliver`] of one completion.
fn deliver_one(ops: &mut Ops, graveyard: &mut Vec<Op>, r: &RawCqe, out: &mut Vec<Completion>) {
    let c = Cqe {
        result: r.result,
        flags: r.flags,
    };
    // The op stays in the table while more completions will follow, and
    // goes (to be dropped after the borrows end) with the last.
    let (kind, placed) = if !io_uring::cqueue::more(r.flags) {
        let Some(mut op) = ops.remove(r.user_data) else {
            return;
        };
        // A zero-copy send that went by copy (the kernel was seen copying
        // for its socket) completes once on io_uring; the caller gets what
        // a zero-copy send gives: the byte count, then a notification
        // saying `copied`, the memory free at once.
        if r.flags & F_NOTIF == 0 && op.notifies_itself() {
            let sent = Cqe {
                result: r.result,
                flags: r.flags | F_MORE,
            };
            let placed = op.update(sent);
            out.push(handed(r.user_data, sent, op.kind(), placed));
            let notice = Cqe {
                result: NOTIF_USAGE_ZC_COPIED as i32,
                flags: F_NOTIF,
            };
            let placed = op.complete(notice);
            out.push(handed(r.user_data, notice, op.kind(), placed));
            graveyard.push(op);
            return;
        }
        let placed = op.complete(c);
        let kind = op.kind();
        graveyard.push(op);
        (kind, placed)
    } else {
        let Some(op) = ops.get_mut(r.user_data) else {
            return;
        };
        (op.kind(), op.update(c))
    };
    out.push(handed(r.user_data, c, kind, placed));
}

/// What the caller sees of one completion of the op in `slot`.
fn handed(user_data: u64, c: Cqe, kind: OpKind, placed: Placed) -> Completion {
    Completion {
        user_data,
        result: c.result,
        flags: c.flags,
        kind,
        buffer: placed.buffer,
        offset: placed.offset,
    }
}
