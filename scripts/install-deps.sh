#!/usr/bin/env bash
# Installs the Debian packages tidings needs, in two sets:
#
#   scripts/install-deps.sh          building and running it (`make run`, `make release`, ...):
#                                    the compiler and libraries, and curl, kcat and redis-cli
#                                    (redis-tools), which the README's walk-through uses;
#                                    Debian's registry only
#   scripts/install-deps.sh --test   everything the tests, the fuzz targets and the benchmarks
#                                    need besides (`make test`, `make fuzz`, `make bench`, CI):
#                                    clang, Python and its Kafka and Redis clients,
#                                    redis-server (the peer the Redis tests compare with),
#                                    fio, iperf3, nats-server and libnats-dev (the queue
#                                    benchmark's peer), etcd-server and etcd-client (the
#                                    coordinator the cluster tests start), Node.js and the
#                                    Node Kafka clients of tests/node (from the npm registry,
#                                    at the versions its package-lock.json pins)
#
# Idempotent: it asks apt only for packages that are missing and npm only when the lock file
# changed, so a prepared machine costs nothing. Run as root (or with sudo) on Debian 12.
set -euo pipefail

test_deps=false
case "${1:-}" in
  "") ;;
  --test) test_deps=true ;;
  *) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac

pkgs=(
  build-essential cmake ninja-build pkg-config
  libsqlite3-dev zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev
  libjansson-dev libcurl4-openssl-dev libssl-dev openssl libxxhash-dev libavro-dev libpcre2-dev
  curl kcat redis-tools python3
)
if $test_deps; then
  pkgs+=(
    clang libclang-rt-14-dev
    python3 python3-pytest python3-pytest-xdist python3-kafka python3-confluent-kafka python3-prometheus-client
    python3-redis redis-server python3-requests python3-jsonschema python3-protobuf
    librdkafka-dev fio iperf3 nats-server libnats-dev etcd-server etcd-client
  )
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm may come from Debian or be installed otherwise (a nodejs package that bundles
# npm): ask apt only for the commands that are absent.
if $test_deps; then
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

$test_deps || exit 0
here="$(cd "$(dirname "$0")/.." && pwd)"
node_dir="$here/tests/node"
if ! cmp -s "$node_dir/package-lock.json" "$node_dir/node_modules/.tidings-lock" 2>/dev/null; then
  echo "install-deps: installing the Node test clients (npm ci in tests/node)" >&2
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$node_dir/package-lock.json" "$node_dir/node_modules/.tidings-lock"
fi
