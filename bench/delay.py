#!/usr/bin/env python3
"""Precision of delayed delivery (docs/queues.md#delayed-delivery): how late a queue group
delivers events scheduled at random times, against how long an ordinary event takes from its
produce to the same consumer in the same run (the baseline: what the path costs without any
schedule).

  baseline  N events produced over SPREAD seconds at an even rate, each with no delay; the
            clock runs from its produce request's answer to its arrival at the consumer
  delayed   N events produced at once (in requests of 2 000), each with a deliver_at at a random
            time over the SPREAD seconds after a lead of 5 s; lateness is its arrival minus
            that time, and one that arrives before it is counted as early (there must be none)

The consumer is one long-polling HTTP receive loop (wait_ms 200, max 1000, every batch acked),
the broker the release build with its defaults but for the group's in-flight limits.
Prints p50, p99 and max in ms for both, and their ratio at p99.

Usage: /usr/bin/python3 bench/delay.py [BIN]   (BENCH_EVENTS, default 100000; BENCH_SPREAD_S,
default 10)
"""
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

N = int(os.environ.get("BENCH_EVENTS", "100000"))
SPREAD = float(os.environ.get("BENCH_SPREAD_S", "10"))


def now_ms():
    return int(time.time() * 1000)


class Broker:
    def __init__(self, binary):
        self.dir = tempfile.mkdtemp(prefix="bench-delay-")
        self.proc = subprocess.Popen(
            [binary, "serve", "--data", self.dir + "/data", "--kafka", "127.0.0.1:0",
             "--http", "127.0.0.1:0", "--redis", "off", *os.environ.get("BENCH_ARGS", "").split()],
            stdout=subprocess.PIPE, stderr=open(self.dir + "/stderr", "wb"))
        while True:
            line = self.proc.stdout.readline().decode()
            if not line:
                raise SystemExit("broker did not start")
            if line.startswith("http: listening on "):
                self.port = int(line.rsplit(":", 1)[1])
            if line.startswith("ready"):
                break

    def call(self, method, path, body=None, conn=None):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if not conn:
            c.close()
        if r.status >= 300:
            raise SystemExit(f"{method} {path}: {r.status} {data[:300]}")
        return json.loads(data) if data else None

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)


class Consumer(threading.Thread):
    def __init__(self, b, group):
        super().__init__(daemon=True)
        self.b, self.group, self.got, self.stop = b, group, {}, threading.Event()

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.b.port, timeout=30)
        while not self.stop.is_set():
            evs = self.b.call("POST", f"/v1/queues/{self.group}/receive",
                              {"max": 1000, "wait_ms": 200, "consumer": "c"}, conn)["events"]
            t = now_ms()
            for e in evs:
                self.got.setdefault(e["key"], t)
            if evs:
                self.b.call("POST", f"/v1/queues/{self.group}/ack",
                            {"ids": [e["id"] for e in evs]}, conn)


def group(b, name):
    b.call("POST", "/v1/topics", {"name": name})
    b.call("PUT", f"/v1/queues/{name}", {"topic": name, "max_in_flight": 5000,
                                          "max_in_flight_per_consumer": 2000})
    c = Consumer(b, name)
    c.start()
    return c


def wait_all(c, n, timeout):
    end = time.time() + timeout
    while len(c.got) < n and time.time() < end:
        time.sleep(0.1)
    c.stop.set()
    c.join(5)


def stats(v):
    v = sorted(v)
    return v[len(v) // 2], v[int(len(v) * 0.99)], v[-1]


def baseline(b):
    c = group(b, "plain")
    sent = {}
    batch = max(1, int(N / SPREAD / 100))  # 100 requests a second
    t0 = time.time()
    for i in range(0, N, batch):
        evs = [{"key": f"p{k}", "value": k} for k in range(i, min(N, i + batch))]
        b.call("POST", "/v1/topics/plain/events", evs)
        t = now_ms()
        for e in evs:
            sent[e["key"]] = t
        pause = t0 + (i + batch) * SPREAD / N - time.time()
        if pause > 0:
            time.sleep(pause)
    wait_all(c, N, SPREAD + 30)
    return [c.got[k] - sent[k] for k in c.got], N - len(c.got)


def delayed(b):
    rnd = random.Random(1)
    start = now_ms() + 5000
    due = {}
    evs = []
    for i in range(N):
        due[f"d{i}"] = start + rnd.randrange(int(SPREAD * 1000))
        evs.append({"key": f"d{i}", "value": i, "deliver_at": due[f"d{i}"]})
    c = group(b, "timed")
    for i in range(0, N, 2000):
        b.call("POST", "/v1/topics/timed/events", evs[i:i + 2000])
    wait_all(c, N, SPREAD + 40)
    late = [c.got[k] - due[k] for k in c.got]
    return late, N - len(c.got), sum(1 for x in late if x < 0)


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "build/release/tidings"
    b = Broker(binary)
    try:
        base, base_lost = baseline(b)
        late, lost, early = delayed(b)
    finally:
        b.stop()
    p = stats(base)
    q = stats(late)
    print(f"events {N}, spread {SPREAD:.0f} s")
    print(f"baseline (produce to consumer, no delay): p50 {p[0]} ms  p99 {p[1]} ms  max {p[2]} ms"
          f"  missing {base_lost}")
    print(f"delayed (lateness after deliver_at):     p50 {q[0]} ms  p99 {q[1]} ms  max {q[2]} ms"
          f"  missing {lost}  early {early}")
    print(f"p99 ratio delayed / baseline: {q[1] / max(p[1], 1):.2f}x")
    if lost or early or base_lost:
        sys.exit(1)


if __name__ == "__main__":
    main()
