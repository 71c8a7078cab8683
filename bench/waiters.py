#!/usr/bin/env python3
"""Wake-up latency of readers that wait (net/wait.c): the time from an append to the answer of
a reader that was waiting for it, for each kind of waiter:

  fetch   a Kafka Fetch (v12, min_bytes 1, max_wait_ms 2000) parked at the high watermark,
          woken by a Kafka Produce (acks=1) on another connection
  xread   Redis XREAD BLOCK 2000 ... $, woken by an XADD on another connection
  sse     a live HTTP subscription (GET /v1/subscribe), woken by a Kafka Produce
  receive a long-polling queue receive (wait_ms 2000), woken by a Kafka Produce (each event is
          acked after the clock stops)

Each sample: the reader starts waiting, 2 ms pass (it is parked), the writer appends; the clock
runs from just before the append is sent to the reader's answer, so it holds the append's own
round trip too. Several brokers (one per binary given) run at once and are measured in turns,
so that their figures come from the same run on the same machine and their ratio means
something. Prints p50 and p99 in microseconds per kind and binary.

Usage: /usr/bin/python3 bench/waiters.py BIN [BIN...]   (BENCH_SAMPLES: per kind and binary;
BENCH_KINDS: some of fetch,xread,sse,receive)
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import kafkawire as kw  # noqa: E402
from kafkawire import array, i8, i32, i64, string, tags  # noqa: E402

SAMPLES = int(os.environ.get("BENCH_SAMPLES", "300"))
TURN = 50


class Broker:
    def __init__(self, binary):
        self.dir = tempfile.mkdtemp(prefix="bench-waiters-")
        self.out = open(os.path.join(self.dir, "serve.out"), "w+")
        self.p = subprocess.Popen(
            [binary, "serve", "--data", os.path.join(self.dir, "data"), "--kafka", "127.0.0.1:0",
             "--http", "127.0.0.1:0", "--redis", "127.0.0.1:0", "--log-level", "warn"],
            stdout=self.out, stderr=subprocess.DEVNULL)
        ports = {}
        for _ in range(200):
            self.out.seek(0)
            for line in self.out.read().splitlines():
                if ": listening on " in line:
                    ports[line.split(":")[0]] = int(line.rsplit(":", 1)[1])
            if {"kafka", "http", "redis"} <= ports.keys():
                break
            time.sleep(0.05)
        self.kafka, self.http, self.redis = ports["kafka"], ports["http"], ports["redis"]

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=30)
        subprocess.run(["rm", "-rf", self.dir])


def metadata(c, topic):
    c.request(3, 1, array([string(topic)]))  # auto-creates the topic


def produce(c, topic):
    batch = kw.make_batch([b"x" * 100])
    c.request(0, 7, kw.produce_body(topic, 0, batch, acks=1))


def fetch_body(topic, offset):
    part = i32(0) + i32(-1) + i64(offset) + i32(-1) + i64(-1) + i32(1 << 20) + tags(True)
    t = string(topic, True) + array([part], True) + tags(True)
    return (i32(-1) + i32(2000) + i32(1) + i32(1 << 20) + i8(0) + i32(0) + i32(-1) +
            array([t], True) + array([], True) + string("", True) + tags(True))


class FetchKind:
    name = "fetch"

    def __init__(self, b):
        self.r, self.w = kw.Conn(b.kafka), kw.Conn(b.kafka)
        metadata(self.w, "wf")
        self.next = 0

    def sample(self):
        self.r.corr += 1
        frame = kw.header(1, 12, self.r.corr, True) + fetch_body("wf", self.next)
        self.r.send_raw(i32(len(frame)) + frame)
        time.sleep(0.002)
        t0 = time.perf_counter()
        produce(self.w, "wf")
        self.r.recv_frame()
        dt = time.perf_counter() - t0
        self.next += 1
        return dt


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def read_reply(s):
    """Reads one RESP reply whole (enough for these: counts bulk lengths and arrays)."""
    buf = b""

    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk

    def parse(o):
        while b"\r\n" not in buf[o:]:
            need(len(buf) + 1)
        e = buf.index(b"\r\n", o)
        t, v = buf[o:o + 1], buf[o + 1:e]
        o = e + 2
        if t == b"$":
            n = int(v)
            if n >= 0:
                need(o + n + 2)
                o += n + 2
        elif t == b"*":
            for _ in range(max(int(v), 0)):
                o = parse(o)
        return o

    parse(0)


class XreadKind:
    name = "xread"

    def __init__(self, b):
        self.r = socket.create_connection(("127.0.0.1", b.redis))
        self.w = socket.create_connection(("127.0.0.1", b.redis))
        self.w.sendall(resp("XADD", "ws", "*", "f", "v"))
        read_reply(self.w)

    def sample(self):
        self.r.sendall(resp("XREAD", "BLOCK", "2000", "STREAMS", "ws", "$"))
        time.sleep(0.002)
        t0 = time.perf_counter()
        self.w.sendall(resp("XADD", "ws", "*", "f", "x" * 100))
        read_reply(self.r)
        dt = time.perf_counter() - t0
        read_reply(self.w)
        return dt


class SseKind:
    name = "sse"

    def __init__(self, b):
        self.w = kw.Conn(b.kafka)
        metadata(self.w, "wsse")
        self.s = socket.create_connection(("127.0.0.1", b.http))
        self.s.sendall(b"GET /v1/subscribe?topics=wsse&from=latest HTTP/1.1\r\n"
                       b"Host: 127.0.0.1\r\n\r\n")
        self.buf = b""
        self.until(b"event: subscribed")
        self.until(b"\n\n")

    def until(self, marker):
        while marker not in self.buf:
            self.buf += self.s.recv(65536)
        self.buf = self.buf[self.buf.index(marker) + len(marker):]

    def sample(self):
        time.sleep(0.002)
        t0 = time.perf_counter()
        produce(self.w, "wsse")
        self.until(b"data: ")
        dt = time.perf_counter() - t0
        self.until(b"\n\n")
        return dt


class ReceiveKind:
    name = "receive"

    def __init__(self, b):
        self.w = kw.Conn(b.kafka)
        metadata(self.w, "wq")
        self.h = http.client.HTTPConnection("127.0.0.1", b.http)
        policy = {"topic": "wq", "ack_timeout_ms": 600000}
        self.h.request("PUT", "/v1/queues/wqg", json.dumps(policy),
                       {"Content-Type": "application/json"})
        r = self.h.getresponse()
        r.read()
        assert r.status in (200, 201), r.status

    def sample(self):
        body = json.dumps({"max": 1, "wait_ms": 2000, "consumer": "c"})
        self.h.putrequest("POST", "/v1/queues/wqg/receive")
        self.h.putheader("Content-Type", "application/json")
        self.h.putheader("Content-Length", str(len(body)))
        self.h.endheaders(body.encode())
        time.sleep(0.002)
        t0 = time.perf_counter()
        produce(self.w, "wq")
        r = self.h.getresponse()
        data = r.read()
        dt = time.perf_counter() - t0
        events = json.loads(data)["events"] if r.status == 200 else None
        assert events, data
        self.h.request("POST", "/v1/queues/wqg/ack", json.dumps({"ids": [events[0]["id"]]}),
                       {"Content-Type": "application/json"})
        a = self.h.getresponse()
        a.read()
        assert a.status == 200, a.status
        return dt


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]


def main():
    bins = sys.argv[1:]
    if not bins:
        sys.exit(__doc__)
    brokers = [Broker(b) for b in bins]
    try:
        kinds = os.environ.get("BENCH_KINDS", "fetch,xread,sse,receive").split(",")
        for kind in (FetchKind, XreadKind, SseKind, ReceiveKind):
            if kind.name not in kinds:
                continue
            ks = [kind(b) for b in brokers]
            for k in ks:  # warm up
                for _ in range(10):
                    k.sample()
            res = [[] for _ in bins]
            turn = 0
            while len(res[0]) < SAMPLES:
                # Turns of TURN samples each, in an order that alternates, so that neither
                # broker always follows the other.
                order = list(enumerate(ks))
                for i, k in (order if turn % 2 == 0 else order[::-1]):
                    res[i] += [k.sample() for _ in range(TURN)]
                turn += 1
            for i, b in enumerate(bins):
                print("%-8s %-40s p50 %7.0f us  p99 %7.0f us  (%d samples)" % (
                    kind.name, b, pct(res[i], 0.5) * 1e6, pct(res[i], 0.99) * 1e6, len(res[i])))
            if len(bins) > 1:
                print("%-8s ratio p50 %s / %s: %.2f" % (
                    kind.name, bins[1], bins[0], pct(res[1], 0.5) / pct(res[0], 0.5)))
            sys.stdout.flush()
    finally:
        for b in brokers:
            b.stop()


if __name__ == "__main__":
    main()
