//! What an op holds of the object that started it, through traits those
//! objects implement, so that this module depends on none of them.

use std::any::Any;
use std::rc::Rc;

use super::completion::{Cqe, Placed};

/// A pool whose buffer an operation uses: told once the operation's final
/// completion came, so the buffer leaves the in-flight state.
pub(crate) trait BufferOwner {
    fn op_done(&self, index: u32, result: i32);
}

/// A buffer group an operation receives into: told of every completion,
/// says which buffer (and where in it) the data is.
pub(crate) trait RecvOwner {
    fn received(&self, cqe: Cqe, last: bool) -> Placed;
}

/// A group's free buffers as a receive takes them: the kernel's buffer
/// ring (which it reads itself), or the epoll backend's queue. A receive
/// holds it until its final completion, even after the group is closed,
/// as the kernel holds a buffer ring an operation uses.
pub(crate) trait ProvidedBuffers {
    /// On the epoll backend, where no kernel picks: the buffer the next
    /// receive goes into (its id, address and room), or `None` when every
    /// buffer is held (`ENOBUFS`).
    fn next_buffer(&self) -> Option<(u16, *mut u8, usize)>;
    /// On the epoll backend: `n` bytes went into buffer `bid`; returns the
    /// completion flags the kernel would have posted for it.
    fn filled(&self, bid: u16, n: usize) -> u32;
}

/// A socket's count of the operations that use it: its descriptor closes
/// only once none does.
pub(crate) trait SocketCount {
    /// One operation (`zc`: a zero-copy send) has ended.
    fn op_ended(&self, zc: bool);
    /// A zero-copy send's notification said the kernel copied the data
    /// after all (loopback, a device without scatter-gather).
    fn saw_copy(&self) {}
    /// Whether that has been seen on this socket: its zero-copy sends copy
    /// at once from then on.
    fn copies(&self) -> bool {
        false
    }
}

/// One operation's use of a socket, counted by the socket when made and
/// ended when the op is dropped: the descriptor stays open until then.
pub(crate) struct SocketUse {
    socket: Rc<dyn SocketCount>,
    zc: bool,
}

impl SocketUse {
    /// Wraps a use the socket has already counted (`zc`: as a zero-copy send).
    pub(crate) fn counted(socket: Rc<dyn SocketCount>, zc: bool) -> SocketUse {
        SocketUse { socket, zc }
    }

    /// See [`SocketCount::saw_copy`].
    pub(crate) fn saw_copy(&self) {
        self.socket.saw_copy();
    }

    /// See [`SocketCount::copies`].
    pub(crate) fn copies(&self) -> bool {
        self.socket.copies()
    }
}

impl Drop for SocketUse {
    fn drop(&mut self) {
        self.socket.op_ended(self.zc);
    }
}

/// Where the bytes of a send are, and what keeps them alive.
pub(crate) enum SendMemory {
    /// Memory of the application's, kept by the op (a box, a binding's
    /// handle on its buffer). Never read: held only to be dropped.
    #[allow(dead_code)]
    Kept(Box<dyn Any>),
    /// A pool buffer, in flight until the op's final completion.
    Pool {
        pool: Rc<dyn BufferOwner>,
        index: u32,
    },
}

impl SendMemory {
    pub(crate) fn placed(&self) -> Placed {
        match self {
            SendMemory::Kept(_) => Placed::default(),
            SendMemory::Pool { index, .. } => Placed {
                buffer: *index,
                offset: 0,
            },
        }
    }

    pub(crate) fn done(&self, result: i32) {
        if let SendMemory::Pool { pool, index } = self {
            pool.op_done(*index, result);
        }
    }
}
