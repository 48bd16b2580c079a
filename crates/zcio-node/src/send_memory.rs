//! What a send of a `Uint8Array` hands to the kernel, and what keeps it
//! alive until the operation's final completion.
//!
//! Holding a typed array does not keep its memory: its `ArrayBuffer` can be
//! transferred (`postMessage`, `ArrayBuffer.prototype.transfer()`), which
//! moves the memory to another buffer that may be collected, and freed,
//! while the kernel still reads it. So a send takes its bytes from memory
//! zcio keeps:
//!
//! - a view of a pool's or a buffer group's memory (a region): the op holds
//!   the region, which stays mapped until the op is dropped, whatever
//!   happens to the view, the pool or the group;
//! - a view of a `SharedArrayBuffer`, which can't be detached: the layer's
//!   reference to the view keeps it;
//! - anything else is copied, at submit, into memory the op owns.
//!
//! A view whose buffer is already detached is refused (`ERR_ZCIO_DETACHED`).

use std::any::Any;
use std::cell::RefCell;
use std::rc::{Rc, Weak};

use napi::{sys, Env, JsValue, Result, Unknown};
use zcio::Region;

use crate::error::throw_code;
use crate::raw::buffers;

thread_local! {
    /// The regions (pool and group memory) of this thread's rings.
    static REGIONS: RefCell<Vec<Weak<Region>>> = const { RefCell::new(Vec::new()) };
}

/// Records `region` so that sends of views into it go without a copy.
pub fn register_region(region: &Rc<Region>) {
    REGIONS.with(|r| {
        let mut r = r.borrow_mut();
        r.retain(|w| w.strong_count() > 0);
        r.push(Rc::downgrade(region));
    });
}

/// The live region holding all of `ptr..ptr + len`, if any.
fn region_of(ptr: *const u8, len: usize) -> Option<Rc<Region>> {
    let start = ptr as usize;
    let end = start.checked_add(len)?;
    REGIONS.with(|r| {
        r.borrow().iter().filter_map(Weak::upgrade).find(|g| {
            let base = g.as_ptr() as usize;
            start >= base && end <= base + g.len()
        })
    })
}

/// Where a send's bytes live.
pub enum Bytes {
    /// Memory that stays valid as long as `keep` (held by the op) lives, or
    /// as long as the layer holds the view (a `SharedArrayBuffer`).
    Kept {
        ptr: *const u8,
        len: usize,
        keep: Option<Rc<Region>>,
    },
    /// Memory zcio does not control: to be copied.
    Foreign { ptr: *const u8, len: usize },
}

impl Bytes {
    pub fn len(&self) -> usize {
        match *self {
            Bytes::Kept { len, .. } | Bytes::Foreign { len, .. } => len,
        }
    }

    /// The bytes in memory the op will own: a pointer, a length, and what to
    /// keep with the op. Foreign bytes are copied into a new `Vec`.
    pub fn into_owned(self) -> (*const u8, usize, Box<dyn Any>) {
        match self {
            Bytes::Kept { ptr, len, keep } => (ptr, len, Box::new(keep)),
            Bytes::Foreign { ptr, len } => {
                let copy = foreign_slice(ptr, len).to_vec();
                (copy.as_ptr(), len, Box::new(copy))
            }
        }
    }
}

/// The bytes of foreign memory for copying, now (on the JS thread, which
/// owns them while this runs).
pub fn foreign_slice<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: `ptr..ptr + len` is the data of a live, attached typed array
    // (checked by `bytes_of`) of this thread, read before JS runs again.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

fn bad_type(env: &Env) -> napi::Error {
    throw_code(
        env,
        "ERR_INVALID_ARG_TYPE",
        "The \"data\" argument must be an instance of Uint8Array",
    )
}

/// Classifies the memory of the `Uint8Array` `value` for a send.
pub fn bytes_of(env: &Env, value: &Unknown) -> Result<Bytes> {
    let (env_raw, value) = (env.raw(), value.raw());
    // A failed look reads as "not a Uint8Array" (refused).
    if !buffers::is_typed_array(env_raw, value).unwrap_or(false) {
        return Err(bad_type(env));
    }
    let info = match buffers::typed_array_info(env_raw, value) {
        Ok(info) if info.ty == sys::TypedarrayType::uint8_array => info,
        _ => return Err(bad_type(env)),
    };
    let (len, data, ab) = (info.len, info.data, info.arraybuffer);
    // A failed look reads as a `SharedArrayBuffer` (never detached), as the
    // typed array's buffer is one or the other.
    let is_ab = buffers::is_arraybuffer(env_raw, ab).unwrap_or(false);
    let detached = is_ab && buffers::is_detached(env_raw, ab).unwrap_or(false);
    if detached {
        return Err(throw_code(
            env,
            "ERR_ZCIO_DETACHED",
            "data's ArrayBuffer is detached (transferred): there is nothing to send",
        ));
    }
    let ptr = data as *const u8;
    if !is_ab {
        // A typed array's buffer is an ArrayBuffer or a SharedArrayBuffer;
        // the latter is never detached and lives while the view does.
        return Ok(Bytes::Kept {
            ptr,
            len,
            keep: None,
        });
    }
    Ok(match region_of(ptr, len) {
        Some(region) => Bytes::Kept {
            ptr,
            len,
            keep: Some(region),
        },
        None => Bytes::Foreign { ptr, len },
    })
}
