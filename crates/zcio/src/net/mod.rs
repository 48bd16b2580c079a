//! Stream sockets driven by a ring: `TcpListener` (multishot accept) and
//! `TcpStream` (connect, send, zero-copy send; receives go through a
//! [`BufferGroup`](crate::BufferGroup)). IPv4, IPv6 and Unix stream sockets.
//!
//! A socket's descriptor is closed only when no operation can still use it:
//! every operation on it holds the socket until its final completion, so a
//! descriptor number is never reused under an operation in flight.
//!
//! One file per concept: what a socket's operations share (`socket`), the
//! listener (`listener`), the stream (`stream`), socket options (`sockopt`),
//! how to shut a stream down (`shutdown`).

mod listener;
mod shutdown;
mod socket;
mod sockopt;
pub(crate) mod stream;

pub use listener::{ListenOptions, TcpListener};
pub use shutdown::Shutdown;
pub use stream::TcpStream;
