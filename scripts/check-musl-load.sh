#!/usr/bin/env bash
# Loads each musl build with a real musl dynamic loader (Debian's musl 1.2.5,
# the version of current Alpine releases), from a small C program built with
# zig: dlopen(RTLD_NOW) must resolve every symbol the addon needs from musl's
# libc and run its initializers. The aarch64 build runs under qemu-user.
# No Node runs here (there is no musl Node to install): this proves the
# addon links and loads against musl, not that zcio works on Alpine.
#
#   scripts/check-musl-load.sh FILE...   (files named *.linux-<arch>-musl.node)
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
cache=$here/.cache/musl
MUSL_SUITE=${MUSL_SUITE:-trixie}

# shellcheck source=zig-tools.sh
. scripts/zig-tools.sh
# shellcheck source=as-root.sh
. scripts/as-root.sh
zig_tools >/dev/null

failed=0
for f in "$@"; do
  f=$(realpath "$f")
  name=$(basename "$f")
  case $name in
    *linux-x64-musl.node) deb=amd64 zt=x86_64-linux-musl ld=ld-musl-x86_64.so.1 run=() ;;
    *linux-arm64-musl.node)
      deb=arm64 zt=aarch64-linux-musl ld=ld-musl-aarch64.so.1
      command -v qemu-aarch64-static >/dev/null || apt_install qemu-user-static
      run=(qemu-aarch64-static)
      ;;
    *) echo "check-musl-load: $name is not a linux-<x64|arm64>-musl build" >&2; exit 2 ;;
  esac
  bash scripts/deb-fetch.sh "$deb" "$MUSL_SUITE" "$cache/$deb" musl >/dev/null
  loader=$cache/$deb/root/usr/lib/$ld
  [ -e "$loader" ] || { echo "check-musl-load: $loader missing from Debian's musl package" >&2; exit 1; }
  prog=$cache/musl-load-$deb
  if [ ! -x "$prog" ] || [ scripts/musl-load.c -nt "$prog" ]; then
    "${ZIG[@]}" cc -target "$zt" -dynamic -O2 -o "$prog" scripts/musl-load.c
  fi
  version=$("${run[@]}" "$loader" 2>&1 | sed -n 's/^Version //p') || true
  echo "== $name: musl ${version:-?} ($deb) loader, dlopen(RTLD_NOW)"
  # The loader runs as a command: it needs no /lib/ld-musl-* on this machine.
  if out=$("${run[@]}" "$loader" "$prog" "$f" 2>&1); then
    echo "  $out"
  else
    echo "  FAIL: $out"
    failed=1
  fi
done
if [ "$failed" -ne 0 ]; then
  echo "check-musl-load: FAILED"
  exit 1
fi
echo "check-musl-load: $# musl build(s) loaded"
