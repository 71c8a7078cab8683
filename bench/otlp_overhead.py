#!/usr/bin/python3
"""The cost of span export (docs/otlp-export.md): produce throughput with otlp.endpoint unset
(off, the baseline) and set to a collector in this process (Python's http.server on 127.0.0.1,
answering 200 to every POST), in turns in the same run, on fresh brokers (release build, topics
with 4 partitions and fsync=none, so that the record path and not the disk is measured):

  - Kafka: BENCH_EVENTS (200000) events of 100 bytes from confluent-kafka (librdkafka,
    linger.ms=5): one span per record batch;
  - HTTP: BENCH_REQUESTS (4000) requests of one event each on 4 keep-alive connections (4
    threads): one span per event, the worst case.

BENCH_ROUNDS (3) rounds; medians, and on/off as a ratio: of throughput, and of the broker
process's CPU time (user + system, from /proc) per event, which a machine shared with other work
disturbs less. The collector shares the machine's cores with the broker and the clients, as a
local agent would. Usage: bench/otlp_overhead.py [BIN]
"""
import http.client
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Producer

BIN = sys.argv[1] if len(sys.argv) > 1 else "build/release/tidings"
EVENTS = int(os.environ.get("BENCH_EVENTS", "200000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "4000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


class Collector:
    def __init__(self):
        self.spans = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.spans += body.count(b'"spanId"')
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]


def start(d, endpoint):
    args = [BIN, "serve", "--data", d, "--kafka", "127.0.0.1:0", "--http", "127.0.0.1:0",
            "--redis", "off", "--log-level", "error"]
    if endpoint:
        args += ["--set", "otlp.endpoint=" + endpoint]
    p = subprocess.Popen(args, stdout=subprocess.PIPE)
    ports = {}
    for line in p.stdout:
        line = line.decode()
        for proto in ("kafka", "http"):
            if line.startswith(proto + ": listening on"):
                ports[proto] = int(line.rsplit(":", 1)[1])
        if line.startswith("ready"):
            break
    return p, ports


def cpu_seconds(pid):
    """The process's user + system CPU time so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(pid, fn, *args):
    """fn's rate, and the broker's CPU microseconds per event meanwhile."""
    c0 = cpu_seconds(pid)
    rate, n = fn(*args)
    return rate, (cpu_seconds(pid) - c0) * 1e6 / n


def post(port, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    c.close()
    assert r.status in (200, 201), r.status


def kafka_rate(port):
    p = Producer({"bootstrap.servers": "127.0.0.1:%d" % port, "linger.ms": 5,
                  "queue.buffering.max.messages": 1000000})
    value = b"x" * 100
    t0 = time.time()
    for i in range(EVENTS):
        while True:
            try:
                p.produce("k", value=value, key=b"%d" % i)
                break
            except BufferError:
                p.poll(0.01)
    assert p.flush(120) == 0
    return EVENTS / (time.time() - t0), EVENTS


def http_rate(port):
    per = REQUESTS // 4

    def run():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for i in range(per):
            c.request("POST", "/v1/topics/h/events", body='[{"key":"%d","value":%d}]' % (i, i),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            assert r.status == 200
        c.close()

    ts = [threading.Thread(target=run) for _ in range(4)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return per * 4 / (time.time() - t0), per * 4


def main():
    if not os.access(BIN, os.X_OK):
        sys.exit("build first: make release")
    col = Collector()
    res = {(m, w): [] for m in ("off", "on") for w in ("kafka", "http")}
    cpu = {(m, w): [] for m in ("off", "on") for w in ("kafka", "http")}
    for rnd in range(ROUNDS):
        for mode in ("off", "on"):
            d = tempfile.mkdtemp(prefix="bench-otlp-")
            p, ports = start(d + "/data", col.url if mode == "on" else None)
            try:
                for t in ("k", "h"):
                    post(ports["http"], "/v1/topics",
                         {"name": t, "partitions": 4, "config": {"fsync": "none"}})
                for w, fn, port in (("kafka", kafka_rate, ports["kafka"]),
                                    ("http", http_rate, ports["http"])):
                    rate, us = measure(p.pid, fn, port)
                    res[(mode, w)].append(rate)
                    cpu[(mode, w)].append(us)
            finally:
                p.terminate()
                p.wait(60)
                shutil.rmtree(d, ignore_errors=True)
            print("round %d %-3s: kafka %8.0f events/s (%5.2f us CPU/event), "
                  "http %6.0f requests/s (%5.1f us CPU/event)" %
                  (rnd + 1, mode, res[(mode, "kafka")][-1], cpu[(mode, "kafka")][-1],
                   res[(mode, "http")][-1], cpu[(mode, "http")][-1]), flush=True)
    print("spans the collector received (all 'on' rounds): %d" % col.spans)
    for w in ("kafka", "http"):
        off, on = statistics.median(res[("off", w)]), statistics.median(res[("on", w)])
        coff, con = statistics.median(cpu[("off", w)]), statistics.median(cpu[("on", w)])
        print("%-5s throughput off %8.0f /s  on %8.0f /s  on/off %.3f   "
              "broker CPU/event off %6.2f us  on %6.2f us  on/off %.3f" %
              (w, off, on, on / off, coff, con, con / coff))


if __name__ == "__main__":
    main()
