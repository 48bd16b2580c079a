//! Delivery of the layer's completions: `(slot, result, flags, offset)`
//! quads written into an `Int32Array` shared with the layer, handed over by
//! calling the layer's settle function once per chunk.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use napi::sys;

use crate::raw::napi as raw;

/// Completions delivered to the layer per call of its settle function.
pub const JS_CHUNK: usize = 1024;
/// `Int32Array` elements per completion: slot, result, flags, offset.
pub const JS_QUAD: usize = 4;

/// The layer's completions not yet handed over, and how they are.
pub struct Delivery {
    /// The layer's settle function, `(n: number) => void`.
    settle: sys::napi_ref,
    /// The quads shared with the layer (an `Int32Array` over these cells).
    pub quads: Rc<[Cell<i32>]>,
    /// Completions not yet handed to the layer.
    backlog: RefCell<VecDeque<[i32; JS_QUAD]>>,
    /// The layer's settle function is running (deliveries nest into its loop).
    settling: Cell<bool>,
}

impl Delivery {
    /// Delivery to `settle`, a function of `env` (referenced until
    /// [`Delivery::release`]).
    pub fn new(env: sys::napi_env, settle: sys::napi_value) -> raw::Res<Delivery> {
        Ok(Delivery {
            settle: raw::reference(env, settle, 1)?,
            quads: (0..JS_CHUNK * JS_QUAD).map(|_| Cell::new(0)).collect(),
            backlog: RefCell::default(),
            settling: Cell::new(false),
        })
    }

    /// Queues one completion for the layer.
    pub fn push(&self, c: &zcio::Completion) {
        self.backlog.borrow_mut().push_back([
            c.slot() as i32,
            c.result,
            c.flags as i32,
            c.offset as i32,
        ]);
    }

    /// Hands the backlog to the layer, `JS_CHUNK` at a time (JS context
    /// entered). A delivery that starts while the layer's settle function
    /// runs (it called `close()`) only appends to the backlog, which the
    /// outer loop drains. An exception thrown by the settle function does not
    /// stop the delivery; the first one is rethrown at the end.
    pub fn deliver(&self, env: sys::napi_env) {
        if self.settling.get() || self.backlog.borrow().is_empty() {
            return;
        }
        self.settling.set(true);
        let mut first_error: Option<sys::napi_value> = None;
        loop {
            let n = {
                let mut backlog = self.backlog.borrow_mut();
                let n = backlog.len().min(JS_CHUNK);
                for (k, quad) in backlog.drain(..n).enumerate() {
                    for (i, v) in quad.into_iter().enumerate() {
                        self.quads[JS_QUAD * k + i].set(v);
                    }
                }
                n
            };
            if n == 0 {
                break;
            }
            if let Err(e) = self.call(env, n as u32) {
                if e.is_pending_exception() && first_error.is_none() {
                    first_error = raw::take_exception(env).ok();
                } else if e.is_pending_exception() {
                    let _ = raw::take_exception(env);
                }
            }
        }
        self.settling.set(false);
        if let Some(err) = first_error {
            // Rethrown to the caller's JS; should that fail, the env is dying.
            let _ = raw::throw(env, err);
        }
    }

    /// `settle(n)`.
    fn call(&self, env: sys::napi_env, n: u32) -> raw::Res<()> {
        let recv = raw::undefined(env)?;
        let func = raw::reference_value(env, self.settle)?
            .ok_or(raw::Failed(sys::Status::napi_generic_failure))?;
        let arg = raw::uint32(env, n)?;
        raw::call(env, recv, func, &[arg]).map(drop)
    }

    /// Deletes the reference to the settle function.
    pub fn release(&self, env: sys::napi_env) {
        let _ = raw::delete_reference(env, self.settle);
    }
}
