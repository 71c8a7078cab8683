#!/usr/bin/env bash
# Queue acks on the state topic __queue_state (issue 21): the ack rate of a queue group over
# HTTP (bench_queue: 4 consumers, receive 100 + one ack of the 100, default durability), for a
# broker built before the change (BEFORE, e.g. a release build of an older checkout) and this
# one, in the same run on the same machine:
#   - small: a group with at most 400 events in flight;
#   - large: ten groups on the same topic each holding 99 000 events in flight (about 1 M in
#     all, the first group's 99 000 in the partitions being acked), then the first group acked
#     as above. A state write per ack that does not depend on what is pending gives the same
#     rate; a rewrite of a partition's state per save does not.
# Usage: bench/queue_state.sh BEFORE_BIN [DIR]; BENCH_EVENTS (50000 acked per case).
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${1:?usage: bench/queue_state.sh BEFORE_BIN [DIR]}
AFTER=build/release/tidings
Q=build/release/bench_queue
[ -x "$AFTER" ] && [ -x "$Q" ] && [ -x "$BEFORE" ] || { echo "build first: make release" >&2; exit 1; }
DIR=${2:-build/bench-queue-state}
N=${BENCH_EVENTS:-50000}
HOLD=99000
GROUPS_HELD=10
BROKER=""
trap '[ -n "$BROKER" ] && kill "$BROKER" 2>/dev/null; rm -rf "'"$DIR"'"' EXIT

start() { # BIN: a fresh broker on DIR/data, HTTP address in HTTP
  rm -rf "$DIR"; mkdir -p "$DIR"
  "$1" serve --data "$DIR/data" --kafka 127.0.0.1:0 --http 127.0.0.1:0 --log-level warn \
    >"$DIR/serve.out" 2>"$DIR/serve.log" &
  BROKER=$!
  for _ in $(seq 100); do grep -q '^ready' "$DIR/serve.out" 2>/dev/null && break; sleep 0.1; done
  HTTP=$(awk '/^http: listening on/ {print $4}' "$DIR/serve.out")
  [ -n "$HTTP" ] || { echo "the broker did not start" >&2; cat "$DIR/serve.log" >&2; exit 1; }
  export TIDINGS_SERVER="http://$HTTP"
}

stop() { kill "$BROKER"; wait "$BROKER" 2>/dev/null || true; BROKER=""; }

# Holds HOLD events of each group in flight (receive 1000 at a time, consumer "holder").
hold() {
  /usr/bin/python3 - "$HTTP" "$HOLD" "$@" <<'EOF'
import http.client, json, sys
addr, hold, groups = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
host, port = addr.rsplit(":", 1)
c = http.client.HTTPConnection(host, int(port), timeout=120)
for g in groups:
    got = 0
    while got < hold:
        body = json.dumps({"max": min(1000, hold - got), "consumer": "holder"})
        c.request("POST", f"/v1/queues/{g}/receive", body, {"Content-Type": "application/json"})
        r = json.loads(c.getresponse().read())
        n = len(r["events"])
        assert n > 0, r
        got += n
EOF
}

run() { # BIN LABEL
  local bin=$1 label=$2
  start "$bin"
  /usr/bin/python3 -c "
import sys
with open(sys.argv[2], 'w') as f:
    for i in range(int(sys.argv[1])):
        f.write(('%010d ' % i).ljust(100, 'x') + '\n')
" "$((N + HOLD + 1000))" "$DIR/events.txt"
  "$bin" topic create q --partitions 16 >/dev/null
  "$bin" produce q --file "$DIR/events.txt" --no-progress >/dev/null
  "$bin" queue create small --topic q -c max.in.flight=2000 -c max.in.flight.per.consumer=100 \
    >/dev/null
  S=$("$Q" "$TIDINGS_SERVER" small 4 100 "$N" | awk '{print $3}')
  local held=()
  for i in $(seq 0 $((GROUPS_HELD - 1))); do
    "$bin" queue create "big$i" --topic q -c max.in.flight=100000 \
      -c max.in.flight.per.consumer=100000 -c ack.timeout.ms=3600000 >/dev/null
    held+=("big$i")
  done
  local t0=$(date +%s)
  hold "${held[@]}"
  L=$("$Q" "$TIDINGS_SERVER" big0 4 100 "$N" | awk '{print $3}')
  stop
  echo "$label: small pending: $S acks/s; $((GROUPS_HELD * HOLD)) in flight (held in $(( $(date +%s) - t0 )) s): $L acks/s; large/small $(/usr/bin/python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$L" "$S")"
}

run "$BEFORE" before
run "$AFTER" after
