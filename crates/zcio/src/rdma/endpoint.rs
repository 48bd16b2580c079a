//! `Endpoint`: what a peer needs to connect to a queue pair.

/// What a peer needs to connect to a queue pair (exchanged out of band).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// The port's local identifier (0 on RoCE).
    pub lid: u16,
    /// The queue pair number.
    pub qpn: u32,
    /// The initial packet sequence number (24 bits).
    pub psn: u32,
    /// The GID (all zero when none is used).
    pub gid: [u8; 16],
}
