//! Completions of low-level submissions (`submitReadFixed`/`submitWriteFixed`),
//! queued until `takeCompletions()` or a waiting `completions()` takes them.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use napi::bindgen_prelude::{BigInt, ToNapiValue};
use napi::sys;
use napi_derive::napi;

use crate::raw::napi as raw;

/// A completion reaped for a low-level `submitReadFixed`/`submitWriteFixed`.
#[napi(object)]
pub struct Completion {
    /// The value the submit call returned.
    pub user_data: BigInt,
    /// Bytes transferred, or `-errno`.
    pub result: i32,
    /// CQE flags.
    pub flags: u32,
    /// Index of the pool buffer the operation used.
    pub buffer_index: u32,
    /// What the operation was.
    #[napi(ts_type = "'read' | 'write'")]
    pub op: String,
}

/// Reaped low-level completions and the `completions()` calls waiting.
#[derive(Default)]
pub struct Manual {
    done: RefCell<Vec<zcio::Completion>>,
    /// Low-level operations whose completion has not been reaped.
    in_flight: Cell<u32>,
    /// `completions()` calls waiting, oldest first.
    waiting: RefCell<VecDeque<sys::napi_deferred>>,
}

impl Manual {
    /// One more operation in flight.
    pub fn started(&self) {
        self.in_flight.set(self.in_flight.get() + 1);
    }

    /// Queues a reaped completion.
    pub fn push(&self, c: zcio::Completion) {
        self.done.borrow_mut().push(c);
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
    }

    /// Nothing is in flight any more (the ring closed).
    pub fn none_in_flight(&self) {
        self.in_flight.set(0);
    }

    /// Queues a promise of `completions()`; resolves at once if possible.
    /// Several calls wait in order: each gets the completions reaped after
    /// the previous one was resolved.
    pub fn wait(&self, env: sys::napi_env, deferred: sys::napi_deferred) {
        self.waiting.borrow_mut().push_back(deferred);
        self.wake(env);
    }

    /// Resolves waiting `completions()` calls: the oldest with what was
    /// reaped, and any with `[]` once no low-level operation is in flight.
    pub fn wake(&self, env: sys::napi_env) {
        loop {
            let ready = !self.done.borrow().is_empty() || self.in_flight.get() == 0;
            if !ready {
                return;
            }
            let Some(d) = self.waiting.borrow_mut().pop_front() else {
                return;
            };
            let arr = self.take(env);
            // A deferred is gone once settled, whatever napi says.
            let _ = raw::resolve(env, d, arr);
        }
    }

    /// Moves the queued completions into a JS array (null if even `[]`
    /// can't be made: a dying env).
    pub fn take(&self, env: sys::napi_env) -> sys::napi_value {
        let done = std::mem::take(&mut *self.done.borrow_mut());
        let Ok(arr) = raw::array(env) else {
            return std::ptr::null_mut();
        };
        for (k, c) in done.iter().enumerate() {
            let item = Completion {
                user_data: BigInt::from(c.user_data),
                result: c.result,
                flags: c.flags,
                buffer_index: c.buffer,
                op: c.kind.syscall().to_owned(),
            };
            // SAFETY: converts a plain object on the current env.
            if let Ok(v) = unsafe { Completion::to_napi_value(env, item) } {
                // A failed store leaves a hole, as a failed conversion does.
                let _ = raw::set_element(env, arr, k as u32, v);
            }
        }
        arr
    }
}
