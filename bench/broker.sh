# Sourced by the HTTP, queue and Redis benchmarks: start_broker DIR starts a fresh release
# `tidings serve` on DIR/data with Kafka, HTTP and Redis on ephemeral 127.0.0.1 ports, sets
# KAFKA, HTTP and REDIS to their addresses and TIDINGS_SERVER for the command, and stops it (and removes DIR) on
# exit. ratio A B prints A/B with two decimals.
start_broker() {
  local dir=$1
  rm -rf "$dir"; mkdir -p "$dir"
  BROKER=""
  trap '[ -n "$BROKER" ] && kill "$BROKER" 2>/dev/null && wait "$BROKER" 2>/dev/null; rm -rf "'"$dir"'"' EXIT
  build/release/tidings serve --data "$dir/data" --kafka 127.0.0.1:0 --http 127.0.0.1:0 \
    --redis 127.0.0.1:0 --log-level warn >"$dir/serve.out" 2>"$dir/serve.log" &
  BROKER=$!
  for _ in $(seq 100); do
    grep -q '^ready' "$dir/serve.out" 2>/dev/null && break
    sleep 0.1
  done
  KAFKA=$(awk '/^kafka: listening on/ {print $4}' "$dir/serve.out")
  HTTP=$(awk '/^http: listening on/ {print $4}' "$dir/serve.out")
  REDIS=$(awk '/^redis: listening on/ {print $4}' "$dir/serve.out")
  [ -n "$KAFKA" ] && [ -n "$HTTP" ] || { echo "the broker did not start" >&2; cat "$dir/serve.log" >&2; exit 1; }
  export TIDINGS_SERVER="http://$HTTP"
}

ratio() { /usr/bin/python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$@"; }
