#!/usr/bin/env bash
# Queue benchmark (issue 6): queue groups receiving and acking the events of a 16-partition
# topic, with 1, 4 and 16 consumers, and with one retry per event, against the baseline
# measured in the same run on the same broker and the same events: a Kafka consumer group
# (librdkafka, bench_kafka consume) reading them.
#   - over HTTP: bench_queue threads, each on its own connection (receive + one ack per batch);
#   - embedded: the same loops through td_queue_* in one process, on an engine of its own
#     with the same events: the queue engine's cost without HTTP and JSON.
# Usage: bench/queue.sh [DIR]; BENCH_EVENTS (1000000), BENCH_BATCH (1000 events per receive).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/tidings
Q=build/release/bench_queue
K=build/release/bench_kafka
[ -x "$BIN" ] && [ -x "$Q" ] && [ -x "$K" ] || { echo "build first: make release (needs librdkafka-dev)" >&2; exit 1; }
DIR=${1:-build/bench-queue}
N=${BENCH_EVENTS:-1000000}
BATCH=${BENCH_BATCH:-1000}
. bench/broker.sh
start_broker "$DIR"

/usr/bin/python3 -c "
import sys
with open(sys.argv[2], 'w') as f:
    for i in range(int(sys.argv[1])):
        f.write(('%010d ' % i).ljust(100, 'x') + '\n')
" "$N" "$DIR/events.txt"
"$BIN" topic create q --partitions 16 -c fsync=interval:1000 >/dev/null
"$BIN" produce q --file "$DIR/events.txt" --no-progress

echo "== baseline: a Kafka consumer group reads the $N events of 100 bytes (16 partitions)"
KC=$("$K" "$KAFKA" consume q | awk '{print $2}')
echo "kafka consumer group: $KC events/s"

policy=(-c max.in.flight=20000 -c max.in.flight.per.consumer=$BATCH -c backoff.initial.ms=0)
echo "== queue groups over HTTP (receive $BATCH + ack per batch)"
for c in 1 4 16; do
  "$BIN" queue create "h$c" --topic q "${policy[@]}" >/dev/null
  R=$("$Q" "$TIDINGS_SERVER" "h$c" "$c" "$BATCH" "$N" | awk '{print $3}')
  echo "http, $c consumers: $R events/s = $(ratio "$R" "$KC")x the consumer group"
done
"$BIN" queue create hr --topic q "${policy[@]}" >/dev/null
R=$("$Q" "$TIDINGS_SERVER" hr 16 "$BATCH" "$N" fail | awk '{print $3}')
echo "http, 16 consumers, every event failing once: $R events/s = $(ratio "$R" "$KC")x"

echo "== queue groups embedded (td_queue_*, same events, same batches)"
for c in 1 4 16; do
  rm -rf "$DIR/embedded"
  R=$("$Q" embedded "$DIR/embedded" "$c" "$BATCH" "$N" 2>/dev/null | awk '{print $3}')
  echo "embedded, $c consumers: $R events/s = $(ratio "$R" "$KC")x the consumer group"
done
rm -rf "$DIR/embedded"
R=$("$Q" embedded "$DIR/embedded" 16 "$BATCH" "$N" fail 2>/dev/null | awk '{print $3}')
echo "embedded, 16 consumers, every event failing once: $R events/s = $(ratio "$R" "$KC")x"
