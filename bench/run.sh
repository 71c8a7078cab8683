#!/usr/bin/env bash
# Storage benchmark with its baselines, measured in the same run on the same file system:
#   - fio buffered sequential write bandwidth (page cache, like fsync=none)
#   - memory copy bandwidth
# then bench_storage, and the ratios the foundation issue sets targets for.
# Usage: bench/run.sh [DIR]   (default: a fresh directory under ./build/bench-data)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/bench_storage
[ -x "$BIN" ] || { echo "build first: make release" >&2; exit 1; }
DIR=${1:-build/bench-data}
rm -rf "$DIR"; mkdir -p "$DIR"
OUT=$(mktemp)
trap 'rm -rf "$DIR" "$OUT"' EXIT

echo "== baselines"
if command -v fio >/dev/null; then
  fio --name=seqwrite --directory="$DIR" --rw=write --bs=1M --size=1G --ioengine=psync \
      --end_fsync=0 --output-format=terse --terse-version=3 >"$OUT.fio" 2>/dev/null
  # terse v3: field 48 is write bandwidth in KiB/s
  FIO_MBS=$(awk -F';' '{printf "%.1f", $48 * 1024 / 1e6}' "$OUT.fio")
  rm -f "$DIR"/seqwrite* "$OUT.fio"
else
  FIO_MBS=$(dd if=/dev/zero of="$DIR/dd" bs=1M count=1024 2>&1 | awk '/copied/ {print $(NF-1)}')
  rm -f "$DIR/dd"
fi
MEMCPY=$("$BIN" --memcpy | awk '{print $2}')
echo "fio buffered sequential write: $FIO_MBS MB/s"
echo "memcpy: $MEMCPY MB/s"

echo "== tidings (each append case ${BENCH_SECONDS:-2} s)"
printf '%-7s %6s %6s %-13s %8s %12s %10s\n' case size batch policy threads events/s MB/s
"$BIN" "$DIR/data" | tee "$OUT" | awk '$1 == "append" {
  printf "%-7s %6s %6s %-13s %8s %12s %10s\n", $1, $2, $3, $4, $5, $6, $7 }'
awk '$1 == "read" { printf "read: %s events/s, %s MB/s\n", $2, $3 }
     $1 == "reopen" { printf "reopen of a %.0f MB partition: %s s\n", $2 / 1e6, $3 }' "$OUT"

echo "== ratios"
awk -v fio="$FIO_MBS" -v mc="$MEMCPY" '
  $1 == "append" && $2 == 1024 && $3 == 100 && $4 == "none" && $5 == 1 { none_mbs = $7 }
  $1 == "append" && $2 == 100 && $3 == 1 && $4 == "always" && $5 == 1 { a1 = $6 }
  $1 == "append" && $2 == 100 && $3 == 1 && $4 == "always" && $5 == 16 { a16 = $6 }
  $1 == "read" { read_mbs = $3 }
  $1 == "reopen" { reopen = $3 }
  END {
    printf "(a) none, 1 KiB x 100, 1 producer: %.1f MB/s = %.2f x fio buffered write (target >= 0.70)\n", none_mbs, none_mbs / fio
    printf "(b) always, 100 B x 1: 16 producers / 1 producer = %.1f x (target >= 10)\n", a16 / a1
    printf "(c) reopen: %s s (target < 1 s)\n", reopen
    printf "    read: %.1f MB/s = %.3f x memcpy\n", read_mbs, read_mbs / mc
  }' "$OUT"
