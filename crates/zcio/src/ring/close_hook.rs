//! What a ring tells the sockets made on it when it closes.

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
