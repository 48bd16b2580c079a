#!/usr/bin/env bash
# `npm run test:backends [-- rust|js]`: the suites' pass on the epoll backend,
# after `npm test`'s default pass (io_uring where this machine allows it).
#
#   rust  `cargo test -p zcio` with ZCIO_BACKEND=epoll: every ring of the
#         core's tests runs on epoll (tests of io_uring's own paths say
#         SKIPPED and why).
#   js    the whole ava suite under a real seccomp filter that denies
#         io_uring_setup with EPERM, as Docker's and containerd's default
#         profiles do (crates/zcio/examples/deny_io_uring). Nothing forces the
#         backend: rings must pick epoll by themselves, and
#         ZCIO_EXPECT_SECCOMP=1 makes unavailable.spec check that probe()
#         says so (backend 'epoll', ioUringUnavailable.kind 'seccomp').
#
# Without an argument both run. The addon and __test__/build/ must be built
# (npm run build, npm run test:js); ava arguments may follow `js`.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-all}
[ $# -gt 0 ] && shift
case "$what" in
  all | rust | js) ;;
  *) echo "test:backends: expected rust, js or nothing; got '$what'" >&2; exit 2 ;;
esac

if [ "$what" != js ]; then
  echo "== cargo test -p zcio on the epoll backend (ZCIO_BACKEND=epoll)"
  ZCIO_BACKEND=epoll cargo test -p zcio
fi

if [ "$what" != rust ]; then
  helper=target/debug/examples/deny_io_uring
  # `cargo test` builds it; build it alone when it has not run.
  [ -x "$helper" ] || cargo build -q -p zcio --example deny_io_uring
  echo "== the ava suite under a seccomp filter denying io_uring (rings pick epoll)"
  specs=("$@")
  [ ${#specs[@]} -eq 0 ] && specs=(__test__/build/*.spec.js)
  # The environment must not force a backend: the filter alone decides.
  env -u ZCIO_BACKEND ZCIO_EXPECT_SECCOMP=1 "$helper" npx ava "${specs[@]}"
fi
