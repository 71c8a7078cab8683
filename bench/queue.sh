#!/usr/bin/env bash
# Queue benchmark (issues 6 and 22): receive + ack of the events of a 16-partition topic, with
# 1, 4 and 16 consumers, in one run against:
#   - tidings over HTTP: queue groups, bench_queue threads on keep-alive connections (receive
#     BATCH with values in base64, one ack of the batch as ranges of ids);
#   - tidings over Redis: a consumer group with a queue policy (XGROUP POLICY) on one stream
#     (a one-partition topic holding the same events), as a Redis user makes a queue:
#     XREADGROUP ... COUNT BATCH, then one XACK of what it gave;
#   - nats-server (Debian's package) with JetStream: a file stream, one replica, the same
#     events, a durable pull consumer shared by the threads (Fetch BATCH, explicit acks);
#   - the baselines of issue 6: a Kafka consumer group reading the events (bench_kafka), the
#     queue engine through the embedded API, and every event failing once over HTTP.
# Each line gives events/s, the client's CPU seconds (getrusage) and the server's (from
# /proc/PID/stat over the run), so that one can see which side was the limit.
# Usage: bench/queue.sh [DIR]; BENCH_EVENTS (1000000), BENCH_BATCH (1000 events per receive),
# BENCH_QUICK=1 skips the baselines of issue 6.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/tidings
Q=build/release/bench_queue
K=build/release/bench_kafka
[ -x "$BIN" ] && [ -x "$Q" ] && [ -x "$K" ] || { echo "build first: make release (needs librdkafka-dev)" >&2; exit 1; }
command -v nats-server >/dev/null && command -v redis-cli >/dev/null ||
  { echo "needs nats-server, libnats-dev and redis-tools: scripts/install-deps.sh --test" >&2; exit 1; }
DIR=$(realpath -m "${1:-build/bench-queue}")
N=${BENCH_EVENTS:-1000000}
BATCH=${BENCH_BATCH:-1000}
. bench/broker.sh
start_broker "$DIR"

# nats-server on an ephemeral port (-p -1), JetStream in DIR/nats; stopped on exit as well.
NATS=""
# (nats-server exits 1 on SIGTERM: `|| true`, or set -e would end the trap before the broker.)
cleanup() {
  for p in "$NATS" "$BROKER"; do
    [ -n "$p" ] && { kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; }
  done
  rm -rf "$DIR"
}
trap cleanup EXIT
nats-server -a 127.0.0.1 -p -1 -js -sd "$DIR/nats" -l "$DIR/nats.log" &
NATS=$!
NATS_ADDR=""
for _ in $(seq 100); do
  NATS_ADDR=$(sed -n 's/.*Listening for client connections on \([0-9.:]*\).*/\1/p' "$DIR/nats.log" 2>/dev/null | head -1 || true)
  [ -n "$NATS_ADDR" ] && grep -q "Server is ready" "$DIR/nats.log" && break
  sleep 0.1
done
[ -n "$NATS_ADDR" ] || { echo "nats-server did not start" >&2; cat "$DIR/nats.log" >&2; exit 1; }

TICK=$(getconf CLK_TCK)
# CPU seconds a process used so far (user + system).
cpu() { awk -v t="$TICK" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"; }
# run PID LABEL CMD...: runs a bench_queue, prints its rate, its CPU and the server's.
run() {
  local pid=$1 label=$2; shift 2
  local c0 out c1
  c0=$(cpu "$pid")
  out=$("$@")
  c1=$(cpu "$pid")
  set -- $out
  R=$3
  echo "$label: $3 events/s in $7 s; CPU: client $6 s, server $(/usr/bin/python3 -c "print('%.2f' % ($c1 - $c0))") s"
}

/usr/bin/python3 -c "
import sys
with open(sys.argv[2], 'w') as f:
    for i in range(int(sys.argv[1])):
        f.write(('%010d ' % i).ljust(100, 'x') + '\n')
" "$N" "$DIR/events.txt"
"$BIN" topic create q --partitions 16 -c fsync=interval:1000 >/dev/null
"$BIN" produce q --file "$DIR/events.txt" --no-progress
"$BIN" topic create qr --partitions 1 -c fsync=interval:1000 >/dev/null
"$BIN" produce qr --file "$DIR/events.txt" --no-progress
"$Q" nats-fill "nats://$NATS_ADDR" Q q "$N"
RHOST=${REDIS%:*}
RPORT=${REDIS##*:}
STREAMS=$(seq -s, -f 'q/%g' 0 15)

echo "== $N events of 100 bytes; receive $BATCH + ack, 1 / 4 / 16 consumers"
declare -A RATE
policy=(-c max.in.flight=20000 -c max.in.flight.per.consumer=$BATCH -c backoff.initial.ms=0)
for c in 1 4 16; do
  "$BIN" queue create "h$c" --topic q "${policy[@]}" >/dev/null
  run "$BROKER" "tidings http, $c consumers" "$Q" "$TIDINGS_SERVER" "h$c" "$c" "$BATCH" "$N"
  RATE[http$c]=$R
  redis-cli -h "$RHOST" -p "$RPORT" XGROUP CREATE qr "r$c" 0 >/dev/null
  redis-cli -h "$RHOST" -p "$RPORT" XGROUP POLICY qr "r$c" ack.timeout.ms 30000 \
    max.deliveries 5 >/dev/null
  run "$BROKER" "tidings redis, $c consumers" "$Q" "redis://$REDIS" qr "r$c" "$c" "$BATCH" "$N"
  RATE[redis$c]=$R
  run "$NATS" "nats jetstream, $c consumers" "$Q" "nats://$NATS_ADDR" Q "$c" "$BATCH" "$N"
  RATE[nats$c]=$R
done
for c in 1 4 16; do
  echo "$c consumers: redis $(ratio "${RATE[redis$c]}" "${RATE[nats$c]}")x nats," \
       "http $(ratio "${RATE[http$c]}" "${RATE[nats$c]}")x nats"
done
echo "targets at 16 consumers: redis >= 2x nats, http >= 1.5x nats"

[ "${BENCH_QUICK:-0}" = 1 ] && exit 0
echo "== the Redis path over the 16 streams of the 16-partition topic (COUNT $BATCH/16 each, the XACKs of a batch pipelined)"
for p in $(seq 0 15); do
  redis-cli -h "$RHOST" -p "$RPORT" XGROUP CREATE "q/$p" r16p 0 >/dev/null
  redis-cli -h "$RHOST" -p "$RPORT" XGROUP POLICY "q/$p" r16p ack.timeout.ms 30000 \
    max.deliveries 5 >/dev/null
done
run "$BROKER" "tidings redis, 16 consumers, 16 streams" "$Q" "redis://$REDIS" "$STREAMS" r16p 16 "$BATCH" "$N"
echo "== tidings over HTTP, 16 consumers, the other value encodings (base64 above)"
for v in string json; do
  "$BIN" queue create "hv$v" --topic q "${policy[@]}" >/dev/null
  BENCH_VALUES=$v run "$BROKER" "tidings http, 16 consumers, values=$v" "$Q" "$TIDINGS_SERVER" "hv$v" 16 "$BATCH" "$N"
done
echo "== baselines (issue 6)"
KC=$("$K" "$KAFKA" consume q | awk '{print $2}')
echo "kafka consumer group: $KC events/s"
"$BIN" queue create hr --topic q "${policy[@]}" >/dev/null
run "$BROKER" "tidings http, 16 consumers, every event failing once" "$Q" "$TIDINGS_SERVER" hr 16 "$BATCH" "$N" fail
for c in 1 4 16; do
  rm -rf "$DIR/embedded"
  R=$("$Q" embedded "$DIR/embedded" "$c" "$BATCH" "$N" 2>/dev/null | awk '{print $3}')
  echo "embedded, $c consumers: $R events/s = $(ratio "$R" "$KC")x the consumer group"
done
rm -rf "$DIR/embedded"
R=$("$Q" embedded "$DIR/embedded" 16 "$BATCH" "$N" fail 2>/dev/null | awk '{print $3}')
echo "embedded, 16 consumers, every event failing once: $R events/s = $(ratio "$R" "$KC")x"
