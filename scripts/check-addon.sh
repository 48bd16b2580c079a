#!/usr/bin/env bash
# Checks built addons against what their file names promise, statically (no
# need to run them): the ELF machine, the glibc floor of gnu builds, no glibc
# at all in musl builds, and no libibverbs among the libraries they need
# (RDMA loads it on first use, so the addon runs where rdma-core is absent).
#
#   scripts/check-addon.sh FILE...
#
# Each FILE is named like zcio.linux-<x64|arm64>-<gnu|musl>.node. Exits 1 if
# any check fails on any file; every failure is printed. GLIBC_MAX (default
# 2.17) is the highest GLIBC_ symbol version a gnu build may need.
set -euo pipefail

GLIBC_MAX=${GLIBC_MAX:-2.17}
# shellcheck source=as-root.sh
. "$(dirname "$0")/as-root.sh"
command -v readelf >/dev/null || apt_install binutils

if [ $# -eq 0 ]; then
  echo "usage: $0 FILE..." >&2
  exit 2
fi

failed=0
fail() {
  echo "  FAIL: $*"
  failed=1
}

# Prints the highest of two dotted versions.
vmax() { printf '%s\n%s\n' "$1" "$2" | sort -V | tail -1; }

for f in "$@"; do
  echo "== $f"
  name=$(basename "$f")
  if [[ ! $name =~ linux-(x64|arm64)-(gnu|musl)\.node$ ]]; then
    fail "$name is not named linux-<x64|arm64>-<gnu|musl>.node: cannot tell what to check"
    continue
  fi
  arch=${BASH_REMATCH[1]} libc=${BASH_REMATCH[2]}
  if ! header=$(readelf -h "$f" 2>&1); then
    fail "not an ELF file: $header"
    continue
  fi

  machine=$(sed -n 's/^ *Machine: *//p' <<<"$header")
  case $arch in
    x64) expect='Advanced Micro Devices X86-64' ;;
    arm64) expect='AArch64' ;;
  esac
  if [ "$machine" = "$expect" ]; then
    echo "  machine: $machine"
  else
    fail "ELF machine is '$machine', the name says $arch ('$expect')"
  fi
  type=$(sed -n 's/^ *Type: *//p' <<<"$header")
  [[ $type == DYN* ]] || fail "ELF type is '$type', not a shared object (DYN)"

  needed=$(readelf -d -W "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  echo "  needs: ${needed:-nothing}"
  if grep -q libibverbs <<<"$needed"; then
    fail "links libibverbs (NEEDED); RDMA must load it at run time so that the addon runs without rdma-core"
  fi

  # GLIBC_ versions from the version-needs section and the dynamic symbols.
  versions=$( { readelf -V -W "$f"; readelf --dyn-syms -W "$f"; } | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -Vu | tr '\n' ' ' | sed 's/ $//') || true
  case $libc in
    gnu)
      grep -qw 'libc\.so\.6' <<<"$needed" || fail "a gnu build that does not need libc.so.6"
      highest=$(tr ' ' '\n' <<<"$versions" | sed '/^$/d' | tail -1)
      echo "  highest GLIBC_ version: ${highest:-none} (allowed: $GLIBC_MAX)"
      if [ -n "$highest" ] && [ "$(vmax "$highest" "$GLIBC_MAX")" != "$GLIBC_MAX" ]; then
        fail "needs GLIBC_$highest, above the GLIBC_$GLIBC_MAX floor: build with zig's .$GLIBC_MAX target suffix"
      fi
      ;;
    musl)
      for lib in $needed; do
        case $lib in
          libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1 | ld-linux*)
            fail "a musl build that needs glibc's $lib" ;;
        esac
      done
      grep -qw 'libc\.so' <<<"$needed" || fail "a musl build that does not need musl's libc.so"
      [ -z "$versions" ] || fail "a musl build with glibc symbol versions: GLIBC_${versions// / GLIBC_}"
      ;;
  esac
done

if [ "$failed" -ne 0 ]; then
  echo "check-addon: FAILED"
  exit 1
fi
echo "check-addon: all checks passed ($# file(s))"
