//! The few libuv calls the binding needs, resolved from the running Node
//! binary with `dlsym` (napi-sys does not wrap libuv, and libuv has no stable
//! ABI across majors, so only long-stable calls are used: poll and prepare
//! handles, ref/unref, close, and `uv_handle_size` for the handle sizes).

use std::ffi::{c_int, c_void, CStr};
use std::sync::OnceLock;

pub type Handle = *mut c_void;
pub type Loop = *mut c_void;
pub type PollCb = unsafe extern "C" fn(Handle, c_int, c_int);
pub type PrepareCb = unsafe extern "C" fn(Handle);
pub type CloseCb = unsafe extern "C" fn(Handle);

/// `UV_POLL` and `UV_PREPARE` in `uv_handle_type`.
const UV_POLL: c_int = 8;
const UV_PREPARE: c_int = 9;
/// `UV_READABLE`.
pub const READABLE: c_int = 1;

#[allow(clippy::type_complexity)]
pub struct Uv {
    handle_size: unsafe extern "C" fn(c_int) -> usize,
    pub poll_init: unsafe extern "C" fn(Loop, Handle, c_int) -> c_int,
    pub poll_start: unsafe extern "C" fn(Handle, c_int, PollCb) -> c_int,
    pub poll_stop: unsafe extern "C" fn(Handle) -> c_int,
    pub prepare_init: unsafe extern "C" fn(Loop, Handle) -> c_int,
    pub prepare_start: unsafe extern "C" fn(Handle, PrepareCb) -> c_int,
    pub prepare_stop: unsafe extern "C" fn(Handle) -> c_int,
    pub close: unsafe extern "C" fn(Handle, CloseCb),
    pub ref_: unsafe extern "C" fn(Handle),
    pub unref: unsafe extern "C" fn(Handle),
}

fn sym(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

/// The libuv functions, or `None` when the host does not export them.
// Each transmute's target type is the field it initialises, spelled out in `Uv`.
#[allow(clippy::missing_transmute_annotations)]
pub fn uv() -> Option<&'static Uv> {
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

impl Uv {
    /// Allocates zeroed memory for a poll (`prepare == false`) or prepare handle;
    /// freed by [`free_handle`] from the close callback.
    pub fn alloc_handle(&self, prepare: bool) -> Handle {
        // SAFETY: uv_handle_size is a pure query.
        let size = unsafe { (self.handle_size)(if prepare { UV_PREPARE } else { UV_POLL }) };
        // SAFETY: calloc of a non-zero size; null is checked by the caller.
        unsafe { libc::calloc(1, size.max(64)) }
    }
}

/// Reads the `data` field, the first member of every libuv handle.
///
/// # Safety
///
/// `handle` must point at a live handle allocated by [`Uv::alloc_handle`].
pub unsafe fn data(handle: Handle) -> *mut c_void {
    // SAFETY: per the contract, `handle` is valid and starts with `void *data`.
    unsafe { *(handle as *mut *mut c_void) }
}

/// Writes the `data` field.
///
/// # Safety
///
/// As [`data`].
pub unsafe fn set_data(handle: Handle, value: *mut c_void) {
    // SAFETY: per the contract, `handle` is valid and starts with `void *data`.
    unsafe { *(handle as *mut *mut c_void) = value };
}

/// Frees a handle's memory.
///
/// # Safety
///
/// `handle` came from [`Uv::alloc_handle`] and libuv no longer uses it (its
/// close callback is running).
pub unsafe fn free_handle(handle: Handle) {
    // SAFETY: per the contract.
    unsafe { libc::free(handle) };
}
