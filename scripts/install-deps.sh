#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the benchmarks need. Idempotent: it
# asks apt only for packages that are missing, so a prepared machine costs nothing. Run as root
# (or with sudo) on Debian 12.
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  libsqlite3-dev zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev
  python3 python3-pytest fio
  kcat python3-kafka python3-confluent-kafka
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
