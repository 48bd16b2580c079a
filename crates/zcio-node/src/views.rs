//! The zero-copy views a pool hands out, and the rule that closing a ring
//! detaches them (their `byteLength` becomes 0, so no view outlives the
//! registration it reads through).
//!
//! A pool keeps its [`ViewSet`] (one `Uint8Array` per buffer, made on first
//! use, over one external `ArrayBuffer` per buffer, so a view never reaches
//! another buffer). The ring's driver keeps [`Views`]: the view sets of its
//! pools, weakly, and the views of pools collected before the ring closed,
//! through weak references. Neither side knows the other's type.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use napi::sys;

use crate::raw::{buffers, napi as raw};

/// The views of one pool, by buffer index (null: not made yet, or dropped).
pub struct ViewSet {
    refs: RefCell<Vec<sys::napi_ref>>,
}

impl ViewSet {
    /// Room for the views of `count` buffers.
    pub fn new(count: usize) -> Rc<ViewSet> {
        Rc::new(ViewSet {
            refs: RefCell::new(vec![std::ptr::null_mut(); count]),
        })
    }

    /// The view of buffer `index`, if it was made and is still held.
    pub fn get(&self, env: sys::napi_env, index: u32) -> Option<sys::napi_value> {
        let r = *self.refs.borrow().get(index as usize)?;
        if r.is_null() {
            return None;
        }
        raw::reference_value(env, r).ok().flatten()
    }

    /// Keeps `view` as the view of buffer `index` (a strong reference).
    pub fn insert(&self, env: sys::napi_env, index: u32, view: sys::napi_value) -> raw::Res<()> {
        let r = raw::reference(env, view, 1)?;
        if let Some(slot) = self.refs.borrow_mut().get_mut(index as usize) {
            *slot = r;
        }
        Ok(())
    }

    /// Takes the references to every view handed out.
    pub fn take_all(&self) -> Vec<sys::napi_ref> {
        self.refs
            .borrow_mut()
            .iter_mut()
            .filter(|r| !r.is_null())
            .map(|r| std::mem::replace(r, std::ptr::null_mut()))
            .collect()
    }

    /// Detaches every view handed out and drops the references to them.
    pub fn detach_all(&self, env: sys::napi_env) {
        for r in self.take_all() {
            detach_and_delete(env, r);
        }
    }
}

/// Detaches the `ArrayBuffer` of the view `r` refers to (if it is still
/// alive) and deletes the reference. `r` is a reference of `env` to a
/// `Uint8Array` over an external buffer.
pub fn detach_and_delete(env: sys::napi_env, r: sys::napi_ref) {
    // A collected view reads as `None`: nothing to detach. A failed call
    // leaves the view attached, which only a dying env does.
    if let Ok(Some(view)) = raw::reference_value(env, r) {
        if let Ok(info) = buffers::typed_array_info(env, view) {
            let _ = buffers::detach(env, info.arraybuffer);
        }
    }
    let _ = raw::delete_reference(env, r);
}

/// What a ring's driver detaches when the ring closes.
#[derive(Default)]
pub struct Views {
    /// The view sets of the ring's pools.
    sets: RefCell<Vec<Weak<ViewSet>>>,
    /// Weak references to the views of pools that were garbage-collected
    /// before their ring closed: closing the ring detaches those still alive.
    orphans: RefCell<Vec<sys::napi_ref>>,
}

impl Views {
    /// Remembers a pool's view set; forgets sets that are gone (amortized,
    /// so a long-lived ring does not grow).
    pub fn add(&self, set: &Rc<ViewSet>) {
        let mut sets = self.sets.borrow_mut();
        if sets.len() >= 64 && sets.len().is_power_of_two() {
            sets.retain(|p| p.strong_count() > 0);
        }
        sets.push(Rc::downgrade(set));
    }

    /// Keeps weak references to the views of a pool collected before its
    /// ring closed; forgets collected ones as it goes.
    pub fn adopt(&self, env: sys::napi_env, refs: impl Iterator<Item = sys::napi_ref>) {
        let mut orphans = self.orphans.borrow_mut();
        for r in refs {
            if orphans.len() >= 64 && orphans.len().is_power_of_two() {
                orphans.retain(|r| {
                    // A collected target reads as `None`; so does a failed
                    // look (kept, and tried again at the next sweep).
                    match raw::reference_value(env, *r) {
                        Ok(None) => {
                            let _ = raw::delete_reference(env, *r);
                            false
                        }
                        _ => true,
                    }
                });
            }
            // Weak, so the view can be collected. Should that fail, the view
            // lives until the ring closes, which detaches it all the same.
            let _ = raw::reference_unref(env, r);
            orphans.push(r);
        }
    }

    /// Detaches every view of every pool (the ring closes).
    pub fn detach_all(&self, env: sys::napi_env) {
        for set in self.sets.borrow_mut().drain(..) {
            if let Some(set) = set.upgrade() {
                set.detach_all(env);
            }
        }
        for r in self.orphans.borrow_mut().drain(..) {
            detach_and_delete(env, r);
        }
    }

    /// Deletes the references still held (the driver goes).
    pub fn release(&self, env: sys::napi_env) {
        for r in self.orphans.borrow_mut().drain(..) {
            let _ = raw::delete_reference(env, r);
        }
    }
}
