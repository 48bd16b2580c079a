//! `IORING_OP_READ_FIXED` / `IORING_OP_WRITE_FIXED`: a file transfer into or
//! out of one registered pool buffer (sparse buffer table: Linux 5.13).

use std::os::fd::RawFd;
use std::rc::Rc;

use io_uring::{opcode, squeue, types};

use super::{BufferOwner, Cqe, OpKind, Placed};

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
