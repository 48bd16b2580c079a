//! What the running kernel offers, from io_uring's own opcode probe.
//!
//! One file per concept: the report and the probe that fills it (`report`),
//! the opcodes zcio needs (`opcodes`), why io_uring can't be used
//! (`uring_unavailable`).

pub(crate) mod opcodes;
pub(crate) mod report;
pub(crate) mod uring_unavailable;
pub(crate) mod wake_check;

pub use opcodes::REQUIRED_OPCODES;
pub use report::{probe, uring_usable, ProbeReport};
pub use uring_unavailable::UringUnavailable;
