#!/usr/bin/env bash
# Runs Node's own net tests (test/parallel/test-net-*.js of a Node source
# tree, for the Node version that runs them) with `net` mapped to zcio.net:
# each test once on node:net, and those that pass there once more on
# zcio.net. Prints each mapped result and the counts. The tests are not
# part of this project; give the tree's path:
#   scripts/node-net-tests.sh ~/src/node          (one at a time, 20 s each)
set -uo pipefail
tree=${1:?usage: node-net-tests.sh <node source tree with test/common and test/parallel>}
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$tree/test/parallel" ] && [ -d "$tree/test/common" ] || { echo "no test/parallel and test/common in $tree" >&2; exit 2; }
native=0 mapped=0 total=0
for t in "$tree"/test/parallel/test-net-*.js; do
  total=$((total + 1))
  flags=$(grep -m1 '^// Flags:' "$t" | sed 's#^// Flags:##')
  # shellcheck disable=SC2086
  timeout -k 5 20 node $flags "$t" >/dev/null 2>&1 || continue
  native=$((native + 1))
  # shellcheck disable=SC2086
  if NODE_OPTIONS="--require $here/map-net.cjs" timeout -k 5 20 node $flags "$t" >/dev/null 2>&1; then
    mapped=$((mapped + 1)); echo "pass $(basename "$t")"
  else
    echo "FAIL $(basename "$t")"
  fi
done
echo "$total tests; $native pass on node:net; $mapped of those pass on zcio.net"
