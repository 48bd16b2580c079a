//! Node.js binding of zcio: a thin napi-rs skin over the core crate
//! (conversions, JS lifetimes, and delivery of completions on the event loop).
#![cfg(target_os = "linux")]
#![allow(missing_docs)]

mod args;
pub mod consts;
mod driver;
mod error;
mod net;
mod pool;
mod raw;
pub mod rdma;
mod ring;
mod send_memory;
mod values;
mod views;

use napi_derive::napi;

/// Why io_uring can't be used in this process.
#[napi(object)]
pub struct UringUnavailable {
    /// `seccomp`, `sysctl`, `ENOSYS`, `opcodes`, `forced` or `setup`.
    pub kind: String,
    /// What happened and what to change to get io_uring.
    pub message: String,
}

/// What the running kernel supports; never throws.
#[napi(object)]
pub struct ProbeResult {
    /// io_uring can be set up in this process and supports every opcode zcio
    /// needs (true even where `ZCIO_BACKEND=epoll` keeps rings off it).
    pub io_uring: bool,
    /// The backend a `new Ring()` gets in this process now: `ZCIO_BACKEND`
    /// first, else io_uring where usable and epoll elsewhere.
    #[napi(ts_type = "'io_uring' | 'epoll'")]
    pub backend: String,
    /// Why io_uring is not used, when it is not.
    pub reason: Option<String>,
    /// Why io_uring is not used, when it is not, as a kind and a message.
    pub io_uring_unavailable: Option<UringUnavailable>,
    /// `uname -r`.
    pub kernel_release: String,
    /// READ_FIXED/WRITE_FIXED and sparse buffer tables (Linux 5.13).
    pub fixed_buffers: bool,
    /// Provided-buffer rings (Linux 5.19).
    pub buf_ring: bool,
    /// Incremental provided-buffer consumption (Linux 6.12).
    pub buf_ring_incremental: bool,
    /// `IORING_OP_SEND_ZC` (Linux 6.0).
    pub send_zc: bool,
    /// `IORING_SEND_ZC_REPORT_USAGE` (Linux 6.1).
    pub send_zc_report_usage: bool,
    /// `IORING_SETUP_SINGLE_ISSUER` (Linux 6.0).
    pub single_issuer: bool,
    /// `IORING_SETUP_DEFER_TASKRUN` (Linux 6.1) is set up and signals a
    /// ring's eventfd as soon as work arrives; false where the kernel signals
    /// it late (Linux 6.18.44: about 16 ms), and rings then do without it.
    pub defer_taskrun: bool,
    /// Soft `RLIMIT_MEMLOCK` in bytes; `null` when unlimited.
    pub memlock_limit: Option<f64>,
    /// Pool memory counts against `memlockLimit` with a default ring here:
    /// true on io_uring (registered buffers are pinned and charged to
    /// `RLIMIT_MEMLOCK`, unless the process has `CAP_IPC_LOCK`), false on the
    /// epoll backend, which registers nothing and needs no `RLIMIT_MEMLOCK`.
    pub memlock_needed: bool,
    /// `new Ring({ sqpoll })` works here (a kernel submission thread).
    pub sqpoll: bool,
    /// Sockets take `SO_ZEROCOPY` (Linux 4.14), which zero-copy sends use on
    /// the epoll backend; where false (an emulator such as qemu-user, an old
    /// kernel) they copy there, and report `copied: true`.
    pub msg_zerocopy: bool,
    /// `preadv2`/`pwritev2` take `RWF_NOWAIT` (Linux 4.14): on the epoll
    /// backend a read or write the page cache serves is done without a
    /// worker thread (in the `readFixed`/`writeFixed` call itself when
    /// nothing is queued before it); where false (an emulator such as
    /// qemu-user) every file transfer there goes to a worker.
    pub nowait_file_io: bool,
}

/// Reports what this kernel and process support, without throwing: use it to
/// choose a code path or to skip tests.
#[napi]
pub fn probe() -> ProbeResult {
    let p = zcio::probe();
    ProbeResult {
        io_uring: p.io_uring,
        backend: p.backend.name().into(),
        reason: p.reason,
        io_uring_unavailable: p.uring_unavailable.map(|why| UringUnavailable {
            kind: why.kind().into(),
            message: why.message(),
        }),
        kernel_release: p.kernel_release,
        fixed_buffers: p.fixed_buffers,
        buf_ring: p.buf_ring,
        buf_ring_incremental: p.buf_ring_incremental,
        send_zc: p.send_zc,
        send_zc_report_usage: p.send_zc_report_usage,
        single_issuer: p.single_issuer,
        defer_taskrun: p.defer_taskrun,
        memlock_limit: p.memlock_limit.map(|l| l as f64),
        memlock_needed: p.memlock_needed,
        sqpoll: p.sqpoll,
        msg_zerocopy: p.msg_zerocopy,
        nowait_file_io: p.nowait_file_io,
    }
}
