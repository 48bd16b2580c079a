//! Buffer groups and stream sockets for JavaScript: conversions over the
//! core's `BufferGroup`, `TcpListener` and `TcpStream`. Every operation is
//! settled by the layer's handler for its slot (see the `driver` module).

use std::os::fd::{FromRawFd, OwnedFd};
use std::ptr;
use std::rc::Rc;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::args::{MAX_I32, MAX_U16, MAX_U32};
use crate::driver::{Driver, Waiter};
use crate::error::{int_arg, throw_code, OrThrow};
use crate::pool::RegisteredBufferPool;
use crate::raw::{external, napi as raw};
use crate::ring::Ring;
use crate::send_memory::{bytes_of, foreign_slice, register_region, Bytes};
use crate::values::{external_or_throw, published};

/// Keeps the ring's driver running while a JS object that can queue
/// operations exists.
struct Owner(Rc<Driver>);

impl Owner {
    fn new(driver: &Rc<Driver>) -> Owner {
        driver.js_owners.set(driver.js_owners.get() + 1);
        Owner(driver.clone())
    }

    /// Records a layer operation and keeps the loop alive for it.
    fn track(&self, user_data: u64) -> u32 {
        self.0.track(user_data, Waiter::Js);
        self.0.update_ref();
        user_data as u32
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.js_owners.set(self.0.js_owners.get() - 1);
        self.0.maybe_teardown();
    }
}

/// An address: `{ family: 'IPv4' | 'IPv6', address, port }` or `{ family: 'unix', path }`.
#[napi(object)]
pub struct SocketAddress {
    pub family: String,
    pub address: Option<String>,
    pub port: Option<u32>,
    pub path: Option<String>,
}

fn to_js_addr(a: zcio::SockAddr) -> SocketAddress {
    match a {
        zcio::SockAddr::Inet(sa) => SocketAddress {
            family: if sa.is_ipv4() { "IPv4" } else { "IPv6" }.into(),
            address: Some(sa.ip().to_string()),
            port: Some(u32::from(sa.port())),
            path: None,
        },
        zcio::SockAddr::Unix(p) => SocketAddress {
            family: "unix".into(),
            address: None,
            port: None,
            path: Some(p.to_string_lossy().into_owned()),
        },
    }
}

/// `host` + `port`, or a Unix `path` when `host` is null.
fn parse_addr(
    env: &Env,
    host: Option<String>,
    port: f64,
    path: Option<String>,
) -> Result<zcio::SockAddr> {
    if let Some(path) = path {
        return zcio::SockAddr::unix(path).or_throw(env);
    }
    let port = int_arg(env, "port", port, MAX_U16, true)? as u16;
    let host = host.unwrap_or_else(|| "127.0.0.1".into());
    let ip: std::net::IpAddr = host.parse().map_err(|_| {
        throw_code(
            env,
            "ERR_INVALID_ARG_VALUE",
            &format!("host must be a numeric IPv4 or IPv6 address. Received '{host}'"),
        )
    })?;
    Ok(zcio::SockAddr::Inet(std::net::SocketAddr::new(ip, port)))
}

/// A provided-buffer ring for receives (the binding under the layer's
/// `BufferGroup`).
#[napi]
pub struct BufferGroup {
    core: zcio::BufferGroup,
    owner: Owner,
}

#[napi]
impl BufferGroup {
    #[napi(constructor)]
    pub fn new(
        env: Env,
        ring: &Ring,
        group_id: f64,
        buffer_size: f64,
        buffer_count: f64,
        incremental: bool,
    ) -> Result<Self> {
        let driver = ring.driver();
        let opts = zcio::GroupOptions {
            group_id: int_arg(&env, "groupId", group_id, MAX_U16, true)? as u16,
            buffer_size: int_arg(&env, "bufferSize", buffer_size, MAX_U32, false)? as usize,
            buffer_count: int_arg(&env, "bufferCount", buffer_count, MAX_U32, false)? as u32,
            incremental,
        };
        let core = zcio::BufferGroup::new(&driver.ring, opts).or_throw(&env)?;
        register_region(&core.region());
        Ok(BufferGroup {
            core,
            owner: Owner::new(driver),
        })
    }

    /// One receive on `stream`; returns the slot.
    #[napi]
    pub fn recv(&self, env: Env, stream: &TcpStream) -> Result<u32> {
        let ud = self.core.recv(&stream.core).or_throw(&env)?;
        Ok(self.owner.track(ud))
    }

    /// A multishot receive on `stream`; returns the slot. `rearm` counts it
    /// as a re-arm after the kernel ended the previous one.
    #[napi]
    pub fn recv_multishot(&self, env: Env, stream: &TcpStream, rearm: bool) -> Result<u32> {
        let ud = self.core.recv_multishot(&stream.core).or_throw(&env)?;
        if rearm {
            self.core.note_rearm();
        }
        Ok(self.owner.track(ud))
    }

    /// Gives one chunk of buffer `bufferId` back.
    #[napi]
    pub fn release(&self, env: Env, buffer_id: f64) -> Result<()> {
        let id = int_arg(&env, "bufferId", buffer_id, MAX_U32, true)? as u32;
        self.core.release(id).or_throw(&env)
    }

    /// A `Uint8Array` over the whole group (buffer `b` at `b × bufferSize`);
    /// the memory stays mapped while it exists.
    #[napi(ts_return_type = "Uint8Array")]
    pub fn region(&self, env: Env) -> Result<Unknown<'_>> {
        let region = self.core.region();
        let (data, len) = (
            region.as_ptr(),
            self.core.buffer_size() * self.core.buffer_count() as usize,
        );
        // SAFETY: `data..data+len` lies in the region, kept mapped by the
        // boxed `Rc<Region>` until the engine collects the buffer.
        let v = unsafe {
            external::typed_array(
                env.raw(),
                sys::TypedarrayType::uint8_array,
                data.cast(),
                len,
                1,
                Box::new(region),
            )
        };
        external_or_throw(&env, v)
    }

    /// The group's counts, updated in place (`zcio::group_counts` order).
    #[napi(ts_return_type = "Float64Array")]
    pub fn counts(&self, env: Env) -> Result<Unknown<'_>> {
        published(&env, self.core.published(), false)
    }

    /// No new receives; the registration goes once none can land.
    #[napi]
    pub fn close(&self) {
        self.core.close();
    }

    /// Whether `stream` has bytes, the end of stream or an error waiting.
    #[napi]
    pub fn readable(&self, env: Env, stream: &TcpStream) -> Result<bool> {
        self.core.readable(&stream.core).or_throw(&env)
    }
}

#[napi]
impl TcpStream {
    /// `SO_KEEPALIVE` on or off; `initialDelay` seconds before the first probe
    /// (0: the system's default).
    #[napi]
    pub fn set_keep_alive(&self, env: Env, on: bool, initial_delay: u32) -> Result<()> {
        self.core.set_keepalive(on, initial_delay).or_throw(&env)
    }
}

/// A listening socket (the binding under the layer's `TcpListener`).
#[napi]
pub struct TcpListener {
    core: zcio::TcpListener,
    owner: Owner,
}

#[napi]
impl TcpListener {
    /// Binds and listens on `host:port`, or on the Unix `path` when given;
    /// `ipv6Only` (`IPV6_V6ONLY` on an IPv6 address) and `reusePort`
    /// (`SO_REUSEPORT` on TCP).
    #[napi(factory)]
    #[allow(clippy::too_many_arguments)]
    pub fn bind(
        env: Env,
        ring: &Ring,
        host: Option<String>,
        port: f64,
        path: Option<String>,
        backlog: f64,
        ipv6_only: bool,
        reuse_port: bool,
    ) -> Result<Self> {
        let addr = parse_addr(&env, host, port, path)?;
        let options = zcio::ListenOptions {
            backlog: int_arg(&env, "backlog", backlog, MAX_I32, true)? as u32,
            ipv6_only,
            reuse_port,
        };
        let driver = ring.driver();
        let core = zcio::TcpListener::bind_with(&driver.ring, &addr, &options).or_throw(&env)?;
        Ok(TcpListener {
            core,
            owner: Owner::new(driver),
        })
    }

    /// One accept; its completion's result is a new descriptor (or
    /// `-errno`, the connection left queued). Returns the slot.
    #[napi]
    pub fn accept(&self, env: Env) -> Result<u32> {
        let ud = self.core.accept().or_throw(&env)?;
        Ok(self.owner.track(ud))
    }

    #[napi(getter)]
    pub fn local_address(&self, env: Env) -> Result<SocketAddress> {
        Ok(to_js_addr(self.core.local_addr().or_throw(&env)?))
    }

    #[napi(getter)]
    pub fn fd(&self) -> i32 {
        self.core.as_raw_fd()
    }

    #[napi]
    pub fn close(&self) {
        self.core.close();
    }
}

/// A connected stream socket (the binding under the layer's `TcpStream`).
#[napi]
pub struct TcpStream {
    core: zcio::TcpStream,
    owner: Owner,
}

#[napi]
impl TcpStream {
    /// Makes a socket, binds it to `localHost:localPort` when a local host
    /// is given, and queues its connect; returns `[stream, slot]`.
    #[napi(ts_return_type = "[TcpStream, number]")]
    #[allow(clippy::too_many_arguments)]
    pub fn connect(
        env: Env,
        ring: &Ring,
        host: Option<String>,
        port: f64,
        path: Option<String>,
        local_host: Option<String>,
        local_port: f64,
    ) -> Result<(TcpStream, u32)> {
        let addr = parse_addr(&env, host, port, path)?;
        let local = match local_host {
            Some(h) => Some(parse_addr(&env, Some(h), local_port, None)?),
            None => None,
        };
        let driver = ring.driver();
        let (core, ud) =
            zcio::TcpStream::connect_from(&driver.ring, &addr, local.as_ref()).or_throw(&env)?;
        let owner = Owner::new(driver);
        let slot = owner.track(ud);
        Ok((TcpStream { core, owner }, slot))
    }

    /// Adopts a connected stream socket; the stream owns it from now on.
    #[napi(factory)]
    pub fn from_fd(env: Env, ring: &Ring, fd: f64) -> Result<Self> {
        let fd = int_arg(&env, "fd", fd, MAX_I32, true)? as i32;
        let driver = ring.driver();
        // Refuse what is not a stream socket, or is another zcio socket's,
        // before taking ownership: on any error the caller keeps the
        // descriptor (and closes it).
        if driver.ring.is_closed() {
            return Err(zcio::Error::Closed { what: "ring" }).or_throw(&env);
        }
        zcio::TcpStream::check_adoptable(fd).or_throw(&env)?;
        // SAFETY: the caller hands the descriptor over (documented in the layer).
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let core = zcio::TcpStream::from_fd(&driver.ring, owned).or_throw(&env)?;
        Ok(TcpStream {
            core,
            owner: Owner::new(driver),
        })
    }

    /// Sends (or zero-copy sends) a `Uint8Array` the layer keeps referenced
    /// until the final completion; returns the slot.
    /// `linked` chains the next send to this one (see `reserve`).
    #[napi]
    pub fn send(&self, env: Env, data: Unknown, zc: bool, linked: bool) -> Result<u32> {
        let (ptr, len, keep) = bytes_of(&env, &data)?.into_owned();
        // SAFETY: `keep` (a copy, or the region the bytes lie in) goes with
        // the op; a SharedArrayBuffer's view is held by the layer until the
        // operation's final completion (see `send_memory`).
        let ud = unsafe { self.core.send_borrowed(ptr, len, zc, linked, keep) }.or_throw(&env)?;
        Ok(self.owner.track(ud))
    }

    /// Sends several `Uint8Array`s as one operation, in order; the layer
    /// keeps them referenced until the completion. Returns the slot.
    #[napi(ts_args_type = "data: Uint8Array[], linked: boolean")]
    pub fn sendv(&self, env: Env, data: Unknown, linked: bool) -> Result<u32> {
        let array = data.raw();
        let len = match raw::is_array(env.raw(), array) {
            Ok(true) => raw::array_length(env.raw(), array).ok(),
            _ => None,
        };
        let Some(len) = len else {
            return Err(throw_code(
                &env,
                "ERR_INVALID_ARG_TYPE",
                "data must be an array of Uint8Array",
            ));
        };
        let mut parts = Vec::with_capacity(len as usize);
        for i in 0..len {
            // A failed read reads as a hole, which `bytes_of` refuses.
            let v = raw::element(env.raw(), array, i).unwrap_or(ptr::null_mut());
            // SAFETY: a value of this env (or null, which napi refuses).
            let item = unsafe { Unknown::from_raw_unchecked(env.raw(), v) };
            parts.push(bytes_of(&env, &item)?);
        }
        let total = parts.iter().map(Bytes::len).sum::<usize>();
        if parts.iter().all(|p| matches!(p, Bytes::Foreign { .. })) {
            // The usual case (many small writes): one copy, one plain send.
            let mut copy = Vec::with_capacity(total);
            for p in &parts {
                if let Bytes::Foreign { ptr, len } = *p {
                    copy.extend_from_slice(foreign_slice(ptr, len));
                }
            }
            let (ptr, len) = (copy.as_ptr(), copy.len());
            // SAFETY: the copy goes with the op; a Vec's heap memory does
            // not move when the Vec does.
            let ud = unsafe {
                self.core
                    .send_borrowed(ptr, len, false, linked, Box::new(copy))
            }
            .or_throw(&env)?;
            return Ok(self.owner.track(ud));
        }
        let mut keeps: Vec<Box<dyn std::any::Any>> = Vec::with_capacity(parts.len());
        let ranges: Vec<(*const u8, usize)> = parts
            .into_iter()
            .map(|p| {
                let (ptr, len, keep) = p.into_owned();
                keeps.push(keep);
                (ptr, len)
            })
            .collect();
        // SAFETY: every range lies in memory one of `keeps` owns (a copy or a
        // region), or in a SharedArrayBuffer the layer holds; `keeps` goes
        // with the op.
        let ud = unsafe {
            self.core
                .send_vectored_borrowed(&ranges, linked, Box::new(keeps))
        }
        .or_throw(&env)?;
        Ok(self.owner.track(ud))
    }

    /// Sends `length` bytes of pool buffer `index` from `bufferOffset`
    /// (zero-copy: as a registered buffer); returns the slot.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn send_pool(
        &self,
        env: Env,
        pool: &RegisteredBufferPool,
        index: f64,
        buffer_offset: f64,
        length: f64,
        zc: bool,
        linked: bool,
    ) -> Result<u32> {
        let index = int_arg(&env, "index", index, MAX_U32, true)? as u32;
        let off = int_arg(&env, "bufferOffset", buffer_offset, MAX_U32, true)? as usize;
        let len = int_arg(&env, "length", length, MAX_U32, true)? as usize;
        let ud = pool
            .core()
            .submit_send(&self.core, index, off, len, zc, linked)
            .or_throw(&env)?;
        Ok(self.owner.track(ud))
    }

    /// `shutdown(2)`: 0 read, 1 write, 2 both.
    #[napi]
    pub fn shutdown(&self, env: Env, how: u32) -> Result<()> {
        let how = match how {
            0 => zcio::Shutdown::Read,
            1 => zcio::Shutdown::Write,
            _ => zcio::Shutdown::Both,
        };
        self.core.shutdown(how).or_throw(&env)
    }

    #[napi]
    pub fn set_no_delay(&self, env: Env, on: bool) -> Result<()> {
        self.core.set_nodelay(on).or_throw(&env)
    }

    /// Whether `TCP_NODELAY` is on (`false` on Unix sockets).
    #[napi(getter)]
    pub fn no_delay(&self, env: Env) -> Result<bool> {
        self.core.nodelay().or_throw(&env)
    }

    #[napi(getter)]
    pub fn local_address(&self, env: Env) -> Result<SocketAddress> {
        Ok(to_js_addr(self.core.local_addr().or_throw(&env)?))
    }

    #[napi(getter)]
    pub fn remote_address(&self, env: Env) -> Result<SocketAddress> {
        Ok(to_js_addr(self.core.peer_addr().or_throw(&env)?))
    }

    #[napi(getter)]
    pub fn fd(&self) -> i32 {
        self.core.as_raw_fd()
    }

    /// Operations whose final completion has not come.
    #[napi(getter)]
    pub fn ops_in_flight(&self) -> u32 {
        self.core.ops_in_flight()
    }

    /// Refuses new operations and cancels those in flight.
    #[napi]
    pub fn close(&self) {
        self.core.close();
    }

    /// Ends a chain whose next send failed to queue (see the core's `end_chain`).
    #[napi]
    pub fn end_chain(&self, env: Env) -> Result<()> {
        self.core.end_chain().or_throw(&env)
    }

    /// Resets the connection and closes (see the core's `abort`).
    #[napi]
    pub fn abort(&self) {
        self.core.abort();
    }
}
