//! What this kernel supports: the report and the probe that fills it.

use std::sync::OnceLock;

use io_uring::{opcode, IoUring, Probe};

use super::opcodes;
use super::uring_unavailable::UringUnavailable;
use crate::backend::choice::BackendChoice;
use crate::backend::kind::BackendKind;
use crate::sys;

/// What this kernel supports, as reported by [`probe`]. Never an error: when
/// io_uring can't be used, `io_uring` is false (and so is every io_uring
/// feature flag), `uring_unavailable` says why and `reason` spells it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// The kernel's io_uring is usable in this process: `io_uring_setup(2)`
    /// works and the kernel's opcode probe lists every opcode of
    /// [`REQUIRED_OPCODES`](crate::REQUIRED_OPCODES) (what [`uring_usable`] checks). Still true when
    /// `ZCIO_BACKEND=epoll` keeps rings off it (see `backend`).
    pub io_uring: bool,
    /// The backend a ring set up with the default options gets in this
    /// process now: what `ZCIO_BACKEND` forces, else io_uring where
    /// `io_uring` is true and epoll elsewhere. (With
    /// `ZCIO_BACKEND=io_uring` where io_uring is unusable this says
    /// io_uring, and setting a ring up fails.)
    pub backend: BackendKind,
    /// Why io_uring is not used, when it is not: the message of
    /// `uring_unavailable`.
    pub reason: Option<String>,
    /// Why io_uring is not used, when it is not, as data: unusable here, or
    /// [`UringUnavailable::Forced`] when `ZCIO_BACKEND=epoll` keeps rings
    /// on epoll although it is usable.
    pub uring_unavailable: Option<UringUnavailable>,
    /// `uname -r`.
    pub kernel_release: String,
    /// `IORING_OP_READ_FIXED`/`WRITE_FIXED` plus a sparse registered-buffer
    /// table (Linux 5.13): what [`RegisteredBufferPool`](crate::RegisteredBufferPool) needs.
    pub fixed_buffers: bool,
    /// Provided-buffer rings, `IORING_REGISTER_PBUF_RING` (Linux 5.19).
    pub buf_ring: bool,
    /// Incremental buffer consumption, `IOU_PBUF_RING_INC` (Linux 6.12).
    pub buf_ring_incremental: bool,
    /// `IORING_OP_SEND_ZC` (Linux 6.0).
    pub send_zc: bool,
    /// `IORING_SEND_ZC_REPORT_USAGE` (Linux 6.1).
    pub send_zc_report_usage: bool,
    /// `IORING_SETUP_SINGLE_ISSUER` (Linux 6.0).
    pub single_issuer: bool,
    /// `IORING_SETUP_DEFER_TASKRUN` (Linux 6.1) is set up, and signals a
    /// ring's eventfd as soon as work arrives (false where the kernel
    /// signals it late, as Linux 6.18.44 was seen to: rings then do
    /// without it).
    pub defer_taskrun: bool,
    /// The soft `RLIMIT_MEMLOCK` in bytes; `None` means unlimited.
    pub memlock_limit: Option<u64>,
    /// Pool memory counts against `memlock_limit` on the `backend` a
    /// default ring gets: on io_uring a pool's buffers are registered, so
    /// the kernel pins them and charges them to `RLIMIT_MEMLOCK` (unless the
    /// process has `CAP_IPC_LOCK`); the epoll backend registers nothing, so
    /// it needs no `RLIMIT_MEMLOCK` at all.
    pub memlock_needed: bool,
    /// `IORING_SETUP_SQPOLL` can be set up by this process (a kernel
    /// submission thread; before Linux 5.11 it needs privileges).
    pub sqpoll: bool,
    /// Sockets take `SO_ZEROCOPY` (Linux 4.14): the epoll backend's
    /// zero-copy sends use `MSG_ZEROCOPY`, and their memory is the kernel's
    /// until the notifications come. False where the system does not know
    /// the option (an emulator such as qemu-user, an old kernel): zero-copy
    /// sends on epoll then copy and say so (`copied`). Probed on a TCP
    /// socket, whether io_uring is usable or not.
    pub msg_zerocopy: bool,
    /// `preadv2`/`pwritev2` take `RWF_NOWAIT` (Linux 4.14): on the epoll
    /// backend a fixed-buffer transfer the page cache serves is done
    /// without a worker (in the `readFixed`/`writeFixed` call itself when
    /// nothing is queued before it). False where the system does not know
    /// the calls (an emulator such as qemu-user): every file transfer on
    /// epoll then goes to a worker thread. Probed whether io_uring is
    /// usable or not.
    pub nowait_file_io: bool,
}

/// Probes the kernel once per process and caches the answer; what depends
/// on `ZCIO_BACKEND` (`backend`, and a [`Forced`](UringUnavailable::Forced)
/// reason) is read again at each call, as `Ring::new`
/// reads it at each setup.
///
/// Feature flags come from the kernel's opcode probe (`IORING_REGISTER_PROBE`)
/// and from trying each registration on a throw-away ring, not from version
/// numbers, except `send_zc_report_usage`, which has no probe and is inferred
/// from the kernel version (6.1).
pub fn probe() -> ProbeReport {
    static CACHE: OnceLock<ProbeReport> = OnceLock::new();
    let mut report = CACHE.get_or_init(run_probe).clone();
    with_forced(&mut report, BackendChoice::forced().ok().flatten());
    report
}

/// Fills the parts of `report` that depend on what `ZCIO_BACKEND` forces:
/// the backend of a default ring, and `Forced` as the reason io_uring is not
/// used when epoll is forced where io_uring works.
fn with_forced(report: &mut ProbeReport, forced: Option<BackendChoice>) {
    report.backend = match forced {
        Some(BackendChoice::IoUring) => BackendKind::IoUring,
        Some(BackendChoice::Epoll) => BackendKind::Epoll,
        Some(BackendChoice::Auto) | None if report.io_uring => BackendKind::IoUring,
        Some(BackendChoice::Auto) | None => BackendKind::Epoll,
    };
    report.memlock_needed = report.backend == BackendKind::IoUring;
    if report.io_uring && report.backend == BackendKind::Epoll {
        let why = UringUnavailable::Forced;
        report.reason = Some(why.to_string());
        report.uring_unavailable = Some(why);
    }
}

/// Whether zcio can use io_uring in this process: `io_uring_setup(2)`
/// works and the kernel's opcode probe lists every opcode of
/// [`REQUIRED_OPCODES`](crate::REQUIRED_OPCODES). Checked once per process (on a throw-away ring),
/// then cached.
///
/// # Errors
///
/// Why not: [`UringUnavailable::Seccomp`], [`Sysctl`](UringUnavailable::Sysctl),
/// [`Enosys`](UringUnavailable::Enosys) or [`Setup`](UringUnavailable::Setup)
/// when the ring can't be set up, [`Opcodes`](UringUnavailable::Opcodes)
/// when it lacks some (as in gVisor).
pub fn uring_usable() -> Result<(), UringUnavailable> {
    static CACHE: OnceLock<Result<(), UringUnavailable>> = OnceLock::new();
    CACHE.get_or_init(check_usable).clone()
}

/// Classifies a failed `io_uring_setup(2)`, reading the sysctl
/// `kernel.io_uring_disabled` to tell it from a seccomp filter.
pub(crate) fn setup_refused(err: &std::io::Error) -> UringUnavailable {
    let disabled = sys::read_proc("/proc/sys/kernel/io_uring_disabled");
    UringUnavailable::from_setup(err.raw_os_error().unwrap_or(0), disabled.as_deref())
}

fn check_usable() -> Result<(), UringUnavailable> {
    let ring: IoUring = IoUring::builder().build(4).map_err(|e| setup_refused(&e))?;
    let mut probe = Probe::new();
    // No probe (before Linux 5.6, or a sandbox without it): nothing is
    // known to work.
    let have_probe = ring.submitter().register_probe(&mut probe).is_ok();
    let missing = opcodes::missing(|code| have_probe && probe.is_supported(code));
    if missing.is_empty() {
        Ok(())
    } else {
        Err(UringUnavailable::Opcodes { missing })
    }
}

fn run_probe() -> ProbeReport {
    let kernel_release = sys::kernel_release();
    let version = sys::kernel_version();
    let mut report = ProbeReport {
        io_uring: false,
        backend: BackendKind::Epoll,
        reason: None,
        uring_unavailable: None,
        kernel_release,
        fixed_buffers: false,
        buf_ring: false,
        buf_ring_incremental: false,
        send_zc: false,
        send_zc_report_usage: false,
        single_issuer: false,
        defer_taskrun: false,
        memlock_limit: sys::memlock_limit(),
        memlock_needed: false,
        sqpoll: false,
        msg_zerocopy: sys::io_calls::zerocopy_known(),
        nowait_file_io: sys::io_calls::nowait_known(),
    };
    let unusable = |report: &mut ProbeReport, why: UringUnavailable| {
        report.reason = Some(why.to_string());
        report.uring_unavailable = Some(why);
    };
    if let Err(why) = uring_usable() {
        unusable(&mut report, why);
        return report;
    }
    let ring: IoUring = match IoUring::builder().build(4) {
        Ok(ring) => ring,
        Err(err) => {
            unusable(&mut report, setup_refused(&err));
            return report;
        }
    };
    report.io_uring = true;
    let submitter = ring.submitter();
    let mut opcodes = Probe::new();
    let have_probe = submitter.register_probe(&mut opcodes).is_ok();
    let op = |code: u8| have_probe && opcodes.is_supported(code);
    report.fixed_buffers = op(opcode::ReadFixed::CODE)
        && op(opcode::WriteFixed::CODE)
        && submitter.register_buffers_sparse(1).is_ok();
    report.send_zc = op(opcode::SendZc::CODE);
    report.send_zc_report_usage = report.send_zc && version >= (6, 1);
    report.buf_ring = try_buf_ring(&ring, 0);
    report.buf_ring_incremental =
        report.buf_ring && try_buf_ring(&ring, io_uring::types::IOU_PBUF_RING_INC as u16);
    report.single_issuer = IoUring::<io_uring::squeue::Entry>::builder()
        .setup_single_issuer()
        .build(2)
        .is_ok();
    report.defer_taskrun = report.single_issuer
        && IoUring::<io_uring::squeue::Entry>::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(2)
            .is_ok()
        && crate::probe::wake_check::deferred_wake_is_prompt();
    report.sqpoll = IoUring::<io_uring::squeue::Entry>::builder()
        .setup_sqpoll(10)
        .build(2)
        .is_ok();
    report
}

/// Registers (then unregisters) a one-page provided-buffer ring with `flags`.
fn try_buf_ring(ring: &IoUring, flags: u16) -> bool {
    let Ok(map) = sys::Mmap::anonymous(sys::page_size()) else {
        return false;
    };
    let bgid = 0x7ffe;
    // SAFETY: the ring memory is a page-aligned, zeroed mapping of 8 entries
    // (128 bytes) that outlives the registration: it is unregistered below,
    // before `map` drops.
    let ok = unsafe {
        ring.submitter()
            .register_buf_ring_with_flags(map.as_ptr() as u64, 8, bgid, flags)
    }
    .is_ok();
    if ok {
        let _ = ring.submitter().unregister_buf_ring(bgid);
    }
    ok
}

#[cfg(test)]
mod tests {
    use crate::backend::choice::BackendChoice;
    use crate::backend::kind::BackendKind;
    use crate::probe::report::{probe, uring_usable, with_forced, ProbeReport};
    use crate::probe::uring_unavailable::UringUnavailable;

    #[test]
    fn probe_never_panics_and_is_cached() {
        let a = probe();
        let b = probe();
        assert_eq!(a, b);
        assert!(!a.kernel_release.is_empty());
        assert_eq!(a.io_uring, uring_usable().is_ok());
        let forced = a.uring_unavailable == Some(UringUnavailable::Forced);
        assert_eq!(a.io_uring && !forced, a.uring_unavailable.is_none());
        assert_eq!(forced, a.io_uring && a.backend == BackendKind::Epoll);
        assert_eq!(
            a.reason,
            a.uring_unavailable.as_ref().map(|why| why.to_string())
        );
        if !a.io_uring {
            assert!(!a.fixed_buffers && !a.buf_ring && !a.send_zc);
        }
    }

    #[test]
    fn the_backend_follows_zcio_backend_at_each_call() {
        let base = probe();
        let mut usable = base.clone();
        usable.io_uring = true;
        usable.reason = None;
        usable.uring_unavailable = None;
        let mut unusable = base;
        unusable.io_uring = false;
        unusable.uring_unavailable = Some(UringUnavailable::Enosys);
        unusable.reason = Some(UringUnavailable::Enosys.to_string());

        let run = |report: &ProbeReport, forced| {
            let mut r = report.clone();
            with_forced(&mut r, forced);
            r
        };
        let r = run(&usable, None);
        assert_eq!(
            (r.backend, r.uring_unavailable),
            (BackendKind::IoUring, None)
        );
        let r = run(&usable, Some(BackendChoice::Epoll));
        assert_eq!(r.backend, BackendKind::Epoll);
        assert!(r.io_uring, "io_uring stays the kernel's answer");
        assert_eq!(r.uring_unavailable, Some(UringUnavailable::Forced));
        assert!(r.reason.unwrap().contains("unset ZCIO_BACKEND"));
        let r = run(&usable, Some(BackendChoice::IoUring));
        assert_eq!(
            (r.backend, r.uring_unavailable),
            (BackendKind::IoUring, None)
        );

        let r = run(&unusable, None);
        assert_eq!(r.backend, BackendKind::Epoll);
        assert_eq!(r.uring_unavailable, Some(UringUnavailable::Enosys));
        let r = run(&unusable, Some(BackendChoice::Epoll));
        assert_eq!(r.uring_unavailable, Some(UringUnavailable::Enosys));
        let r = run(&unusable, Some(BackendChoice::IoUring));
        assert_eq!(r.backend, BackendKind::IoUring);
    }
}
