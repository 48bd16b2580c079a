//! The system calls of the epoll backend: transfers that never block the
//! calling thread (`RWF_NOWAIT`, `MSG_DONTWAIT`), the blocking ones the
//! worker threads make, epoll itself and the zero-copy error queue. Each
//! returns the count, or `-errno`, as a completion does.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `RWF_NOWAIT` (Linux 4.14): fail with `EAGAIN` rather than block.
pub(crate) const RWF_NOWAIT: i32 = 0x8;
/// `SO_ZEROCOPY` (`asm-generic/socket.h`, Linux 4.14; the same on every
/// target zcio builds for).
const SO_ZEROCOPY: i32 = 60;
/// `SO_EE_ORIGIN_ZEROCOPY` (`linux/errqueue.h`).
const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
/// `SO_EE_CODE_ZEROCOPY_COPIED` (`linux/errqueue.h`).
const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;

fn neg_errno() -> i32 {
    -std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn res(n: isize) -> i32 {
    if n < 0 {
        neg_errno()
    } else {
        n.min(i32::MAX as isize) as i32
    }
}

/// `preadv2`/`pwritev2` of one range at `pos` (-1: the file's position).
///
/// # Safety
///
/// `addr..addr + len` is valid for the transfer (writable for a read).
pub(crate) unsafe fn rw2(
    write: bool,
    fd: RawFd,
    addr: *mut u8,
    len: usize,
    pos: i64,
    flags: i32,
) -> i32 {
    let iov = libc::iovec {
        iov_base: addr.cast(),
        iov_len: len,
    };
    let nr = if write {
        libc::SYS_pwritev2
    } else {
        libc::SYS_preadv2
    };
    loop {
        // The offset goes in two longs (low, high); on 64-bit targets the
        // low one holds it all. Variadic: every argument is a long.
        // SAFETY: `iov` lives across the call; the caller vouches for the range.
        let n = unsafe {
            libc::syscall(
                nr,
                libc::c_long::from(fd),
                &iov as *const libc::iovec as libc::c_long,
                1 as libc::c_long,
                pos as libc::c_long,
                0 as libc::c_long,
                libc::c_long::from(flags),
            )
        };
        let r = res(n as isize);
        if r != -libc::EINTR {
            return r;
        }
    }
}

/// Whether `fd` has positions a `pread` can use (a regular file or a block
/// device); `false` for pipes, sockets, terminals, or when `fstat` fails.
pub(crate) fn seekable(fd: RawFd) -> bool {
    // SAFETY: stat is plain data; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable stat for the whole call.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return false;
    }
    let kind = st.st_mode & libc::S_IFMT;
    kind == libc::S_IFREG || kind == libc::S_IFBLK
}

/// A plain `pread`/`pwrite` (or `read`/`write` at the position), retried on
/// `EINTR`: what a worker thread runs.
///
/// # Safety
///
/// As [`rw2`].
pub(crate) unsafe fn rw_blocking(
    write: bool,
    fd: RawFd,
    addr: *mut u8,
    len: usize,
    pos: Option<u64>,
) -> i32 {
    loop {
        // SAFETY: the caller's contract.
        let n = unsafe {
            match (write, pos) {
                (false, Some(p)) => libc::pread(fd, addr.cast(), len, p as libc::off_t),
                (true, Some(p)) => libc::pwrite(fd, addr.cast(), len, p as libc::off_t),
                (false, None) => libc::read(fd, addr.cast(), len),
                (true, None) => libc::write(fd, addr.cast(), len),
            }
        };
        let r = res(n);
        if r != -libc::EINTR {
            return r;
        }
    }
}

/// `send(2)` that never blocks, with `MSG_NOSIGNAL` (and `extra` flags).
///
/// # Safety
///
/// `ptr..ptr + len` is readable.
pub(crate) unsafe fn send(fd: RawFd, ptr: *const u8, len: usize, extra: i32) -> i32 {
    let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT | extra;
    loop {
        // SAFETY: the caller's contract.
        let r = res(unsafe { libc::send(fd, ptr.cast(), len, flags) });
        if r != -libc::EINTR {
            return r;
        }
    }
}

/// `sendmsg(2)` that never blocks, with `MSG_NOSIGNAL`.
///
/// # Safety
///
/// `hdr` and the memory its iovecs describe are valid.
pub(crate) unsafe fn sendmsg(fd: RawFd, hdr: *const libc::msghdr) -> i32 {
    let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
    loop {
        // SAFETY: the caller's contract.
        let r = res(unsafe { libc::sendmsg(fd, hdr, flags) });
        if r != -libc::EINTR {
            return r;
        }
    }
}

/// `recv(2)` that never blocks.
///
/// # Safety
///
/// `ptr..ptr + len` is writable.
pub(crate) unsafe fn recv(fd: RawFd, ptr: *mut u8, len: usize) -> i32 {
    loop {
        // SAFETY: the caller's contract.
        let r = res(unsafe { libc::recv(fd, ptr.cast(), len, libc::MSG_DONTWAIT) });
        if r != -libc::EINTR {
            return r;
        }
    }
}

/// `accept4(2)` of one connection, close-on-exec (the listener is
/// non-blocking on this backend).
pub(crate) fn accept(fd: RawFd) -> i32 {
    loop {
        // SAFETY: no address is asked for: both pointers are null.
        let r = unsafe {
            libc::accept4(
                fd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        let r = if r < 0 { neg_errno() } else { r };
        if r != -libc::EINTR {
            return r;
        }
    }
}

/// `connect(2)` of a non-blocking socket: 0, `-EINPROGRESS` or `-errno`.
pub(crate) fn connect(fd: RawFd, addr: &(libc::sockaddr_storage, libc::socklen_t)) -> i32 {
    // SAFETY: the address lives across the call, which only reads it.
    let r = unsafe {
        libc::connect(
            fd,
            (&addr.0 as *const libc::sockaddr_storage).cast(),
            addr.1,
        )
    };
    if r < 0 {
        neg_errno()
    } else {
        0
    }
}

/// `SO_ERROR` of a socket: 0 or `-errno` (the outcome of a connect).
pub(crate) fn socket_error(fd: RawFd) -> i32 {
    let mut err: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    match syscall!(getsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_ERROR,
        (&mut err as *mut i32).cast(),
        &mut len
    )) {
        Ok(_) => -err,
        Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
    }
}

/// Turns `O_NONBLOCK` on or off; returns whether it was on.
pub(crate) fn set_nonblocking(fd: RawFd, on: bool) -> std::io::Result<bool> {
    let flags = syscall!(fcntl(fd, libc::F_GETFL))?;
    let was = flags & libc::O_NONBLOCK != 0;
    let want = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if want != flags {
        syscall!(fcntl(fd, libc::F_SETFL, want))?;
    }
    Ok(was)
}

/// Turns `SO_ZEROCOPY` on: 0 or `-errno` (`EOPNOTSUPP` where the socket
/// type has no zero-copy send, as Unix sockets).
pub(crate) fn enable_zerocopy(fd: RawFd) -> i32 {
    let one: i32 = 1;
    match syscall!(setsockopt(
        fd,
        libc::SOL_SOCKET,
        SO_ZEROCOPY,
        (&one as *const i32).cast(),
        std::mem::size_of::<i32>() as libc::socklen_t
    )) {
        Ok(_) => 0,
        Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
    }
}

/// Whether a TCP socket takes `SO_ZEROCOPY`, as the epoll backend's
/// zero-copy send asks of each socket (`ENOPROTOOPT` or `ENOSYS` there
/// means it copies): false under an emulator that does not know the option.
/// Whether `preadv2` takes `RWF_NOWAIT` here (Linux 4.14): a one-byte read
/// of this program's file, which is in the page cache, or `EAGAIN`. False
/// where the system does not know the call (`ENOSYS`: an emulator such as
/// qemu-user) or the flag.
pub(crate) fn nowait_known() -> bool {
    let Ok(file) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    let mut byte = 0u8;
    // SAFETY: one writable byte on the stack, alive across the call.
    let r = unsafe { rw2(false, file.as_raw_fd(), &mut byte, 1, 0, RWF_NOWAIT) };
    r >= 0 || r == -libc::EAGAIN
}

pub(crate) fn zerocopy_known() -> bool {
    let Ok(raw) = syscall!(socket(
        libc::AF_INET,
        libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
        0
    )) else {
        return false;
    };
    // SAFETY: `raw` is a fresh descriptor nothing else owns; `fd` closes it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    enable_zerocopy(fd.as_raw_fd()) == 0
}

/// One zero-copy notification from a socket's error queue: the range of
/// send calls (numbered from 0 per socket) whose memory the kernel let go
/// of, and whether it copied them after all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ZcNotice {
    pub(crate) lo: u32,
    pub(crate) hi: u32,
    pub(crate) copied: bool,
}

/// Reads one message of the error queue (`MSG_ERRQUEUE`, never blocking):
/// `Ok(Some)` for a zero-copy notification, `Ok(None)` for another message,
/// `Err(errno)` (`EAGAIN` when the queue is empty).
pub(crate) fn recv_errqueue(fd: RawFd) -> Result<Option<ZcNotice>, i32> {
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain data; zeros are a valid empty header.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_control = control.as_mut_ptr().cast();
    hdr.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: the header and its control buffer live across the call.
    let n = unsafe { libc::recvmsg(fd, &mut hdr, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(-neg_errno());
    }
    // SAFETY: the kernel filled `msg_controllen` bytes of `control`; the
    // CMSG macros walk only inside them.
    unsafe {
        let mut cm = libc::CMSG_FIRSTHDR(&hdr);
        while !cm.is_null() {
            let c = &*cm;
            let ip = (c.cmsg_level == libc::SOL_IP && c.cmsg_type == libc::IP_RECVERR)
                || (c.cmsg_level == libc::SOL_IPV6 && c.cmsg_type == libc::IPV6_RECVERR);
            if ip {
                let ee =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cm).cast::<libc::sock_extended_err>());
                if ee.ee_errno == 0 && ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY {
                    return Ok(Some(ZcNotice {
                        lo: ee.ee_info,
                        hi: ee.ee_data,
                        copied: ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED != 0,
                    }));
                }
            }
            cm = libc::CMSG_NXTHDR(&hdr, cm);
        }
    }
    Ok(None)
}

/// A close-on-exec epoll instance.
pub(crate) fn epoll_create() -> std::io::Result<OwnedFd> {
    let fd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
    // SAFETY: epoll_create1 returned a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `epoll_ctl(2)`: 0 or `-errno`.
pub(crate) fn epoll_ctl(epfd: &OwnedFd, op: i32, fd: RawFd, events: u32, token: u64) -> i32 {
    let mut ev = libc::epoll_event { events, u64: token };
    match syscall!(epoll_ctl(epfd.as_raw_fd(), op, fd, &mut ev)) {
        Ok(_) => 0,
        Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
    }
}

/// `epoll_wait(2)` into `events` (`timeout_ms` -1: until one comes);
/// returns how many came (0 when interrupted).
pub(crate) fn epoll_wait(
    epfd: &OwnedFd,
    events: &mut [libc::epoll_event],
    timeout_ms: i32,
) -> usize {
    // SAFETY: `events` is a valid, writable array of its length.
    let n = unsafe {
        libc::epoll_wait(
            epfd.as_raw_fd(),
            events.as_mut_ptr(),
            events.len().min(i32::MAX as usize) as i32,
            timeout_ms,
        )
    };
    n.max(0) as usize
}

/// Whether `fd` is readable now (`poll(2)`, no wait).
pub(crate) fn readable_now(fd: RawFd) -> bool {
    ready_now(fd, false)
}

/// Whether `fd` becomes readable within `ms` milliseconds (`poll(2)`).
pub(crate) fn readable_within(fd: RawFd, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd on the stack for the whole call.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    n > 0
}

/// Whether `fd` is readable (or, with `write`, writable) now, or has an
/// error or hang-up to report (`poll(2)`, no wait).
pub(crate) fn ready_now(fd: RawFd, write: bool) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: if write { libc::POLLOUT } else { libc::POLLIN },
        revents: 0,
    };
    // SAFETY: one valid pollfd on the stack for the whole call.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0
}
