#!/usr/bin/env bash
# Before/after comparison of a change, in one run: the storage, Kafka, Redis and queue
# benchmarks of this checkout and of another one (BEFORE: a checkout of the older code with its
# own `make release` done), run in turns (before, after, after, before, ...), so that a drift of
# the machine (page cache, other load) reaches both sides alike. Each script measures its own
# baselines (fio, iperf3, redis-server) in the same turn, so each turn's figures are also ratios
# against them. Logs go to build/bench-compare/<bench>.<side>.<turn>.log; the summary lines of
# every log are printed at the end.
# Usage: bench/compare.sh BEFORE_DIR [ROUNDS]   (ROUNDS: 1 = before, after; 2 = b, a, a, b)
# BENCH_ONLY="run kafka redis queue" picks the benchmarks (also: schema, where both checkouts
# have the schema registry). Quick settings are used unless set:
# BENCH_SECONDS=2, BENCH_LATENCY_SECONDS=5, BENCH_REQUESTS=200000, BENCH_ROUNDS=3.
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=$(realpath "${1:?usage: bench/compare.sh BEFORE_DIR [ROUNDS]}")
AFTER=$(pwd)
ROUNDS=${2:-2}
ONLY=${BENCH_ONLY:-run kafka redis queue}
export BENCH_SECONDS=${BENCH_SECONDS:-2} BENCH_LATENCY_SECONDS=${BENCH_LATENCY_SECONDS:-5}
export BENCH_REQUESTS=${BENCH_REQUESTS:-200000} BENCH_ROUNDS=${BENCH_ROUNDS:-3}
for d in "$BEFORE" "$AFTER"; do
  [ -x "$d/build/release/tidings" ] || { echo "$d: build first (make release)" >&2; exit 1; }
done
OUT=$AFTER/build/bench-compare
rm -rf "$OUT"; mkdir -p "$OUT"

# one BENCH SIDE TURN: runs the benchmark in that side's checkout (its scripts and its build).
one() {
  local dir=$BEFORE; [ "$2" = after ] && dir=$AFTER
  local log="$OUT/$1.$2.$3.log"
  echo "== $1, $2, turn $3" >&2
  case $1 in
    run|kafka|redis|schema) (cd "$dir" && "bench/$1.sh") >"$log" 2>&1 || echo "(failed: $log)" >&2 ;;
    queue)
      # The queue engine through the embedded API (the same client, this checkout's): 4 and 16
      # consumers, all acked, then every event failing once.
      for c in 4 16; do
        for f in "" fail; do
          rm -rf "$OUT/q"
          "$dir/build/release/bench_queue" embedded "$OUT/q" "$c" 1000 400000 $f 2>/dev/null |
            sed "s/^/embedded c=$c ${f:-ok}: /" >>"$log" || echo "(failed: $log)" >&2
        done
      done
      rm -rf "$OUT/q" ;;
  esac
}

turn=0
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="before after"; else order="after before"; fi
  for side in $order; do
    turn=$((turn + 1))
    for b in $ONLY; do one "$b" "$side" "$turn"; done
  done
done
for f in "$OUT"/*.log; do
  echo "### $(basename "$f" .log)"
  case $f in
    */run.*|*/kafka.*|*/schema.*) sed -n '/== ratios/,$p' "$f" ;;
    *) grep -E 'ops/s|entries/s|^embedded' "$f" || true ;;
  esac
done
