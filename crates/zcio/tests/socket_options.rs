//! Socket options: `TcpListener::bind_with` (`SO_REUSEPORT`,
//! `IPV6_V6ONLY`) checked with plain std sockets on the other end, and
//! `TcpStream::connect_from` (a chosen source address).

use std::net::{Ipv6Addr, SocketAddr, TcpStream as StdStream};

use zcio::{ListenOptions, SockAddr, TcpListener, TcpStream};

mod common;
use common::{ring, wait_until};

fn addr(s: &str) -> SockAddr {
    s.parse::<SocketAddr>().unwrap().into()
}

fn port_of(l: &TcpListener) -> u16 {
    match l.local_addr().unwrap() {
        SockAddr::Inet(a) => a.port(),
        other => panic!("not an inet address: {other:?}"),
    }
}

#[test]
fn reuse_port_lets_two_listeners_share_a_port_and_only_them() {
    let ring = ring();
    let opts = ListenOptions {
        reuse_port: true,
        ..ListenOptions::default()
    };
    let a = TcpListener::bind_with(&ring, &addr("127.0.0.1:0"), &opts).unwrap();
    let port = port_of(&a);
    let same = addr(&format!("127.0.0.1:{port}"));
    let b = TcpListener::bind_with(&ring, &same, &opts).unwrap();
    assert_eq!(port_of(&b), port);
    // A listener without the option may not join them.
    let err = TcpListener::bind(&ring, &same, 16).unwrap_err();
    assert_eq!(err.errno(), Some(libc::EADDRINUSE));
    assert_eq!(err.syscall(), Some("bind"));
    // Both accept: connections reach the port while either is open.
    drop(a);
    StdStream::connect(("127.0.0.1", port)).expect("b still listens");
    drop(b);
}

#[test]
fn ipv6_only_refuses_ipv4_on_the_any_address_and_is_ignored_elsewhere() {
    let ring = ring();
    let any6 = addr("[::]:0");
    let only = ListenOptions {
        ipv6_only: true,
        ..ListenOptions::default()
    };
    let l = match TcpListener::bind_with(&ring, &any6, &only) {
        Ok(l) => l,
        Err(e)
            if e.errno() == Some(libc::EAFNOSUPPORT) || e.errno() == Some(libc::EADDRNOTAVAIL) =>
        {
            eprintln!("zcio: skipping the IPV6_V6ONLY test: no IPv6 here ({e})");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let port = port_of(&l);
    StdStream::connect((Ipv6Addr::LOCALHOST, port)).expect("IPv6 connects");
    let refused = StdStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(libc::ECONNREFUSED));
    // The same port is free for IPv4 now.
    let v4 = TcpListener::bind(&ring, &addr(&format!("127.0.0.1:{port}")), 16);
    assert!(v4.is_ok(), "{:?}", v4.err());
    // On an IPv4 address it changes nothing (as libuv).
    let l4 = TcpListener::bind_with(&ring, &addr("127.0.0.1:0"), &only).unwrap();
    StdStream::connect(("127.0.0.1", port_of(&l4))).expect("IPv4 connects");
}

#[test]
fn connect_from_binds_the_source_address_first() {
    let ring = ring();
    let l = TcpListener::bind(&ring, &addr("127.0.0.1:0"), 16).unwrap();
    let to = l.local_addr().unwrap();
    // A free source port, found by binding one and letting it go.
    let free = std::net::TcpListener::bind("127.0.0.2:0")
        .or_else(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let from = free.local_addr().unwrap();
    drop(free);
    let (s, ud) = TcpStream::connect_from(&ring, &to, Some(&from.into())).unwrap();
    let mut out = Vec::new();
    wait_until(&ring, &mut out, |o| o.iter().any(|c| c.user_data == ud));
    let done = out.iter().find(|c| c.user_data == ud).unwrap();
    assert_eq!(done.result, 0, "connect from {from}");
    assert_eq!(s.local_addr().unwrap(), SockAddr::Inet(from));
    s.close();
    // A source port in use is the bind's EADDRINUSE, before any connect.
    let err = TcpStream::connect_from(&ring, &to, Some(&to)).unwrap_err();
    assert_eq!(
        (err.syscall(), err.errno()),
        (Some("bind"), Some(libc::EADDRINUSE))
    );
    // Another family is EINVAL from bind.
    let err = TcpStream::connect_from(&ring, &to, Some(&addr("[::1]:0"))).unwrap_err();
    assert_eq!(
        (err.syscall(), err.errno()),
        (Some("bind"), Some(libc::EINVAL))
    );
}
