#!/usr/bin/env bash
# Runs the BENCHMARK.md workloads W1-W4 against the raw ceiling (raw_bench) and the stream
# layer and the API layer (occams_bench, occams_bench --api), each pair
# twice (--runs), server pinned to CPU 0 and client to CPU 1, and prints a table of medians.
# Then the multi-core row (workload MC): the W2 shape with 16 connections, raw and stream
# (and pool with --pool), server and client each on --threads 1 and --threads 2 (workloads
# "W2x16/T1", "W2x16/T2"), nothing pinned.
#
#   benchmarks/run.sh [--duration S] [--warmup S] [--quick] [--runs R]
#                     [--bin-dir [LABEL=]DIR]... [--workloads W1,W2,W3,W4,MC] [--out DIR] [--tls]
#                     [--pool] [--failover] [--metrics]
#
# --duration S: measured seconds per run (5); --warmup S: warm-up seconds (0.5);
# --quick: duration 1, warm-up 0.2; --runs R: runs per cell (2). BUILD_JOBS (default 1) is
# passed to the build as -j.
# --bin-dir [LABEL=]DIR: run the binaries in DIR (occams_bench, raw_bench) instead of building
# this checkout; repeat it to run builds side by side in one invocation (stream@LABEL and
# api@LABEL per build, LABEL defaulting to A, B, ...; raw from the first DIR, and raw@LABEL from
# a later DIR whose raw_bench differs), with a "vs LABEL" column: each build's figure over the first's. --workloads: a subset (all five).
# The runs of a workload are interleaved (run 1 of every system, then run 2, ...).
# --tls: the stream and API layers also over TLS (certificates made by
# tests/integration/tls_make_certs.sh in a temporary directory), as stream@tls and api@tls
# beside stream@plain and api@plain, with a "vs plain" column: TLS's figure over plaintext's.
# --pool: a "pool" system too (pool@LABEL with --bin-dir): occams_bench client --pool, the
# stream layer's calls through one client_pool of N connections.
# --failover: a "failover" system too (failover@LABEL): occams_bench client --failover, the
# same calls through one failover_pool of the one address (its default config).
# --metrics: each stream/API system twice, as SYSTEM@off and SYSTEM@metrics (server and client
# with --metrics 127.0.0.1:0: a metrics::registry observes every call on both sides; nothing
# scrapes it during the run), with a "vs off" column: metrics on over off. This checkout only.
# The JSON lines go to build/release/bench-results/<time>.jsonl (or --out DIR). Every process
# this script starts is waited for, and only the server PIDs it started are ever killed.
set -u

prog=run.sh
# shellcheck source=benchmarks/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh" || exit 1
duration=5
warmup=0.5
runs=2
only_workloads=
out_dir=
tls=0
pool=0
failover=0
metrics=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --duration) duration=${2:?--duration needs a value}; shift 2 ;;
    --warmup) warmup=${2:?--warmup needs a value}; shift 2 ;;
    --quick) duration=1; warmup=0.2; shift ;;
    --runs) runs=${2:?--runs needs a value}; shift 2 ;;
    --bin-dir) add_bin_dir "${2:?--bin-dir needs a value}"; shift 2 ;;
    --workloads) only_workloads=${2:?--workloads needs a value}; shift 2 ;;
    --out) out_dir=${2:?--out needs a value}; shift 2 ;;
    --tls) tls=1; shift ;;
    --pool) pool=1; shift ;;
    --failover) failover=1; shift ;;
    --metrics) metrics=1; shift ;;
    -h|--help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --runs must be a positive integer" >&2; exit 2; }
[[ $tls -eq 0 || ${#bin_dirs[@]} -eq 0 ]] || { echo "run.sh: --tls runs this checkout's build only (no --bin-dir)" >&2; exit 2; }
[[ $metrics -eq 0 || ( ${#bin_dirs[@]} -eq 0 && $tls -eq 0 ) ]] || { echo "run.sh: --metrics runs this checkout's build only (no --bin-dir, no --tls)" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
check_bin_dirs occams_bench raw_bench
if [[ ${#bin_dirs[@]} -eq 0 ]]; then
  echo "run.sh: building the release preset" >&2
  cmake --preset release >/dev/null || exit 1
  cmake --build --preset release --target occams_bench raw_bench -j "${BUILD_JOBS:-1}" >/dev/null || exit 1
fi
bin=${bin_dirs[0]:-$root/build/release/benchmarks}

out_dir=${out_dir:-$root/build/release/bench-results}
mkdir -p "$out_dir" || exit 1
stamp=$(date -u +%Y%m%dT%H%M%SZ)
results=$out_dir/$stamp.jsonl   # the JSON lines as the clients printed them
labels=$out_dir/$stamp.tsv      # system label <TAB> JSON line, for the table
: >"$results"
: >"$labels"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/occams-bench.XXXXXX") || exit 1

# stop_server (bench_lib.sh): SIGTERM to the server this script started, SIGKILL after 5 s.
trap 'stop_server 5; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The systems: label, binary, extra client flags, extra server flags.
systems=("raw|$bin/raw_bench||" "stream|$bin/occams_bench||" "api|$bin/occams_bench|--api|")
if [[ $tls -eq 1 ]]; then
  mkdir "$tmp/certs" && sh "$root/tests/integration/tls_make_certs.sh" "$tmp/certs" >"$tmp/certs/log" 2>&1 \
    || { echo "run.sh: could not make the TLS certificates: $(cat "$tmp/certs/log")" >&2; exit 1; }
  tls_server="--tls-cert $tmp/certs/server.pem --tls-key $tmp/certs/server.key"
  tls_client="--tls-ca $tmp/certs/ca.pem --tls-server-name localhost"
  systems=("raw|$bin/raw_bench||" "stream@plain|$bin/occams_bench||" "api@plain|$bin/occams_bench|--api|"
           "stream@tls|$bin/occams_bench|$tls_client|$tls_server" "api@tls|$bin/occams_bench|--api $tls_client|$tls_server")
fi
if [[ ${#bin_dirs[@]} -gt 0 ]]; then
  systems=("raw|$bin/raw_bench|")
  for i in "${!bin_dirs[@]}"; do
    # A build whose raw_bench differs from the first's runs it too (an old ceiling beside the new).
    [[ $i -gt 0 ]] && ! cmp -s "$bin/raw_bench" "${bin_dirs[$i]}/raw_bench" && systems+=("raw@${bin_labels[$i]}|${bin_dirs[$i]}/raw_bench|")
    systems+=("stream@${bin_labels[$i]}|${bin_dirs[$i]}/occams_bench||" "api@${bin_labels[$i]}|${bin_dirs[$i]}/occams_bench|--api|")
    [[ $pool -eq 1 ]] && systems+=("pool@${bin_labels[$i]}|${bin_dirs[$i]}/occams_bench|--pool|")
    [[ $failover -eq 1 ]] && systems+=("failover@${bin_labels[$i]}|${bin_dirs[$i]}/occams_bench|--failover|")
  done
else
  [[ $pool -eq 1 ]] && systems+=("pool|$bin/occams_bench|--pool|")
  [[ $failover -eq 1 ]] && systems+=("failover|$bin/occams_bench|--failover|")
fi

if [[ $metrics -eq 1 ]]; then  # each system off, then on
  paired=()
  for s in "${systems[@]}"; do
    IFS='|' read -r label exe extra server_extra <<<"$s"
    if [[ $label == raw* ]]; then paired+=("$s"); continue; fi
    paired+=("$label@off|$exe|$extra|$server_extra"
             "$label@metrics|$exe|$extra --metrics 127.0.0.1:0|$server_extra --metrics 127.0.0.1:0")
  done
  systems=("${paired[@]}")
fi

workloads=("W1 1 128 64" "W2 8 32 64" "W3 1 8 262144" "W4 1 1 64")
multicore=1
if [[ -n $only_workloads ]]; then
  chosen=()
  for w in "${workloads[@]}"; do [[ ",$only_workloads," == *",${w%% *},"* ]] && chosen+=("$w"); done
  [[ ",$only_workloads," == *",MC,"* ]] || multicore=0
  [[ ${#chosen[@]} -gt 0 || $multicore -eq 1 ]] || { echo "run.sh: --workloads: none of W1-W4, MC in '$only_workloads'" >&2; exit 2; }
  workloads=("${chosen[@]}")
fi
lifetime=$(python3 -c "print(int($duration + $warmup + 60))")
failures=0

# One server/client pair; appends the client's JSON line to the results. With a 10th argument
# T > 1 the server and the client each run T threads and neither side is pinned (they share
# every CPU).
run_pair() {
  local label=$1 exe=$2 extra=$3 server_extra=$4 name=$5 conns=$6 inflight=$7 payload=$8 rep=$9 threads=${10:-1}
  local port ps=("${pin_server[@]}") pc=("${pin_client[@]}") client_threads=()
  [[ $threads -gt 1 ]] && { ps=(); pc=(); client_threads=(--threads "$threads"); }
  port=$(free_port) || return 1
  # shellcheck disable=SC2086 # $server_extra is empty or flags without spaces
  "${ps[@]}" "$exe" server --port "$port" --threads "$threads" --lifetime "$lifetime" $server_extra >"$tmp/server.out" 2>"$tmp/server.err" &
  server_pid=$!
  # A pinned process may wait long for its CPU on a busy machine: allow 30 s to start.
  for _ in $(seq 600); do
    grep -q "listening on" "$tmp/server.out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  if ! grep -q "listening on" "$tmp/server.out"; then
    echo "run.sh: $label server did not start: $(cat "$tmp/server.err")" >&2
    stop_server 5
    return 1
  fi
  # shellcheck disable=SC2086 # $extra is empty or flags without spaces
  "${pc[@]}" "$exe" client --port "$port" --connections "$conns" --inflight "$inflight" \
    --payload "$payload" --duration "$duration" --warmup "$warmup" --workload "$name" \
    --server-pid "$server_pid" "${client_threads[@]}" $extra >"$tmp/client.out" 2>"$tmp/client.err"
  local rc=$?
  stop_server 5
  if [[ $rc -ne 0 ]]; then
    echo "run.sh: $name $label run $rep failed (exit $rc): $(tail -n 3 "$tmp/client.err")" >&2
    return 1
  fi
  local line
  line=$(head -n 1 "$tmp/client.out")
  echo "$line" >>"$results"
  printf '%s\t%s\n' "$label" "$line" >>"$labels"
  echo "run.sh: $name $label run $rep: $line" >&2
}

for w in "${workloads[@]}"; do
  read -r name conns inflight payload <<<"$w"
  for rep in $(seq "$runs"); do
    for s in "${systems[@]}"; do
      IFS='|' read -r label exe extra server_extra <<<"$s"
      run_pair "$label" "$exe" "$extra" "$server_extra" "$name" "$conns" "$inflight" "$payload" "$rep" \
        || failures=$((failures + 1))
    done
  done
done

# The multi-core row: T = 1 then T = 2 (this machine has 2 CPUs; on a larger one, T = cores).
if [[ $multicore -eq 1 ]]; then
  for rep in $(seq "$runs"); do
    for t in 1 2; do
      for s in "${systems[@]}"; do
        IFS='|' read -r label exe extra <<<"$s"
        [[ -n $extra && $extra != --pool && $extra != --failover ]] && continue  # raw, stream and pools only
        run_pair "$label" "$exe" "$extra" "" "W2x16/T$t" 16 32 64 "$rep" "$t" || failures=$((failures + 1))
      done
    done
  done
fi

echo
echo "duration ${duration} s, warm-up ${warmup} s, $runs runs per cell (medians); $(nproc) CPUs; $(date -u '+%Y-%m-%d %H:%M UTC')"
for i in "${!bin_dirs[@]}"; do echo "  ${bin_labels[$i]}: ${bin_dirs[$i]}"; done
python3 "$root/benchmarks/table.py" "$labels"
echo "JSON lines: $results"
[[ $failures -eq 0 ]] || { echo "run.sh: $failures runs failed" >&2; exit 1; }
