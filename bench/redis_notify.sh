#!/usr/bin/env bash
# Keyspace notifications' cost on the Kafka produce path (docs/redis.md#keyspace-notifications):
# a fresh `tidings serve` (release build) with the Kafka, HTTP and Redis listeners, and
# bench_kafka producing 100-byte events (acks=1, 4 partitions, fsync=interval:1000) with
#   off      notify-keyspace-events empty (the default)       } twice each, alternated
#   idle     KEA, nobody subscribed                           }
#   sub      KEA and one pattern subscriber (__key*__:*) reading everything
# then how many notifications the subscriber got and how many the broker dropped.
# Usage: bench/redis_notify.sh [DIR]; BENCH_SECONDS (5) sets each case's length.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/tidings
LOAD=build/release/bench_kafka
[ -x "$BIN" ] && [ -x "$LOAD" ] || { echo "build first: make release (needs librdkafka-dev)" >&2; exit 1; }
DIR=${1:-build/bench-redis-notify}
SECS=${BENCH_SECONDS:-5}
rm -rf "$DIR"; mkdir -p "$DIR"
BROKER=""
SUB=""
cleanup() {
  [ -n "$SUB" ] && kill "$SUB" 2>/dev/null || true
  [ -n "$BROKER" ] && kill "$BROKER" 2>/dev/null && wait "$BROKER" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
"$BIN" serve --data "$DIR/data" --kafka 127.0.0.1:0 --http 127.0.0.1:0 --redis 127.0.0.1:0 \
  --log-level warn >"$DIR/serve.out" 2>"$DIR/serve.log" &
BROKER=$!
for _ in $(seq 100); do
  grep -q '^ready' "$DIR/serve.out" 2>/dev/null && break
  sleep 0.1
done
K=$(awk '/^kafka: listening on/ {print $4}' "$DIR/serve.out")
H=$(awk '/^http: listening on/ {print $4}' "$DIR/serve.out")
R=$(awk '/^redis: listening on/ {print $4}' "$DIR/serve.out" | sed 's/.*://')
[ -n "$K" ] && [ -n "$R" ] || { echo "the broker did not start" >&2; cat "$DIR/serve.log" >&2; exit 1; }
cli() { redis-cli -p "$R" "$@" >/dev/null; }
"$LOAD" "$K" create t 4 fsync=interval:1000 >/dev/null
echo "-- produce 100 B acks=1 (case events/s MB/s events)"
# Alternated, since a run is slower than the one before it as the log grows.
for _ in 1 2; do
  cli CONFIG SET notify-keyspace-events ""
  "$LOAD" "$K" produce t 100 1 "$SECS" | sed 's/^produce/off  /'
  cli CONFIG SET notify-keyspace-events KEA
  "$LOAD" "$K" produce t 100 1 "$SECS" | sed 's/^produce/idle /'
done
# The subscriber counts the messages it reads (each notification is two: keyspace, keyevent).
/usr/bin/python3 - "$R" "$DIR/count" <<'PY' &
import socket, sys, signal
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"*2\r\n$10\r\nPSUBSCRIBE\r\n$10\r\n__key*__:*\r\n")
n = 0
def done(*_):
    open(sys.argv[2], "w").write(str(n))
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
pat, tail = b"$8\r\npmessage\r\n", b""
while True:
    chunk = s.recv(1 << 20)
    if not chunk:
        done()
    buf = tail + chunk
    n += buf.count(pat)
    tail = buf[-(len(pat) - 1):]
PY
SUB=$!
sleep 0.5
"$LOAD" "$K" produce t 100 1 "$SECS" | sed 's/^produce/sub  /'
sleep 2
kill "$SUB"; wait "$SUB" 2>/dev/null || true
SUB=""
echo "subscriber read $(cat "$DIR/count") messages (two per event)"
curl -s "http://$H/metrics" | grep '^tidings_redis_notifications_dropped_total' ||
  echo "tidings_redis_notifications_dropped_total 0"
