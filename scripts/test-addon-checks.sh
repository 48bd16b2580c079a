#!/usr/bin/env bash
# Shows that the checks of scripts/build-all.sh fail the build on a bad
# addon: small shared objects built with zig, each wrong in one way the
# checks are for, and good ones that must pass. `npm run test:addon-checks`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=zig-tools.sh
. scripts/zig-tools.sh
zig_tools
work=$(mktemp -d "${TMPDIR:-/tmp}/zcio-addon-checks.XXXXXX")
trap 'rm -rf "$work"' EXIT

cat >"$work/addon.c" <<'C'
#include <dlfcn.h>
#include <stdlib.h>
/* A libc call, so that the object needs the C library as an addon does. */
void *napi_register_module_v1(void *env, void *exports) { return getenv("ZCIO") ? env : exports; }
#ifdef NEEDS_DLOPEN
void *open_it(const char *p) { return dlopen(p, RTLD_NOW); }
#endif
#ifdef NEEDS_VERBS
int ibv_fork_init(void);
int init_verbs(void) { return ibv_fork_init(); }
#endif
#ifdef NEEDS_MISSING
int zcio_no_such_symbol(void);
int call_missing(void) { return zcio_no_such_symbol(); }
#endif
C
echo 'int ibv_fork_init(void) { return 0; }' >"$work/verbs.c"

# so PATH ZIG_TARGET [cc flags...]: builds $work/PATH from addon.c.
so() {
  local path=$work/$1 target=$2
  shift 2
  mkdir -p "$(dirname "$path")"
  "${ZIG[@]}" cc -shared -fPIC -target "$target" -o "$path" "$work/addon.c" "$@"
}
so good-gnu/zcio.linux-x64-gnu.node x86_64-linux-gnu.2.17
so good-arm64/zcio.linux-arm64-gnu.node aarch64-linux-gnu.2.17
so good-musl/zcio.linux-x64-musl.node x86_64-linux-musl
so good-arm64-musl/zcio.linux-arm64-musl.node aarch64-linux-musl
# dlopen lives in libc since glibc 2.34, with that symbol version.
so new-glibc/zcio.linux-x64-gnu.node x86_64-linux-gnu.2.34 -DNEEDS_DLOPEN
so wrong-arch/zcio.linux-x64-gnu.node aarch64-linux-gnu.2.17
so wrong-arch-musl/zcio.linux-arm64-musl.node x86_64-linux-musl
so glibc-as-musl/zcio.linux-x64-musl.node x86_64-linux-gnu.2.17
mkdir -p "$work/lib"
"${ZIG[@]}" cc -shared -fPIC -target x86_64-linux-gnu.2.17 -Wl,-soname,libibverbs.so.1 -o "$work/lib/libibverbs.so.1" "$work/verbs.c"
ln -sf libibverbs.so.1 "$work/lib/libibverbs.so"
so verbs/zcio.linux-x64-gnu.node x86_64-linux-gnu.2.17 -DNEEDS_VERBS -L"$work/lib" -libverbs
so missing-symbol/zcio.linux-x64-musl.node x86_64-linux-musl -DNEEDS_MISSING -Wl,--allow-shlib-undefined
so missing-symbol-arm64/zcio.linux-arm64-musl.node aarch64-linux-musl -DNEEDS_MISSING -Wl,--allow-shlib-undefined

passed=0 failed=0
# expect pass|fail WHAT CMD...: runs a check, which must exit 0 (pass) or 1 (fail).
expect() {
  local want=$1 what=$2 rc=0
  shift 2
  "$@" >"$work/out" 2>&1 || rc=$?
  if { [ "$want" = pass ] && [ $rc -eq 0 ]; } || { [ "$want" = fail ] && [ $rc -eq 1 ]; }; then
    passed=$((passed + 1))
    echo "ok: $what (exit $rc)"
    grep -h 'FAIL' "$work/out" | sed 's/^/    /' || true
  else
    failed=$((failed + 1))
    echo "NOT OK: $what: exit $rc, expected to $want"
    sed 's/^/    /' "$work/out"
  fi
}

check=(bash scripts/check-addon.sh)
load=(bash scripts/check-musl-load.sh)
expect pass 'glibc 2.17 x64 build passes' "${check[@]}" "$work"/good-gnu/*.node
expect pass 'glibc 2.17 arm64 build passes' "${check[@]}" "$work"/good-arm64/*.node
expect pass 'musl x64 build passes' "${check[@]}" "$work"/good-musl/*.node
expect pass 'musl arm64 build passes' "${check[@]}" "$work"/good-arm64-musl/*.node
expect fail 'a build needing GLIBC_2.34 fails the glibc floor' "${check[@]}" "$work"/new-glibc/*.node
expect fail 'an arm64 file named x64 fails the machine check' "${check[@]}" "$work"/wrong-arch/*.node
expect fail 'an x64 file named arm64 fails the machine check' "${check[@]}" "$work"/wrong-arch-musl/*.node
expect fail 'a glibc build named musl fails the no-glibc check' "${check[@]}" "$work"/glibc-as-musl/*.node
expect fail 'a build needing libibverbs fails' "${check[@]}" "$work"/verbs/*.node
expect fail 'one bad file among good ones fails the run' "${check[@]}" "$work"/good-gnu/*.node "$work"/new-glibc/*.node
expect pass 'musl x64 build loads with musl' "${load[@]}" "$work"/good-musl/*.node
expect pass 'musl arm64 build loads with musl under qemu' "${load[@]}" "$work"/good-arm64-musl/*.node
expect fail 'a musl build with a symbol musl lacks fails to load' "${load[@]}" "$work"/missing-symbol/*.node
expect fail 'the same on arm64' "${load[@]}" "$work"/missing-symbol-arm64/*.node
expect fail 'a glibc build fails to load with musl' "${load[@]}" "$work"/glibc-as-musl/*.node

echo "addon-checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
