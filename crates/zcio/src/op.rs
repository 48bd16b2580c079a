//! What an operation in flight owns, and how its completions end it.
//!
//! The ring's table holds one [`Op`] per operation the kernel may still
//! touch. The op keeps alive everything the kernel uses: its *owner* (a pool,
//! a buffer group, a socket — whatever started it and owns its memory) and,
//! optionally, extra memory of any type (a socket address, an application
//! buffer). It stays in the table while the kernel says more completions will
//! follow (`IORING_CQE_F_MORE`: multishot receives and accepts, and a
//! zero-copy send until its notification) and is dropped after the final one.

use std::any::Any;
use std::rc::Rc;

use crate::net::SocketUse;

/// Told when the ring closes: a socket made on it closes too (its descriptor
/// as soon as no operation of another ring uses it).
pub(crate) trait RingCloseHook {
    /// The ring is closing: refuse new operations and cancel those in flight.
    fn ring_closed(&self);
    /// The ring's close has waited long enough for operations that only the
    /// peer can end (a zero-copy send's notification while the peer does not
    /// read): abort the connection so that the kernel lets go of the memory.
    fn ring_close_abort(&self);
}

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
    /// `IORING_OP_SEND` of application memory.
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

/// One completion the kernel posted, as [`OpOwner::complete`] sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cqe {
    pub(crate) result: i32,
    pub(crate) flags: u32,
    /// No more completions follow for this operation.
    pub(crate) last: bool,
}

/// Where a completion's data is, for operations that have a buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Placed {
    pub(crate) buffer: u32,
    pub(crate) offset: u32,
}

/// Whatever started an operation and owns the memory the kernel uses for it.
///
/// The ring keeps an `Rc` of the owner in the op's table entry until the
/// operation's final completion, so the owner (and its memory and
/// registrations) outlives every use by the kernel, whoever else drops it.
pub(crate) trait OpOwner {
    /// Called for every completion of an operation this owner started, in
    /// the order the kernel posted them; says which buffer (and where in it)
    /// the completion refers to.
    fn complete(&self, op: &Op, cqe: Cqe) -> Placed;
}

/// An operation in the ring's table.
pub(crate) struct Op {
    pub(crate) owner: Rc<dyn OpOwner>,
    pub(crate) kind: OpKind,
    /// The owner's own argument (a pool buffer index, a group's count of
    /// chunks, ...).
    pub(crate) arg: u32,
    /// Further memory the kernel uses (a socket address, an application
    /// buffer, a socket), dropped with the op.
    pub(crate) keep: Keep,
}

/// What an op keeps alive besides its owner. Handles are stored as they are,
/// so the common cases (a socket, a group's registration) cost no allocation
/// per operation. The fields are never read: they are held only to be
/// dropped with the op.
#[allow(dead_code)]
pub(crate) enum Keep {
    Nothing,
    /// A socket the op runs on (counted as one of its operations).
    Socket(SocketUse),
    /// A registration and the socket.
    Two(Rc<dyn Any>, SocketUse),
    Boxed(Box<dyn Any>),
}

impl Op {
    pub(crate) fn new(owner: Rc<dyn OpOwner>, kind: OpKind, arg: u32) -> Op {
        Op {
            owner,
            kind,
            arg,
            keep: Keep::Nothing,
        }
    }

    pub(crate) fn keep(mut self, keep: Keep) -> Op {
        self.keep = keep;
        self
    }
}
