//! `IORING_OP_SEND` and `IORING_OP_SEND_ZC` of one memory range, with
//! `MSG_NOSIGNAL | MSG_WAITALL` (the kernel retries a short send).
//!
//! A zero-copy send (Linux 6.0; usage reporting 6.1) completes twice: the
//! byte count with `IORING_CQE_F_MORE`, then a notification once the kernel
//! no longer reads the memory; the op (and the memory) lives until then.

use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::completion::{Cqe, Placed};
use super::kind::OpKind;
use super::owner::{SendMemory, SocketUse};
use super::poll::{Attempt, FdFlags, Interest, F_NOTIF};
use crate::sys::io_calls;

use super::zc_flags::{NOTIF_USAGE_ZC_COPIED, SEND_ZC_REPORT_USAGE};

pub(crate) struct Send {
    fd: RawFd,
    ptr: *const u8,
    len: u32,
    /// Zero-copy; with the buffer's registered index when it is a pool's.
    zc: bool,
    fixed: Option<u16>,
    link: bool,
    memory: SendMemory,
    socket: SocketUse,
    /// A zero-copy send on a socket where the kernel was seen copying
    /// ([`SocketUse::copies`]): sent as a plain send, its memory free at the
    /// byte count, the notification (`copied`) made up at once.
    by_copy: bool,
    /// On the epoll backend: bytes sent so far, zero-copy send calls made,
    /// and whether some of it had to be copied.
    done: u32,
    calls: u32,
    copied: bool,
}

impl Send {
    /// A send of `len` bytes at `ptr` on `fd`.
    ///
    /// # Safety
    ///
    /// `ptr..ptr + len` stays valid until the op's final completion: it lies
    /// in `memory` (which the op keeps), or the caller keeps it valid.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn new(
        fd: RawFd,
        ptr: *const u8,
        len: u32,
        zc: bool,
        fixed: Option<u16>,
        link: bool,
        memory: SendMemory,
        socket: SocketUse,
    ) -> Send {
        let by_copy = zc && socket.copies();
        Send {
            by_copy,
            fd,
            ptr,
            len,
            zc,
            fixed,
            link,
            memory,
            socket,
            done: 0,
            calls: 0,
            copied: false,
        }
    }

    pub(crate) fn kind(&self) -> OpKind {
        if self.zc {
            OpKind::SendZc
        } else {
            OpKind::Send
        }
    }

    pub(crate) fn links(&self) -> bool {
        self.link
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    pub(crate) fn uring_entry(&self) -> squeue::Entry {
        let flags = libc::MSG_NOSIGNAL | libc::MSG_WAITALL;
        let fd = types::Fd(self.fd);
        if self.zc && !self.by_copy {
            opcode::SendZc::new(fd, self.ptr, self.len)
                .buf_index(self.fixed)
                .flags(flags)
                .zc_flags(SEND_ZC_REPORT_USAGE)
                .build()
        } else {
            opcode::Send::new(fd, self.ptr, self.len)
                .flags(flags)
                .build()
        }
    }

    /// Bytes the send must have sent in full for a linked op to follow.
    pub(crate) fn expected(&self) -> i32 {
        self.len as i32
    }

    /// The readiness form: sends what the socket takes (`MSG_DONTWAIT`),
    /// waits until it is writable for the rest, and ends once all is sent
    /// (`MSG_WAITALL`'s rule) or it fails (the count so far, if any). A
    /// zero-copy send sends with `MSG_ZEROCOPY`: its memory is the kernel's
    /// until the notifications for its calls come from the error queue.
    pub(crate) fn attempt(&mut self, fd_flags: &mut FdFlags) -> Attempt {
        let mut extra = 0;
        if self.zc {
            if !fd_flags.zerocopy && !fd_flags.zc_copies {
                let r = io_calls::enable_zerocopy(self.fd);
                if r == -libc::ENOPROTOOPT || r == -libc::ENOSYS {
                    // The option is unknown here (not refused for this
                    // socket type, which is EOPNOTSUPP, as io_uring says).
                    fd_flags.zc_copies = true;
                } else if r < 0 {
                    return self.finish(r);
                } else {
                    fd_flags.zerocopy = true;
                }
            }
            if fd_flags.zc_copies || self.by_copy {
                self.copied = true;
            }
            if !self.copied {
                extra = libc::MSG_ZEROCOPY;
            }
        }
        while self.done < self.len || self.len == 0 {
            let at = self.ptr.wrapping_add(self.done as usize);
            let rest = (self.len - self.done) as usize;
            // SAFETY: `ptr..ptr + len` stays valid until the final
            // completion (the constructor's contract).
            let r = unsafe { io_calls::send(self.fd, at, rest, extra) };
            if r >= 0 {
                self.done += r as u32;
                if extra != 0 && r > 0 {
                    self.calls += 1;
                }
                if self.len == 0 {
                    break;
                }
            } else if r == -libc::EAGAIN {
                return Attempt::Wait {
                    fd: self.fd,
                    interest: Interest::Write,
                };
            } else if r == -libc::ENOBUFS && extra != 0 {
                // Over the socket's budget of zero-copy sends in flight:
                // the rest goes by copy (and says so in the notification).
                self.copied = true;
                extra = 0;
            } else {
                let result = if self.done > 0 { self.done as i32 } else { r };
                return self.finish(result);
            }
        }
        self.finish(self.done as i32)
    }

    /// Given up while waiting: the bytes sent so far, else `-errno`; a
    /// zero-copy send still waits for the notifications of its calls.
    pub(crate) fn abandoned(&self, errno: i32) -> Attempt {
        let result = if self.done > 0 {
            self.done as i32
        } else {
            -errno
        };
        self.finish(result)
    }

    fn finish(&self, result: i32) -> Attempt {
        if self.zc {
            Attempt::Sent {
                result,
                calls: self.calls,
                copied: self.copied,
            }
        } else {
            Attempt::Done { result, flags: 0 }
        }
    }

    pub(crate) fn placed(&self) -> Placed {
        self.memory.placed()
    }

    /// A zero-copy send sent by copy on io_uring: the kernel's one
    /// completion stands for both of a zero-copy send's (see
    /// `RingInner::deliver`).
    pub(crate) fn notifies_itself(&self) -> bool {
        self.by_copy
    }

    pub(crate) fn complete(&mut self, cqe: Cqe) -> Placed {
        if self.zc && cqe.flags & F_NOTIF != 0 && cqe.result as u32 & NOTIF_USAGE_ZC_COPIED != 0 {
            self.socket.saw_copy();
        }
        self.memory.done(cqe.result);
        self.placed()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::rc::Rc;

    use std::os::fd::RawFd;

    use io_uring::opcode;

    use crate::op::completion::Cqe;
    use crate::op::owner::{SendMemory, SocketUse};
    use crate::op::poll::{Attempt, FdFlags, F_NOTIF};
    use crate::op::send::Send;
    use crate::op::zc_flags::NOTIF_USAGE_ZC_COPIED;

    struct Count(std::cell::Cell<bool>);
    use crate::op::owner::SocketCount;

    impl SocketCount for Count {
        fn op_ended(&self, _zc: bool) {}
        fn saw_copy(&self) {
            self.0.set(true);
        }
        fn copies(&self) -> bool {
            self.0.get()
        }
    }

    fn zc_send(fd: RawFd, data: &'static [u8], socket: &Rc<Count>) -> Send {
        // SAFETY: `data` is static: valid for the op's whole life.
        unsafe {
            Send::new(
                fd,
                data.as_ptr(),
                data.len() as u32,
                true,
                None,
                false,
                SendMemory::Kept(Box::new(())),
                SocketUse::counted(socket.clone(), true),
            )
        }
    }

    /// Once a notification said the kernel copied, a zero-copy send on the
    /// socket makes no `MSG_ZEROCOPY` call and no `SEND_ZC` entry: it is
    /// done at once, copied, with no notification to wait for.
    #[test]
    fn a_socket_seen_copying_sends_by_copy() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let fd = c.as_raw_fd();
        let socket = Rc::new(Count(Default::default()));
        let mut flags = FdFlags::default();
        let mut first = zc_send(fd, b"zero-copy", &socket);
        assert_eq!(
            first.uring_entry().get_opcode(),
            u32::from(opcode::SendZc::CODE)
        );
        let got = first.attempt(&mut flags);
        if flags.zc_copies {
            eprintln!("SKIPPED a_socket_seen_copying_sends_by_copy: no SO_ZEROCOPY here");
            return;
        }
        assert_eq!(
            got,
            Attempt::Sent {
                result: 9,
                calls: 1,
                copied: false
            }
        );
        // A notification without the copy flag teaches nothing.
        first.complete(Cqe {
            result: 0,
            flags: F_NOTIF,
        });
        assert!(!socket.copies());
        let mut second = zc_send(fd, b", then ", &socket);
        second.attempt(&mut flags);
        second.complete(Cqe {
            result: NOTIF_USAGE_ZC_COPIED as i32,
            flags: F_NOTIF,
        });
        assert!(socket.copies());
        let mut third = zc_send(fd, b"copied", &socket);
        assert!(third.notifies_itself());
        assert_eq!(
            third.uring_entry().get_opcode(),
            u32::from(opcode::Send::CODE)
        );
        assert_eq!(
            third.attempt(&mut flags),
            Attempt::Sent {
                result: 6,
                calls: 0,
                copied: true
            }
        );
        let mut got = [0u8; 22];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"zero-copy, then copied");
    }
}
