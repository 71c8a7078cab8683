#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the benchmarks need, and the Node
# Kafka clients the tests drive (tests/node, from the npm registry at the versions its
# package-lock.json pins). Idempotent: it asks apt only for packages that are missing and npm
# only when the lock file changed, so a prepared machine costs nothing. Run as root (or with
# sudo) on Debian 12.
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  libsqlite3-dev zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev
  python3 python3-pytest fio
  kcat python3-kafka python3-confluent-kafka
  librdkafka-dev iperf3
  libjansson-dev libcurl4-openssl-dev curl python3-prometheus-client
  redis-tools python3-redis
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm may come from Debian or be installed otherwise (a nodejs package that bundles
# npm): ask apt only for the commands that are absent.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

here="$(cd "$(dirname "$0")/.." && pwd)"
node_dir="$here/tests/node"
if ! cmp -s "$node_dir/package-lock.json" "$node_dir/node_modules/.tidings-lock" 2>/dev/null; then
  echo "install-deps: installing the Node test clients (npm ci in tests/node)" >&2
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$node_dir/package-lock.json" "$node_dir/node_modules/.tidings-lock"
fi
