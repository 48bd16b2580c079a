//! Runs a command with `io_uring_setup(2)` denied (EPERM) by a seccomp filter,
//! as Docker's default profile does: `deny_io_uring node app.js`.
//!
//! Used by the tests of `ERR_ZCIO_URING_UNAVAILABLE`; handy to check how an
//! application behaves in such a container.

use std::os::unix::process::CommandExt;

/// `__NR_io_uring_setup`, the same on every architecture.
const NR_IO_URING_SETUP: u32 = 425;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: deny_io_uring <command> [args...]");
        std::process::exit(2);
    };
    let filter = [
        // Load the syscall number (offset 0 of struct seccomp_data).
        bpf_stmt((libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, 0),
        bpf_jump(
            (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            NR_IO_URING_SETUP,
            0,
            1,
        ),
        bpf_stmt(
            (libc::BPF_RET | libc::BPF_K) as u16,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
        bpf_stmt(
            (libc::BPF_RET | libc::BPF_K) as u16,
            libc::SECCOMP_RET_ALLOW,
        ),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl with valid arguments; `prog` points at `filter`, alive
    // for the call. The filter is inherited across exec.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) != 0
        {
            eprintln!("seccomp: {}", std::io::Error::last_os_error());
            std::process::exit(2);
        }
    }
    let err = std::process::Command::new(program).args(args).exec();
    eprintln!("exec: {err}");
    std::process::exit(127);
}

fn bpf_stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn bpf_jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}
