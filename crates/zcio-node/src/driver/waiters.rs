//! Who waits for each operation in flight, by slot, and the batches of
//! operations settled together.

use std::cell::RefCell;

use napi::sys;

use crate::raw::{buffers, napi as raw};

/// Who waits for an operation.
pub enum Waiter {
    /// Nobody (a free slot, or an operation whose waiter is gone).
    Empty,
    /// The JavaScript layer, which keeps a handler in a table by slot; it
    /// stays until the operation's last completion (multishot operations and
    /// zero-copy sends have several).
    Js,
    /// Element `pos` of batch `id`.
    Batch { id: u32, pos: u32 },
    /// Low-level submission: the completion is queued for `takeCompletions`.
    Manual,
}

/// Operations settled together: one promise of an `Int32Array` of results.
struct Batch {
    deferred: sys::napi_deferred,
    results: Vec<i32>,
    remaining: u32,
}

/// The waiters of a ring's slots and its open batches.
#[derive(Default)]
pub struct Waiters {
    slots: RefCell<Vec<Waiter>>,
    /// Batches by id, and the ids free for reuse.
    batches: RefCell<(Vec<Option<Batch>>, Vec<u32>)>,
}

impl Waiters {
    /// Records who waits for the operation in `slot`.
    pub fn track(&self, slot: usize, waiter: Waiter) {
        let mut slots = self.slots.borrow_mut();
        if slots.len() <= slot {
            slots.resize_with(slot + 1, || Waiter::Empty);
        }
        slots[slot] = waiter;
    }

    /// Who waits for a completion of `slot`; the slot is emptied unless more
    /// completions follow for the layer.
    pub fn take(&self, slot: usize, more: bool) -> Waiter {
        let mut slots = self.slots.borrow_mut();
        match slots.get_mut(slot) {
            // More completions follow: the layer's handler stays.
            Some(Waiter::Js) if more => Waiter::Js,
            Some(w) => std::mem::replace(w, Waiter::Empty),
            None => Waiter::Empty,
        }
    }

    /// Starts a batch of `n` operations settled together.
    pub fn new_batch(&self, deferred: sys::napi_deferred, n: u32) -> u32 {
        let mut b = self.batches.borrow_mut();
        let batch = Batch {
            deferred,
            results: vec![0; n as usize],
            remaining: n,
        };
        match b.1.pop() {
            Some(id) => {
                b.0[id as usize] = Some(batch);
                id
            }
            None => {
                b.0.push(Some(batch));
                (b.0.len() - 1) as u32
            }
        }
    }

    /// Records the result of batch element `pos`; resolves the batch's
    /// promise on `env` once it was the last.
    pub fn batch_result(&self, env: sys::napi_env, id: u32, pos: u32, res: i32) {
        let done = {
            let mut b = self.batches.borrow_mut();
            let Some(batch) = b.0.get_mut(id as usize).and_then(Option::as_mut) else {
                return;
            };
            batch.results[pos as usize] = res;
            batch.remaining -= 1;
            if batch.remaining > 0 {
                return;
            }
            let done = b.0[id as usize].take();
            b.1.push(id);
            done
        };
        if let Some(batch) = done {
            resolve_batch(env, batch);
        }
    }
}

/// Resolves a batch's promise with its results. Should making the array
/// fail (only in a dying env), the promise resolves with `undefined`.
fn resolve_batch(env: sys::napi_env, batch: Batch) {
    let bytes: Vec<u8> = batch.results.iter().flat_map(|r| r.to_ne_bytes()).collect();
    let arr = buffers::arraybuffer_from(env, &bytes).and_then(|ab| {
        buffers::typed_array(
            env,
            sys::TypedarrayType::int32_array,
            batch.results.len(),
            ab,
            0,
        )
    });
    let value = match arr {
        Ok(v) => v,
        Err(_) => raw::undefined(env).unwrap_or(std::ptr::null_mut()),
    };
    // A deferred is gone once settled, whatever napi says.
    let _ = raw::resolve(env, batch.deferred, value);
}
