//! `io_uring_setup` with the best flags the kernel accepts.

use io_uring::IoUring;

use crate::error::{Error, Result};
use crate::probe::report::setup_refused;
use crate::ring::options::{RingFeatures, RingOptions};

pub(super) fn setup(options: RingOptions) -> Result<(IoUring, RingFeatures)> {
    let entries = options.entries.next_power_of_two();
    let cq = (entries * 4).max(64);
    let mut attempts: Vec<RingFeatures> = Vec::new();
    let sqpoll = options.sqpoll_idle_ms.is_some();
    // Preferred first; SQPOLL can't be combined with DEFER_TASKRUN, and a
    // kernel that signals a DEFER_TASKRUN ring's eventfd late gets rings
    // without it (see `probe::wake_check`).
    let defer = !sqpoll && crate::probe::wake_check::deferred_wake_is_prompt();
    attempts.push(RingFeatures {
        single_issuer: true,
        defer_taskrun: defer,
        coop_taskrun: !sqpoll,
        taskrun_flag: !sqpoll,
        sqpoll,
    });
    attempts.push(RingFeatures {
        coop_taskrun: !sqpoll,
        taskrun_flag: !sqpoll,
        sqpoll,
        ..RingFeatures::default()
    });
    attempts.push(RingFeatures {
        sqpoll,
        ..RingFeatures::default()
    });
    let mut last = None;
    for f in attempts {
        let mut b = IoUring::builder();
        b.setup_cqsize(cq).setup_clamp().dontfork();
        if f.single_issuer {
            b.setup_single_issuer();
        }
        if f.defer_taskrun {
            b.setup_defer_taskrun();
        }
        if f.coop_taskrun {
            b.setup_coop_taskrun();
        }
        if f.taskrun_flag {
            b.setup_taskrun_flag();
        }
        if let Some(idle) = options.sqpoll_idle_ms {
            b.setup_sqpoll(idle);
        }
        match b.build(entries) {
            Ok(uring) => return Ok((uring, f)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
            Err(e) => {
                return Err(match e.raw_os_error() {
                    Some(libc::EPERM) | Some(libc::EACCES) | Some(libc::ENOSYS) => {
                        Error::from(setup_refused(&e))
                    }
                    _ => Error::sys("io_uring_setup", e),
                })
            }
        }
    }
    Err(Error::sys(
        "io_uring_setup",
        last.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL)),
    ))
}
