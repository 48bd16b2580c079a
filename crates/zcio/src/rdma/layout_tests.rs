//! The structs of `sys.rs` against rdma-core's own `verbs.h`: a C program
//! prints sizes and offsets, which must match the Rust declarations. Skips
//! (visibly) where the headers (libibverbs-dev) or a C compiler are missing.

use std::mem::{offset_of, size_of};
use std::process::Command;

use crate::rdma::sys::*;

/// (C expression, Rust value) pairs.
fn expectations() -> Vec<(&'static str, usize)> {
    vec![
        (
            "offsetof(struct ibv_context, ops.poll_cq)",
            offset_of!(ibv_context, ops) + offset_of!(ibv_context_ops, poll_cq),
        ),
        (
            "offsetof(struct ibv_context, ops.req_notify_cq)",
            offset_of!(ibv_context, ops) + offset_of!(ibv_context_ops, req_notify_cq),
        ),
        (
            "offsetof(struct ibv_context, ops.post_send)",
            offset_of!(ibv_context, ops) + offset_of!(ibv_context_ops, post_send),
        ),
        (
            "offsetof(struct ibv_context, ops.post_recv)",
            offset_of!(ibv_context, ops) + offset_of!(ibv_context_ops, post_recv),
        ),
        (
            "sizeof(struct ibv_context_ops)",
            size_of::<ibv_context_ops>(),
        ),
        (
            "offsetof(struct ibv_context, num_comp_vectors)",
            offset_of!(ibv_context, num_comp_vectors),
        ),
        ("offsetof(struct ibv_mr, lkey)", offset_of!(ibv_mr, lkey)),
        ("offsetof(struct ibv_mr, rkey)", offset_of!(ibv_mr, rkey)),
        (
            "offsetof(struct ibv_comp_channel, fd)",
            offset_of!(ibv_comp_channel, fd),
        ),
        ("offsetof(struct ibv_cq, cqe)", offset_of!(ibv_cq, cqe)),
        (
            "offsetof(struct ibv_qp, qp_num)",
            offset_of!(ibv_qp, qp_num),
        ),
        ("offsetof(struct ibv_qp, state)", offset_of!(ibv_qp, state)),
        ("sizeof(struct ibv_sge)", size_of::<ibv_sge>()),
        ("sizeof(struct ibv_send_wr)", size_of::<ibv_send_wr>()),
        (
            "offsetof(struct ibv_send_wr, opcode)",
            offset_of!(ibv_send_wr, opcode),
        ),
        (
            "offsetof(struct ibv_send_wr, send_flags)",
            offset_of!(ibv_send_wr, send_flags),
        ),
        (
            "offsetof(struct ibv_send_wr, imm_data)",
            offset_of!(ibv_send_wr, imm_data),
        ),
        (
            "offsetof(struct ibv_send_wr, wr.rdma.remote_addr)",
            offset_of!(ibv_send_wr, rdma),
        ),
        (
            "offsetof(struct ibv_send_wr, wr.rdma.rkey)",
            offset_of!(ibv_send_wr, rdma) + offset_of!(ibv_rdma_wr, rkey),
        ),
        ("sizeof(struct ibv_recv_wr)", size_of::<ibv_recv_wr>()),
        ("sizeof(struct ibv_wc)", size_of::<ibv_wc>()),
        (
            "offsetof(struct ibv_wc, byte_len)",
            offset_of!(ibv_wc, byte_len),
        ),
        (
            "offsetof(struct ibv_wc, imm_data)",
            offset_of!(ibv_wc, imm_data),
        ),
        (
            "offsetof(struct ibv_wc, qp_num)",
            offset_of!(ibv_wc, qp_num),
        ),
        (
            "offsetof(struct ibv_wc, wc_flags)",
            offset_of!(ibv_wc, wc_flags),
        ),
        (
            "sizeof(struct ibv_qp_init_attr)",
            size_of::<ibv_qp_init_attr>(),
        ),
        (
            "offsetof(struct ibv_qp_init_attr, qp_type)",
            offset_of!(ibv_qp_init_attr, qp_type),
        ),
        ("sizeof(struct ibv_qp_attr)", size_of::<ibv_qp_attr>()),
        (
            "offsetof(struct ibv_qp_attr, ah_attr)",
            offset_of!(ibv_qp_attr, ah_attr),
        ),
        (
            "offsetof(struct ibv_qp_attr, pkey_index)",
            offset_of!(ibv_qp_attr, pkey_index),
        ),
        (
            "offsetof(struct ibv_qp_attr, rnr_retry)",
            offset_of!(ibv_qp_attr, rnr_retry),
        ),
        (
            "offsetof(struct ibv_qp_attr, rate_limit)",
            offset_of!(ibv_qp_attr, rate_limit),
        ),
        ("sizeof(struct ibv_ah_attr)", size_of::<ibv_ah_attr>()),
        (
            "offsetof(struct ibv_ah_attr, port_num)",
            offset_of!(ibv_ah_attr, port_num),
        ),
        (
            "offsetof(struct ibv_port_attr, lid)",
            offset_of!(ibv_port_attr, lid),
        ),
        (
            "offsetof(struct ibv_port_attr, link_layer)",
            offset_of!(ibv_port_attr, link_layer),
        ),
        ("sizeof(struct ibv_port_attr) <= sizeof(zcio_port_attr)", 1),
    ]
}

#[test]
fn structs_match_verbs_h() {
    if !std::path::Path::new("/usr/include/infiniband/verbs.h").exists() {
        eprintln!("SKIPPED: rdma-core headers (libibverbs-dev) are not installed");
        return;
    }
    let exp = expectations();
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <infiniband/verbs.h>\n\
         typedef char zcio_port_attr[",
    );
    c.push_str(&size_of::<ibv_port_attr>().to_string());
    c.push_str("];\nint main(void) {\n");
    for (expr, _) in &exp {
        c.push_str(&format!("  printf(\"%zu\\n\", (size_t)({expr}));\n"));
    }
    c.push_str("  return 0;\n}\n");
    let dir = std::env::temp_dir().join(format!("zcio-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("layout.c");
    let bin = dir.join("layout");
    std::fs::write(&src, c).unwrap();
    let Ok(out) = Command::new("cc").arg(&src).arg("-o").arg(&bin).output() else {
        eprintln!("SKIPPED: no C compiler");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = Command::new(&bin).output().unwrap();
    let values: Vec<usize> = String::from_utf8(printed.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    for ((expr, rust), c) in exp.iter().zip(&values) {
        assert_eq!(rust, c, "{expr}: Rust {rust}, C {c}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
