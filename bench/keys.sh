#!/usr/bin/env bash
# The key index (key.index) against its baselines, in the same run (bench/bench_keys.c says what
# each figure is): reading one entity's 100 events by key vs scanning its partition (target:
# >= 100x at 10 M events), and append throughput with the index on vs off (target: <= 10 %).
#
# Usage: bench/keys.sh [DIR]   (default: a fresh directory under ./build/bench-keys)
# Environment: BENCH_KEYS_EVENTS (10000000), BENCH_KEYS_ENTITIES (100000), BENCH_KEYS_APPENDS
# (2000000), BENCH_KEYS_BATCH (100), BENCH_KEYS_FSYNC (none), BENCH_ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/bench_keys
[ -x "$BIN" ] || { echo "build first: make release" >&2; exit 1; }
DIR=${1:-build/bench-keys}
ROUNDS=${BENCH_ROUNDS:-3}
trap 'rm -rf "$DIR"' EXIT
for r in $(seq 1 "$ROUNDS"); do
    rm -rf "$DIR"
    echo "round $r"
    "$BIN" "$DIR"
done
