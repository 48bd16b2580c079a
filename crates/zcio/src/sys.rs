//! The only place that calls libc directly: mappings, eventfd, limits, uname.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

/// Runs a libc call that returns `-1` and sets `errno` on failure.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        // SAFETY: the caller of the macro passes valid arguments to a libc call;
        // each call site states why its pointers are valid.
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

/// The system page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size <= 0 {
        4096
    } else {
        size as usize
    }
}

/// An anonymous, private, page-aligned mapping, unmapped on drop.
///
/// The memory is zero-filled and never file-backed, as fixed buffers require.
#[derive(Debug)]
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mmap {
    /// Maps `len` bytes (rounded up to whole pages).
    pub(crate) fn anonymous(len: usize) -> io::Result<Mmap> {
        let page = page_size();
        let len = len.div_ceil(page) * page;
        // SAFETY: a fresh anonymous mapping at an address the kernel chooses
        // touches no existing memory.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // A child made by fork() without exec() must not share pinned pages
        // with the kernel's view of the parent's registration.
        // SAFETY: ptr..ptr+len is the mapping made above.
        unsafe { libc::madvise(ptr, len, libc::MADV_DONTFORK) };
        Ok(Mmap {
            // SAFETY: mmap succeeded, so ptr is non-null.
            ptr: unsafe { NonNull::new_unchecked(ptr.cast()) },
            len,
        })
    }

    /// Start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length of the mapping in bytes (whole pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never: mappings are at least a page).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe a mapping this value owns; nothing borrows it
        // any more (owners keep the Mmap alive while memory is lent out).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A non-blocking, close-on-exec eventfd.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    let fd = syscall!(eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))?;
    // SAFETY: eventfd returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Clears an eventfd's counter. Returns whether it was signalled.
pub(crate) fn eventfd_drain(fd: &OwnedFd) -> bool {
    let mut value: u64 = 0;
    // SAFETY: reads 8 bytes into a local u64.
    let n = unsafe { libc::read(fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
    n == 8
}

/// The soft `RLIMIT_MEMLOCK`, in bytes (`None` = unlimited).
pub(crate) fn memlock_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a local struct.
    syscall!(getrlimit(libc::RLIMIT_MEMLOCK, &mut lim)).ok()?;
    if lim.rlim_cur == libc::RLIM_INFINITY {
        None
    } else {
        Some(lim.rlim_cur)
    }
}

/// The running kernel's release string (`uname -r`).
pub(crate) fn kernel_release() -> String {
    // SAFETY: utsname is plain old data; zeroed is a valid value.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    if syscall!(uname(&mut uts)).is_err() {
        return String::from("unknown");
    }
    // SAFETY: uname NUL-terminates release within the array.
    unsafe { CStr::from_ptr(uts.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// The kernel's (major, minor) version, parsed from the release string.
pub(crate) fn kernel_version() -> (u32, u32) {
    let release = kernel_release();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor)
}

/// Reads a small procfs/sysfs file, trimmed.
pub(crate) fn read_proc(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}
