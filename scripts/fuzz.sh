#!/usr/bin/env bash
# Builds the libFuzzer targets with the `fuzz` preset (clang) and runs each for a bounded time.
# Usage: scripts/fuzz.sh [seconds per fuzzer, default 60]
# Corpora live in build/fuzz/corpus/<fuzzer> (seeded from tests/fuzz/seeds/<fuzzer>.hex) and
# crash inputs in build/fuzz/artifacts. Exits non-zero if any fuzzer finds a problem.
# FUZZ_JOBS sets the build parallelism (default 2).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
jobs="${FUZZ_JOBS:-2}"
fuzzers=(fuzz_frame_reader fuzz_msgpack_decode)

if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 [seconds per fuzzer]" >&2
  exit 2
fi

cd "$root"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target "${fuzzers[@]}" -j "$jobs"

out="$root/build/fuzz"
mkdir -p "$out/artifacts"
status=0
for f in "${fuzzers[@]}"; do
  corpus="$out/corpus/$f"
  mkdir -p "$corpus"
  seeds="$root/tests/fuzz/seeds/$f.hex"
  if [ -f "$seeds" ]; then
    n=0
    while IFS= read -r line; do
      case "$line" in ''|'#'*) continue ;; esac
      n=$((n + 1))
      printf '%s' "$line" | tr -d ' ' | xxd -r -p >"$corpus/seed-$n"
    done <"$seeds"
  fi
  echo "== $f: ${seconds}s" >&2
  if ! "$out/tests/fuzz/$f" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$out/artifacts/$f-" "$corpus" 2>"$out/$f.log"; then
    echo "== $f FAILED: see $out/$f.log and $out/artifacts/" >&2
    tail -n 40 "$out/$f.log" >&2
    status=1
  else
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^Done ' "$out/$f.log" >&2 || true
  fi
done
exit "$status"
