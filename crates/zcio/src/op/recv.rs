//! `IORING_OP_RECV` into a buffer group (the kernel picks the buffer,
//! `IOSQE_BUFFER_SELECT`), once or multishot.

use std::os::fd::RawFd;
use std::rc::Rc;

use io_uring::{opcode, squeue, types};

use super::completion::{Cqe, Placed};
use super::kind::OpKind;
use super::owner::{ProvidedBuffers, RecvOwner, SocketUse};
use super::poll::{Attempt, Interest};
use crate::sys::io_calls;

pub(crate) struct Recv {
    fd: RawFd,
    group: Rc<dyn RecvOwner>,
    group_id: u16,
    multishot: bool,
    /// The group's buffer ring (the kernel reads buffer addresses from its
    /// memory) or queue, kept until the final completion.
    buffers: Rc<dyn ProvidedBuffers>,
    _socket: SocketUse,
}

impl Recv {
    pub(crate) fn new(
        fd: RawFd,
        group: Rc<dyn RecvOwner>,
        group_id: u16,
        multishot: bool,
        buffers: Rc<dyn ProvidedBuffers>,
        socket: SocketUse,
    ) -> Recv {
        Recv {
            fd,
            group,
            group_id,
            multishot,
            buffers,
            _socket: socket,
        }
    }

    pub(crate) fn kind(&self) -> OpKind {
        if self.multishot {
            OpKind::RecvMulti
        } else {
            OpKind::Recv
        }
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    pub(crate) fn uring_entry(&self) -> squeue::Entry {
        let fd = types::Fd(self.fd);
        // The kernel writes only into buffers of the group's ring.
        if self.multishot {
            opcode::RecvMulti::new(fd, self.group_id).build()
        } else {
            opcode::Recv::new(fd, std::ptr::null_mut(), 0)
                .buf_group(self.group_id)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT)
        }
    }

    /// The readiness form: the next free buffer of the group (none:
    /// `-ENOBUFS`, as the kernel answers), filled by one `recv` without
    /// blocking; a multishot receive goes on after each.
    pub(crate) fn attempt(&mut self) -> Attempt {
        let Some((bid, ptr, room)) = self.buffers.next_buffer() else {
            return Attempt::Done {
                result: -libc::ENOBUFS,
                flags: 0,
            };
        };
        // SAFETY: `ptr..ptr + room` is free room of buffer `bid` of the
        // group, which the op holds; nothing else writes it until the
        // group hands it out with this completion.
        let r = unsafe { io_calls::recv(self.fd, ptr, room) };
        if r == -libc::EAGAIN {
            return Attempt::Wait {
                fd: self.fd,
                interest: Interest::Read,
            };
        }
        if r <= 0 {
            // End of stream or an error: no buffer is used.
            return Attempt::Done {
                result: r,
                flags: 0,
            };
        }
        let flags = self.buffers.filled(bid, r as usize);
        let drained = (r as usize) < room;
        if self.multishot {
            Attempt::More {
                result: r,
                flags,
                drained,
            }
        } else if drained {
            Attempt::DoneDrained { result: r, flags }
        } else {
            Attempt::Done { result: r, flags }
        }
    }

    pub(crate) fn update(&mut self, cqe: Cqe) -> Placed {
        self.group.received(cqe, false)
    }

    pub(crate) fn complete(&mut self, cqe: Cqe) -> Placed {
        self.group.received(cqe, true)
    }
}
