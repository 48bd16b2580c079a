//! The one error type of the crate.

use std::io;

use crate::probe::uring_unavailable::UringUnavailable;

/// Everything that can go wrong in zcio.
///
/// Each variant names the failing call and, for kernel failures, keeps the
/// `errno` ([`Error::errno`], [`Error::syscall`]; [`errno_name`] spells it).
/// Tell errors apart by matching on the variant. The Node binding maps each
/// variant to its Node-style `code` and error class.
///
/// Not `#[non_exhaustive]`, so that the binding's match is checked to cover
/// every variant; a match in other code should still end in `_`: the `rdma`
/// feature adds variants, and later versions may add more.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// io_uring can't be used here: `io_uring_setup(2)` is refused (disabled
    /// by sysctl, blocked by a seccomp filter, or missing from the kernel), or
    /// the ring lacks opcodes zcio needs. `reason` says which and what to
    /// change.
    #[error("io_uring is unavailable: {reason}")]
    UringUnavailable {
        /// Why, and what to do about it.
        reason: UringUnavailable,
        /// The error `io_uring_setup` returned, when it failed.
        #[source]
        source: Option<io::Error>,
    },
    /// A system call or an io_uring operation failed.
    #[error("{call} failed: {source}")]
    Sys {
        /// The call that failed (`"io_uring_register"`, `"read"`, ...).
        call: &'static str,
        /// The kernel's error, with its errno.
        #[source]
        source: io::Error,
    },
    /// Registering buffers was refused because it would exceed `RLIMIT_MEMLOCK`.
    #[error(
        "registering {bytes} bytes of buffers exceeds the locked-memory limit \
         (RLIMIT_MEMLOCK {limit}); raise it with `ulimit -l`, LimitMEMLOCK= in a systemd unit, \
         or --ulimit memlock= for a container, or use fewer/smaller buffers"
    )]
    Memlock {
        /// Bytes the registration needed.
        bytes: u64,
        /// The soft limit in bytes, as text (`"unlimited"` or a number).
        limit: String,
        /// The kernel's `ENOMEM`.
        #[source]
        source: io::Error,
    },
    /// An argument has a value that can never be valid (zero size, too many buffers...).
    #[error("invalid value for {name}: {reason}")]
    InvalidArgument {
        /// The argument's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An index, offset or length lies outside the pool or the buffer.
    #[error("{name} is out of range: {reason}")]
    OutOfRange {
        /// The argument's name.
        name: &'static str,
        /// The value and the accepted range.
        reason: String,
    },
    /// Every buffer of the pool is acquired or in flight.
    #[error("all {total} buffers of the pool are in use")]
    PoolExhausted {
        /// The pool's size.
        total: u32,
    },
    /// The buffer is not acquired (never acquired, or already released).
    #[error("buffer {index} is not acquired")]
    NotAcquired {
        /// The buffer index.
        index: u32,
    },
    /// The buffer is in flight: the kernel (or the caller, through
    /// `mark_in_flight`) owns it, so it can't be released, borrowed or closed.
    #[error("buffer {index} is in flight")]
    BufferInFlight {
        /// The buffer index.
        index: u32,
    },
    /// `complete_in_flight` on a buffer that is not in flight.
    #[error("buffer {index} is not in flight")]
    NotInFlight {
        /// The buffer index.
        index: u32,
    },
    /// The buffer is borrowed through a [`BufRef`](crate::BufRef) or
    /// [`BufMut`](crate::BufMut) (Rust only).
    #[error("buffer {index} is borrowed")]
    Borrowed {
        /// The buffer index.
        index: u32,
    },
    /// The object is closed: a ring, a pool, or an RDMA context, protection
    /// domain, completion queue, queue pair or memory region.
    #[error("the {what} is closed")]
    Closed {
        /// What is closed (`"ring"`, `"pool"`, `"queue pair"`...).
        what: &'static str,
    },
    /// The descriptor is already owned by a zcio object (a stream or a
    /// listener): adopting it again would let one of them close it under the
    /// other. `dup(2)` it first to hand over a copy.
    #[error("descriptor {fd} is already owned by a zcio socket; dup() it to adopt a copy")]
    FdInUse {
        /// The descriptor.
        fd: i32,
    },
    /// A ring was used from a thread other than the one that created it.
    #[error("a ring can only be used from the thread that created it")]
    WrongThread,
    /// The running kernel lacks a feature.
    #[error(
        "{feature} is not supported by this kernel ({release}); it needs Linux {needs} or later"
    )]
    Unsupported {
        /// What is missing.
        feature: &'static str,
        /// The kernel version that introduced it.
        needs: &'static str,
        /// The running kernel release.
        release: String,
    },
    /// The operation exists, but not on the backend in use (see
    /// [`Error::Unsupported`] for a kernel that lacks it).
    #[error("{feature} is not supported on the {backend} backend")]
    BackendUnsupported {
        /// What is not supported.
        feature: &'static str,
        /// The backend (`"io_uring"`, `"epoll"`).
        backend: &'static str,
    },
    /// The ring already has a buffer group with this id (or one closed while
    /// receives could still land in it).
    #[error("buffer group {group_id} is already in use on this ring")]
    GroupInUse {
        /// The group id.
        group_id: u16,
    },
    /// The ring's registered-buffer table has no room left for the pool.
    #[error("the ring's registered-buffer table is full ({capacity} buffers in all); close a pool or use another ring")]
    TableFull {
        /// The table's capacity.
        capacity: u32,
    },
    /// RDMA verbs can't be used here: libibverbs, a provider or a device is
    /// missing (`reason` says which and what to do).
    #[cfg(feature = "rdma")]
    #[error("RDMA is unavailable: {reason}")]
    RdmaUnavailable {
        /// What is missing.
        reason: String,
    },
    /// A memory region can't be closed while work requests use it.
    #[cfg(feature = "rdma")]
    #[error("the memory region is in use by {count} outstanding work requests")]
    MrInUse {
        /// Work requests still holding it.
        count: u32,
    },
    /// A completion queue can't be closed while queue pairs use it (a closed
    /// queue pair uses it until its flushed work requests are polled).
    #[cfg(feature = "rdma")]
    #[error(
        "the completion queue is used by {count} queue pairs that are not closed or not drained"
    )]
    CqInUse {
        /// Queue pairs still using it.
        count: u32,
    },
    /// A protection domain can't be closed while memory regions or queue
    /// pairs of it are open.
    #[cfg(feature = "rdma")]
    #[error("the protection domain has {regions} open memory regions and {queue_pairs} open queue pairs")]
    PdInUse {
        /// Memory regions not closed.
        regions: u32,
        /// Queue pairs not destroyed (a closed one stays until drained).
        queue_pairs: u32,
    },
    /// A device context can't be closed while protection domains or
    /// completion queues of it are open.
    #[cfg(feature = "rdma")]
    #[error("the RDMA context has {domains} open protection domains and {queues} open completion queues")]
    ContextInUse {
        /// Protection domains not closed.
        domains: u32,
        /// Completion queues not closed.
        queues: u32,
    },
    /// An RDMA post was refused: its completion queue has no room for the
    /// completion (the device would drop it). Poll, or use a larger queue.
    #[cfg(feature = "rdma")]
    #[error("the completion queue is full: {pending} of its {capacity} completions are still to be polled")]
    CqFull {
        /// Completions the queue holds.
        capacity: u32,
        /// Completions to come: posted and not polled.
        pending: u32,
    },
}

/// Shorthand for `std::result::Result<T, zcio::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A kernel error from the named call.
    pub(crate) fn sys(call: &'static str, source: io::Error) -> Self {
        Error::Sys { call, source }
    }

    /// A kernel error from a negative CQE result (`-errno`).
    pub(crate) fn from_cqe(call: &'static str, res: i32) -> Self {
        Error::Sys {
            call,
            source: io::Error::from_raw_os_error(-res),
        }
    }

    /// The errno, for errors that come from the kernel.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::UringUnavailable { source, .. } => source.as_ref()?.raw_os_error(),
            Error::Sys { source, .. } | Error::Memlock { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The failing system call or io_uring operation, for kernel errors.
    pub fn syscall(&self) -> Option<&'static str> {
        match self {
            Error::UringUnavailable { source, .. } => source.as_ref().map(|_| "io_uring_setup"),
            Error::Sys { call, .. } => Some(call),
            Error::Memlock { .. } => Some("io_uring_register"),
            _ => None,
        }
    }
}

impl From<UringUnavailable> for Error {
    /// [`Error::UringUnavailable`], with the errno of `io_uring_setup` when
    /// that is what failed.
    fn from(reason: UringUnavailable) -> Self {
        let source = reason.errno().map(io::Error::from_raw_os_error);
        Error::UringUnavailable { reason, source }
    }
}

/// The symbolic name of an errno value, as Node prints it (`"EBADF"`).
pub fn errno_name(errno: i32) -> &'static str {
    macro_rules! names {
        ($($name:ident),* $(,)?) => {
            match errno {
                $(libc::$name => stringify!($name),)*
                _ => "EUNKNOWN",
            }
        };
    }
    names!(
        EPERM,
        ENOENT,
        ESRCH,
        EINTR,
        EIO,
        ENXIO,
        E2BIG,
        ENOEXEC,
        EBADF,
        ECHILD,
        EAGAIN,
        ENOMEM,
        EACCES,
        EFAULT,
        EBUSY,
        EEXIST,
        EXDEV,
        ENODEV,
        ENOTDIR,
        EISDIR,
        EINVAL,
        ENFILE,
        EMFILE,
        ENOTTY,
        ETXTBSY,
        EFBIG,
        ENOSPC,
        ESPIPE,
        EROFS,
        EMLINK,
        EPIPE,
        ERANGE,
        EDEADLK,
        ENAMETOOLONG,
        ENOSYS,
        ENOTEMPTY,
        ELOOP,
        ENODATA,
        ETIME,
        EOVERFLOW,
        EBADFD,
        EOPNOTSUPP,
        ENOBUFS,
        ECONNRESET,
        ECONNREFUSED,
        ECONNABORTED,
        ENOTCONN,
        ENOTSOCK,
        ETIMEDOUT,
        EHOSTUNREACH,
        ENETUNREACH,
        EADDRINUSE,
        EADDRNOTAVAIL,
        EMSGSIZE,
        ECANCELED,
        EDQUOT,
        EALREADY,
        EINPROGRESS,
        EPROTO,
        EBADMSG,
        ESTALE,
        ENOLCK,
    )
}

#[cfg(test)]
mod tests {
    use crate::error::*;

    #[test]
    fn kernel_errors_keep_call_and_errno() {
        let e = Error::from_cqe("read", -libc::EBADF);
        assert!(matches!(e, Error::Sys { call: "read", .. }));
        assert_eq!(e.errno(), Some(libc::EBADF));
        assert_eq!(e.syscall(), Some("read"));
        assert_eq!(errno_name(e.errno().unwrap()), "EBADF");
        assert_eq!(Error::NotAcquired { index: 0 }.errno(), None);
        assert_eq!(Error::NotAcquired { index: 0 }.syscall(), None);
        assert_eq!(errno_name(12345), "EUNKNOWN");
    }

    #[test]
    fn uring_unavailable_keeps_the_setup_errno_only_when_setup_failed() {
        let e = Error::from(UringUnavailable::Seccomp { errno: libc::EPERM });
        assert_eq!(
            (e.errno(), e.syscall()),
            (Some(libc::EPERM), Some("io_uring_setup"))
        );
        assert!(std::error::Error::source(&e).is_some());
        let e = Error::from(UringUnavailable::Opcodes {
            missing: vec!["SEND"],
        });
        assert_eq!((e.errno(), e.syscall()), (None, None));
        assert!(
            e.to_string().starts_with("io_uring is unavailable: "),
            "{e}"
        );
    }

    #[test]
    fn backend_unsupported_names_the_backend() {
        let e = Error::BackendUnsupported {
            feature: "provided-buffer rings",
            backend: "epoll",
        };
        assert_eq!(
            e.to_string(),
            "provided-buffer rings is not supported on the epoll backend"
        );
        assert_eq!(e.errno(), None);
    }
}
