//! A completion as a backend posts it.

/// One completion as a backend posts it, before the op's table entry is
/// looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawCqe {
    pub(crate) user_data: u64,
    pub(crate) result: i32,
    pub(crate) flags: u32,
}
