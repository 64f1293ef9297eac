#!/usr/bin/env bash
# The main job: installs what is missing, builds the release preset, then shows what the
# library does (the calculator: typed services called over a Unix socket) and how fast it is
# (a short run of the benchmark: W1-W4 for the raw socket ceiling, the stream layer and the
# API layer, each pair twice, medians and ratios to the ceiling).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target calculator_server calculator_client occams occams_bench raw_bench
echo
echo "== what it does: calculator_client calls calculator_server (typed services, one connection)"
bash examples/run_pair.sh build/release/examples/calculator_server build/release/examples/calculator_client \
  --calls 100000 --workers 64
echo
echo "== by hand: the occams tool calls calculator_server (docs/cli.md)"
bash examples/occams_demo.sh build/release/tools/occams build/release/examples/calculator_server
echo
echo "== how fast: benchmarks/run.sh --quick (1 s per run; see benchmarks/README.md for the full run)"
BUILD_JOBS="$(nproc)" bash benchmarks/run.sh --quick
