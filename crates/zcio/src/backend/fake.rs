//! A scripted backend for tests: it records what the ring asks of it and
//! posts only the completions a test scripts, so that paths no kernel
//! reaches on demand can be tested: operations a cancel never ends (the
//! close's leak after its timeout), completions for slots already reused,
//! multishot sequences in any order.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::time::Duration;

use super::raw_cqe::RawCqe;

#[derive(Default)]
pub(crate) struct Fake {
    /// Completions to hand out at the next `take`, in order.
    pub(crate) script: RefCell<VecDeque<RawCqe>>,
    /// Ops pushed and not yet submitted.
    pub(crate) queued: RefCell<Vec<u64>>,
    /// Ops submitted, in order.
    pub(crate) started: RefCell<Vec<u64>>,
    /// Cancels asked for (one op, a descriptor's, everything).
    pub(crate) cancels: Cell<u32>,
    /// Whether a cancel ends what it names (`-ECANCELED`), as a kernel
    /// does; off, cancelled ops never end.
    pub(crate) cancel_ends: Cell<bool>,
    pub(crate) closed: Cell<bool>,
}

impl Fake {
    pub(crate) fn pending(&self) -> u32 {
        self.queued.borrow().len() as u32
    }

    pub(crate) fn has_work(&self) -> bool {
        !self.script.borrow().is_empty() || !self.queued.borrow().is_empty()
    }

    pub(crate) fn push(&self, user_data: u64) {
        self.queued.borrow_mut().push(user_data);
    }

    pub(crate) fn submit(&self) -> u32 {
        let mut q = self.queued.borrow_mut();
        let n = q.len() as u32;
        self.started.borrow_mut().append(&mut q);
        n
    }

    pub(crate) fn take(&self, out: &mut Vec<RawCqe>) {
        out.extend(self.script.borrow_mut().drain(..));
    }

    /// Posts `-ECANCELED` for `victims` if cancels end ops here.
    pub(crate) fn cancel(&self, victims: &[u64]) {
        self.cancels.set(self.cancels.get() + 1);
        if self.cancel_ends.get() {
            let mut script = self.script.borrow_mut();
            for &user_data in victims {
                script.push_back(RawCqe {
                    user_data,
                    result: -libc::ECANCELED,
                    flags: 0,
                });
            }
        }
    }

    /// Stands in for a wait: nothing comes unless scripted.
    pub(crate) fn wait(&self, timeout: Duration) {
        if self.script.borrow().is_empty() {
            std::thread::sleep(timeout.min(Duration::from_millis(5)));
        }
    }
}
