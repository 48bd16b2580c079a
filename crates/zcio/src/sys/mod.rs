//! The only place that calls libc directly: mappings, eventfd, limits, uname,
//! and the io_uring registration call whose result the io-uring crate drops;
//! the non-blocking calls of the epoll backend are in `io`.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
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

/// Adds 1 to an eventfd's counter (a full counter is already signalled).
pub(crate) fn eventfd_signal(fd: &OwnedFd) {
    let value: u64 = 1;
    // SAFETY: writes 8 bytes from a local u64.
    let _ = unsafe { libc::write(fd.as_raw_fd(), (&value as *const u64).cast(), 8) };
}

/// A close-on-exec pipe: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    syscall!(pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC))?;
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Writes one byte to `fd`; whether it was written.
pub(crate) fn write_byte(fd: &OwnedFd) -> bool {
    let byte = 1u8;
    // SAFETY: writes 1 byte from a local.
    unsafe { libc::write(fd.as_raw_fd(), (&byte as *const u8).cast(), 1) == 1 }
}

/// `IORING_REGISTER_BUFFERS_UPDATE` (`linux/io_uring.h`, Linux 5.13).
const IORING_REGISTER_BUFFERS_UPDATE: libc::c_long = 16;

/// `struct io_uring_rsrc_update2` (`linux/io_uring.h`).
#[repr(C)]
struct RsrcUpdate2 {
    offset: u32,
    resv: u32,
    data: u64,
    tags: u64,
    nr: u32,
    resv2: u32,
}

/// Replaces entries `offset..offset + iovecs.len()` of the registered-buffer
/// table of the io_uring `ring_fd` (`IORING_REGISTER_BUFFERS_UPDATE`); an
/// empty iovec (null base, length 0) clears its entry.
///
/// Returns how many entries the kernel replaced. The kernel stops at the first
/// buffer it can't register (over `RLIMIT_MEMLOCK`, a bad address...) and,
/// when some went in before it, reports only that count, not the error: a
/// result below `iovecs.len()` is a partial failure, and calling again from
/// there returns the error itself.
///
/// # Safety
///
/// Every non-empty iovec must describe memory that stays mapped until its
/// entry is cleared again or the ring is closed.
pub(crate) unsafe fn io_uring_buffers_update(
    ring_fd: RawFd,
    offset: u32,
    iovecs: &[libc::iovec],
) -> io::Result<u32> {
    let update = RsrcUpdate2 {
        offset,
        resv: 0,
        data: iovecs.as_ptr() as u64,
        tags: 0,
        nr: iovecs.len() as u32,
        resv2: 0,
    };
    // Every argument is passed as a long: the call is variadic.
    // SAFETY: `update` and the iovec array it points at live across the call,
    // which only reads them; the caller keeps the memory the iovecs describe
    // mapped for as long as the kernel may use it.
    let n = syscall!(syscall(
        libc::SYS_io_uring_register,
        libc::c_long::from(ring_fd),
        IORING_REGISTER_BUFFERS_UPDATE,
        &update as *const RsrcUpdate2 as libc::c_long,
        std::mem::size_of::<RsrcUpdate2>() as libc::c_long,
    ))?;
    Ok(n as u32)
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

pub(crate) mod io_calls;
