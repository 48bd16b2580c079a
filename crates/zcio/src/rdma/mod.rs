//! RDMA verbs (cargo feature `rdma`).
mod sys;
