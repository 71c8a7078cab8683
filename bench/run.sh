#!/usr/bin/env bash
# Storage benchmark with its baselines, measured in the same run on the same file system.
#
# 1. The two targeted cases, each paired with the fio job that does the same thing without
#    tidings, in BENCH_ROUNDS (5) interleaved rounds; the ratios use the medians, so that a
#    swing of this virtual machine's disk or page cache hits both sides of a ratio alike:
#    (a) fsync=none, 1 KiB x 100 per call, 1 producer, against fio's buffered sequential
#        write of the same 100 KiB blocks to a fresh, growing file for the same time;
#    (b) fsync=always, 100 B x 1 per call, 16 producers / 1 producer, next to two baselines:
#        fio's "group commit ceiling", 169-byte appends (the size of that record batch) with
#        an fdatasync after every 16 writes against one after every write (one thread, nobody
#        waits); and the same leader-based group commit as tidings' with nothing else around
#        it (bench_storage --bare-commit: 16 threads against 1).
# 2. Every append case once, sequential read, reopen, and the memory copy bandwidth.
#
# Usage: bench/run.sh [DIR]   (default: a fresh directory under ./build/bench-data)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/bench_storage
[ -x "$BIN" ] || { echo "build first: make release" >&2; exit 1; }
command -v fio >/dev/null || { echo "fio is missing: scripts/install-deps.sh" >&2; exit 1; }
DIR=${1:-build/bench-data}
SECS=${BENCH_SECONDS:-2}
MS=$(awk -v s="$SECS" 'BEGIN {printf "%d", s * 1000}') # fio reads a bare "0.5" as 0: unbounded
ROUNDS=${BENCH_ROUNDS:-5}
rm -rf "$DIR"; mkdir -p "$DIR"
OUT=$(mktemp)
trap 'rm -rf "$DIR" "$OUT"' EXIT

# fio_job FIELD ARGS...: runs one fio job on a fresh file in $DIR for $SECS seconds and prints
# terse field FIELD (48: write KiB/s, 49: write IOPS).
fio_job() {
  local field=$1; shift
  rm -rf "$DIR"/fio*; sync
  fio --name=fio --directory="$DIR" --rw=write --ioengine=psync --fallocate=none \
      --size=16G --runtime="${MS}ms" --time_based "$@" \
      --output-format=terse --terse-version=3 2>/dev/null | awk -F';' -v f="$field" '{print $f}'
  rm -rf "$DIR"/fio*
}

# tidings CASES: runs those bench_storage cases on a fresh data directory.
tidings() {
  rm -rf "$DIR/data"; sync
  BENCH_CASES="$1" "$BIN" "$DIR/data"
  rm -rf "$DIR/data"
}

# bare THREADS: the bare group commit's events/s with that many threads.
bare() {
  rm -rf "$DIR"/bare*; sync
  "$BIN" --bare-commit "$1" "$DIR/bare.dat" | awk '{print $3}'
}

median() { sort -g | awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "== (a) and (b), $ROUNDS interleaved rounds of $SECS s per job"
printf '%-5s %9s %9s %6s | %6s %6s %7s | %6s %6s %6s | %6s %6s %6s\n' round fio_MB/s \
  tid_MB/s a fio_1 fio_16 ceiling bare_1 bare16 bare tid_1 tid_16 b
for r in $(seq "$ROUNDS"); do
  fa=$(fio_job 48 --bs=100k | awk '{printf "%.1f", $1 * 1024 / 1e6}')
  ta=$(tidings "1024 100 none 1" | awk '$1 == "append" {print $7}')
  f1=$(fio_job 49 --bs=169 --fdatasync=1)
  f16=$(fio_job 49 --bs=169 --fdatasync=16)
  b1=$(bare 1)
  b16=$(bare 16)
  tb=$(tidings "100 1 always 1,100 1 always 16" | awk '$1 == "append" {printf "%s ", $6}')
  set -- $tb
  echo "$r $fa $ta $f1 $f16 $1 $2 $b1 $b16" >>"$OUT.rounds"
  awk -v r="$r" -v fa="$fa" -v ta="$ta" -v f1="$f1" -v f16="$f16" -v t1="$1" -v t16="$2" \
      -v b1="$b1" -v b16="$b16" 'BEGIN {
    printf "%-5s %9.0f %9.0f %6.2f | %6.0f %6.0f %6.1fx | %6.0f %6.0f %5.1fx | %6.0f %6.0f %5.1fx\n",
      r, fa, ta, ta / fa, f1, f16, f16 / f1, b1, b16, b16 / b1, t1, t16, t16 / t1 }'
done

echo "== every case once (${SECS} s each)"
printf '%-7s %6s %6s %-13s %8s %12s %10s\n' case size batch policy threads events/s MB/s
"$BIN" "$DIR/data" | tee "$OUT" | awk '$1 == "append" {
  printf "%-7s %6s %6s %-13s %8s %12s %10s\n", $1, $2, $3, $4, $5, $6, $7 }'
rm -rf "$DIR/data"
MEMCPY=$("$BIN" --memcpy | awk '{print $2}')
awk -v mc="$MEMCPY" '
  $1 == "read" { printf "read: %s events/s, %s MB/s = %.3f x memcpy (%s MB/s)\n", $2, $3, $3 / mc, mc }
  $1 == "reopen" { printf "reopen of a %.0f MB partition: %s s\n", $2 / 1e6, $3 }' "$OUT"

echo "== ratios (medians of the $ROUNDS rounds)"
FA=$(awk '{print $2}' "$OUT.rounds" | median)
TA=$(awk '{print $3}' "$OUT.rounds" | median)
CEIL=$(awk '{print $5 / $4}' "$OUT.rounds" | median)
B=$(awk '{print $7 / $6}' "$OUT.rounds" | median)
T1=$(awk '{print $6}' "$OUT.rounds" | median)
T16=$(awk '{print $7}' "$OUT.rounds" | median)
BARE=$(awk '{print $9 / $8}' "$OUT.rounds" | median)
VSBARE=$(awk '{print $7 / $9}' "$OUT.rounds" | median)
rm -f "$OUT.rounds"
awk -v fa="$FA" -v ta="$TA" -v ceil="$CEIL" -v b="$B" -v t1="$T1" -v t16="$T16" \
    -v bare="$BARE" -v vsbare="$VSBARE" 'BEGIN {
  printf "(a) none, 1 KiB x 100, 1 producer: %.0f MB/s = %.2f x fio buffered write of 100 KiB blocks (%.0f MB/s) (target >= 0.70)\n", ta, ta / fa, fa
  printf "(b) always, 100 B x 1: 16 producers / 1 producer = %.1f x (%.0f / %.0f events/s) (target >= 10);\n", b, t16, t1
  printf "    fio on this disk, one thread, fdatasync every 16 writes / every write = %.1f x (the ceiling of group commit)\n", ceil
  printf "    bare group commit, 16 threads / 1 thread = %.1f x; tidings with 16 producers = %.2f x the bare one\n", bare, vsbare
}'
awk '$1 == "reopen" { printf "(c) reopen: %s s (target < 1 s)\n", $3 }' "$OUT"
