//! Why io_uring can't be used in this process, as data: what
//! [`probe`](crate::probe) reports and what
//! [`Error::UringUnavailable`](crate::Error::UringUnavailable) carries.

use std::fmt;

/// Why zcio can't use io_uring here, and (its [`Display`](fmt::Display),
/// [`message`](Self::message)) what to change to get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UringUnavailable {
    /// `io_uring_setup(2)` was denied (EPERM or EACCES) although the sysctl
    /// `kernel.io_uring_disabled` allows it: a seccomp filter, as the default
    /// profiles of Docker, containerd and Kubernetes' `RuntimeDefault` have.
    Seccomp {
        /// The errno `io_uring_setup` returned.
        errno: i32,
    },
    /// `io_uring_setup(2)` was denied by the sysctl `kernel.io_uring_disabled`:
    /// 2 refuses every process, 1 those outside `kernel.io_uring_group`.
    Sysctl {
        /// The sysctl's value (1 or 2).
        disabled: u8,
        /// The errno `io_uring_setup` returned.
        errno: i32,
    },
    /// `io_uring_setup(2)` answered ENOSYS: a kernel without io_uring, or an
    /// emulator such as qemu-user.
    Enosys,
    /// io_uring sets up, but the kernel's opcode probe
    /// (`IORING_REGISTER_PROBE`) lacks opcodes zcio needs, as gVisor's
    /// io_uring does (it supports only NOP and READV). See
    /// [`REQUIRED_OPCODES`](crate::REQUIRED_OPCODES).
    Opcodes {
        /// The missing opcodes, without the `IORING_OP_` prefix, in the
        /// order of [`REQUIRED_OPCODES`](crate::REQUIRED_OPCODES).
        missing: Vec<&'static str>,
    },
    /// The environment asks for another backend (`ZCIO_BACKEND=epoll`), so
    /// io_uring is not used even where it works.
    Forced,
    /// `io_uring_setup(2)` failed otherwise (`errno` says how).
    Setup {
        /// The errno `io_uring_setup` returned.
        errno: i32,
    },
}

impl UringUnavailable {
    /// Classifies a failed `io_uring_setup(2)`: `errno` is what it
    /// returned, `disabled` the text of `/proc/sys/kernel/io_uring_disabled`
    /// (`None` where the kernel has no such sysctl).
    pub(crate) fn from_setup(errno: i32, disabled: Option<&str>) -> Self {
        match errno {
            libc::ENOSYS => UringUnavailable::Enosys,
            libc::EPERM | libc::EACCES => match disabled.map(str::trim) {
                Some("2") => UringUnavailable::Sysctl { disabled: 2, errno },
                Some("1") => UringUnavailable::Sysctl { disabled: 1, errno },
                _ => UringUnavailable::Seccomp { errno },
            },
            errno => UringUnavailable::Setup { errno },
        }
    }

    /// A stable name for the reason: `"seccomp"`, `"sysctl"`, `"ENOSYS"`,
    /// `"opcodes"`, `"forced"` or `"setup"`.
    pub fn kind(&self) -> &'static str {
        match self {
            UringUnavailable::Seccomp { .. } => "seccomp",
            UringUnavailable::Sysctl { .. } => "sysctl",
            UringUnavailable::Enosys => "ENOSYS",
            UringUnavailable::Opcodes { .. } => "opcodes",
            UringUnavailable::Forced => "forced",
            UringUnavailable::Setup { .. } => "setup",
        }
    }

    /// The errno of `io_uring_setup(2)`, for the reasons that come from it.
    pub fn errno(&self) -> Option<i32> {
        match self {
            UringUnavailable::Seccomp { errno }
            | UringUnavailable::Sysctl { errno, .. }
            | UringUnavailable::Setup { errno } => Some(*errno),
            UringUnavailable::Enosys => Some(libc::ENOSYS),
            UringUnavailable::Opcodes { .. } | UringUnavailable::Forced => None,
        }
    }

    /// What happened and what to change to get io_uring (the same text as
    /// [`Display`](fmt::Display)).
    pub fn message(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for UringUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UringUnavailable::Enosys => f.write_str(
                "the kernel has no io_uring (io_uring_setup returned ENOSYS); \
                 zcio needs Linux 5.13 or later built with CONFIG_IO_URING",
            ),
            UringUnavailable::Sysctl { disabled: 2, .. } => f.write_str(
                "io_uring is disabled by the sysctl kernel.io_uring_disabled=2; \
                 set it to 0 (or to 1 and add this user to kernel.io_uring_group)",
            ),
            UringUnavailable::Sysctl { disabled, .. } => write!(
                f,
                "io_uring is restricted by kernel.io_uring_disabled={disabled} and this process \
                 is not in kernel.io_uring_group; add it to the group or set the sysctl to 0"
            ),
            UringUnavailable::Seccomp { .. } => f.write_str(
                "io_uring_setup was denied (EPERM), most likely by a seccomp filter: Docker and \
                 containerd block io_uring by default; run with a seccomp profile that allows \
                 io_uring_setup, io_uring_enter and io_uring_register",
            ),
            UringUnavailable::Opcodes { missing } => write!(
                f,
                "io_uring sets up but lacks opcodes zcio needs ({}), as in gVisor, whose \
                 io_uring supports only NOP and READV; run on a Linux 5.13 or later kernel's \
                 own io_uring (outside such a sandbox)",
                missing.join(", ")
            ),
            UringUnavailable::Forced => f.write_str(
                "the epoll backend is forced by ZCIO_BACKEND=epoll; unset ZCIO_BACKEND \
                 (or set it to auto) to use io_uring",
            ),
            UringUnavailable::Setup { errno } => write!(
                f,
                "io_uring_setup failed: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::probe::uring_unavailable::UringUnavailable as U;

    #[test]
    fn setup_errors_are_classified_with_the_sysctl() {
        let eperm = libc::EPERM;
        assert_eq!(U::from_setup(eperm, None), U::Seccomp { errno: eperm });
        assert_eq!(
            U::from_setup(eperm, Some("0\n")),
            U::Seccomp { errno: eperm }
        );
        assert_eq!(
            U::from_setup(eperm, Some("1\n")),
            U::Sysctl {
                disabled: 1,
                errno: eperm
            }
        );
        assert_eq!(
            U::from_setup(libc::EACCES, Some("2")),
            U::Sysctl {
                disabled: 2,
                errno: libc::EACCES
            }
        );
        // ENOSYS says nothing about the sysctl.
        assert_eq!(U::from_setup(libc::ENOSYS, Some("2")), U::Enosys);
        assert_eq!(
            U::from_setup(libc::ENOMEM, Some("0")),
            U::Setup {
                errno: libc::ENOMEM
            }
        );
    }

    #[test]
    fn kinds_errnos_and_messages() {
        let cases = [
            (
                U::Seccomp { errno: libc::EPERM },
                "seccomp",
                Some(libc::EPERM),
                "seccomp profile",
            ),
            (
                U::Sysctl {
                    disabled: 2,
                    errno: libc::EPERM,
                },
                "sysctl",
                Some(libc::EPERM),
                "io_uring_disabled=2; set it to 0",
            ),
            (
                U::Sysctl {
                    disabled: 1,
                    errno: libc::EPERM,
                },
                "sysctl",
                Some(libc::EPERM),
                "kernel.io_uring_group",
            ),
            (U::Enosys, "ENOSYS", Some(libc::ENOSYS), "CONFIG_IO_URING"),
            (
                U::Opcodes {
                    missing: vec!["SEND", "RECV"],
                },
                "opcodes",
                None,
                "(SEND, RECV)",
            ),
            (U::Forced, "forced", None, "unset ZCIO_BACKEND"),
            (
                U::Setup {
                    errno: libc::ENOMEM,
                },
                "setup",
                Some(libc::ENOMEM),
                "io_uring_setup failed: ",
            ),
        ];
        for (reason, kind, errno, text) in cases {
            assert_eq!(reason.kind(), kind);
            assert_eq!(reason.errno(), errno, "{kind}");
            assert!(reason.message().contains(text), "{kind}: {reason}");
            assert_eq!(reason.message(), reason.to_string());
        }
    }

    #[test]
    fn setup_messages_are_the_ones_users_saw_before() {
        // The texts of the earlier `String` reasons, kept word for word.
        assert_eq!(
            U::Setup {
                errno: libc::ENOMEM
            }
            .to_string(),
            format!(
                "io_uring_setup failed: {}",
                std::io::Error::from_raw_os_error(libc::ENOMEM)
            )
        );
        assert_eq!(
            U::Sysctl {
                disabled: 1,
                errno: libc::EPERM
            }
            .to_string(),
            "io_uring is restricted by kernel.io_uring_disabled=1 and this process is not in \
             kernel.io_uring_group; add it to the group or set the sysctl to 0"
        );
    }
}
