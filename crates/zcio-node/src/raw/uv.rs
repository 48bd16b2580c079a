//! The few libuv calls the binding needs, resolved from the running Node
//! binary with `dlsym` (napi-sys does not wrap libuv, and libuv has no stable
//! ABI across majors, so only long-stable calls are used: poll and prepare
//! handles, ref/unref, close, and `uv_handle_size` for the handle sizes), and
//! [`LoopHandle`], the one owner of a libuv handle in the binding. This is
//! the only file that calls libuv.

use std::ffi::{c_int, c_void, CStr};
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::OnceLock;

type Handle = *mut c_void;
type PollCb = unsafe extern "C" fn(Handle, c_int, c_int);
type PrepareCb = unsafe extern "C" fn(Handle);
type CloseCb = unsafe extern "C" fn(Handle);

/// `UV_POLL` and `UV_PREPARE` in `uv_handle_type`.
const UV_POLL: c_int = 8;
const UV_PREPARE: c_int = 9;
/// `UV_READABLE`.
const READABLE: c_int = 1;

#[allow(clippy::type_complexity)]
struct Uv {
    handle_size: unsafe extern "C" fn(c_int) -> usize,
    poll_init: unsafe extern "C" fn(*mut c_void, Handle, c_int) -> c_int,
    poll_start: unsafe extern "C" fn(Handle, c_int, PollCb) -> c_int,
    poll_stop: unsafe extern "C" fn(Handle) -> c_int,
    prepare_init: unsafe extern "C" fn(*mut c_void, Handle) -> c_int,
    prepare_start: unsafe extern "C" fn(Handle, PrepareCb) -> c_int,
    prepare_stop: unsafe extern "C" fn(Handle) -> c_int,
    close: unsafe extern "C" fn(Handle, CloseCb),
    ref_: unsafe extern "C" fn(Handle),
    unref: unsafe extern "C" fn(Handle),
}

fn sym(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

/// The libuv functions, or `None` when the host does not export them.
// Each transmute's target type is the field it initialises, spelled out in `Uv`.
#[allow(clippy::missing_transmute_annotations)]
fn uv() -> Option<&'static Uv> {
    static UV: OnceLock<Option<Uv>> = OnceLock::new();
    UV.get_or_init(|| {
        macro_rules! load {
            ($name:literal) => {
                // SAFETY: the symbol is libuv's function of that name, whose C
                // signature matches the field it is stored in.
                unsafe { std::mem::transmute::<*mut c_void, _>(sym($name)?) }
            };
        }
        Some(Uv {
            handle_size: load!(c"uv_handle_size"),
            poll_init: load!(c"uv_poll_init"),
            poll_start: load!(c"uv_poll_start"),
            poll_stop: load!(c"uv_poll_stop"),
            prepare_init: load!(c"uv_prepare_init"),
            prepare_start: load!(c"uv_prepare_start"),
            prepare_stop: load!(c"uv_prepare_stop"),
            close: load!(c"uv_close"),
            ref_: load!(c"uv_ref"),
            unref: load!(c"uv_unref"),
        })
    })
    .as_ref()
}

/// Whether the host exports libuv (Node does; some other runtimes do not).
pub fn available() -> bool {
    uv().is_some()
}

/// Why a handle could not be made or started.
#[derive(Debug)]
pub enum UvError {
    /// The host exports no libuv.
    Unavailable,
    /// Allocation failed, or libuv returned an error.
    Failed,
}

/// What a handle watches.
#[derive(Clone, Copy)]
enum Kind {
    /// A descriptor, for reading.
    Poll,
    /// Each loop iteration, before the loop blocks.
    Prepare,
}

/// What libuv's `data` field points at while the handle lives: the target
/// and what to call on it.
struct Inner<T> {
    target: Rc<T>,
    on_event: fn(&Rc<T>),
}

/// A libuv poll or prepare handle on a loop, owning an `Rc<T>` for as long as
/// libuv can call back: the handle starts stopped (and referenced); each
/// event calls `on_event(&target)`. Dropping it stops and closes the handle;
/// libuv's close callback, run by the loop later, drops the `Rc` and frees
/// the handle.
pub struct LoopHandle<T> {
    handle: Handle,
    kind: Kind,
    _target: PhantomData<Rc<T>>,
}

impl<T> LoopHandle<T> {
    /// A handle watching `fd` for reading on the loop `uv_loop`.
    pub fn poll(
        uv_loop: *mut c_void,
        fd: c_int,
        target: Rc<T>,
        on_event: fn(&Rc<T>),
    ) -> Result<LoopHandle<T>, UvError> {
        Self::new(uv_loop, Kind::Poll, fd, target, on_event)
    }

    /// A handle run once per loop iteration before the loop blocks.
    pub fn prepare(
        uv_loop: *mut c_void,
        target: Rc<T>,
        on_event: fn(&Rc<T>),
    ) -> Result<LoopHandle<T>, UvError> {
        Self::new(uv_loop, Kind::Prepare, -1, target, on_event)
    }

    fn new(
        uv_loop: *mut c_void,
        kind: Kind,
        fd: c_int,
        target: Rc<T>,
        on_event: fn(&Rc<T>),
    ) -> Result<LoopHandle<T>, UvError> {
        let uv = uv().ok_or(UvError::Unavailable)?;
        let ty = match kind {
            Kind::Poll => UV_POLL,
            Kind::Prepare => UV_PREPARE,
        };
        // SAFETY: uv_handle_size is a pure query.
        let size = unsafe { (uv.handle_size)(ty) };
        // SAFETY: calloc of a non-zero size; null is checked below.
        let handle = unsafe { libc::calloc(1, size.max(64)) };
        if handle.is_null() {
            return Err(UvError::Failed);
        }
        // SAFETY: a zeroed allocation of the handle's size, on the loop of
        // this thread. A handle whose init failed was never seen by libuv and
        // is freed here.
        let rc = unsafe {
            match kind {
                Kind::Poll => (uv.poll_init)(uv_loop, handle, fd),
                Kind::Prepare => (uv.prepare_init)(uv_loop, handle),
            }
        };
        if rc != 0 {
            // SAFETY: libuv never saw the handle.
            unsafe { libc::free(handle) };
            return Err(UvError::Failed);
        }
        let inner = Box::into_raw(Box::new(Inner { target, on_event }));
        // SAFETY: `data` is the first member of every libuv handle; it holds
        // the `Inner` until `on_close` reclaims it.
        unsafe { *(handle as *mut *mut c_void) = inner.cast() };
        Ok(LoopHandle {
            handle,
            kind,
            _target: PhantomData,
        })
    }

    /// Starts (or restarts) watching.
    pub fn start(&self) -> Result<(), UvError> {
        let uv = uv().ok_or(UvError::Unavailable)?;
        // SAFETY: a live handle of this kind; the callbacks match its `Inner<T>`.
        let rc = unsafe {
            match self.kind {
                Kind::Poll => (uv.poll_start)(self.handle, READABLE, on_poll::<T>),
                Kind::Prepare => (uv.prepare_start)(self.handle, on_prepare::<T>),
            }
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(UvError::Failed)
        }
    }

    /// Stops watching (a stopped handle does not keep the loop alive).
    pub fn stop(&self) {
        if let Some(uv) = uv() {
            // SAFETY: a live handle of this kind; stopping a stopped handle
            // is a no-op, and the stop calls cannot fail.
            unsafe {
                match self.kind {
                    Kind::Poll => (uv.poll_stop)(self.handle),
                    Kind::Prepare => (uv.prepare_stop)(self.handle),
                };
            }
        }
    }

    /// Whether the running handle keeps the loop alive.
    pub fn set_ref(&self, keep_alive: bool) {
        if let Some(uv) = uv() {
            // SAFETY: a live handle.
            unsafe {
                if keep_alive {
                    (uv.ref_)(self.handle)
                } else {
                    (uv.unref)(self.handle)
                }
            }
        }
    }
}

impl<T> Drop for LoopHandle<T> {
    fn drop(&mut self) {
        self.stop();
        if let Some(uv) = uv() {
            // SAFETY: a live handle, closed once; libuv calls `on_close`
            // after its last use, which frees it and its `Inner<T>`.
            unsafe { (uv.close)(self.handle, on_close::<T>) };
        }
    }
}

/// Calls the handle's `on_event`, holding its own reference to the target for
/// the duration (the callback may drop the handle).
///
/// # Safety
///
/// `handle` is a live handle made by [`LoopHandle::new`] for `T`.
unsafe fn dispatch<T>(handle: Handle) {
    // SAFETY: per the contract, `data` points at the handle's `Inner<T>`,
    // freed only by `on_close`, which runs after this callback.
    let (target, on_event) = unsafe {
        let inner = &*(*(handle as *mut *mut c_void) as *const Inner<T>);
        (inner.target.clone(), inner.on_event)
    };
    on_event(&target);
}

unsafe extern "C" fn on_poll<T>(handle: Handle, _status: c_int, _events: c_int) {
    // SAFETY: libuv passes the poll handle started with this callback.
    unsafe { dispatch::<T>(handle) };
}

unsafe extern "C" fn on_prepare<T>(handle: Handle) {
    // SAFETY: libuv passes the prepare handle started with this callback.
    unsafe { dispatch::<T>(handle) };
}

unsafe extern "C" fn on_close<T>(handle: Handle) {
    // SAFETY: libuv is done with the handle; its `Inner<T>` (made in `new`)
    // and its memory (calloc'd in `new`) are reclaimed exactly once here.
    unsafe {
        drop(Box::from_raw(
            *(handle as *mut *mut c_void) as *mut Inner<T>,
        ));
        libc::free(handle);
    }
}
