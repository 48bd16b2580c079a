//! The kind of an operation.

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
