//! The only files that call napi-sys or libuv directly (besides the error
//! module's own napi calls): each call is wrapped once and its status checked.

pub mod buffers;
pub mod external;
pub mod napi;
pub mod uv;
