//! `IORING_OP_NOP`, for tests of the ring's own paths.

pub(crate) struct Nop {
    pub(crate) link: bool,
}

impl Nop {
    pub(crate) fn links(&self) -> bool {
        self.link
    }
}
