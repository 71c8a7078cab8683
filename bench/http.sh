#!/usr/bin/env bash
# HTTP benchmark: the tidings command against a running broker (REST produce, paged REST reads,
# and a live subscription over Server-Sent Events) next to its baseline measured in the same run
# on the same broker and the same events: kcat (librdkafka) producing and consuming over Kafka.
# Usage: bench/http.sh [DIR]   (default: a fresh directory under ./build/bench-http)
# BENCH_EVENTS (200000) sets the number of events, BENCH_VALUE (100) their size in bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/tidings
[ -x "$BIN" ] || { echo "build first: make release" >&2; exit 1; }
command -v kcat >/dev/null || { echo "kcat is needed (scripts/install-deps.sh)" >&2; exit 1; }
DIR=${1:-build/bench-http}
N=${BENCH_EVENTS:-200000}
SIZE=${BENCH_VALUE:-100}
. bench/broker.sh
start_broker "$DIR"

# The events: N lines of SIZE bytes (a counter, then filler).
/usr/bin/python3 -c "
import sys
n, size = int(sys.argv[1]), int(sys.argv[2])
with open(sys.argv[3], 'w') as f:
    for i in range(n):
        f.write(('%010d ' % i).ljust(size, 'x') + '\n')
" "$N" "$SIZE" "$DIR/events.txt"

now() { date +%s.%N; }
rate() { /usr/bin/python3 -c "import sys; print('%.0f' % (int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2]))))" "$@"; }

for t in via-kafka via-http; do
  "$BIN" topic create "$t" --partitions 4 -c fsync=interval:1000 >/dev/null
done

echo "== produce $N events of $SIZE bytes (4 partitions, fsync=interval:1000)"
T0=$(now)
kcat -b "$KAFKA" -P -t via-kafka -X linger.ms=5 <"$DIR/events.txt"
T1=$(now)
KP=$(rate "$N" "$T0" "$T1")
echo "kcat (Kafka, librdkafka):            $KP events/s"
T0=$(now)
"$BIN" produce via-http --file "$DIR/events.txt" --no-progress
T1=$(now)
HP=$(rate "$N" "$T0" "$T1")
echo "tidings produce --server (HTTP):     $HP events/s  = $(ratio "$HP" "$KP")x kcat"

echo "== consume the $N events from the page cache"
T0=$(now)
GOT=$(kcat -b "$KAFKA" -C -t via-kafka -o beginning -e -q | wc -l)
T1=$(now)
KC=$(rate "$GOT" "$T0" "$T1")
echo "kcat -C (Kafka fetch):               $KC events/s ($GOT events)"
T0=$(now)
GOT=$("$BIN" consume via-http --from-beginning | wc -l)
T1=$(now)
HC=$(rate "$GOT" "$T0" "$T1")
echo "tidings consume --server (REST):     $HC events/s = $(ratio "$HC" "$KC")x kcat ($GOT events)"
T0=$(now)
GOT=$("$BIN" consume via-http --follow --from-beginning --max "$N" | wc -l)
T1=$(now)
HS=$(rate "$GOT" "$T0" "$T1")
echo "tidings consume --follow (SSE):      $HS events/s = $(ratio "$HS" "$KC")x kcat ($GOT events)"
