//! `CompletionQueue`: polled completions, mapped back to the work requests
//! (and their memory holds) of the queue pairs that use the queue, which it
//! reaches through [`WrSink`] only.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::rc::{Rc, Weak};

use super::call::{check, last_error};
use super::ctx::Ctx;
use super::sys;
use super::work_completion::{WorkCompletion, WorkOpcode};
use crate::error::{Error, Result};

/// What a completion queue hands each polled completion to: the queue pair
/// whose work request it was, found by `qp_num` among those
/// [attached](Cq::attach). Queue pairs implement it; the queue knows them
/// only through it.
pub(crate) trait WrSink {
    /// A work request completed or was flushed: `id` is the `wr_id` the
    /// device reports (the internal one given at post time). Returns the
    /// caller's `wr_id`, or `None` when it is not one of this sink's
    /// outstanding requests (a stale completion).
    fn finish(&self, id: u64) -> Option<u64>;
}

/// A verbs completion queue and its channel, with the accounting of
/// completions to come and the queue pairs (sinks) that use it.
pub(crate) struct Cq {
    pub(crate) ctx: Rc<Ctx>,
    /// Null once closed.
    raw: Cell<*mut sys::ibv_cq>,
    channel: *mut sys::ibv_comp_channel,
    /// The channel's descriptor (closed with the queue).
    fd: RawFd,
    /// The queue pairs whose completions land here, by number (only those
    /// not destroyed).
    qps: RefCell<HashMap<u32, Weak<dyn WrSink>>>,
    /// Entries the device made (`ibv_cq.cqe`, at least the ones asked for).
    capacity: u32,
    /// Completions to come: work requests posted to queue pairs that
    /// complete here and not polled yet, orphans included. A post that would
    /// take it past `capacity` is refused: the device would drop
    /// completions (and with them the holds of their requests).
    pending: Cell<u32>,
    /// Of `pending`, those of queue pairs destroyed with work outstanding:
    /// their completions may still be in the queue, or never come. Each
    /// polled completion no queue pair claims takes one; a poll that finds
    /// the queue empty takes them all (the device adds nothing for a
    /// destroyed queue pair).
    orphans: Cell<u32>,
    /// Queue pairs whose `ibv_destroy_qp` failed when they were dropped:
    /// they use the queue for good.
    stuck: Cell<u32>,
}

impl Cq {
    /// The verbs queue; only called while it is open.
    pub(crate) fn raw(&self) -> *mut sys::ibv_cq {
        self.raw.get()
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.raw.get().is_null() {
            return Err(Error::Closed {
                what: "completion queue",
            });
        }
        Ok(())
    }

    /// Routes the completions of queue pair `qpn` to `sink` from now on
    /// (replacing a destroyed queue pair that had the number).
    pub(crate) fn attach(&self, qpn: u32, sink: Weak<dyn WrSink>) {
        self.qps.borrow_mut().insert(qpn, sink);
    }

    /// Stops routing completions of `qpn` to `sink`; an entry of another
    /// sink (a newer queue pair given the same number) stays.
    pub(crate) fn detach(&self, qpn: u32, sink: &dyn WrSink) {
        let mut qps = self.qps.borrow_mut();
        if qps
            .get(&qpn)
            .is_some_and(|w| std::ptr::addr_eq(w.as_ptr(), sink))
        {
            qps.remove(&qpn);
        }
    }

    /// A queue pair using the queue could not be destroyed: it uses the
    /// queue for good.
    pub(crate) fn stuck_user(&self) {
        self.stuck.set(self.stuck.get() + 1);
    }

    /// Queue pairs not destroyed that use the queue.
    fn users(&self) -> u32 {
        self.qps
            .borrow()
            .values()
            .filter(|w| w.strong_count() > 0)
            .count() as u32
            + self.stuck.get()
    }

    /// How many of `wanted` more completions fit: all, or the first ones;
    /// none is [`Error::CqFull`].
    pub(crate) fn room(&self, wanted: usize) -> Result<usize> {
        let free = self.capacity.saturating_sub(self.pending.get());
        if free == 0 {
            return Err(Error::CqFull {
                capacity: self.capacity,
                pending: self.pending.get(),
            });
        }
        Ok(wanted.min(free as usize))
    }

    /// `n` work requests that complete here were posted.
    pub(crate) fn posted(&self, n: usize) {
        self.pending.set(self.pending.get() + n as u32);
    }

    /// A queue pair was destroyed with `n` requests outstanding that
    /// complete here.
    pub(crate) fn orphaned(&self, n: u32) {
        self.orphans.set(self.orphans.get() + n);
    }

    /// A completion was taken from the queue; `claimed`: by the request of a
    /// live queue pair, else a stale one of a destroyed queue pair.
    fn taken(&self, claimed: bool) {
        if !claimed {
            if self.orphans.get() == 0 {
                return;
            }
            self.orphans.set(self.orphans.get() - 1);
        }
        self.pending.set(self.pending.get().saturating_sub(1));
    }

    /// The queue was seen empty: no orphan's completion will come.
    fn drained(&self) {
        let o = self.orphans.replace(0);
        self.pending.set(self.pending.get().saturating_sub(o));
    }

    fn destroy(&self) {
        let raw = self.raw.replace(std::ptr::null_mut());
        if raw.is_null() {
            return;
        }
        // SAFETY: no queue pair uses the queue (`close` checks; on drop they
        // would hold it); events read from the channel were all acknowledged
        // (`ack_events`), so ibv_destroy_cq does not wait; the channel goes
        // after the queue, as verbs requires.
        unsafe {
            (self.ctx.v.destroy_cq)(raw);
            (self.ctx.v.destroy_comp_channel)(self.channel);
        }
        Ctx::child_gone(self.ctx.cqs());
    }
}

impl Drop for Cq {
    fn drop(&mut self) {
        self.destroy();
    }
}

/// A completion queue, polled directly ([`poll`](Self::poll)) or driven by
/// its completion channel's descriptor ([`fd`](Self::fd),
/// [`arm`](Self::arm), [`ack_events`](Self::ack_events)).
#[derive(Clone)]
pub struct CompletionQueue {
    pub(crate) cq: Rc<Cq>,
}

impl std::fmt::Debug for CompletionQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompletionQueue")
            .field("fd", &self.fd())
            .finish()
    }
}

impl CompletionQueue {
    pub(crate) fn new(ctx: &Rc<Ctx>, entries: u32) -> Result<CompletionQueue> {
        if entries == 0 || entries > i32::MAX as u32 {
            return Err(Error::InvalidArgument {
                name: "entries",
                reason: format!("{entries} is not between 1 and 2^31 - 1"),
            });
        }
        // SAFETY: the context is open (checked by the caller).
        let channel = unsafe { (ctx.v.create_comp_channel)(ctx.raw()) };
        if channel.is_null() {
            return Err(last_error("ibv_create_comp_channel"));
        }
        // SAFETY: the channel was just made; its fd is ours to configure.
        let fd = unsafe { (*channel).fd };
        // SAFETY: fcntl on a descriptor we own; events are read without blocking.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        // SAFETY: context and channel are live; no cq_context is used.
        let raw = unsafe {
            (ctx.v.create_cq)(ctx.raw(), entries as i32, std::ptr::null_mut(), channel, 0)
        };
        if raw.is_null() {
            let e = last_error("ibv_create_cq");
            // SAFETY: the channel has no queue yet.
            unsafe { (ctx.v.destroy_comp_channel)(channel) };
            return Err(e);
        }
        ctx.cqs().set(ctx.cqs().get() + 1);
        // SAFETY: the queue was just created; `cqe` is the size it got.
        let capacity = unsafe { (*raw).cqe }.max(1) as u32;
        Ok(CompletionQueue {
            cq: Rc::new(Cq {
                ctx: ctx.clone(),
                raw: Cell::new(raw),
                channel,
                fd,
                qps: RefCell::default(),
                capacity,
                pending: Cell::new(0),
                orphans: Cell::new(0),
                stuck: Cell::new(0),
            }),
        })
    }

    /// Takes up to `max` completions. Each releases the memory holds of its
    /// work request and reports the caller's `wr_id`; the last one of a
    /// closed queue pair destroys it.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after [`close`](Self::close), [`Error::Sys`]
    /// (`ibv_poll_cq`).
    pub fn poll(&self, max: usize) -> Result<Vec<WorkCompletion>> {
        self.poll_spin(max, 0)
    }

    /// As [`poll`](Self::poll), but while nothing is there polls again, up
    /// to `spins` more times, before returning none: a busy wait without a
    /// return to the caller per empty poll.
    ///
    /// # Errors
    ///
    /// As [`poll`](Self::poll).
    pub fn poll_spin(&self, max: usize, spins: u32) -> Result<Vec<WorkCompletion>> {
        let mut wcs = vec![sys::ibv_wc::default(); max.min(4096)];
        for _ in 0..spins {
            let got = self.poll_raw(&mut wcs)?;
            if !got.is_empty() {
                return Ok(got);
            }
        }
        self.poll_raw(&mut wcs)
    }

    fn poll_raw(&self, wcs: &mut [sys::ibv_wc]) -> Result<Vec<WorkCompletion>> {
        let cq = &self.cq;
        cq.check_open()?;
        // SAFETY: the provider's poll_cq, on a live queue, filling at most
        // `wcs.len()` entries.
        let n = unsafe {
            let poll = (*cq.ctx.raw())
                .ops
                .poll_cq
                .expect("provider without poll_cq");
            poll(cq.raw(), wcs.len() as i32, wcs.as_mut_ptr())
        };
        if n < 0 {
            return Err(Error::sys(
                "ibv_poll_cq",
                std::io::Error::from_raw_os_error(-n),
            ));
        }
        if (n as usize) < wcs.len() {
            cq.drained();
        }
        let mut out = Vec::with_capacity(n as usize);
        for wc in &wcs[..n as usize] {
            // Not borrowed across `finish`, which may destroy the queue pair
            // (and unregister it here).
            let sink = cq.qps.borrow().get(&wc.qp_num).and_then(Weak::upgrade);
            // None: a stale completion of a queue pair destroyed since (the
            // one registered under its number, if any, is a newer one whose
            // internal ids never match it).
            let wr_id = sink.and_then(|sink| sink.finish(wc.wr_id));
            cq.taken(wr_id.is_some());
            let Some(wr_id) = wr_id else {
                continue;
            };
            out.push(WorkCompletion {
                wr_id,
                status: wc.status,
                opcode: WorkOpcode::from_raw(wc.opcode),
                byte_len: wc.byte_len,
                imm_data: (wc.wc_flags & sys::IBV_WC_WITH_IMM != 0)
                    .then(|| u32::from_be(wc.imm_data)),
                qp_num: wc.qp_num,
            });
        }
        Ok(out)
    }

    /// The completion channel's descriptor (non-blocking): readable when a
    /// completion arrived after [`arm`](Self::arm). Closed by
    /// [`close`](Self::close): stop watching it first.
    pub fn fd(&self) -> RawFd {
        self.cq.fd
    }

    /// Asks for an event on the channel at the next completion.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after [`close`](Self::close), [`Error::Sys`]
    /// (`ibv_req_notify_cq`).
    pub fn arm(&self) -> Result<()> {
        let cq = &self.cq;
        cq.check_open()?;
        // SAFETY: the provider's req_notify_cq on a live queue.
        check("ibv_req_notify_cq", unsafe {
            let notify = (*cq.ctx.raw())
                .ops
                .req_notify_cq
                .expect("provider without req_notify_cq");
            notify(cq.raw(), 0)
        })
    }

    /// Reads and acknowledges the channel's pending events; returns how
    /// many there were (0 once closed).
    pub fn ack_events(&self) -> u32 {
        let cq = &self.cq;
        if cq.check_open().is_err() {
            return 0;
        }
        let mut n = 0;
        loop {
            let mut ev_cq = std::ptr::null_mut();
            let mut ev_ctx = std::ptr::null_mut();
            // SAFETY: a non-blocking read of the channel's next event.
            let rc = unsafe { (cq.ctx.v.get_cq_event)(cq.channel, &mut ev_cq, &mut ev_ctx) };
            if rc != 0 {
                break;
            }
            n += 1;
        }
        if n > 0 {
            // SAFETY: acknowledges exactly the events read above.
            unsafe { (cq.ctx.v.ack_cq_events)(cq.raw(), n) };
        }
        n
    }

    /// The completions the queue holds (what the device made of the
    /// entries asked for: at least as many).
    pub fn capacity(&self) -> u32 {
        self.cq.capacity
    }

    /// Completions to come: work requests posted that complete here and
    /// were not polled yet. Posts that would take it past
    /// [`capacity`](Self::capacity) fail with [`Error::CqFull`].
    pub fn pending(&self) -> u32 {
        self.cq.pending.get()
    }

    /// Queue pairs that use the queue and are not destroyed yet: open ones,
    /// and closed ones whose flushed work requests were not all polled.
    pub fn users(&self) -> u32 {
        self.cq.users()
    }

    /// Destroys the queue and its completion channel (whose descriptor
    /// closes) now. The queue pairs using it must be closed and drained
    /// first: a closed queue pair's flushed work requests come back through
    /// [`poll`](Self::poll). Closing twice does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::CqInUse`] while queue pairs use it (nothing changes).
    pub fn close(&self) -> Result<()> {
        let cq = &self.cq;
        if cq.raw.get().is_null() {
            return Ok(());
        }
        let count = cq.users();
        if count > 0 {
            return Err(Error::CqInUse { count });
        }
        self.ack_events();
        cq.destroy();
        Ok(())
    }

    /// Whether [`close`](Self::close) ran.
    pub fn is_closed(&self) -> bool {
        self.cq.raw.get().is_null()
    }
}
