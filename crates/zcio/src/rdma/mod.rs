//! RDMA verbs (cargo feature `rdma`), safe: seed, the `ibverbs` crate's
//! `QueuePair`, whose post calls are `unsafe`; here every work request holds
//! its memory region until its completion is polled (or flushed), so no
//! sequence of safe calls lets the device touch memory that was freed or
//! deregistered.
//!
//! libibverbs is loaded on first use ([`devices`], [`Context::open`]); where
//! it, a provider or a device is missing the calls fail with
//! [`Error::RdmaUnavailable`], and everything else in the crate works.
//!
//! Objects hold what they need (`Rc`): a memory region its protection
//! domain, a queue pair its domain and completion queues, each of them the
//! device context; so destruction always runs in the order verbs requires,
//! whatever is dropped first.
//!
//! `close()` releases a verbs object explicitly, in verbs' order or not at
//! all: a queue pair first (moved to the error state; destroyed once its
//! flushed work requests are polled), then its completion queues, memory
//! regions and protection domain, then the context. Closing out of order is
//! refused ([`Error::CqInUse`], [`Error::MrInUse`], [`Error::PdInUse`],
//! [`Error::ContextInUse`]) and changes nothing; closing twice does nothing;
//! any other use of a closed object fails with [`Error::Closed`].
//!
//! [`Error::RdmaUnavailable`]: crate::Error::RdmaUnavailable
//! [`Error::CqInUse`]: crate::Error::CqInUse
//! [`Error::MrInUse`]: crate::Error::MrInUse
//! [`Error::PdInUse`]: crate::Error::PdInUse
//! [`Error::ContextInUse`]: crate::Error::ContextInUse
//! [`Error::Closed`]: crate::Error::Closed

mod call;
mod context;
mod cq;
mod ctx;
mod device;
mod domain;
mod endpoint;
mod fault;
mod mr;
mod pd;
mod post_batch;
mod prepared_qp;
mod qp_options;
mod qp_shared;
mod queue_pair;
mod sys;
mod work_completion;
mod wr_table;

pub use context::Context;
pub use cq::CompletionQueue;
pub use device::{available, devices, DeviceInfo};
pub use domain::ProtectionDomain;
pub use endpoint::Endpoint;
#[doc(hidden)]
pub use fault::fail_next;
pub use mr::MemoryRegion;
pub use prepared_qp::PreparedQueuePair;
pub use qp_options::QpOptions;
pub use queue_pair::{QueuePair, Sge};
pub use work_completion::{WorkCompletion, WorkOpcode};
