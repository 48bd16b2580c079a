//! Putting a driver on the loop of the JS thread that made its ring, and the
//! callbacks that loop and the env make into it.

use std::ffi::c_void;
use std::rc::{Rc, Weak};

use napi::sys;

use super::deliver::Delivery;
use super::drive::{Driver, LoopHandles};
use super::thread_rings::{self, Wake};
use crate::raw::napi::{self as raw, CleanupHook};
use crate::raw::uv::{self, LoopHandle};

/// Why the driver could not start.
pub enum StartError {
    /// The host exposes no libuv loop to addons.
    NoEventLoop,
    /// A napi or libuv call failed.
    Napi,
}

impl Driver {
    /// Drives `ring` from the loop of `env`'s thread, delivering the layer's
    /// completions to `js_settle`.
    pub fn start(
        env: sys::napi_env,
        ring: zcio::Ring,
        js_settle: sys::napi_value,
    ) -> Result<Rc<Driver>, StartError> {
        if !uv::available() {
            return Err(StartError::NoEventLoop);
        }
        let uv_loop = raw::uv_event_loop(env).map_err(|_| StartError::NoEventLoop)?;
        let resource = raw::object(env)
            .and_then(|o| raw::reference(env, o, 1))
            .map_err(|_| StartError::Napi)?;
        let delivery = match Delivery::new(env, js_settle) {
            Ok(d) => d,
            Err(_) => {
                let _ = raw::delete_reference(env, resource);
                return Err(StartError::Napi);
            }
        };
        // From here on, dropping `driver` deletes the references made.
        let driver = Rc::new(Driver::new(env, ring, resource, delivery));
        // The function only runs from `drive`, while the driver is alive (the
        // caller holds a strong reference).
        let settle_fn = raw::function(
            env,
            c"zcioSettle",
            settle_callback,
            Rc::as_ptr(&driver) as *mut c_void,
        )
        .and_then(|f| raw::reference(env, f, 1))
        .map_err(|_| StartError::Napi)?;
        driver.settle_fn.set(settle_fn);
        // Each handle holds a strong reference to the driver until libuv
        // closes it; a handle dropped here is closed right away.
        let poll = LoopHandle::poll(uv_loop, driver.ring.eventfd(), driver.clone(), on_poll)
            .map_err(|_| StartError::Napi)?;
        let prepare = LoopHandle::prepare(uv_loop, driver.clone(), on_prepare)
            .map_err(|_| StartError::Napi)?;
        poll.set_ref(false);
        prepare.set_ref(false);
        let started = poll.start().is_ok() && prepare.start().is_ok();
        // The poll handle wakes the driver whenever the ring's descriptor
        // is readable, and each wake-up clears it (`on_poll`).
        driver.ring.set_wake_driven(true);
        *driver.handles.borrow_mut() = Some(LoopHandles {
            hook: None,
            poll,
            _prepare: prepare,
        });
        driver.torn_down.set(false);
        // SAFETY: the hook is removed at teardown, when the handles go; while
        // it is registered, the handles keep the driver alive.
        let hook = started
            .then(|| unsafe {
                CleanupHook::add(env, on_env_cleanup, Rc::as_ptr(&driver) as *mut c_void)
            })
            .and_then(Result::ok);
        let Some(hook) = hook else {
            driver.teardown();
            return Err(StartError::Napi);
        };
        if let Some(h) = driver.handles.borrow_mut().as_mut() {
            h.hook = Some(hook);
        }
        let weak: Weak<dyn Wake> = Rc::downgrade(&driver) as Weak<Driver>;
        thread_rings::register(weak);
        Ok(driver)
    }
}

unsafe extern "C" fn settle_callback(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    if let Ok(([], data)) = raw::call_info::<0>(env, info) {
        // SAFETY: the function's data pointer, set to the driver in `start`;
        // `drive` holds a strong reference for the duration of this call.
        let driver = unsafe { &*(data as *const Driver) };
        driver.settle_reaped();
    }
    std::ptr::null_mut()
}

fn on_poll(driver: &Rc<Driver>) {
    driver.ring.clear_eventfd();
    driver.drive();
}

fn on_prepare(driver: &Rc<Driver>) {
    if driver.ring.pending() > 0 {
        driver.drive();
    }
}

unsafe extern "C" fn on_env_cleanup(arg: *mut c_void) {
    // SAFETY: the hook is removed at teardown, so while it is registered the
    // handles (and their references) keep the driver alive.
    let driver = unsafe { &*(arg as *const Driver) };
    driver.env_gone.set(true);
    // JS can't run any more: cancel and wait, leave promises unsettled.
    let _ = driver.close(false);
}
