//! The ring's registered-buffer table as pools use it: ranges registered and
//! cleared with `IORING_REGISTER_BUFFERS_UPDATE`, robust against partial
//! registration (see `buf_table.rs` for the index allocator).

use std::os::fd::{AsRawFd, RawFd};

use super::buf_table::MAX_REGISTERED_BUFFERS;
use super::instance::Uring;
use crate::error::{Error, Result};
use crate::sys;

impl Uring {
    /// Registers `iovecs` in a free range of the ring's registered-buffer
    /// table and returns the range's first index.
    ///
    /// # Safety
    ///
    /// Every iovec's memory stays mapped until [`unregister_buffers`]
    /// (Self::unregister_buffers) clears the range or the ring is closed.
    pub(crate) unsafe fn register_buffers(&self, iovecs: &[libc::iovec]) -> Result<u32> {
        let ring = self;
        let count = iovecs.len() as u32;
        let mut table = ring.table.borrow_mut();
        let base = table.alloc(count)?;
        if !table.registered {
            let sparse = ring.with_uring(|uring| {
                uring
                    .submitter()
                    .register_buffers_sparse(MAX_REGISTERED_BUFFERS)
            });
            match sparse {
                Ok(Ok(())) => table.registered = true,
                Ok(Err(e)) => {
                    table.free(base);
                    return Err(match e.raw_os_error() {
                        Some(libc::EINVAL) => Error::Unsupported {
                            feature: "a sparse registered-buffer table",
                            needs: "5.13",
                            release: sys::kernel_release(),
                        },
                        _ => Error::sys("io_uring_register", e),
                    });
                }
                Err(e) => {
                    table.free(base);
                    return Err(e);
                }
            }
        }
        let res = ring.with_uring(|uring| {
            let fd = uring.as_raw_fd();
            // The kernel registers buffers one by one and, when it fails after
            // the first, returns only how many went in: resume after them until
            // all are in or the call reports the error of the one that failed.
            let mut done = 0;
            while done < count {
                // SAFETY: the caller keeps each iovec's memory mapped until the
                // entries are cleared again (`unregister_buffers`, or below on
                // failure) or the ring is closed.
                let step = unsafe {
                    sys::io_uring_buffers_update(fd, base + done, &iovecs[done as usize..])
                };
                let e = match step {
                    Ok(n) if n > 0 => {
                        done += n;
                        continue;
                    }
                    // Not a result the kernel gives for a non-empty update.
                    Ok(_) => std::io::Error::from_raw_os_error(libc::EIO),
                    Err(e) => e,
                };
                return Err((e, clear_range(fd, base, done).is_ok()));
            }
            Ok(())
        });
        let (e, cleared) = match res {
            Ok(Ok(())) => return Ok(base),
            Ok(Err(failed)) => failed,
            Err(closed) => {
                table.free(base);
                return Err(closed);
            }
        };
        if cleared {
            table.free(base);
        }
        // Otherwise the range stays allocated: its entries may still name this
        // region's pages, and no other pool may be given them.
        Err(match e.raw_os_error() {
            Some(libc::ENOMEM) => Error::Memlock {
                bytes: iovecs.iter().map(|v| v.iov_len as u64).sum(),
                limit: sys::memlock_limit()
                    .map_or_else(|| "unlimited".into(), |l| format!("{l} bytes")),
                source: e,
            },
            _ => Error::sys("io_uring_register", e),
        })
    }

    /// Clears a range made by [`register_buffers`](Self::register_buffers),
    /// releasing its pages (and the locked-memory charge). If the kernel
    /// refuses, the range stays allocated for good: its entries may still
    /// name the old pages, and no one else may be given them.
    pub(crate) fn unregister_buffers(&self, base: u32, count: u32) {
        let mut table = self.table.borrow_mut();
        if !table.registered {
            return; // the ring is closed: the kernel dropped the table
        }
        let cleared = self.with_uring(|uring| clear_range(uring.as_raw_fd(), base, count));
        if matches!(cleared, Ok(Ok(()))) {
            table.free(base);
        }
    }
}

/// Clears entries `base..base + count` of the registered-buffer table of the
/// io_uring `fd`, releasing their pages (and the locked-memory charge).
fn clear_range(fd: RawFd, base: u32, count: u32) -> std::io::Result<()> {
    let empty = vec![
        libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        count as usize
    ];
    let mut done = 0;
    while done < count {
        // SAFETY: empty iovecs reference no memory; they clear the entries.
        match unsafe { sys::io_uring_buffers_update(fd, base + done, &empty[done as usize..]) }? {
            0 => return Err(std::io::Error::from_raw_os_error(libc::EIO)),
            n => done += n,
        }
    }
    Ok(())
}
