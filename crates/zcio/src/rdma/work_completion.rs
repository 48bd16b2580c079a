//! `WorkCompletion`: one completed (or flushed) work request, as
//! [`CompletionQueue::poll`](super::CompletionQueue::poll) reports it.

use super::sys;

/// What a completed work request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkOpcode {
    /// A send (with or without immediate data).
    Send,
    /// An RDMA WRITE.
    RdmaWrite,
    /// An RDMA READ.
    RdmaRead,
    /// A receive.
    Recv,
    /// A receive of an RDMA WRITE with immediate data.
    RecvRdmaWithImm,
    /// Anything else (the device's opcode).
    Other(i32),
}

impl WorkOpcode {
    pub(super) fn from_raw(op: i32) -> WorkOpcode {
        match op {
            0 => WorkOpcode::Send,
            1 => WorkOpcode::RdmaWrite,
            2 => WorkOpcode::RdmaRead,
            128 => WorkOpcode::Recv,
            129 => WorkOpcode::RecvRdmaWithImm,
            o => WorkOpcode::Other(o),
        }
    }

    /// The device's number (`ibv_wc_opcode`: 0 send, 1 RDMA WRITE, 2 RDMA
    /// READ, 128 receive, 129 receive of a WRITE with immediate data).
    pub fn raw(self) -> i32 {
        match self {
            WorkOpcode::Send => 0,
            WorkOpcode::RdmaWrite => 1,
            WorkOpcode::RdmaRead => 2,
            WorkOpcode::Recv => 128,
            WorkOpcode::RecvRdmaWithImm => 129,
            WorkOpcode::Other(o) => o,
        }
    }

    /// The name bindings show (`"send"`, `"recv"`...).
    pub fn name(self) -> &'static str {
        match self {
            WorkOpcode::Send => "send",
            WorkOpcode::RdmaWrite => "rdma-write",
            WorkOpcode::RdmaRead => "rdma-read",
            WorkOpcode::Recv => "recv",
            WorkOpcode::RecvRdmaWithImm => "recv-rdma-with-imm",
            WorkOpcode::Other(_) => "other",
        }
    }
}

/// One completed (or flushed) work request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkCompletion {
    /// The `wr_id` given when it was posted.
    pub wr_id: u64,
    /// `IBV_WC_SUCCESS` (0) or the device's error status
    /// (`IBV_WC_WR_FLUSH_ERR` = 5 for requests flushed by a QP in error).
    pub status: i32,
    /// What it was.
    pub opcode: WorkOpcode,
    /// Bytes received (receives) or transferred.
    pub byte_len: u32,
    /// Immediate data (host byte order), when the message carried some.
    pub imm_data: Option<u32>,
    /// The queue pair's number.
    pub qp_num: u32,
}

impl WorkCompletion {
    /// Whether it completed successfully.
    pub fn is_ok(&self) -> bool {
        self.status == sys::IBV_WC_SUCCESS
    }

    /// Whether it was flushed (its queue pair went to the error state).
    pub fn is_flushed(&self) -> bool {
        self.status == sys::IBV_WC_WR_FLUSH_ERR
    }
}
