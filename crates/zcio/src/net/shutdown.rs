//! How to shut a stream down.

/// How to shut a stream down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// No more receives.
    Read,
    /// No more sends (the peer sees end of stream).
    Write,
    /// Both.
    Both,
}
