#!/usr/bin/env bash
# Redis benchmark (issue 7): redis-benchmark -c 50 -n N with `XADD s * field value`, at -P 1 and
# -P 16, against tidings and against a real redis-server (Debian's) started here in the same run,
# at equal durability: redis-server with appendonly yes and appendfsync everysec against a topic
# with fsync=interval:1000, and appendfsync always against fsync=always.
# Then consumer groups: redis-benchmark -c 50 runs `XREADGROUP GROUP g c COUNT 100 STREAMS k >`
# over a stream of 100 x BENCH_GROUP_READS entries on both servers (appendfsync always against
# fsync=always), with and without NOACK: entries delivered per second.
# Usage: bench/redis.sh [DIR]   (default: build/bench-redis). BENCH_REQUESTS (500000) sets N,
# BENCH_GROUP_READS (20000) the XREADGROUP calls.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/tidings
[ -x "$BIN" ] || { echo "build first: make release" >&2; exit 1; }
if ! command -v redis-server >/dev/null; then
  echo "installing redis-server (Debian) for the baseline" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  # The package's service, where one runs, must not hold 6379 or the CPU during the run.
  { systemctl stop redis-server || service redis-server stop || true; } >/dev/null 2>&1
fi
command -v redis-benchmark >/dev/null || { echo "redis-benchmark is needed (redis-tools)" >&2; exit 1; }
DIR=${1:-build/bench-redis}
N=${BENCH_REQUESTS:-500000}
. bench/broker.sh
start_broker "$DIR"
TPORT=${REDIS##*:}

free_port() { /usr/bin/python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }
RPORT=$(free_port)
REDIS_PID=""
start_redis() { # $1: appendfsync policy
  [ -n "$REDIS_PID" ] && { kill "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true; }
  rm -rf "$DIR/redis"; mkdir -p "$DIR/redis"
  redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$DIR/redis" --save "" \
    --appendonly yes --appendfsync "$1" --daemonize no --loglevel warning \
    >"$DIR/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "redis-server did not start" >&2; cat "$DIR/redis.log" >&2; exit 1
}
trap '[ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null; [ -n "$BROKER" ] && kill "$BROKER" 2>/dev/null; wait 2>/dev/null; rm -rf "'"$DIR"'"' EXIT

# One run: prints requests per second.
xadd_rps() { # $1 port, $2 pipeline, $3 key
  redis-benchmark -p "$1" -c 50 -n "$N" -P "$2" --csv XADD "$3" '*' field value 2>/dev/null |
    awk -F'","' 'NR==2 {print $2+0}'
}

echo "== redis-benchmark -c 50 -n $N XADD s * field value ($(nproc) cores)"
for mode in everysec always; do
  start_redis "$mode"
  policy=$([ "$mode" = always ] && echo always || echo interval:1000)
  key="s-$mode"
  "$BIN" topic create "$key" --partitions 1 -c fsync="$policy" -c retention.ms=-1 >/dev/null
  for p in 1 16; do
    redis-cli -p "$RPORT" del "$key" >/dev/null
    R=$(xadd_rps "$RPORT" "$p" "$key")
    T=$(xadd_rps "$TPORT" "$p" "$key")
    printf '%-9s -P %-2s  redis-server %9.0f ops/s   tidings (fsync=%s) %9.0f ops/s   = %sx\n' \
      "$mode" "$p" "$R" "$policy" "$T" "$(ratio "$T" "$R")"
  done
done

G=${BENCH_GROUP_READS:-20000}
echo "== redis-benchmark -c 50 -n $G XREADGROUP GROUP g c COUNT 100 [NOACK] STREAMS k > (always)"
start_redis always
for noack in "" NOACK; do
  key="g-always${noack:+-noack}"
  "$BIN" topic create "$key" --partitions 1 -c fsync=always -c retention.ms=-1 >/dev/null
  for port in "$RPORT" "$TPORT"; do
    redis-benchmark -p "$port" -c 50 -n $((G * 100)) -P 16 -q XADD "$key" '*' field value \
      >/dev/null 2>&1
    redis-cli -p "$port" XGROUP CREATE "$key" g 0 >/dev/null
  done
  read_eps() { # $1 port: entries delivered per second
    redis-benchmark -p "$1" -c 50 -n "$G" --csv XREADGROUP GROUP g c COUNT 100 $noack \
      STREAMS "$key" '>' 2>/dev/null | awk -F'","' 'NR==2 {print ($2+0) * 100}'
  }
  R=$(read_eps "$RPORT")
  T=$(read_eps "$TPORT")
  printf 'XREADGROUP %-6s redis-server %9.0f entries/s   tidings %9.0f entries/s   = %sx\n' \
    "${noack:-acked}" "$R" "$T" "$(ratio "$T" "$R")"
done
