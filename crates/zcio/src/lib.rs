#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "zcio supports only Linux (io_uring): it needs the io_uring system calls of Linux 5.13 \
     or later; build it for a *-linux-gnu or *-linux-musl target"
);

#[macro_use]
mod sys;
mod backend;
mod error;
mod fd_registry;
mod group;
mod net;
mod op;
mod pool;
mod probe;
mod published;
#[cfg(feature = "rdma")]
pub mod rdma;
mod ring;
mod slots;
mod sockaddr;
mod table;

pub use backend::uring::buf_table::MAX_REGISTERED_BUFFERS;
pub use backend::{BackendChoice, BackendKind};
pub use error::{errno_name, Error, Result};
pub use group::{
    group_counts, BufferGroup, GroupOptions, MAX_GROUP_BUFFERS, MAX_GROUP_BUFFER_SIZE,
};
pub use net::{ListenOptions, Shutdown, TcpListener, TcpStream};
pub use op::zc_flags::{NOTIF_USAGE_ZC_COPIED, SEND_ZC_REPORT_USAGE};
pub use op::OpKind;
pub use pool::{
    BufMut, BufRef, PoolStats, Region, RegisteredBufferPool, Started, MAX_BUFFER_SIZE, NOW_MAX_LEN,
};
pub use probe::{probe, uring_usable, ProbeReport, UringUnavailable, REQUIRED_OPCODES};
pub use published::{buffer_state, pool_counts, ring_counts, Published};
pub use ring::{Completion, Ring, RingFeatures, RingOptions};
pub use slots::Counters;
pub use sockaddr::SockAddr;
