//! The operation in the ring's table: each call goes to the typed op.

use io_uring::squeue;

use super::accept::Accept;
use super::completion::{Cqe, Placed};
use super::connect::Connect;
use super::fixed_rw::{Direction, FixedRw};
use super::kind::OpKind;
#[cfg(test)]
use super::nop::Nop;
use super::poll;
use super::recv::Recv;
use super::send::Send;
use super::send_msg::SendMsg;

/// An operation in the ring's table.
pub(crate) enum Op {
    Fixed(FixedRw),
    Send(Send),
    SendMsg(SendMsg),
    Recv(Recv),
    Accept(Accept),
    Connect(Connect),
    #[cfg(test)]
    Nop(Nop),
}

impl Op {
    /// What the operation is, for its completion.
    pub(crate) fn kind(&self) -> OpKind {
        match self {
            Op::Fixed(op) => op.kind(),
            Op::Send(op) => op.kind(),
            Op::SendMsg(_) => OpKind::Send,
            Op::Recv(op) => op.kind(),
            Op::Accept(op) => op.kind(),
            Op::Connect(_) => OpKind::Connect,
            #[cfg(test)]
            Op::Nop(_) => OpKind::Send,
        }
    }

    /// Whether the next operation queued waits for this one to complete in
    /// full (`IOSQE_IO_LINK`), and is cancelled if it does not.
    pub(crate) fn links(&self) -> bool {
        match self {
            Op::Send(op) => op.links(),
            Op::SendMsg(op) => op.links(),
            #[cfg(test)]
            Op::Nop(op) => op.links(),
            _ => false,
        }
    }

    /// The descriptor the operation works on.
    pub(crate) fn fd(&self) -> std::os::fd::RawFd {
        match self {
            Op::Fixed(op) => op.fd,
            Op::Send(op) => op.fd(),
            Op::SendMsg(op) => op.fd(),
            Op::Recv(op) => op.fd(),
            Op::Accept(op) => op.fd(),
            Op::Connect(op) => op.fd(),
            #[cfg(test)]
            Op::Nop(_) => -1,
        }
    }

    /// The result a linked operation needs from this one to follow it (a
    /// send in full); anything else cancels the rest of the chain.
    pub(crate) fn expected(&self) -> i32 {
        match self {
            Op::Send(op) => op.expected(),
            Op::SendMsg(op) => op.expected(),
            _ => 0,
        }
    }

    /// Which queue of its descriptor the op waits in on the epoll backend:
    /// an op starts only once those started before it in that queue are done.
    pub(crate) fn poll_interest(&self) -> Option<poll::Interest> {
        match self {
            Op::Fixed(op) if op.dir == Direction::Read => Some(poll::Interest::Read),
            Op::Fixed(_) => Some(poll::Interest::Write),
            Op::Send(_) | Op::SendMsg(_) | Op::Connect(_) => Some(poll::Interest::Write),
            Op::Recv(_) | Op::Accept(_) => Some(poll::Interest::Read),
            #[cfg(test)]
            Op::Nop(_) => None,
        }
    }

    /// Whether the descriptor is a zcio socket's (which says when it
    /// closes), not the application's (the file of a fixed-buffer transfer).
    pub(crate) fn on_own_socket(&self) -> bool {
        !matches!(self, Op::Fixed(_))
    }

    /// The readiness form: one try, without blocking (epoll backend).
    pub(crate) fn attempt(&mut self, fd_flags: &mut poll::FdFlags) -> poll::Attempt {
        match self {
            Op::Fixed(op) => op.attempt(),
            Op::Send(op) => op.attempt(fd_flags),
            Op::SendMsg(op) => op.attempt(),
            Op::Recv(op) => op.attempt(),
            Op::Accept(op) => op.attempt(),
            Op::Connect(op) => op.attempt(),
            #[cfg(test)]
            Op::Nop(_) => poll::Attempt::Done {
                result: 0,
                flags: 0,
            },
        }
    }

    /// The readiness form's outcome when the op is given up while it waits
    /// (cancelled, or its chain broken) with `errno`: what it already did
    /// stands, as on io_uring — a send reports the bytes it sent, and a
    /// zero-copy send that handed memory to the socket still waits for
    /// those notifications.
    pub(crate) fn abandoned(&mut self, errno: i32) -> poll::Attempt {
        match self {
            Op::Send(op) => op.abandoned(errno),
            Op::SendMsg(op) => op.abandoned(errno),
            _ => poll::Attempt::Done {
                result: -errno,
                flags: 0,
            },
        }
    }

    /// The io_uring submission entry (its `user_data` is set by the ring).
    pub(crate) fn uring_entry(&self) -> squeue::Entry {
        let entry = match self {
            Op::Fixed(op) => op.uring_entry(),
            Op::Send(op) => op.uring_entry(),
            Op::SendMsg(op) => op.uring_entry(),
            Op::Recv(op) => op.uring_entry(),
            Op::Accept(op) => op.uring_entry(),
            Op::Connect(op) => op.uring_entry(),
            #[cfg(test)]
            Op::Nop(_) => io_uring::opcode::Nop::new().build(),
        };
        if self.links() {
            entry.flags(squeue::Flags::IO_LINK)
        } else {
            entry
        }
    }

    /// Whether the op's one completion from io_uring stands for two: a
    /// zero-copy send sent by copy (see `Send::notifies_itself`).
    pub(crate) fn notifies_itself(&self) -> bool {
        matches!(self, Op::Send(op) if op.notifies_itself())
    }

    /// A completion after which more follow (`IORING_CQE_F_MORE`).
    pub(crate) fn update(&mut self, cqe: Cqe) -> Placed {
        match self {
            Op::Fixed(op) => op.placed(),
            Op::Send(op) => op.placed(),
            Op::Recv(op) => op.update(cqe),
            _ => Placed::default(),
        }
    }

    /// The final completion; the ring drops the op (and what it keeps
    /// alive) after it.
    pub(crate) fn complete(&mut self, cqe: Cqe) -> Placed {
        match self {
            Op::Fixed(op) => op.complete(cqe),
            Op::Send(op) => op.complete(cqe),
            Op::Recv(op) => op.complete(cqe),
            _ => Placed::default(),
        }
    }
}
