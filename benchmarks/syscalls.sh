#!/usr/bin/env bash
# System calls per call: a fixed number of calls (occams_bench client --calls), client and server
# each under `perf stat` with the kernel's syscall tracepoints, for one build. Counts do not
# depend on this machine's timing noise; they show what a change does to the wake-ups and the
# reads and writes per batch (each a trip into the kernel that raw_bench may not make).
#
#   benchmarks/syscalls.sh [--bin-dir DIR] [--calls C] [--workloads W4,W2] [--systems stream,api,raw]
#
# --bin-dir: the directory holding occams_bench and raw_bench (default: build/release/benchmarks
#   of this checkout, not rebuilt). --calls C: calls per run (W4: 20000, others: 2000000).
# --workloads: any of W1 (1 x 128), W2 (8 x 32), W4 (1 x 1), 64-byte payloads (W4,W2).
# --systems: any of stream, api, raw (stream,raw).
# Needs perf (Debian: linux-perf) and the syscall tracepoints (root, or perf_event_paranoid <= 1
# with tracefs readable). Server on CPU 0, client on CPU 1, as run.sh. The server is counted
# from just before the client starts until it ends (perf attached to its PID, stopped with
# SIGINT), so its start-up is left out; the client's count is its whole life. The server this
# script starts is stopped by its PID (SIGTERM, SIGKILL after 10 s).
set -u

prog=syscalls.sh
# shellcheck source=benchmarks/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh" || exit 1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
calls=
workloads=W4,W2
systems=stream,raw
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --bin-dir) add_bin_dir "${2:?--bin-dir needs a value}"; shift 2 ;;
    --calls) calls=${2:?--calls needs a value}; shift 2 ;;
    --workloads) workloads=${2:?--workloads needs a value}; shift 2 ;;
    --systems) systems=${2:?--systems needs a value}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "$prog: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
command -v perf >/dev/null || { echo "$prog: perf is missing (Debian: apt-get install linux-perf)" >&2; exit 2; }
[[ -z $calls || $calls =~ ^[1-9][0-9]*$ ]] || { echo "$prog: --calls must be a positive integer" >&2; exit 2; }
[[ ${#bin_dirs[@]} -gt 0 ]] || add_bin_dir "$root/build/release/benchmarks"
[[ ${#bin_dirs[@]} -eq 1 ]] || { echo "$prog: one --bin-dir at a time" >&2; exit 2; }
check_bin_dirs occams_bench raw_bench
bin=${bin_dirs[0]}

events=(read readv recvfrom recvmsg write writev sendto sendmsg epoll_wait epoll_ctl)
ev=$(printf 'syscalls:sys_enter_%s,' "${events[@]}")
ev=${ev%,}
if ! perf stat -e "$ev" true >/dev/null 2>&1; then
  echo "$prog: perf cannot count syscall tracepoints here (try as root)" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/occams-syscalls.XXXXXX") || exit 1
cleanup() { stop_server 10; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Prints "name per-call" for every event counted in perf's CSV file $1, over $2 calls.
per_call() { awk -F, -v c="$2" '$1 ~ /^[0-9]+$/ && $1 > 0 { sub("syscalls:sys_enter_", "", $3); printf "%s %.4f\n", $3, $1 / c }' "$1"; }

printf '| workload | system | side | syscalls per call |\n|---|---|---|---|\n'
IFS=, read -r -a wl <<<"$workloads"
IFS=, read -r -a sl <<<"$systems"
failures=0
for w in "${wl[@]}"; do
  case $w in W1) conns=1 inflight=128 ;; W2) conns=8 inflight=32 ;; W4) conns=1 inflight=1 ;;
    *) echo "$prog: unknown workload '$w' (W1, W2 or W4)" >&2; exit 2 ;; esac
  n=${calls:-$([[ $w == W4 ]] && echo 20000 || echo 2000000)}
  for s in "${sl[@]}"; do
    exe=$bin/occams_bench extra=()
    case $s in stream) ;; api) extra=(--api) ;; raw) exe=$bin/raw_bench ;;
      *) echo "$prog: unknown system '$s' (stream, api or raw)" >&2; exit 2 ;; esac
    "${pin_server[@]}" "$exe" server --port 0 --lifetime 600 >"$work/server.out" 2>"$work/server.err" &
    server_pid=$!
    port=
    for _ in $(seq 200); do
      port=$(sed -n -E 's/^listening on .*:([0-9]+)$/\1/p' "$work/server.out" 2>/dev/null | head -n 1)
      [[ -n $port ]] && break
      sleep 0.05
    done
    if [[ -z $port ]]; then
      echo "$prog: $w $s: the server did not start: $(tail -n 3 "$work/server.err")" >&2
      stop_server 10; failures=$((failures + 1)); continue
    fi
    # perf counts the server from now (attached to its PID) until SIGINT.
    perf stat -x, -e "$ev" -p "$server_pid" -o "$work/server.csv" 2>/dev/null &
    perf_pid=$!
    sleep 0.3
    if ! "${pin_client[@]}" perf stat -x, -e "$ev" -o "$work/client.csv" "$exe" client --port "$port" \
        --connections "$conns" --inflight "$inflight" --payload 64 --calls "$n" "${extra[@]}" \
        >"$work/client.out" 2>"$work/client.err"; then
      echo "$prog: $w $s: the client failed: $(tail -n 3 "$work/client.err")" >&2
      kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid"
      stop_server 10; failures=$((failures + 1)); continue
    fi
    kill -INT "$perf_pid" 2>/dev/null  # perf writes the server's counts and exits
    wait "$perf_pid"
    stop_server 10
    for side in client server; do
      printf '| %s | %s | %s | %s |\n' "$w" "$s" "$side" "$(per_call "$work/$side.csv" "$n" | tr '\n' ' ')"
    done
  done
done
[[ $failures -eq 0 ]]
