#!/usr/bin/env bash
# The trace index (trace.index) against its baseline, in the same run (bench/bench_traces.c says what
# each figure is): append throughput with the index on vs off, events with a traceparent, and
# the time of one trace's read.
#
# Usage: bench/traces.sh [DIR]   (default: a fresh directory under ./build/bench-traces)
# Environment: BENCH_TRACES_APPENDS (2000000), BENCH_TRACES_BATCH (100), BENCH_TRACES_SAMPLES
# (100), BENCH_ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/bench_traces
[ -x "$BIN" ] || { echo "build first: make release" >&2; exit 1; }
DIR=${1:-build/bench-traces}
ROUNDS=${BENCH_ROUNDS:-3}
trap 'rm -rf "$DIR"' EXIT
for r in $(seq 1 "$ROUNDS"); do
    rm -rf "$DIR"
    echo "round $r"
    "$BIN" "$DIR"
done
