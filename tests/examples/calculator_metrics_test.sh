#!/usr/bin/env bash
# calculator_server --metrics (the ctest test "examples: calculator_server --metrics serves
# metrics that move with calls and pass promtool"): wrong --metrics values exit 2; with
# --metrics, GET /metrics counts the calls `occams call` makes (ok, the method's error,
# rpc_method_notfound as method="unknown") and promtool accepts the text. promtool is
# required (Debian's prometheus package, scripts/install-deps.sh): without it the test fails.
#
#   calculator_metrics_test.sh OCCAMS_EXE SERVER_EXE
set -u
[[ $# -eq 2 ]] || { echo "usage: $0 OCCAMS_EXE SERVER_EXE" >&2; exit 2; }
occams=$1 server_exe=$2
command -v promtool >/dev/null || { echo "FAILED: promtool not found: install Debian's prometheus package" >&2; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/../../examples/server_process.sh"
dir=$server_dir
failed=0
fail() { echo "FAILED: $*" >&2; failed=1; }

for bad in nonsense unix:/tmp/metrics.sock 127.0.0.1:99999; do
  "$server_exe" --metrics "$bad" >"$dir/out" 2>"$dir/err"
  status=$?
  if [[ $status -eq 2 ]] && grep -qF -- "--metrics" "$dir/err"; then echo "ok: --metrics $bad exits 2"
  else fail "--metrics $bad: status $status, stderr: $(cat "$dir/err")"; fi
done
"$server_exe" --metrics >"$dir/out" 2>"$dir/err"
[[ $? -eq 2 ]] && echo "ok: --metrics without a value exits 2" || fail "--metrics without a value"

start_server address "$server_exe" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 || exit 1
if ! read -r -t 10 -u "$server_fd" line || [[ $line != "metrics on "* ]]; then
  echo "FAILED: no 'metrics on' line" >&2
  exit 1
fi
metrics=${line#metrics on }
echo "server: $address, metrics: $metrics"

"$occams" call "$address" CalService.add '[1,2]' >/dev/null || fail "call CalService.add"
"$occams" call "$address" CalService.add '[3,4]' >/dev/null || fail "call CalService.add"
"$occams" call "$address" CalService.div '[1,0]' >/dev/null 2>&1 && fail "div by zero succeeded"
"$occams" call "$address" CalService.nope '[1]' >/dev/null 2>&1 && fail "an unknown method succeeded"
python3 - "http://$metrics/metrics" >"$dir/metrics" <<'PY' || fail "GET /metrics"
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers["Content-Type"]
    sys.stdout.write(r.read().decode())
PY
for want in \
  'occams_rpc_calls_completed_total{side="server",method="CalService.add",outcome="ok"} 2' \
  'occams_rpc_calls_completed_total{side="server",method="CalService.div",outcome="error"} 1' \
  'occams_rpc_calls_completed_total{side="server",method="unknown",outcome="method_not_found"} 1' \
  'occams_rpc_call_duration_seconds_count{side="server",method="CalService.add"} 2'; do
  grep -qxF -- "$want" "$dir/metrics" && echo "ok: $want" || fail "missing: $want"
done
if promtool check metrics <"$dir/metrics" >"$dir/promtool" 2>&1; then echo "ok: promtool check metrics"
else fail "promtool: $(cat "$dir/promtool")"; fi
python3 - "http://$metrics/nothing" <<'PY' || fail "GET /nothing is not 404"
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=10)
    sys.exit(1)
except urllib.error.HTTPError as e:
    sys.exit(0 if e.code == 404 else 1)
PY
[[ $failed -eq 0 ]] || { cat "$dir/metrics" >&2; exit 1; }
echo "all passed"
