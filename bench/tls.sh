#!/usr/bin/env bash
# TLS against plaintext, in the same run and on the same broker (release build): a Kafka
# listener of each kind, driven by bench_kafka (librdkafka) with BENCH_KAFKA_PROPS adding
# security.protocol=SSL for the TLS side:
#   - produce 1 KiB events, acks=1, 4 partitions, for BENCH_SECONDS (5) each, alternating,
#     BENCH_ROUNDS (3) times
#   - consume them back (from the page cache: fetches go out through pread + SSL_write)
#   - connection set-up: full TLS handshakes per second (openssl s_time -new: TLS 1.3, X25519,
#     an ECDSA P-256 certificate) against plain TCP connects per second (a Python client), both
#     for BENCH_SECONDS against the same listener pair
# and the ratios (issue 20's target: TLS >= 0.7x plaintext for 1 KiB events).
# Usage: bench/tls.sh [DIR]   (default: a fresh directory under ./build/bench-tls)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/tidings
LOAD=build/release/bench_kafka
[ -x "$BIN" ] && [ -x "$LOAD" ] || { echo "build first: make release (needs librdkafka-dev)" >&2; exit 1; }
DIR=${1:-build/bench-tls}
SECS=${BENCH_SECONDS:-5}
rm -rf "$DIR"; mkdir -p "$DIR"
OUT=$(mktemp)
BROKER=""
cleanup() {
  [ -n "$BROKER" ] && kill "$BROKER" 2>/dev/null && wait "$BROKER" 2>/dev/null || true
  rm -rf "$DIR" "$OUT" "$OUT".*
}
trap cleanup EXIT

# Certificates: a CA and a server certificate for 127.0.0.1.
(
  cd "$DIR"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=bench-ca -keyout ca.key -out ca.pem 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
    -keyout server.key -out server.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 1 -days 1 \
    -extfile server.ext -out server.pem 2>/dev/null
)

"$BIN" serve --data "$DIR/data" --kafka 127.0.0.1:0 --http off --redis off --log-level warn \
  --set kafka.tls=127.0.0.1:0 --set "kafka.tls.cert.file=$DIR/server.pem" \
  --set "kafka.tls.key.file=$DIR/server.key" >"$OUT.serve" 2>"$DIR/serve.log" &
BROKER=$!
for _ in $(seq 100); do
  grep -q '^ready' "$OUT.serve" 2>/dev/null && break
  sleep 0.1
done
B=$(awk '/^kafka: listening on/ {print $4}' "$OUT.serve")
BT=$(awk '/^kafka.tls: listening on/ {print $4}' "$OUT.serve")
[ -n "$B" ] && [ -n "$BT" ] || { echo "the broker did not start" >&2; cat "$DIR/serve.log" >&2; exit 1; }
SSL="security.protocol=SSL,ssl.ca.location=$DIR/ca.pem"

"$LOAD" "$B" create plain 4 fsync=interval:1000 >/dev/null
"$LOAD" "$B" create tls 4 fsync=interval:1000 >/dev/null
# The two cores are shared with whatever else runs: the produce cases alternate, ROUNDS (3) times
# each, and the ratio is that of the medians.
ROUNDS=${BENCH_ROUNDS:-3}
echo "-- produce 1 KiB acks=1, 4 partitions, $ROUNDS rounds (size acks events/s MB/s events)"
for _ in $(seq "$ROUNDS"); do
  "$LOAD" "$B" produce plain 1024 1 "$SECS" | sed 's/^/plain /' | tee -a "$OUT"
  BENCH_KAFKA_PROPS=$SSL "$LOAD" "$BT" produce tls 1024 1 "$SECS" | sed 's/^/tls /' | tee -a "$OUT"
done
echo "-- consume them (events/s MB/s events)"
"$LOAD" "$B" consume plain | sed 's/^/plain /' | tee -a "$OUT"
BENCH_KAFKA_PROPS=$SSL "$LOAD" "$BT" consume tls | sed 's/^/tls /' | tee -a "$OUT"

echo "-- connection set-up for $SECS s each (connections/s)"
HOST=${B%:*}
PORT=${B##*:}
/usr/bin/python3 - "$HOST" "$PORT" "$SECS" <<'EOF' | tee -a "$OUT"
import socket, sys, time
host, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
n, end = 0, time.monotonic() + secs
while time.monotonic() < end:
    s = socket.create_connection((host, port))
    s.close()
    n += 1
print("plain connect %.0f" % (n / secs))
EOF
openssl s_time -connect "$BT" -new -time "$SECS" -CAfile "$DIR/ca.pem" 2>/dev/null |
  awk '/connections in [0-9.]+s;/ { for (i = 1; i <= NF; i++) if ($i ~ /connections\/user/) print "tls connect", $(i - 1) }' |
  tee -a "$OUT"
# s_time reports connections per second of its own user time; the wall-clock rate follows.
openssl s_time -connect "$BT" -new -time "$SECS" -CAfile "$DIR/ca.pem" 2>/dev/null |
  awk '/connections in [0-9.]+ real seconds/ { printf "tls connect-wall %.0f\n", $1 / $4 }' |
  tee -a "$OUT"

echo "== ratios"
awk '
  $1 == "plain" && $2 == "produce" { ppv[++npp] = $6 }
  $1 == "tls" && $2 == "produce" { tpv[++ntp] = $6 }
  $1 == "plain" && $2 == "consume" { pc = $4 }
  $1 == "tls" && $2 == "consume" { tc = $4 }
  $1 == "plain" && $2 == "connect" { pcn = $3 }
  $1 == "tls" && $2 == "connect-wall" { tcn = $3 }
  function median(v, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return v[int((n + 1) / 2)]
  }
  END {
    pp = median(ppv, npp); tp = median(tpv, ntp)
    printf "produce 1 KiB acks=1 (medians): TLS %.1f MB/s = %.2f x plaintext %.1f MB/s (target >= 0.70)\n", tp, tp / pp, pp
    printf "consume: TLS %.1f MB/s = %.2f x plaintext %.1f MB/s (target >= 0.70)\n", tc, tc / pc, pc
    printf "connection set-up: %d TLS handshakes/s (wall) against %d plain TCP connects/s\n", tcn, pcn
  }' "$OUT"
