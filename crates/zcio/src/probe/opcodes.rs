//! The io_uring opcodes zcio needs, checked against the kernel's own probe.
//!
//! A ring that sets up proves little: gVisor's io_uring sets up and then
//! supports only NOP and READV. io_uring counts as usable only when the
//! kernel's probe (`IORING_REGISTER_PROBE`, Linux 5.6) lists every opcode of
//! [`REQUIRED_OPCODES`]: the ones behind the ring itself (NOP, ASYNC_CANCEL),
//! pools' file I/O (READ_FIXED, WRITE_FIXED) and sockets (SEND, SENDMSG,
//! RECV, ACCEPT, CONNECT). Every Linux kernel zcio supports (5.13 and later)
//! has them all, so one missing means a sandbox or an emulator.
//!
//! Optional opcodes are not required, and are reported by the
//! [`ProbeReport`](crate::ProbeReport) flags instead: SEND_ZC (Linux 6.0,
//! [`send_zc`](crate::ProbeReport::send_zc); a copying SEND otherwise).
//! Multishot accept and receive are flags of ACCEPT and RECV that the
//! probe can't see; provided-buffer rings are tried by registering one
//! ([`buf_ring`](crate::ProbeReport::buf_ring)).

use io_uring::opcode;

/// The opcodes (number, name without `IORING_OP_`) a kernel's io_uring must
/// support for zcio to use it: what [`uring_usable`](crate::uring_usable)
/// checks.
pub const REQUIRED_OPCODES: [(u8, &str); 9] = [
    (opcode::Nop::CODE, "NOP"),
    (opcode::ReadFixed::CODE, "READ_FIXED"),
    (opcode::WriteFixed::CODE, "WRITE_FIXED"),
    (opcode::SendMsg::CODE, "SENDMSG"),
    (opcode::Accept::CODE, "ACCEPT"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    (opcode::Connect::CODE, "CONNECT"),
    (opcode::Send::CODE, "SEND"),
    (opcode::Recv::CODE, "RECV"),
];

/// The names of the [`REQUIRED_OPCODES`] that `supported` says no to.
pub(crate) fn missing(supported: impl Fn(u8) -> bool) -> Vec<&'static str> {
    REQUIRED_OPCODES
        .iter()
        .filter(|(code, _)| !supported(*code))
        .map(|(_, name)| *name)
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::probe::opcodes::*;

    /// `IORING_OP_NOP` and `IORING_OP_READV`: all gVisor's io_uring supports.
    const GVISOR: [u8; 2] = [0, 1];

    #[test]
    fn a_full_kernel_misses_nothing() {
        assert!(missing(|_| true).is_empty());
    }

    #[test]
    fn gvisor_lacks_everything_but_nop() {
        let m = missing(|code| GVISOR.contains(&code));
        assert_eq!(
            m,
            [
                "READ_FIXED",
                "WRITE_FIXED",
                "SENDMSG",
                "ACCEPT",
                "ASYNC_CANCEL",
                "CONNECT",
                "SEND",
                "RECV"
            ]
        );
    }

    #[test]
    fn one_missing_opcode_is_named() {
        let m = missing(|code| code != opcode::Connect::CODE);
        assert_eq!(m, ["CONNECT"]);
    }

    #[test]
    fn the_numbers_are_the_kernels() {
        // From include/uapi/linux/io_uring.h.
        let names: Vec<(u8, &str)> = REQUIRED_OPCODES.to_vec();
        assert_eq!(
            names,
            [
                (0, "NOP"),
                (4, "READ_FIXED"),
                (5, "WRITE_FIXED"),
                (9, "SENDMSG"),
                (13, "ACCEPT"),
                (14, "ASYNC_CANCEL"),
                (16, "CONNECT"),
                (26, "SEND"),
                (27, "RECV"),
            ]
        );
    }
}
