#!/usr/bin/env bash
# Soft-RoCE smoke test, run inside the rig's VM (scripts/rdma-vm.sh):
#
#   scripts/rdma-vm.sh -- bash scripts/rdma-smoke.sh
#
# Proves the RDMA stack works end to end before the project's own RDMA
# tests are blamed: rxe0's port is ACTIVE, and an RC ping-pong between two
# processes moves data through it (verbs, memory registration, QP setup,
# send/receive completions). Sizes are small because the VM runs without
# KVM and rxe is slow there; exits non-zero on any failure.
set -euo pipefail

DEV=${RDMA_SMOKE_DEV:-rxe0}
PORT=${RDMA_SMOKE_PORT:-18515}
ITERS=${RDMA_SMOKE_ITERS:-200}
SIZE=${RDMA_SMOKE_SIZE:-4096}
# GID 1 of rxe over lo is the IPv4-mapped 127.0.0.1 one; ibv_rc_pingpong's
# RoCE path needs an explicit GID.
PINGPONG=(ibv_rc_pingpong -d "$DEV" -g 1 -p "$PORT" -n "$ITERS" -s "$SIZE")
start=$SECONDS

echo "== ibv_devinfo -d $DEV"
info=$(ibv_devinfo -d "$DEV")
echo "$info"
grep -q 'state:[[:space:]]*PORT_ACTIVE' <<<"$info" || { echo "FAIL: $DEV's port is not ACTIVE"; exit 1; }

echo "== ${PINGPONG[*]} (server and client on 127.0.0.1)"
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
timeout 120 "${PINGPONG[@]}" >"$log/server" 2>&1 &
server=$!
# The client gives up at once if nobody listens yet: wait for the server.
for _ in $(seq 100); do
  ss -Hltn "sport = :$PORT" | grep -q . && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.2
done
client_rc=0; timeout 120 "${PINGPONG[@]}" 127.0.0.1 >"$log/client" 2>&1 || client_rc=$?
# A client that never got through leaves the server waiting: stop it.
[[ $client_rc == 0 ]] || kill "$server" 2>/dev/null || true
server_rc=0; wait "$server" || server_rc=$?
sed 's/^/server: /' "$log/server"
sed 's/^/client: /' "$log/client"

if [[ $server_rc != 0 || $client_rc != 0 ]]; then
  echo "FAIL: ping-pong server exited $server_rc, client $client_rc"
  exit 1
fi
echo "OK: $DEV ping-pong of $ITERS x $SIZE bytes in $((SECONDS - start)) s"
