#!/usr/bin/env bash
# Schema enforcement's cost on Kafka produce (docs/schemas.md, "Enforcement on produce"): a fresh
# `tidings serve` (release build) with the registry on its HTTP listener, 1 KiB events in
# Confluent's wire format produced by bench_kafka (librdkafka, acks=1, fsync=interval:1000, 4
# partitions) to a topic without validation and to topics with value.schema.validation in full
# mode, JSON Schema and Avro (and in id mode); the ratios against the same values without validation (the issue's
# target: >= 0.5).
# Usage: bench/schema.sh [DIR]   (default: build/bench-schema); BENCH_SECONDS (5) per case.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/tidings
LOAD=build/release/bench_kafka
[ -x "$BIN" ] && [ -x "$LOAD" ] || { echo "build first: make release (needs librdkafka-dev)" >&2; exit 1; }
DIR=${1:-build/bench-schema}
SECS=${BENCH_SECONDS:-5}
rm -rf "$DIR"; mkdir -p "$DIR"
OUT=$(mktemp)
BROKER=""
cleanup() {
  [ -n "$BROKER" ] && kill "$BROKER" 2>/dev/null && wait "$BROKER" 2>/dev/null || true
  rm -rf "$DIR" "$OUT" "$OUT.serve"
}
trap cleanup EXIT

"$BIN" serve --data "$DIR/data" --kafka 127.0.0.1:0 --http 127.0.0.1:0 --redis off \
  --log-level warn >"$OUT.serve" 2>"$DIR/serve.log" &
BROKER=$!
for _ in $(seq 100); do
  grep -q '^ready' "$OUT.serve" 2>/dev/null && break
  sleep 0.1
done
B=$(awk '/^kafka: listening on/ {print $4}' "$OUT.serve")
H=$(awk '/^http: listening on/ {print $4}' "$OUT.serve")
[ -n "$B" ] && [ -n "$H" ] || { echo "the broker did not start" >&2; cat "$DIR/serve.log" >&2; exit 1; }
register() { # subject type schema -> id
  /usr/bin/python3 - "$H" "$1" "$2" "$3" <<'PY'
import json, sys, urllib.request
host, subject, kind, schema = sys.argv[1:]
body = {"schema": schema}
if kind != "AVRO":
    body["schemaType"] = kind
req = urllib.request.Request(f"http://{host}/registry/subjects/{subject}/versions",
                             data=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req))["id"])
PY
}
for t in plain-json plain-avro id-json full-json full-avro; do
  cfg="fsync=interval:1000"
  case $t in
    full-*) cfg="$cfg value.schema.validation=true schema.validation.mode=full" ;;
    id-*) cfg="$cfg value.schema.validation=true" ;;
  esac
  # shellcheck disable=SC2086
  "$LOAD" "$B" create "$t" 4 $cfg >/dev/null
done
IID=$(register id-json-value JSON '{"type":"object"}')
JID=$(register full-json-value JSON '{"type":"object","properties":{"s":{"type":"string","maxLength":2000}},"required":["s"]}')
AID=$(register full-avro-value AVRO '{"type":"record","name":"R","fields":[{"name":"s","type":"string"}]}')
run() { # label topic wire
  BENCH_WIRE=$3 "$LOAD" "$B" produce "$2" 1024 1 "$SECS" | sed "s/^produce/$1/" | tee -a "$OUT"
}
echo "-- produce 1 KiB acks=1 (label size acks events/s MB/s events)"
run plain-json plain-json "json:$JID"
run id-json id-json "json:$IID"
run full-json full-json "json:$JID"
run plain-avro plain-avro "avro:$AID"
run full-avro full-avro "avro:$AID"
echo "== ratios (target >= 0.50)"
awk '$1 ~ /^(plain|id|full)-/ { v[$1] = $5 }
  END {
    printf "id mode: %.1f / %.1f MB/s = %.2f\n", v["id-json"], v["plain-json"], v["id-json"] / v["plain-json"]
    printf "JSON Schema, full: %.1f / %.1f MB/s = %.2f\n", v["full-json"], v["plain-json"], v["full-json"] / v["plain-json"]
    printf "Avro, full: %.1f / %.1f MB/s = %.2f\n", v["full-avro"], v["plain-avro"], v["full-avro"] / v["plain-avro"]
  }' "$OUT"
