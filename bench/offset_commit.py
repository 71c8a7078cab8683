#!/usr/bin/env python3
"""Kafka offset commit rate of one or more tidings binaries, measured in the same run.

Usage: bench/offset_commit.py [NAME=BINARY ...]
       (default: after=build/release/tidings; e.g. before=/path/to/main/build/release/tidings)
BENCH_SECONDS (5) sets each case's length.

Cases, each against a fresh data directory (every commit durable before it is answered: the
state topic's fsync=always, or, before the state topics, SQLite's synchronous=FULL):
  sync-1      one confluent-kafka consumer committing synchronously, one partition per commit
  sync-16     16 such clients at once (threads)
  pipelined   8 connections, each keeping 32 OffsetCommit requests in flight (raw protocol),
              each request one partition of its own group
Prints commits per second for each binary and case.
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import confluent_kafka as ck  # noqa: E402
import kafkawire as kw  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

SECS = float(os.environ.get("BENCH_SECONDS", "5"))


def start(binary, data):
    p = subprocess.Popen([binary, "serve", "--data", data, "--kafka", "127.0.0.1:0",
                          "--http", "off", "--redis", "off", "--loops", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    port = None
    while True:
        line = p.stdout.readline().decode()
        if not line:
            raise SystemExit(f"{binary} did not start")
        if line.startswith("kafka: listening on "):
            port = int(line.rsplit(":", 1)[1])
        if line.startswith("ready"):
            return p, port


def commit_body(group, topic, partition, offset):
    return (kw.string(group) + kw.i32(-1) + kw.string("") + kw.i64(-1) +
            kw.array([kw.string(topic) + kw.array([kw.i32(partition) + kw.i64(offset) +
                                                   kw.string("")])]))


def sync_clients(port, n):
    stop = time.time() + SECS
    counts = [0] * n

    def run(i):
        c = ck.Consumer({"bootstrap.servers": f"127.0.0.1:{port}", "group.id": f"sync-{i}",
                         "enable.auto.commit": False})
        off = 0
        while time.time() < stop:
            off += 1
            c.commit(offsets=[ck.TopicPartition("bench", i % 4, off)], asynchronous=False)
            counts[i] += 1
        c.close()

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) / (time.time() - t0)


def pipelined(port, conns=8, depth=32):
    stop = time.time() + SECS
    counts = [0] * conns

    def run(i):
        s = socket.create_connection(("127.0.0.1", port))
        corr, off = 0, 0
        buf = b""

        def frame():
            nonlocal buf
            while True:
                if len(buf) >= 4:
                    n = struct.unpack(">i", buf[:4])[0]
                    if len(buf) >= 4 + n:
                        f, buf = buf[4:4 + n], buf[4 + n:]
                        return f
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                buf += chunk

        def send():
            nonlocal corr, off
            corr += 1
            off += 1
            body = commit_body(f"pipe-{i}-{corr % depth}", "bench", corr % 4, off)
            f = kw.header(8, 2, corr, False) + body
            s.sendall(kw.i32(len(f)) + f)

        for _ in range(depth):
            send()
        while time.time() < stop:
            r = kw.Reader(frame())
            r.i32()
            r.array_len(); r.string(); r.array_len(); r.i32()
            assert r.i16() == 0
            counts[i] += 1
            send()
        for _ in range(depth):
            frame()
        s.close()

    ts = [threading.Thread(target=run, args=(i,)) for i in range(conns)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) / (time.time() - t0)


def measure(binary):
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        p, port = start(binary, os.path.join(d, "data"))
        try:
            a = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
            a.create_topics([NewTopic("bench", 4, 1)])["bench"].result(timeout=30)
            return {"sync-1": sync_clients(port, 1), "sync-16": sync_clients(port, 16),
                    "pipelined": pipelined(port)}
        finally:
            p.terminate()
            p.wait(timeout=60)


def main():
    bins = [a.split("=", 1) for a in sys.argv[1:]] or [["after", "build/release/tidings"]]
    results = {name: measure(path) for name, path in bins}
    cases = ["sync-1", "sync-16", "pipelined"]
    print(f"{'commits/s':<12}" + "".join(f"{c:>12}" for c in cases))
    for name, r in results.items():
        print(f"{name:<12}" + "".join(f"{r[c]:>12.0f}" for c in cases))


if __name__ == "__main__":
    main()
