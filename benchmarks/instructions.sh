#!/usr/bin/env bash
# Instructions per call under callgrind: a fixed number of calls (occams_bench client --calls),
# client and server each under `valgrind --tool=callgrind`, for the W2 and W1 shapes, for one
# build or several side by side. Instruction counts do not depend on this machine's timing
# noise, so they judge a change where run.sh's timings cannot.
#
#   benchmarks/instructions.sh [--bin-dir [LABEL=]DIR]... [--calls C] [--workloads W2,W1]
#                              [--systems stream,api] [--runs R] [--out DIR]
#
# --bin-dir: a directory holding occams_bench (and raw_bench for the raw system); repeat it to
#   compare builds (the first is the reference of the ratio columns). LABEL names its column
#   (default: A, B, ...). Default: build/release/benchmarks of this checkout (not rebuilt).
# --calls C: calls per run (200000). --workloads: any of W1 (1 x 128), W2 (8 x 32), W4 (1 x 1),
#   64-byte payloads (W2,W1). --systems: any of stream, api, raw (stream,api).
# --runs R: runs per cell, the median is shown (1). --out DIR: keep every callgrind file, log and
#   a results.tsv there (default: a temporary directory, removed at the end).
# Figures: the process's total Ir (everything: start-up, connect, ping, the calls, close, exit)
# divided by C, so they include setup (about 1-2% at 200000 calls). The server's count is its
# whole life (start-up to SIGTERM) over the client's C calls. Server on CPU 0, client on CPU 1
# (as run.sh). Every process this script starts is waited for; only the server PIDs it started
# are signalled (SIGTERM, so that callgrind writes its file; SIGKILL after 120 s).
set -u

prog=instructions.sh
# shellcheck source=benchmarks/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh" || exit 1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
calls=200000
workloads=W2,W1
systems=stream,api
runs=1
out=
usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --bin-dir) add_bin_dir "${2:?--bin-dir needs a value}"; shift 2 ;;
    --calls) calls=${2:?--calls needs a value}; shift 2 ;;
    --workloads) workloads=${2:?--workloads needs a value}; shift 2 ;;
    --systems) systems=${2:?--systems needs a value}; shift 2 ;;
    --runs) runs=${2:?--runs needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "instructions.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if ! command -v valgrind >/dev/null; then
  echo "instructions.sh: valgrind is missing: it needs valgrind's callgrind (Debian: apt-get install valgrind)" >&2
  exit 2
fi
[[ $calls =~ ^[1-9][0-9]*$ ]] || { echo "instructions.sh: --calls must be a positive integer" >&2; exit 2; }
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "instructions.sh: --runs must be a positive integer" >&2; exit 2; }
[[ ${#bin_dirs[@]} -gt 0 ]] || add_bin_dir "$root/build/release/benchmarks"
check_bin_dirs occams_bench
for i in "${!bin_dirs[@]}"; do
  if ! "${bin_dirs[$i]}/occams_bench" --help | grep -q -- --calls; then
    echo "instructions.sh: ${bin_dirs[$i]}/occams_bench has no --calls (build it with benchmarks/ of a newer commit)" >&2
    exit 2
  fi
done

IFS=, read -r -a wl <<<"$workloads"
IFS=, read -r -a sl <<<"$systems"
for w in "${wl[@]}"; do
  case $w in W1|W2|W4) ;; *) echo "instructions.sh: unknown workload '$w' (W1, W2 or W4)" >&2; exit 2 ;; esac
done
for s in "${sl[@]}"; do
  case $s in stream|api|raw) ;; *) echo "instructions.sh: unknown system '$s' (stream, api or raw)" >&2; exit 2 ;; esac
done

if [[ -n $out ]]; then
  mkdir -p "$out" || exit 1
  work=$(cd "$out" && pwd)
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/occams-instr.XXXXXX") || exit 1
fi
results=$work/results.tsv
printf 'label\tbin_dir\tworkload\tsystem\trun\tcalls\tclient_ir\tserver_ir\n' >"$results"

# stop_server (bench_lib.sh): SIGTERM, on which callgrind writes its file on the way out; a
# server still there after 120 s is killed (and its count is lost).
cleanup() { stop_server 120; [[ -n $out ]] || rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# The total Ir that callgrind wrote into file $1.
total_ir() { sed -n -E 's/^(summary|totals): *([0-9]+).*/\2/p' "$1" | head -n 1; }

# One run: prints "client_ir server_ir" (totals, not per call) or fails.
run_one() {
  local bin=$1 system=$2 conns=$3 inflight=$4 tag=$5
  local exe=$bin/occams_bench extra=()
  [[ $system == raw ]] && exe=$bin/raw_bench
  [[ $system == api ]] && extra=(--api)
  local cg=(valgrind --tool=callgrind --trace-children=no)
  "${pin_server[@]}" "${cg[@]}" --callgrind-out-file="$work/$tag.server.cg" --log-file="$work/$tag.server.vg" \
    "$exe" server --port 0 --lifetime 3600 >"$work/$tag.server.out" 2>"$work/$tag.server.err" &
  server_pid=$!
  local port=
  for _ in $(seq 1200); do  # callgrind starts slowly: allow 60 s
    port=$(sed -n -E 's/^listening on .*:([0-9]+)$/\1/p' "$work/$tag.server.out" 2>/dev/null | head -n 1)
    [[ -n $port ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  if [[ -z $port ]]; then
    echo "instructions.sh: $tag: the server did not start: $(tail -n 3 "$work/$tag.server.err")" >&2
    stop_server 120
    return 1
  fi
  timeout 1800 "${pin_client[@]}" "${cg[@]}" --callgrind-out-file="$work/$tag.client.cg" --log-file="$work/$tag.client.vg" \
    "$exe" client --port "$port" --connections "$conns" --inflight "$inflight" --payload 64 --calls "$calls" \
    "${extra[@]}" >"$work/$tag.client.out" 2>"$work/$tag.client.err"
  local rc=$?
  stop_server 120
  if [[ $rc -ne 0 ]]; then
    echo "instructions.sh: $tag: the client failed (exit $rc): $(tail -n 3 "$work/$tag.client.err")" >&2
    return 1
  fi
  local requests
  requests=$(sed -n -E 's/.*"requests":([0-9]+).*/\1/p' "$work/$tag.client.out")
  if [[ $system != raw && $requests != "$calls" ]]; then
    echo "instructions.sh: $tag: the client reports $requests requests, not $calls" >&2
    return 1
  fi
  local c s
  c=$(total_ir "$work/$tag.client.cg")
  s=$(total_ir "$work/$tag.server.cg" 2>/dev/null)
  if [[ -z $c || -z $s ]]; then
    echo "instructions.sh: $tag: no callgrind total (client '${c}', server '${s}'; see $work/$tag.*.vg)" >&2
    return 1
  fi
  echo "$c $s"
}

shape() {
  case $1 in W1) echo "1 128" ;; W2) echo "8 32" ;; W4) echo "1 1" ;; esac
}

failures=0
for w in "${wl[@]}"; do
  read -r conns inflight <<<"$(shape "$w")"
  for s in "${sl[@]}"; do
    for i in "${!bin_dirs[@]}"; do
      for r in $(seq "$runs"); do
        tag="${bin_labels[$i]}.$w.$s.$r"
        echo "instructions.sh: $w $s ${bin_labels[$i]} run $r ($calls calls, ${conns}x${inflight})" >&2
        if res=$(run_one "${bin_dirs[$i]}" "$s" "$conns" "$inflight" "$tag"); then
          read -r c sv <<<"$res"
          printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${bin_labels[$i]}" "${bin_dirs[$i]}" "$w" "$s" "$r" "$calls" "$c" "$sv" >>"$results"
          echo "instructions.sh:   client $((c / calls)) Ir/call, server $((sv / calls)) Ir/call" >&2
        else
          failures=$((failures + 1))
        fi
      done
    done
  done
done

echo
echo "Instructions (callgrind Ir) per call, $calls calls per run, 64-byte payload, median of $runs run(s);"
echo "each figure is the process's whole count (start-up, connect, calls, close, exit) / calls: setup included."
for i in "${!bin_dirs[@]}"; do echo "  ${bin_labels[$i]}: ${bin_dirs[$i]}"; done
python3 - "$results" "${bin_labels[@]}" <<'EOF'
import csv, statistics, sys
path, labels = sys.argv[1], sys.argv[2:]
cells = {}
order = []
with open(path) as f:
    for row in csv.DictReader(f, delimiter="\t"):
        if row["label"] not in labels:
            continue
        key = (row["workload"], row["system"])
        if key not in order:
            order.append(key)
        cells.setdefault(key + (row["label"],), []).append(row)
def per_call(rows, side):
    return statistics.median(int(r[side + "_ir"]) / int(r["calls"]) for r in rows) if rows else None
head = ["workload", "system", "side"] + labels + [f"{l}/{labels[0]}" for l in labels[1:]]
print("| " + " | ".join(head) + " |")
print("|" + "|".join("---" for _ in head) + "|")
for w, s in order:
    for side in ("client", "server"):
        vals = [per_call(cells.get((w, s, l), []), side) for l in labels]
        cols = [w, s, side] + [f"{v:,.0f}" if v is not None else "-" for v in vals]
        cols += [f"{v / vals[0]:.3f}" if v is not None and vals[0] else "-" for v in vals[1:]]
        print("| " + " | ".join(cols) + " |")
EOF
[[ -n $out ]] && echo "callgrind files and results.tsv: $work"
[[ $failures -eq 0 ]] || { echo "instructions.sh: $failures runs failed" >&2; exit 1; }
