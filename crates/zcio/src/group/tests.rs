//! Property test of a group's bookkeeping: synthetic completions (as the
//! kernel posts them, with and without `IORING_CQE_F_BUF_MORE`) and releases
//! in random order, checked against a plain model of who owns each buffer.

use proptest::prelude::*;

use super::buffer_group::BufferGroup;
use super::options::GroupOptions;
use crate::error::Error;
use crate::op::completion::Cqe;
use crate::op::owner::RecvOwner;
use crate::ring::handle::Ring;
use crate::ring::options::RingOptions;

const F_BUFFER: u32 = 1;
const F_BUF_MORE: u32 = 16;

#[derive(Debug, Clone)]
enum Step {
    /// A completion on the `pick`-th buffer still in the kernel's ring.
    Recv { pick: usize, len: u32, more: bool },
    /// A release of buffer `bid`.
    Release { bid: u32 },
}

fn step(count: u32) -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..count as usize, 1u32..64, any::<bool>()).prop_map(|(pick, len, more)| Step::Recv {
            pick,
            len,
            more
        }),
        (0..count).prop_map(|bid| Step::Release { bid }),
    ]
}

#[derive(Default, Clone)]
struct Model {
    in_kernel: Vec<bool>,
    chunks: Vec<u32>,
    head: Vec<u32>,
    /// Entries handed to the kernel's ring so far.
    added: u32,
}

fn run(incremental: bool, steps: Vec<Step>) {
    let p = crate::probe::report::probe();
    if !p.io_uring || !p.buf_ring || (incremental && !p.buf_ring_incremental) {
        eprintln!("SKIPPED: buffer rings unavailable ({:?})", p.reason);
        return;
    }
    let ring = Ring::new(RingOptions::default()).unwrap();
    let count = 8u32;
    let group = BufferGroup::new(
        &ring,
        GroupOptions {
            group_id: 1,
            buffer_size: 256,
            buffer_count: count,
            incremental,
        },
    )
    .unwrap();
    let s = group.shared.clone();
    let mut m = Model {
        in_kernel: vec![true; count as usize],
        chunks: vec![0; count as usize],
        head: vec![0; count as usize],
        added: count,
    };
    for st in steps {
        match st {
            Step::Recv { pick, len, more } => {
                let live: Vec<u32> = (0..count).filter(|&b| m.in_kernel[b as usize]).collect();
                if live.is_empty() {
                    continue;
                }
                let bid = live[pick % live.len()];
                let b = bid as usize;
                let more = more && incremental && m.head[b] + len < 256;
                let flags = F_BUFFER | (bid << 16) | if more { F_BUF_MORE } else { 0 };
                s.state.borrow_mut().receives += 1;
                let placed = s.received(
                    Cqe {
                        result: len as i32,
                        flags,
                    },
                    true,
                );
                assert_eq!(placed.buffer, bid);
                assert_eq!(placed.offset, if incremental { m.head[b] } else { 0 });
                m.chunks[b] += 1;
                if incremental {
                    m.head[b] += len;
                }
                if !more {
                    m.in_kernel[b] = false;
                }
            }
            Step::Release { bid } => {
                let b = bid as usize;
                let res = group.release(bid);
                if m.chunks[b] == 0 {
                    assert!(matches!(res.unwrap_err(), Error::NotAcquired { .. }));
                    continue;
                }
                res.unwrap();
                m.chunks[b] -= 1;
                if m.chunks[b] == 0 && !m.in_kernel[b] {
                    m.in_kernel[b] = true;
                    m.head[b] = 0;
                    m.added += 1;
                }
            }
        }
        let st = s.state.borrow();
        let available = m.in_kernel.iter().filter(|k| **k).count() as u32;
        assert_eq!(st.available, available);
        assert_eq!(st.chunks_out, m.chunks.iter().sum::<u32>());
        assert_eq!(st.in_kernel, m.in_kernel);
        // Every return went into the kernel's ring exactly once.
        let returned = s.reg.borrow().as_ref().map(|r| r.returned());
        assert_eq!(returned, Some(m.added as u16));
        drop(st);
        assert_eq!(group.available_count() + group.held_count(), count);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn plain_group_bookkeeping(steps in prop::collection::vec(step(8), 1..200)) {
        run(false, steps);
    }

    #[test]
    fn incremental_group_bookkeeping(steps in prop::collection::vec(step(8), 1..200)) {
        run(true, steps);
    }
}
