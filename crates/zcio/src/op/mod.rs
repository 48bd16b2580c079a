//! Operations in flight: one typed struct per kind, each in a file of its
//! own, owning everything the kernel uses for it.
//!
//! An op is built by whatever starts it (a pool, a buffer group, a socket),
//! stored in the ring's table under its `user_data`, and ended by its
//! completions: [`Op::update`] for those that say more will follow
//! (`IORING_CQE_F_MORE`: multishot receives and accepts, a zero-copy send's
//! first completion), [`Op::complete`] for the final one, after which the
//! ring drops it. Each op gives the backend the form it needs: an io_uring
//! submission entry ([`Op::uring_entry`]), or, for the epoll backend, an
//! [`Op::attempt`] that makes the system call without blocking and says
//! what to wait for when it would block (see `poll`).
//!
//! The rule of this module: memory the kernel sees lives on the heap (a
//! pool's or group's mapping held through an `Rc`, a `Box`), never inline in
//! an op, because the ring's table stores ops by value and moves them when
//! it grows. An op built from raw pointers is built by an `unsafe`
//! constructor whose caller guarantees the memory until the final
//! completion; every other op owns what it points at.

use io_uring::squeue;

mod accept;
mod connect;
mod fixed_rw;
#[cfg(test)]
mod nop;
mod owner;
pub(crate) mod poll;
mod recv;
mod send;
mod send_msg;
pub(crate) mod zc_flags;

pub(crate) use accept::Accept;
pub(crate) use connect::Connect;
pub(crate) use fixed_rw::{Direction, FixedRw};
#[cfg(test)]
pub(crate) use nop::Nop;
pub(crate) use owner::{BufferOwner, RecvOwner, SendMemory, SocketCount, SocketUse};
pub(crate) use recv::Recv;
pub(crate) use send::Send;
pub(crate) use send_msg::SendMsg;

/// The kind of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// `IORING_OP_READ_FIXED`.
    ReadFixed,
    /// `IORING_OP_WRITE_FIXED`.
    WriteFixed,
    /// `IORING_OP_RECV` into a buffer group (one completion).
    Recv,
    /// `IORING_OP_RECV` multishot into a buffer group.
    RecvMulti,
    /// `IORING_OP_SEND` (or `SENDMSG`) of application or pool memory.
    Send,
    /// `IORING_OP_SEND_ZC`: a send completion, then a notification.
    SendZc,
    /// `IORING_OP_ACCEPT` multishot.
    AcceptMulti,
    /// `IORING_OP_CONNECT`.
    Connect,
    /// `IORING_OP_ACCEPT`, one connection.
    Accept,
}

impl OpKind {
    /// The system call this operation stands for, as Node names it in errors.
    pub fn syscall(self) -> &'static str {
        match self {
            OpKind::ReadFixed => "read",
            OpKind::WriteFixed => "write",
            OpKind::Recv | OpKind::RecvMulti => "recv",
            OpKind::Send | OpKind::SendZc => "send",
            OpKind::AcceptMulti | OpKind::Accept => "accept",
            OpKind::Connect => "connect",
        }
    }

    /// A stable number for bindings (the order of the variants).
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// One completion of an operation, as the op sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cqe {
    pub(crate) result: i32,
    pub(crate) flags: u32,
}

/// Where a completion's data is, for operations that have a buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Placed {
    pub(crate) buffer: u32,
    pub(crate) offset: u32,
}

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
