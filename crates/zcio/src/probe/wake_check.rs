//! Whether a ring set up with `IORING_SETUP_DEFER_TASKRUN` signals its
//! eventfd as soon as work arrives for it.
//!
//! zcio's Node binding sleeps in the event loop and learns of completions
//! only from the ring's eventfd, as does any caller that polls
//! [`Ring::eventfd`](crate::Ring::eventfd). With `DEFER_TASKRUN` the kernel
//! queues a completion as task work and signals the eventfd when it does;
//! some kernels (seen on Linux 6.18.44) signal it one grace period later,
//! about 16 ms, which turns each round trip of a conversation into 16 ms.
//! Rings then do without `DEFER_TASKRUN` (`COOP_TASKRUN` still spares the
//! interrupts): a little throughput lost against that much latency.
//!
//! The check runs once per process on a ring of its own: a read of an empty
//! pipe waits, a byte is written, and the eventfd must be readable right
//! after the write (the signal comes from inside the write on a kernel that
//! signals at once), or within `GRACE_MS`.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU8, Ordering};

use io_uring::{opcode, types, IoUring};

use crate::sys;

const UNKNOWN: u8 = 0;
const PROMPT: u8 = 1;
const LATE: u8 = 2;

/// How long a signal may take and still count as prompt.
const GRACE_MS: i32 = 2;

static VERDICT: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Whether `DEFER_TASKRUN` rings signal their eventfd at once on this
/// kernel (checked once per process; `true` where the check cannot run, so
/// that setup decides as before).
pub(crate) fn deferred_wake_is_prompt() -> bool {
    match VERDICT.load(Ordering::Relaxed) {
        PROMPT => true,
        LATE => false,
        _ => {
            let prompt = check().unwrap_or(true);
            VERDICT.store(if prompt { PROMPT } else { LATE }, Ordering::Relaxed);
            prompt
        }
    }
}

fn check() -> Option<bool> {
    let mut ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(2)
        .ok()?;
    let eventfd = sys::eventfd().ok()?;
    ring.submitter()
        .register_eventfd(eventfd.as_raw_fd())
        .ok()?;
    let (read_end, write_end) = sys::pipe().ok()?;
    // The read's byte: leaked if the read cannot be seen complete, so that
    // the kernel never writes into freed memory.
    let byte: &'static mut [u8; 1] = Box::leak(Box::new([0u8; 1]));
    let entry = opcode::Read::new(types::Fd(read_end.as_raw_fd()), byte.as_mut_ptr(), 1)
        .build()
        .user_data(1);
    // SAFETY: the pipe and the leaked byte outlive the read (the byte is
    // freed below only after the read's completion was seen).
    unsafe { ring.submission().push(&entry).ok()? };
    ring.submit().ok()?;
    sys::eventfd_drain(&eventfd);
    if !sys::write_byte(&write_end) {
        return None;
    }
    let prompt = sys::io_calls::readable_now(eventfd.as_raw_fd())
        || sys::io_calls::readable_within(eventfd.as_raw_fd(), GRACE_MS);
    let done =
        (0..3).any(|_| ring.submit_and_wait(1).is_ok() && ring.completion().next().is_some());
    if done {
        // SAFETY: the byte came from Box::leak above and the read that used
        // it has completed; nothing else refers to it.
        drop(unsafe { Box::from_raw(byte as *mut [u8; 1]) });
    }
    Some(prompt)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_verdict_is_stable() {
        let first = crate::probe::wake_check::deferred_wake_is_prompt();
        assert_eq!(crate::probe::wake_check::deferred_wake_is_prompt(), first);
    }
}
