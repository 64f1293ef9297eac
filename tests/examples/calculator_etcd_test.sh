#!/usr/bin/env bash
# Two calculator_servers register on etcd (--register), calculator_client follows them
# (--connect etcd://...); then one server stops gracefully (SIGTERM: it deregisters first) and
# the client still gets every answer right from the other. Run through examples/with_etcd.sh,
# which starts etcd and replaces @ETCD@:
#   with_etcd.sh calculator_etcd_test.sh SERVER_EXE CLIENT_EXE @ETCD@ [OCCAMS_EXE]
# With OCCAMS_EXE, `occams call URL ...` and `occams list URL` are checked too.
set -euo pipefail
server="$1"; client="$2"; etcd="$3"; occams="${4:-}"
url="$etcd/services/calc"
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "calculator_etcd_test: FAILED: $*" >&2; exit 1; }
for i in 1 2; do
  "$server" --listen 127.0.0.1:0 --register "$url" --ttl 3 >"$dir/s$i.out" 2>"$dir/s$i.err" &
  pids+=($!)
done
# Both registered (each logs it), so that the client's first snapshot has both.
for i in 1 2; do
  for _ in $(seq 200); do grep -q "registered with lease" "$dir/s$i.err" && break; sleep 0.1; done
  grep -q "registered with lease" "$dir/s$i.err" || fail "server $i did not register: $(cat "$dir/s$i.err")"
done
"$client" --connect "$url" --calls 2000 --timeout 5000 >"$dir/c1.out" 2>&1 || fail "client (two servers): $(cat "$dir/c1.out")"
grep -q "2000 right, 0 wrong" "$dir/c1.out" || fail "client output: $(cat "$dir/c1.out")"
if [ -n "$occams" ]; then
  out=$("$occams" call "$url" CalService.add '[40, 2]' --timeout 5) || fail "occams call $url: $out"
  [ "$out" = 42 ] || fail "occams call $url printed '$out'"
  "$occams" list "$url" --timeout 5 | grep -q "CalService" || fail "occams list $url"
fi
kill -TERM "${pids[0]}"; wait "${pids[0]}" || fail "server 1 did not shut down cleanly"
pids=("${pids[1]}")
grep -q "revoked" "$dir/s1.err" || fail "server 1 did not deregister: $(cat "$dir/s1.err")"
"$client" --connect "$url" --calls 2000 --timeout 5000 >"$dir/c2.out" 2>&1 || fail "client (one server): $(cat "$dir/c2.out")"
grep -q "2000 right, 0 wrong" "$dir/c2.out" || fail "client output: $(cat "$dir/c2.out")"
# A URL naming a bad scheme is refused as a usage error.
set +e; "$client" --connect "zk://127.0.0.1:1/x" >"$dir/c3.out" 2>&1; rc=$?; set -e
[ "$rc" = 2 ] || fail "bad URL: exit $rc, $(cat "$dir/c3.out")"
echo "calculator_etcd_test: ok"
