//! The drivers of the rings of one JS thread, so that work one ring's
//! completions queue on another is submitted.
//!
//! Each driver submits what JS queued from a libuv prepare handle, and libuv
//! runs prepare handles newest first. When ring A settles completions from
//! its own prepare callback and their reactions queue work on ring B, B's
//! prepare may already have run for this loop iteration: the loop would then
//! block with B's work queued, and nothing would ever wake it. So after a
//! driver settled completions, every other ring of the thread with entries
//! queued gets its eventfd signalled: its poll handle fires in the same loop
//! iteration and submits. A thread with one ring pays a look at one entry.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

/// A ring's driver as the registry sees it.
pub trait Wake {
    /// Signals the ring's eventfd if it has entries queued and still runs.
    fn wake_if_queued(&self);
}

thread_local! {
    static DRIVERS: RefCell<Vec<Weak<dyn Wake>>> = const { RefCell::new(Vec::new()) };
}

/// Whether `w` is the driver at `p`.
fn is(w: &Weak<dyn Wake>, p: *const ()) -> bool {
    std::ptr::eq(w.as_ptr() as *const (), p)
}

/// Adds a driver that has just started.
pub fn register(driver: Weak<dyn Wake>) {
    DRIVERS.with_borrow_mut(|d| {
        d.retain(|w| w.strong_count() > 0);
        d.push(driver);
    });
}

/// Removes the driver at `driver` (its loop handles are closing).
pub fn unregister(driver: *const ()) {
    // `try_with`: at thread exit the registry may already be gone.
    let _ = DRIVERS.try_with(|d| {
        if let Ok(mut d) = d.try_borrow_mut() {
            d.retain(|w| w.strong_count() > 0 && !is(w, driver));
        }
    });
}

/// Wakes every ring of this thread but the one at `settled` that has entries
/// queued.
pub fn wake_others(settled: *const ()) {
    let others: Vec<Rc<dyn Wake>> = DRIVERS.with_borrow(|d| {
        if d.len() < 2 {
            return Vec::new();
        }
        d.iter()
            .filter(|w| !is(w, settled))
            .filter_map(Weak::upgrade)
            .collect()
    });
    for other in others {
        other.wake_if_queued();
    }
}
