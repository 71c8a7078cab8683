#!/usr/bin/env bash
# Schema validation on produce, against its baseline measured in the same run: a fresh
# `tidings serve` (release build) with its schema registry under the HTTP listener, and
# bench_kafka (librdkafka) producing 1 KiB events in Confluent's wire format (a 20-field record,
# bench/schema_payloads.py: Avro, and the same record as JSON with its JSON Schema) to
# 4-partition topics that differ only in their schema settings (one topic per case, deleted
# after it, so that each case starts with no other case's dirty pages to write back):
#   off   no validation (the baseline: the same bytes, stored as they come)
#   id    value.schema.validation=true, schema.validation.mode=id (wire format and id checked)
#   full  value.schema.validation=true, schema.validation.mode=full (each event decoded and
#         validated against the schema)
# in BENCH_ROUNDS (3) rounds whose order alternates (off, id, full; then full, id, off; ...), so
# that a drift of the machine reaches every case alike; prints events/s per case and round, and
# the ratio full / off (and id / off) of each round and their medians (the issue's target:
# full >= 0.5 x off for Avro and for JSON Schema).
# Usage: bench/schema.sh [DIR]   (default: a fresh directory under ./build/bench-schema)
# BENCH_SECONDS (5) sets each case's length; BENCH_KINDS ("avro json") the kinds measured;
# TIDINGS_BIN another broker binary (a build before a change, to compare); BENCH_SET extra
# `--set key=value` settings of the broker (e.g. schema.validation.threads=0).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TIDINGS_BIN:-build/release/tidings}
KINDS=${BENCH_KINDS:-avro json}
SETS=()
for kv in ${BENCH_SET:-}; do SETS+=(--set "$kv"); done
LOAD=build/release/bench_kafka
[ -x "$BIN" ] && [ -x "$LOAD" ] || { echo "build first: make release (needs librdkafka-dev)" >&2; exit 1; }
DIR=${1:-build/bench-schema}
SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
rm -rf "$DIR"; mkdir -p "$DIR"
OUT=$(mktemp)
BROKER=""
cleanup() {
  [ -n "$BROKER" ] && kill "$BROKER" 2>/dev/null && wait "$BROKER" 2>/dev/null || true
  rm -rf "$DIR" "$OUT" "$OUT.serve"
}
trap cleanup EXIT

"$BIN" serve --data "$DIR/data" --kafka 127.0.0.1:0 --http 127.0.0.1:0 --redis off \
  --log-level warn "${SETS[@]}" >"$OUT.serve" 2>"$DIR/serve.log" &
BROKER=$!
for _ in $(seq 100); do
  grep -q '^ready' "$OUT.serve" 2>/dev/null && break
  sleep 0.1
done
B=$(awk '/^kafka: listening on/ {print $4}' "$OUT.serve")
H=$(awk '/^http: listening on/ {print $4}' "$OUT.serve")
[ -n "$B" ] && [ -n "$H" ] || { echo "the broker did not start" >&2; cat "$DIR/serve.log" >&2; exit 1; }

echo "== tidings $(git rev-parse --short HEAD 2>/dev/null || echo '?') ($BIN${BENCH_SET:+, $BENCH_SET}), 1 KiB events, 4 partitions, fsync=interval:1000, acks=1"
prefixes=""
for r in $(seq "$ROUNDS"); do prefixes="$prefixes b$r-id b$r-full"; done
# shellcheck disable=SC2086
/usr/bin/python3 bench/schema_payloads.py "http://$H/registry" "$DIR" $prefixes

# one KIND MODE ROUND: a produce case into a topic of its own, created for it and deleted
# after it, then `sync`: deleting the files drops their dirty pages, so that the writeback of
# one case's gigabytes does not slow the next one (the cases then differ in their validation,
# not in the state of the page cache). Appends "ROUND KIND MODE events/s" to $OUT.
one() {
  local r t="b$3-$2-$1"
  case $2 in
    off) "$LOAD" "$B" create "$t" 4 fsync=interval:1000 >/dev/null ;;
    *) "$LOAD" "$B" create "$t" 4 fsync=interval:1000 value.schema.validation=true \
         schema.validation.mode="$2" >/dev/null ;;
  esac
  r=$("$LOAD" "$B" producefile "$t" "$DIR/$1.bin" 1 "$SECS") ||
    { echo "$1 $2: the produce failed (see above)" >&2; exit 1; }
  curl -sf -X DELETE "http://$H/v1/topics/$t" >/dev/null ||
    { echo "could not delete topic $t" >&2; exit 1; }
  sync
  echo "$3 $1 $2 $(echo "$r" | awk '{print $4}')" >>"$OUT"
  printf '%-5s %-4s %-4s %10s events/s %7s MB/s\n' "$3" "$1" "$2" \
    "$(echo "$r" | awk '{print $4}')" "$(echo "$r" | awk '{print $5}')"
}

echo "-- produce, $ROUNDS rounds of $SECS s per case (round kind mode events/s MB/s)"
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="off id full"; else order="full id off"; fi
  for kind in $KINDS; do
    for mode in $order; do one "$kind" "$mode" "$r"; done
  done
done

median() { sort -g | awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "== ratios (per round, and the median of the $ROUNDS rounds)"
for kind in $KINDS; do
  for mode in id full; do
    ratios=$(awk -v k="$kind" -v m="$mode" '
      $2 == k && $3 == "off" { off[$1] = $4 }
      $2 == k && $3 == m { v[$1] = $4 }
      END { for (r in v) printf "%.2f\n", v[r] / off[r] }' "$OUT")
    med=$(echo "$ratios" | median)
    offm=$(awk -v k="$kind" '$2 == k && $3 == "off" {print $4}' "$OUT" | median)
    vm=$(awk -v k="$kind" -v m="$mode" '$2 == k && $3 == m {print $4}' "$OUT" | median)
    printf '%s mode=%s: %.0f events/s vs %.0f without validation (medians): %.2f x (rounds: %s)%s\n' \
      "$kind" "$mode" "$vm" "$offm" "$med" "$(echo $ratios)" \
      "$([ "$mode" = full ] && echo ' (target >= 0.50)')"
  done
done
