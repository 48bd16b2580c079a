//! One completion as an op sees it, and where its data is.

/// One completion of an operation, as the op sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cqe {
    pub(crate) result: i32,
    pub(crate) flags: u32,
}

/// Where a completion's data is, for operations that have a buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Placed {
    pub(crate) buffer: u32,
    pub(crate) offset: u32,
}
