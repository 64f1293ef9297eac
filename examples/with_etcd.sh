#!/usr/bin/env bash
# Runs a command next to a throwaway etcd (Debian's etcd-server, /usr/bin/etcd): client and peer
# URLs on free 127.0.0.1 ports, a temporary data dir; every "@ETCD@" in the arguments becomes
# etcd://127.0.0.1:PORT. Stops the etcd it started (by PID) and removes its data dir. Fails if
# etcd cannot start (never skips).
#   with_etcd.sh COMMAND [ARGS...]
set -euo pipefail
ETCD_BIN="${ETCD_BIN:-/usr/bin/etcd}"
[ -x "$ETCD_BIN" ] || { echo "with_etcd: $ETCD_BIN not found (install etcd-server: scripts/install-deps.sh)" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
client_port=$(free_port); peer_port=$(free_port)
dir=$(mktemp -d /tmp/occams-etcd-XXXXXX)
"$ETCD_BIN" --name t --data-dir "$dir/data" \
  --listen-client-urls "http://127.0.0.1:$client_port" --advertise-client-urls "http://127.0.0.1:$client_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "t=http://127.0.0.1:$peer_port" >"$dir/etcd.log" 2>&1 &
etcd_pid=$!
cleanup() { kill "$etcd_pid" 2>/dev/null || true; wait "$etcd_pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
up=0
for _ in $(seq 200); do  # up to 20 s
  if python3 - "$client_port" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/v3/kv/range", data=b'{"key":"AA=="}'), timeout=1).read()
PY
  then up=1; break; fi
  kill -0 "$etcd_pid" 2>/dev/null || { echo "with_etcd: etcd exited at start:" >&2; cat "$dir/etcd.log" >&2; exit 1; }
  sleep 0.1
done
[ "$up" = 1 ] || { echo "with_etcd: etcd did not answer within 20 s:" >&2; cat "$dir/etcd.log" >&2; exit 1; }
args=()
for a in "$@"; do args+=("${a//@ETCD@/etcd://127.0.0.1:$client_port}"); done
"${args[@]}"
