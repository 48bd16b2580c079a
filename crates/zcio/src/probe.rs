//! What the running kernel offers, from io_uring's own opcode probe.

use std::sync::OnceLock;

use io_uring::{opcode, IoUring, Probe};

use crate::sys;

/// What this kernel supports, as reported by [`probe`]. Never an error: when
/// io_uring can't be set up, `io_uring` is false and `reason` says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// `io_uring_setup(2)` works in this process.
    pub io_uring: bool,
    /// Why io_uring is unavailable, when it is.
    pub reason: Option<String>,
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
    /// `IORING_SETUP_DEFER_TASKRUN` (Linux 6.1).
    pub defer_taskrun: bool,
    /// The soft `RLIMIT_MEMLOCK` in bytes; `None` means unlimited.
    pub memlock_limit: Option<u64>,
    /// `IORING_SETUP_SQPOLL` can be set up by this process (a kernel
    /// submission thread; before Linux 5.11 it needs privileges).
    pub sqpoll: bool,
}

/// Probes the kernel once per process and caches the answer.
///
/// Feature flags come from the kernel's opcode probe (`IORING_REGISTER_PROBE`)
/// and from trying each registration on a throw-away ring, not from version
/// numbers, except `send_zc_report_usage`, which has no probe and is inferred
/// from the kernel version (6.1).
pub fn probe() -> ProbeReport {
    static CACHE: OnceLock<ProbeReport> = OnceLock::new();
    CACHE.get_or_init(run_probe).clone()
}

/// Explains an `io_uring_setup` failure and what to do about it.
pub(crate) fn unavailable_reason(err: &std::io::Error) -> String {
    let disabled = sys::read_proc("/proc/sys/kernel/io_uring_disabled");
    match err.raw_os_error() {
        Some(libc::ENOSYS) => "the kernel has no io_uring (io_uring_setup returned ENOSYS); \
             zcio needs Linux 5.13 or later built with CONFIG_IO_URING"
            .into(),
        Some(libc::EPERM) | Some(libc::EACCES) => match disabled.as_deref() {
            Some("2") => "io_uring is disabled by the sysctl kernel.io_uring_disabled=2; \
                 set it to 0 (or to 1 and add this user to kernel.io_uring_group)"
                .into(),
            Some("1") => "io_uring is restricted by kernel.io_uring_disabled=1 and this process \
                 is not in kernel.io_uring_group; add it to the group or set the sysctl to 0"
                .into(),
            _ => "io_uring_setup was denied (EPERM), most likely by a seccomp filter: Docker and \
                 containerd block io_uring by default; run with a seccomp profile that allows \
                 io_uring_setup, io_uring_enter and io_uring_register"
                .into(),
        },
        _ => format!("io_uring_setup failed: {err}"),
    }
}

fn run_probe() -> ProbeReport {
    let kernel_release = sys::kernel_release();
    let version = sys::kernel_version();
    let mut report = ProbeReport {
        io_uring: false,
        reason: None,
        kernel_release,
        fixed_buffers: false,
        buf_ring: false,
        buf_ring_incremental: false,
        send_zc: false,
        send_zc_report_usage: false,
        single_issuer: false,
        defer_taskrun: false,
        memlock_limit: sys::memlock_limit(),
        sqpoll: false,
    };
    let ring: IoUring = match IoUring::builder().build(4) {
        Ok(ring) => ring,
        Err(err) => {
            report.reason = Some(unavailable_reason(&err));
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
            .is_ok();
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
    #[test]
    fn probe_never_panics_and_is_cached() {
        let a = super::probe();
        let b = super::probe();
        assert_eq!(a, b);
        assert!(!a.kernel_release.is_empty());
        if !a.io_uring {
            assert!(a.reason.is_some());
        }
    }
}
