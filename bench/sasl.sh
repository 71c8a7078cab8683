#!/usr/bin/env bash
# Kafka SASL connection set-up rate against plaintext connects, in the same run and on the same
# listener (release build, kafka.auth=required): for BENCH_SECONDS (5) each, one client opening
# connections one after the other, each doing
#   - plain:          connect, ApiVersions, close (what every client does first)
#   - SCRAM-SHA-512:  the same, then SaslHandshake and the two SaslAuthenticate round trips
#   - SCRAM-SHA-256:  the same with SHA-256
#   - PLAIN:          the same with one SaslAuthenticate (the broker runs PBKDF2, 4096
#                     iterations of HMAC-SHA-512, per connection)
# The SCRAM client keeps the SaltedPassword of the user's salt, so that its own PBKDF2 (which a
# real client runs per connection) is not what is measured; the broker's side of SCRAM is HMACs
# only. Prints connections/s per kind and the ratios to plain. Meanwhile a second process keeps
# one connection on the same event loop (--loops 1) busy with ApiVersions round trips and prints
# their median and 99th percentile for each phase: what the other clients of a loop see while
# it authenticates (PLAIN's PBKDF2 runs off the loop, on the password-check thread).
# Usage: bench/sasl.sh [DIR]   (default: build/bench-sasl)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/tidings
[ -x "$BIN" ] || { echo "build first: make release" >&2; exit 1; }
DIR=${1:-build/bench-sasl}
SECS=${BENCH_SECONDS:-5}
rm -rf "$DIR"; mkdir -p "$DIR"
BROKER=""
cleanup() {
  [ -n "$BROKER" ] && kill "$BROKER" 2>/dev/null && wait "$BROKER" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT

printf 'bench-pw\n' | "$BIN" user add bench --password-stdin --data "$DIR/data" >/dev/null
"$BIN" serve --data "$DIR/data" --kafka 127.0.0.1:0 --http off --redis off --log-level error \
  --loops 1 --set kafka.auth=required >"$DIR/serve.out" 2>"$DIR/serve.log" &
BROKER=$!
for _ in $(seq 100); do
  grep -q '^ready' "$DIR/serve.out" 2>/dev/null && break
  sleep 0.1
done
B=$(awk '/^kafka: listening on/ {print $4}' "$DIR/serve.out")
[ -n "$B" ] || { echo "the broker did not start" >&2; cat "$DIR/serve.log" >&2; exit 1; }

/usr/bin/python3 - "${B%:*}" "${B##*:}" "$SECS" <<'PY'
import base64, hashlib, hmac, os, socket, struct, sys, time
host, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
USER, PW = "bench", b"bench-pw"
salted_cache = {}

def frame(sock, key, ver, body, corr=1):
    hdr = struct.pack(">hhih", key, ver, corr, 5) + b"bench"
    if key == 36 and ver >= 2:
        hdr += b"\0"
    msg = hdr + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    n = struct.unpack(">i", recv(sock, 4))[0]
    return recv(sock, n)

def recv(sock, n):
    b = b""
    while len(b) < n:
        c = sock.recv(n - len(b))
        if not c:
            raise ConnectionError("closed")
        b += c
    return b

def authenticate(sock, token):
    r = frame(sock, 36, 1, struct.pack(">i", len(token)) + token)
    err = struct.unpack(">h", r[4:6])[0]
    ml = struct.unpack(">h", r[6:8])[0]
    o = 8 + max(ml, 0)
    n = struct.unpack(">i", r[o:o + 4])[0]
    if err:
        raise RuntimeError("authentication failed: %d" % err)
    return r[o + 4:o + 4 + n]

def one(kind):
    s = socket.create_connection((host, port))
    try:
        frame(s, 18, 0, b"")
        if kind == "plain":
            return
        mech = kind.encode()
        frame(s, 17, 1, struct.pack(">h", len(mech)) + mech)
        if kind == "PLAIN":
            authenticate(s, b"\0" + USER.encode() + b"\0" + PW)
            return
        h = "sha512" if kind.endswith("512") else "sha256"
        cnonce = base64.b64encode(os.urandom(18)).decode()
        bare = f"n={USER},r={cnonce}"
        sf = authenticate(s, ("n,," + bare).encode()).decode()
        a = dict(kv.split("=", 1) for kv in sf.split(","))
        key = (h, a["s"], a["i"])
        if key not in salted_cache:
            salted_cache[key] = hashlib.pbkdf2_hmac(h, PW, base64.b64decode(a["s"]), int(a["i"]))
        salted = salted_cache[key]
        without = f"c=biws,r={a['r']}"
        auth = f"{bare},{sf},{without}".encode()
        ck = hmac.new(salted, b"Client Key", h).digest()
        sig = hmac.new(hashlib.new(h, ck).digest(), auth, h).digest()
        proof = base64.b64encode(bytes(x ^ y for x, y in zip(ck, sig))).decode()
        final = authenticate(s, f"{without},p={proof}".encode())
        assert final.startswith(b"v=")
    finally:
        s.close()

def probe(stop, out):
    """ApiVersions round trips on one connection until stop: their latencies in microseconds."""
    s = socket.create_connection((host, port))
    lat = []
    while not stop.is_set():
        t = time.perf_counter()
        frame(s, 18, 0, b"")
        lat.append((time.perf_counter() - t) * 1e6)
        time.sleep(0.001)
    s.close()
    lat.sort()
    out.put((lat[len(lat) // 2], lat[int(len(lat) * 0.99)], len(lat)))

import multiprocessing as mp
rates = {}
for kind in ("plain", "SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"):
    one(kind)  # warm up (and fill the salted-password cache)
    stop, q = mp.Event(), mp.Queue()
    pr = mp.Process(target=probe, args=(stop, q))
    pr.start()
    n, end = 0, time.monotonic() + secs
    while time.monotonic() < end:
        one(kind)
        n += 1
    stop.set()
    p50, p99, count = q.get(timeout=30)
    pr.join()
    rates[kind] = n / secs
    print("%-14s %8.0f connections/s   other connection: ApiVersions p50 %6.0f us, p99 %6.0f us"
          % (kind, rates[kind], p50, p99))
for kind in ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"):
    print("ratio %s/plain %.2f" % (kind, rates[kind] / rates["plain"]))
PY
