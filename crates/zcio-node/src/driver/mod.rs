//! Drives a ring from Node's own event loop.
//!
//! The ring's eventfd is watched by a libuv poll handle on the loop of the JS
//! thread that made the ring; a prepare handle hands operations queued during
//! the last JS turn to the kernel (one `io_uring_enter`) before the loop
//! blocks. Each wake-up reaps every ready completion, settles their promises
//! inside one callback scope (so promise reactions run right away), submits
//! whatever those reactions queued, and repeats while completions keep coming.
//! No thread hop, no per-operation threadsafe function.
//!
//! Operations of the JavaScript layer (promise calls, multishot receives and
//! accepts, sends) are settled by the layer itself: the driver writes
//! `(slot, result, flags, offset)` quads into an `Int32Array` it shares with
//! the layer and calls the layer's settle function once per round; the layer
//! dispatches each quad to the handler it keeps for that slot. Native code
//! creates no promise, number or object per completion, and nothing here
//! grows with the kinds of operation.
//!
//! Files: `start` puts a driver on the loop; `drive` is the driver and its
//! loop; `waiters`, `manual` and `deliver` are who waits for a completion;
//! `thread_rings` wakes the other rings of the thread.

mod deliver;
mod drive;
mod manual;
mod start;
mod thread_rings;
mod waiters;

pub use drive::Driver;
pub use manual::Completion;
pub use start::StartError;
pub use waiters::Waiter;
