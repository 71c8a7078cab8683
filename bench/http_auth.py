#!/usr/bin/python3
"""The cost of HTTP authentication (release build; docs/operations.md#http-authentication):
requests per second and latency on one keep-alive connection, against one broker with
http.auth=required and one event loop, for

  - no credentials, on /health (open): the floor;
  - Basic with the right password: served from the cache of verified passwords after the
    first request;
  - Basic with a wrong password: never cached, so each request derives PBKDF2 (4096
    iterations of HMAC-SHA-512, the default) as an uncached check does;
  - a bearer token: one SQLite lookup by id and one SHA-256.

BENCH_REQUESTS (default 2000; 200 for the wrong password) per case, BENCH_ROUNDS (3) rounds,
medians. Usage: bench/http_auth.py [BIN]
"""
import base64
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "build/release/tidings"
N = int(os.environ.get("BENCH_REQUESTS", "2000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def main():
    if not os.access(BIN, os.X_OK):
        sys.exit("build first: make release")
    d = tempfile.mkdtemp(prefix="bench-http-auth-")
    env = dict(os.environ, TIDINGS_ADMIN_PASSWORD="bench-admin-pw")
    p = subprocess.Popen([BIN, "serve", "--data", d + "/data", "--kafka", "off", "--redis", "off",
                          "--http", "127.0.0.1:0", "--loops", "1", "--log-level", "error",
                          "--set", "http.auth=required"], stdout=subprocess.PIPE, env=env)
    port = None
    for line in p.stdout:
        line = line.decode()
        if line.startswith("http: listening on"):
            port = int(line.rsplit(":", 1)[1])
        if line.startswith("ready"):
            break
    c = http.client.HTTPConnection("127.0.0.1", port)

    def ask(method, path, headers, body=None):
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, r.read()

    st, text = ask("POST", "/v1/tokens", {**basic("admin", "bench-admin-pw"),
                                          "Content-Type": "application/json"}, "{}")
    token = json.loads(text)["token"]
    cases = [("no credentials (/health)", "/health", {}, N, 200),
             ("basic, cached", "/v1/topics", basic("admin", "bench-admin-pw"), N, 200),
             ("basic, wrong password (derives)", "/v1/topics", basic("admin", "wrong"),
              max(N // 10, 20), 401),
             ("bearer token", "/v1/topics", {"Authorization": "Bearer " + token}, N, 200)]
    results = {name: [] for name, *_ in cases}
    for _ in range(ROUNDS):
        for name, path, headers, n, want in cases:
            t = time.perf_counter()
            for _ in range(n):
                st, _ = ask("GET", path, headers)
                assert st == want, (name, st)
            results[name].append((time.perf_counter() - t) / n)
    p.terminate()
    p.wait()
    subprocess.run(["rm", "-rf", d])
    print(f"{'case':34} {'req/s':>9} {'ms/req':>8}")
    for name, v in results.items():
        m = statistics.median(v)
        print(f"{name:34} {1 / m:9.0f} {m * 1e3:8.3f}")


if __name__ == "__main__":
    main()
