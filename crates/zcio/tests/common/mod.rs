//! Helpers shared by the kernel integration tests.

use zcio::{Completion, Ring};

/// Submits and waits until `n` completions are reaped; returns them all.
pub fn wait_all(ring: &Ring, n: usize) -> Vec<Completion> {
    let mut out = Vec::new();
    while out.len() < n {
        ring.submit_and_wait(1).unwrap();
        ring.reap(&mut out);
    }
    out
}
