#!/usr/bin/env bash
# Log compaction throughput against a sequential read of the same segments, in the same run
# (bench/bench_cleaner.c says what each figure is). The issue's target: ratio >= 0.5.
#
# Usage: bench/cleaner.sh [DIR]   (default: a fresh directory under ./build/bench-cleaner)
# Environment: BENCH_CLEANER_MB (256), BENCH_CLEANER_KEYS (100000), BENCH_ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/bench_cleaner
[ -x "$BIN" ] || { echo "build first: make release" >&2; exit 1; }
DIR=${1:-build/bench-cleaner}
ROUNDS=${BENCH_ROUNDS:-3}
trap 'rm -rf "$DIR"' EXIT
for r in $(seq 1 "$ROUNDS"); do
    rm -rf "$DIR"
    echo "round $r"
    "$BIN" "$DIR"
done
