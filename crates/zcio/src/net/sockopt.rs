//! Socket options.

use std::os::fd::RawFd;

use crate::error::{Error, Result};

pub(super) fn set_int_opt(fd: RawFd, level: i32, name: i32, value: i32) -> Result<()> {
    syscall!(setsockopt(
        fd,
        level,
        name,
        (&value as *const i32).cast(),
        std::mem::size_of::<i32>() as libc::socklen_t
    ))
    .map(drop)
    .map_err(|e| Error::sys("setsockopt", e))
}

pub(super) fn set_nodelay_raw(fd: RawFd, on: bool) -> Result<()> {
    set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, i32::from(on))
}
