//! Flags of zero-copy sends and their notifications.

/// `IORING_SEND_ZC_REPORT_USAGE`: the notification says whether the kernel
/// copied (Linux 6.1).
pub const SEND_ZC_REPORT_USAGE: u16 = 8;
/// In a zero-copy notification's result: the data was copied, at least partly.
pub const NOTIF_USAGE_ZC_COPIED: u32 = 1 << 31;
