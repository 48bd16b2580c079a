//! `QpOptions`: the sizes, port, GID and path MTU of a queue pair.

use crate::error::{Error, Result};

/// Sizes of a queue pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QpOptions {
    /// Send work requests outstanding at most.
    pub max_send_wr: u32,
    /// Receive work requests outstanding at most.
    pub max_recv_wr: u32,
    /// Scatter/gather entries per work request.
    pub max_sge: u32,
    /// The GID table index for RoCE (needed on Ethernet links such as
    /// Soft-RoCE); `None`: on Ethernet links the first GID that is not
    /// link-local (an IP address's, reachable through the IP stack), else
    /// index 0; no GID on InfiniBand.
    pub gid_index: Option<u8>,
    /// The device port (from 1).
    pub port: u8,
    /// The path MTU in bytes: 256, 512, 1024 (the default, as
    /// `ibv_rc_pingpong` uses), 2048 or 4096; at most the port's active MTU
    /// (`ibv_devinfo`), and the peer's must match. Larger packets mean
    /// fewer of them per message (Soft-RoCE's cost is mostly per packet).
    pub path_mtu: u32,
}

impl Default for QpOptions {
    fn default() -> Self {
        QpOptions {
            max_send_wr: 64,
            max_recv_wr: 64,
            max_sge: 2,
            gid_index: None,
            port: 1,
            path_mtu: 1024,
        }
    }
}

/// The verbs enum of a path MTU in bytes.
pub(super) fn mtu_enum(bytes: u32) -> Result<i32> {
    match bytes {
        256 => Ok(1),
        512 => Ok(2),
        1024 => Ok(3),
        2048 => Ok(4),
        4096 => Ok(5),
        _ => Err(Error::InvalidArgument {
            name: "path_mtu",
            reason: format!("{bytes} is not one of 256, 512, 1024, 2048 or 4096"),
        }),
    }
}
