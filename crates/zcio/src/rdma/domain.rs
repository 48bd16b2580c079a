//! `ProtectionDomain`: memory regions and queue pairs are made in one.

use std::rc::Rc;

use super::cq::CompletionQueue;
use super::mr::MemoryRegion;
use super::pd::Pd;
use super::prepared_qp::PreparedQueuePair;
use super::qp_options::QpOptions;
use crate::error::{Error, Result};

/// A protection domain: memory regions and queue pairs live in one.
#[derive(Clone)]
pub struct ProtectionDomain {
    pub(super) pd: Rc<Pd>,
}

impl std::fmt::Debug for ProtectionDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtectionDomain").finish_non_exhaustive()
    }
}

impl ProtectionDomain {
    /// Allocates `size` bytes (page-aligned, zeroed) and registers them with
    /// local write, remote read and remote write access.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for 0 bytes, [`Error::Closed`] after
    /// [`close`](Self::close), [`Error::Sys`] (`mmap`, `ibv_reg_mr`; `ENOMEM`
    /// over `RLIMIT_MEMLOCK`).
    pub fn allocate(&self, size: usize) -> Result<MemoryRegion> {
        self.pd.check_open()?;
        MemoryRegion::new(&self.pd, size)
    }

    /// Creates a reliable-connected queue pair, ready for
    /// [`PreparedQueuePair::handshake`].
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the domain or a queue is closed,
    /// [`Error::InvalidArgument`] for queues of another device context,
    /// [`Error::Sys`] (`ibv_create_qp`, `ibv_modify_qp`, `ibv_query_port`,
    /// `ibv_query_gid`).
    pub fn create_qp(
        &self,
        send_cq: &CompletionQueue,
        recv_cq: &CompletionQueue,
        options: QpOptions,
    ) -> Result<PreparedQueuePair> {
        self.pd.check_open()?;
        PreparedQueuePair::new(&self.pd, send_cq, recv_cq, options)
    }

    /// Deallocates the domain (`ibv_dealloc_pd`) now. Its memory regions
    /// and queue pairs must be closed first (a closed queue pair counts until
    /// its flushed work requests are polled); closing twice does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::PdInUse`] while memory regions or queue pairs of it are open
    /// (nothing changes).
    pub fn close(&self) -> Result<()> {
        let pd = &self.pd;
        if pd.raw.get().is_null() {
            return Ok(());
        }
        let (regions, queue_pairs) = (pd.open_mrs.get(), pd.open_qps.get());
        if regions > 0 || queue_pairs > 0 {
            return Err(Error::PdInUse {
                regions,
                queue_pairs,
            });
        }
        pd.dealloc();
        Ok(())
    }

    /// Whether [`close`](Self::close) ran.
    pub fn is_closed(&self) -> bool {
        self.pd.raw.get().is_null()
    }
}
