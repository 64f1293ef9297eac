#!/usr/bin/env bash
# The main job: installs what is missing, builds the release preset, then runs an echo server
# and client on loopback and prints what they did and how fast.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target 01_echo_server 02_echo_client
bin=build/release/examples
out=$(mktemp)
"$bin/01_echo_server" --listen 127.0.0.1:0 >"$out" &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$out" && break; sleep 0.05; done
addr=$(sed -n 's/^listening on //p' "$out")
echo "echo server (pid $server_pid) listening on $addr"
for payload in 64 4096; do
  echo "client: 1 connection, 128 calls in flight, ${payload}-byte blobs"
  "$bin/02_echo_client" --connect "$addr" --calls 200000 --inflight 128 --payload "$payload"
done
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
