#!/usr/bin/env bash
# `npm run test:rdma`: every RDMA test, for real, in the Soft-RoCE VM
# (scripts/rdma-vm.sh): the rig's own smoke test (rdma-core's
# ibv_rc_pingpong), the core crate's RDMA tests (including those ignored on
# machines without a device), then the JS ones against the built addon.
# Everything is built here first, on the host, because the repository is
# read-only inside the VM: the addon and the TypeScript layer (`npm run
# build`, a quick no-op when nothing changed), the Rust RDMA tests and the JS
# tests. So it runs on its own right after `npm ci` in a fresh clone.
#
# Exit codes: the tests' own, or 77 (with a SKIPPED line) where the rig
# can't run on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building the addon and the TypeScript layer (npm run build)"
npm run --silent build >/dev/null || { echo "npm run build failed; run it alone to see why"; exit 1; }
echo "== building the RDMA tests"
bin=$(cargo test -p zcio --features rdma --test rdma --no-run --message-format=json 2>/dev/null |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const l of s.split("\n")){try{const m=JSON.parse(l);if(m.executable&&m.target&&m.target.name==="rdma")console.log(m.executable)}catch{}}})' |
  tail -1)
[ -n "$bin" ] || { echo "could not build the RDMA tests"; exit 1; }
rel=${bin#"$PWD"/}
echo "== compiling the JS tests"
npx --no-install tsc -p __test__/tsconfig.json

# ava keeps a cache under node_modules/.cache/ava, which the VM cannot
# create or write: there it runs with package.json's ava settings plus
# cache: false, from a config file in the VM's /tmp (ava reads an explicit
# config file instead of package.json's, not merged with it).
job=$(cat <<JOB
set -e
node -e 'const c = { ...require("./package.json").ava, cache: false }; console.log("export default " + JSON.stringify(c))' >/tmp/ava-vm.config.mjs
ava() { node node_modules/ava/entrypoints/cli.mjs --config /tmp/ava-vm.config.mjs "\$@"; }
bash scripts/rdma-smoke.sh
echo "== Rust RDMA tests (zcio::rdma)"
"$rel" --include-ignored --test-threads=1
echo "== JS RDMA tests (ava)"
ZCIO_REQUIRE_RDMA=1 ava __test__/build/rdma.spec.js
# RDMA needs no io_uring; what it shares with rings (ZeroCopyBufferManager
# over a TcpStream, the event loop) runs on the epoll backend too.
echo "== JS RDMA tests, rings on the epoll backend (ZCIO_BACKEND=epoll)"
ZCIO_REQUIRE_RDMA=1 ZCIO_BACKEND=epoll ava __test__/build/rdma.spec.js
ZCIO_BACKEND=epoll ava __test__/build/zcbm.spec.js
export ZCIO_RDMA_FUZZ_TIME=${ZCIO_RDMA_FUZZ_TIME:-20}
${ZCIO_RDMA_FUZZ_SEED:+export ZCIO_RDMA_FUZZ_SEED=$ZCIO_RDMA_FUZZ_SEED}
${ZCIO_RDMA_FUZZ_PATH:+export ZCIO_RDMA_FUZZ_PATH='$ZCIO_RDMA_FUZZ_PATH'}
echo "== randomized RDMA test (\$ZCIO_RDMA_FUZZ_TIME s)"
ZCIO_REQUIRE_RDMA=1 ava __test__/build/rdma-model.spec.js
JOB
)
exec bash scripts/rdma-vm.sh -- bash -c "$job"
