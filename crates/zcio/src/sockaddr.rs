//! Socket addresses: IPv4, IPv6 and Unix paths, to and from `sockaddr_storage`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The address of a stream socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockAddr {
    /// IPv4 or IPv6.
    Inet(SocketAddr),
    /// A Unix-domain path (an empty path for an unnamed socket).
    Unix(PathBuf),
}

impl From<SocketAddr> for SockAddr {
    fn from(a: SocketAddr) -> Self {
        SockAddr::Inet(a)
    }
}

impl SockAddr {
    /// A Unix-domain address.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the path does not fit `sun_path`
    /// (107 bytes) or contains a NUL byte.
    pub fn unix(path: impl AsRef<Path>) -> Result<SockAddr> {
        let bytes = path.as_ref().as_os_str().as_encoded_bytes();
        let max =
            std::mem::size_of::<libc::sockaddr_un>() - std::mem::size_of::<libc::sa_family_t>() - 1;
        if bytes.len() > max || bytes.contains(&0) {
            return Err(Error::InvalidArgument {
                name: "path",
                reason: format!("a Unix socket path is 1 to {max} bytes without NUL"),
            });
        }
        Ok(SockAddr::Unix(path.as_ref().to_path_buf()))
    }

    pub(crate) fn family(&self) -> i32 {
        match self {
            SockAddr::Inet(SocketAddr::V4(_)) => libc::AF_INET,
            SockAddr::Inet(SocketAddr::V6(_)) => libc::AF_INET6,
            SockAddr::Unix(_) => libc::AF_UNIX,
        }
    }

    /// Whether it is a Unix-domain address.
    pub fn is_unix(&self) -> bool {
        matches!(self, SockAddr::Unix(_))
    }

    pub(crate) fn to_raw(&self) -> (libc::sockaddr_storage, libc::socklen_t) {
        // SAFETY: sockaddr_storage is plain data; all zeros is valid.
        let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match self {
            SockAddr::Inet(SocketAddr::V4(a)) => {
                // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
                let sin = unsafe { &mut *(&mut st as *mut _ as *mut libc::sockaddr_in) };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SockAddr::Inet(SocketAddr::V6(a)) => {
                // SAFETY: as above.
                let sin6 = unsafe { &mut *(&mut st as *mut _ as *mut libc::sockaddr_in6) };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                sin6.sin6_flowinfo = a.flowinfo();
                sin6.sin6_scope_id = a.scope_id();
                std::mem::size_of::<libc::sockaddr_in6>()
            }
            SockAddr::Unix(path) => {
                // SAFETY: as above.
                let sun = unsafe { &mut *(&mut st as *mut _ as *mut libc::sockaddr_un) };
                sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
                let bytes = path.as_os_str().as_encoded_bytes();
                for (d, s) in sun.sun_path.iter_mut().zip(bytes) {
                    *d = *s as libc::c_char;
                }
                std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1
            }
        };
        (st, len as libc::socklen_t)
    }

    fn from_raw(st: &libc::sockaddr_storage, len: libc::socklen_t) -> SockAddr {
        match i32::from(st.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says it is a sockaddr_in.
                let sin = unsafe { &*(st as *const _ as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                SockAddr::Inet(SocketAddr::new(IpAddr::V4(ip), u16::from_be(sin.sin_port)))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says it is a sockaddr_in6.
                let sin6 = unsafe { &*(st as *const _ as *const libc::sockaddr_in6) };
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                SockAddr::Inet(SocketAddr::V6(std::net::SocketAddrV6::new(
                    ip,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => {
                // SAFETY: AF_UNIX (or unknown: read as an empty path).
                let sun = unsafe { &*(st as *const _ as *const libc::sockaddr_un) };
                let n = (len as usize).saturating_sub(std::mem::size_of::<libc::sa_family_t>());
                let raw: Vec<u8> = sun.sun_path[..n.min(sun.sun_path.len())]
                    .iter()
                    .map(|c| *c as u8)
                    .take_while(|c| *c != 0)
                    .collect();
                SockAddr::Unix(PathBuf::from(String::from_utf8_lossy(&raw).into_owned()))
            }
        }
    }
}

fn name(fd: RawFd, peer: bool) -> Result<SockAddr> {
    // SAFETY: plain data; zeroed is valid.
    let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let p = (&mut st as *mut libc::sockaddr_storage).cast();
    if peer {
        syscall!(getpeername(fd, p, &mut len)).map_err(|e| Error::sys("getpeername", e))?;
    } else {
        syscall!(getsockname(fd, p, &mut len)).map_err(|e| Error::sys("getsockname", e))?;
    }
    Ok(SockAddr::from_raw(&st, len))
}

pub(crate) fn local(fd: RawFd) -> Result<SockAddr> {
    name(fd, false)
}

pub(crate) fn peer(fd: RawFd) -> Result<SockAddr> {
    name(fd, true)
}
