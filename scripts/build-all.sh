#!/usr/bin/env bash
# Builds the prebuilt addons of every target in package.json's napi.targets
# on one Linux x64 machine, and checks each one (scripts/check-addon.sh, and
# scripts/check-musl-load.sh for musl). `npm run build:all`; the release
# workflow runs it too.
#
#   scripts/build-all.sh [--target TRIPLE]...   (default: every target)
#
# Every target is linked by zig through cargo-zigbuild (`napi build -x`); the
# gnu targets with the .2.17 suffix, which links against glibc 2.17's symbol
# versions (see BUILDING.md for why zig and not napi's cross toolchain).
# What it lacks it installs: the rustup targets, zig and cargo-zigbuild (PyPI),
# readelf, and for the checks Debian's musl and qemu-user.
#
# The addons go to target/prebuilt/ and then into the platform packages,
# npm/<platform>/zcio.<platform>.node, where `napi prepublish` publishes
# them from. The host build at the package root (npm run build), which the
# tests load, is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

GLIBC_FLOOR=${GLIBC_FLOOR:-2.17}
out=target/prebuilt

targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --target) targets+=("$2"); shift 2 ;;
    *) echo "usage: $0 [--target TRIPLE]..." >&2; exit 2 ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(node -p "require('./package.json').napi.targets.join('\n')")
fi

# The platform name napi gives a target (npm/<platform>/).
platform() {
  local arch=${1%%-*} libc=${1##*-}
  case $arch in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; esac
  echo "linux-$arch-$libc"
}

echo "== toolchains"
installed=$(rustup target list --installed)
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
# shellcheck source=zig-tools.sh
. scripts/zig-tools.sh
zig_tools
[ -d node_modules/@napi-rs/cli ] || npm ci --no-audit --no-fund

mkdir -p "$out"
built=() musl=()
for t in "${targets[@]}"; do
  p=$(platform "$t")
  file=$out/zcio.$p.node
  rm -f "$file"
  zt=$t
  [[ $t == *-gnu ]] && zt=$t.$GLIBC_FLOOR
  echo "== build $t (zig target $zt)"
  start=$SECONDS
  npx napi build --platform --release --manifest-path crates/zcio-node/Cargo.toml \
    --output-dir "$out" --no-js --target "$zt" -x
  [ -f "$file" ] || { echo "build-all: napi build made no $file" >&2; exit 1; }
  echo "   built $file in $((SECONDS - start)) s"
  built+=("$file")
  [[ $t == *-musl ]] && musl+=("$file")
done

echo "== checks"
GLIBC_MAX=$GLIBC_FLOOR bash scripts/check-addon.sh "${built[@]}"
[ ${#musl[@]} -eq 0 ] || bash scripts/check-musl-load.sh "${musl[@]}"

echo "== platform packages"
for file in "${built[@]}"; do
  name=$(basename "$file")
  p=${name#zcio.}
  p=${p%.node}
  [ -f "npm/$p/package.json" ] || { echo "build-all: no platform package npm/$p" >&2; exit 1; }
  cp "$file" "npm/$p/$name"
  ls -l "npm/$p/$name"
done
