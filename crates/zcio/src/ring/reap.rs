//! Reaping: the backend's completions become the caller's, and the ops they
//! end leave the table.

use super::completion::Completion;
use super::handle::RingInner;
use crate::backend::raw_cqe::RawCqe;
use crate::op::completion::Cqe;

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
            let c = Cqe {
                result: r.result,
                flags: r.flags,
            };
            // The op stays in the table while more completions will follow,
            // and goes (to be dropped after the borrows end) with the last.
            let (kind, placed) = if !io_uring::cqueue::more(r.flags) {
                let Some(mut op) = ops.remove(r.user_data) else {
                    continue;
                };
                let placed = op.complete(c);
                let kind = op.kind();
                graveyard.push(op);
                (kind, placed)
            } else {
                let Some(op) = ops.get_mut(r.user_data) else {
                    continue;
                };
                (op.kind(), op.update(c))
            };
            out.push(Completion {
                user_data: r.user_data,
                result: r.result,
                flags: r.flags,
                kind,
                buffer: placed.buffer,
                offset: placed.offset,
            });
        }
    }
}
