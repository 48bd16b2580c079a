//! `IORING_OP_READ_FIXED` / `IORING_OP_WRITE_FIXED`: a file transfer into or
//! out of one registered pool buffer (sparse buffer table: Linux 5.13).

use std::os::fd::RawFd;
use std::rc::Rc;

use io_uring::{opcode, squeue, types};

use super::completion::{Cqe, Placed};
use super::kind::OpKind;
use super::owner::BufferOwner;
use super::poll::{Attempt, Interest, Job};
use crate::sys::io_calls::{self, rw2, RWF_NOWAIT};

/// Which way the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// File to buffer.
    Read,
    /// Buffer to file.
    Write,
}

/// A fixed-buffer read or write; holds the pool (and so its memory and
/// registration) until its completion.
pub(crate) struct FixedRw {
    pub(crate) dir: Direction,
    pub(crate) pool: Rc<dyn BufferOwner>,
    pub(crate) index: u32,
    /// The buffer's index in the ring's registered-buffer table.
    pub(crate) buf_index: u16,
    pub(crate) fd: RawFd,
    pub(crate) pos: u64,
    /// Inside buffer `index` of the pool, `len` bytes long.
    pub(crate) addr: *mut u8,
    pub(crate) len: u32,
    /// On the epoll backend: the file has no positions (a pipe, a socket, a
    /// terminal), so the transfer waits for readiness like a socket's.
    pub(crate) stream: bool,
    /// On the epoll backend: the file can't be asked not to block
    /// (`RWF_NOWAIT` refused), so a worker thread does the transfer.
    pub(crate) plain: bool,
    /// On the epoll backend: a try at submission found that the transfer
    /// would block, so the next attempt hands it to a worker without
    /// trying again.
    pub(crate) tried: bool,
}

impl FixedRw {
    pub(crate) fn kind(&self) -> OpKind {
        match self.dir {
            Direction::Read => OpKind::ReadFixed,
            Direction::Write => OpKind::WriteFixed,
        }
    }

    pub(crate) fn uring_entry(&self) -> squeue::Entry {
        let fd = types::Fd(self.fd);
        match self.dir {
            Direction::Read => opcode::ReadFixed::new(fd, self.addr, self.len, self.buf_index)
                .offset(self.pos)
                .build(),
            Direction::Write => opcode::WriteFixed::new(fd, self.addr, self.len, self.buf_index)
                .offset(self.pos)
                .build(),
        }
    }

    /// The readiness form: a page-cache hit (or a ready pipe) is done at
    /// once without blocking (`RWF_NOWAIT`); a file read that would block
    /// goes to a worker thread; a stream waits until it is ready.
    pub(crate) fn attempt(&mut self) -> Attempt {
        let write = self.dir == Direction::Write;
        if !self.plain && !std::mem::take(&mut self.tried) {
            let pos = if self.stream { -1 } else { self.pos as i64 };
            // SAFETY: `addr..addr + len` lies in buffer `index` of the pool,
            // which the op holds until its completion.
            let r = unsafe {
                rw2(
                    write,
                    self.fd,
                    self.addr,
                    self.len as usize,
                    pos,
                    RWF_NOWAIT,
                )
            };
            match r {
                // A positioned transfer the page cache served only in part
                // (the rest not cached yet) goes whole to a worker, which
                // blocks for the rest: only a stream or the end of the file
                // may end a transfer short. Redoing the part is harmless at
                // a fixed position.
                r if r > 0 && (r as u32) < self.len && !self.stream => {}
                r if r >= 0 => {
                    return Attempt::Done {
                        result: r,
                        flags: 0,
                    }
                }
                r if r == -libc::EAGAIN && self.stream => {
                    let interest = if write {
                        Interest::Write
                    } else {
                        Interest::Read
                    };
                    return Attempt::Wait {
                        fd: self.fd,
                        interest,
                    };
                }
                r if r == -libc::EAGAIN => {}
                r if r == -libc::ESPIPE && !self.stream => {
                    self.stream = true;
                    return self.attempt();
                }
                // Refused flags, or no preadv2/pwritev2 at all (an old
                // kernel, an emulator): the plain calls do.
                r if r == -libc::EOPNOTSUPP || r == -libc::EINVAL || r == -libc::ENOSYS => {
                    self.plain = true;
                    // Without preadv2 the ESPIPE that tells a pipe was never
                    // seen: ask the file itself.
                    if r == -libc::ENOSYS && !io_calls::seekable(self.fd) {
                        self.stream = true;
                    }
                }
                r => {
                    return Attempt::Done {
                        result: r,
                        flags: 0,
                    }
                }
            }
        }
        if self.stream {
            // A pipe or terminal that can't be asked not to block: a plain
            // transfer once it is ready (a blocking descriptor then returns
            // at once; a non-blocking one may still say EAGAIN).
            let interest = if write {
                Interest::Write
            } else {
                Interest::Read
            };
            let wait = Attempt::Wait {
                fd: self.fd,
                interest,
            };
            if !io_calls::ready_now(self.fd, write) {
                return wait;
            }
            // SAFETY: as above.
            let r = unsafe {
                io_calls::rw_blocking(write, self.fd, self.addr, self.len as usize, None)
            };
            return if r == -libc::EAGAIN {
                wait
            } else {
                Attempt::Done {
                    result: r,
                    flags: 0,
                }
            };
        }
        Attempt::Blocking(Job {
            write,
            fd: self.fd,
            addr: self.addr as usize,
            len: self.len as usize,
            pos: Some(self.pos),
        })
    }

    pub(crate) fn placed(&self) -> Placed {
        Placed {
            buffer: self.index,
            offset: 0,
        }
    }

    pub(crate) fn complete(&mut self, cqe: Cqe) -> Placed {
        self.pool.op_done(self.index, cqe.result);
        self.placed()
    }
}
