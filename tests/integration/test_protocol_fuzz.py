"""Protocol-mutation fuzzing of a running broker (protofuzz.py): for each of the Kafka, Redis and
HTTP ports, mutated requests over many connections for TIDINGS_FUZZ_SECONDS (20 by default;
`make soak` runs 600), while every listener is probed once a second. Afterwards the broker must
be alive, answer /health, serve a real round trip on every port, hold less than RSS_BOUND_MIB of
resident memory, and stop gracefully with status 0 and no sanitizer report.

The seed is printed; TIDINGS_FUZZ_SEED=N replays the same inputs. On a failure the last inputs
of every worker are saved under build/protocol-fuzz/ (replay them with `protofuzz.py replay`).
"""
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import time
import urllib.request

import pytest
import redis

from conftest import ROOT, Broker
from protofuzz import PROTOCOLS, Fuzzer, http_get

# The resident memory the broker may hold after fuzzing (docs/operations.md states no lower
# bound). The release build stays near 30 MiB through 10 minutes of HTTP fuzzing; ASan's own
# memory is most of what the sanitizer builds hold, so its quarantine of freed blocks (256 MiB
# by default, which alone took the ASan broker past 512 MiB in 10 minutes) is made smaller for
# the fuzzed broker (ASAN_QUARANTINE_MIB; a freed block is still not reused for a while).
RSS_BOUND_MIB = 512
ASAN_QUARANTINE_MIB = 64

SECONDS = float(os.environ.get("TIDINGS_FUZZ_SECONDS", "20"))
SEED = int(os.environ.get("TIDINGS_FUZZ_SEED") or random.SystemRandom().randrange(1 << 32))
ARTIFACTS = os.path.join(ROOT, "build", "protocol-fuzz")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def http_json(b, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{b.http_port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
        return r.status, json.loads(raw) if raw else None


@pytest.fixture
def fb(tmp_path):
    """A broker on all three ports with the topics, stream and groups the seeds name."""
    b = prepared_broker(str(tmp_path / "data"))
    yield b
    if b.proc:
        b.stop()


def prepared_broker(data):
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                 f"quarantine_size_mb={ASAN_QUARANTINE_MIB}"]))
    b = Broker(data, http=True, redis=True, env=env).start()
    http_json(b, "POST", "/v1/topics", {"name": "orders", "partitions": 3})
    http_json(b, "POST", "/v1/topics", {"name": "t", "partitions": 1})
    events = [{"key": f"k{i}", "value": {"n": i}, "headers": {"h": "v"}} for i in range(6)]
    http_json(b, "POST", "/v1/topics/orders/events", events)
    # A compacted topic for table reads (GET /v1/topics/table/keys/{key}).
    http_json(b, "POST", "/v1/topics", {"name": "table", "partitions": 2,
                                        "config": {"cleanup.policy": "compact"}})
    http_json(b, "POST", "/v1/topics/table/events", events + [{"key": "k1", "value": None}])
    # A key.index topic for entity streams (keys/{key}/events, expected_version).
    http_json(b, "POST", "/v1/topics", {"name": "es", "partitions": 2,
                                        "config": {"key.index": "true"}})
    http_json(b, "POST", "/v1/topics/es/events", events)
    # A queue group that dead-letters at the first nack, and dead letters to redrive.
    http_json(b, "PUT", "/v1/queues/q", {"topic": "orders", "max_deliveries": 1})
    got = http_json(b, "POST", "/v1/queues/q/receive", {"max": 3})[1]["events"]
    http_json(b, "POST", "/v1/queues/q/nack", {"ids": [e["id"] for e in got], "error": "e"})
    # A consumer group with committed offsets.
    http_json(b, "POST", "/v1/groups/seed/reset", {"to": "earliest", "topics": ["orders"]})
    r = redis.Redis(host="127.0.0.1", port=b.redis_port, socket_timeout=30)
    r.xadd("s", {"f": "v"})
    r.xgroup_create("s", "g", id="0")
    r.close()
    return b


def round_trips(b, tag):
    """A real client's write and read on every port."""
    topic = f"check-{tag}"
    http_json(b, "POST", "/v1/topics", {"name": topic, "partitions": 1})
    # Kafka: kcat produces one message and reads it back.
    boot = f"127.0.0.1:{b.port}"
    subprocess.run(["kcat", "-P", "-b", boot, "-t", topic, "-p", "0"], input=b"via-kafka\n",
                   check=True, timeout=60)
    out = subprocess.run(["kcat", "-C", "-b", boot, "-t", topic, "-p", "0", "-o", "beginning",
                          "-c", "1", "-e", "-q"], check=True, timeout=60,
                         capture_output=True).stdout
    assert out == b"via-kafka\n", out
    # Redis: XADD, then XRANGE sees it (after the Kafka message, as the same stream).
    r = redis.Redis(host="127.0.0.1", port=b.redis_port, socket_timeout=30)
    sid = r.xadd(topic, {"via": "redis"})
    entries = r.xrange(topic, "-", "+")
    assert len(entries) == 2 and entries[1][0] == sid, entries
    r.close()
    # HTTP: POST an event, GET it back.
    st, body = http_json(b, "POST", f"/v1/topics/{topic}/events", {"value": {"via": "http"}})
    assert st == 200 and body["offsets"][0]["offset"] == 2, body
    st, body = http_json(b, "GET", f"/v1/topics/{topic}/events?partition=0&offset=2")
    assert st == 200 and body["events"][0]["value"] == {"via": "http"}, body


@pytest.mark.parametrize("proto", ["kafka", "redis", "http"])
def test_mutated_requests_leave_the_broker_serving(fb, proto):
    ports = {"kafka": fb.port, "redis": fb.redis_port, "http": fb.http_port}
    probes = {name: (PROTOCOLS[name](), port) for name, port in ports.items()}
    stacks = []

    def on_stall(why):  # every thread's stack while a probe waits, for the report
        if shutil.which("gdb") and fb.alive():
            p = subprocess.run(["gdb", "-p", str(fb.proc.pid), "-batch", "-ex",
                                "thread apply all bt"], capture_output=True, timeout=120)
            stacks.append(f"=== {why}\n".encode() + p.stdout)
            print(f"protocol fuzz: {why}; stacks taken")

    f = Fuzzer(PROTOCOLS[proto](), ports[proto], SEED, SECONDS, alive=fb.alive, probes=probes,
               on_stall=on_stall)
    print(f"protocol fuzz: {proto}, seed {SEED} (TIDINGS_FUZZ_SEED={SEED} replays it), "
          f"{SECONDS} s")
    t0 = time.monotonic()
    failure = f.run()
    try:
        if failure is None:
            t1 = time.monotonic()
            assert http_get(fb.http_port, "/health", 30)[0] == 200
            round_trips(fb, proto)
            rss = rss_mib(fb.proc.pid)
            t2 = time.monotonic()
            fb.stop()
            print(f"protocol fuzz: {proto}: {sum(f.sent)} connections in {t1 - t0:.1f} s, "
                  f"RSS {rss:.0f} MiB; checks {t2 - t1:.1f} s, stop {time.monotonic() - t2:.1f} s")
            if stacks:  # slow, not stuck: kept for a look
                os.makedirs(ARTIFACTS, exist_ok=True)
                path = os.path.join(ARTIFACTS, f"{proto}-{SEED}-{int(time.time())}.stacks")
                with open(path, "wb") as out:
                    out.write(b"".join(stacks))
                print(f"protocol fuzz: stacks of the slow probes in {path}")
            print(f"protocol fuzz: slowest probe {f.slowest_probe:.2f} s, slowest input "
                  f"{f.slowest[0]:.2f} s: {f.slowest[1].describe() if f.slowest[1] else ''}")
            assert rss < RSS_BOUND_MIB, f"RSS {rss:.0f} MiB after fuzzing"
    except Exception as e:  # a failed check is a failure of this seed too
        failure = f"{proto}: after fuzzing: {e!r}"
    if failure is not None:
        where = f.save(os.path.join(ARTIFACTS, f"{proto}-{SEED}-{int(time.time())}"))
        if stacks:
            with open(os.path.join(where, "broker.stacks"), "wb") as out:
                out.write(b"".join(stacks))
        err = ""
        if os.path.exists(fb.stderr_path):
            shutil.copy(fb.stderr_path, os.path.join(where, "broker.stderr"))
            err = fb.stderr()[-4000:]
        pytest.fail(f"{failure}\nseed {SEED}: rerun with TIDINGS_FUZZ_SEED={SEED}; last inputs "
                    f"saved in {where}\n{f.last_inputs()}\nbroker stderr:\n{err}", pytrace=False)


# ---------------------------------------------------------------------------------------------
# Inputs the fuzzing found that crashed or stalled the broker, sent exactly as found. After each
# the broker must still answer on every port (and, at the fixture's stop, exit cleanly).
FOUND = [
    # A blocked XREAD's timeout resumed the connection, whose next command (QUIT, or a protocol
    # error) closed and freed it; net_conn_resume then updated the freed connection's epoll
    # interest.
    ("redis", b"XREAD BLOCK 10 STREAMS s $\r\nQUIT\r\n", "read"),
    ("redis", b"XREAD BLOCK 10 STREAMS s $\r\n*1\r\n$x\r\n", "read"),
    # A subscription from a peer already gone: its first flush failed and closed the
    # connection, which freed the HTTP connection state that the dispatch went on reading.
    ("http", b"GET /v1/subscribe?topics=x HTTP/1.1\r\nHost: localhost\r\n\r\n", "reset"),
    # XCLAIM's IDLE computed now - IDLE, which overflows for -2^63 (UBSan: signed overflow).
    ("redis", b"XCLAIM s g c2 0 0-1 IDLE -9223372036854775808\r\n", "read"),
]


def send_found(b, port, data, how):
    """Sends data on a new connection. "read": reads until the broker closes or 2 s pass.
    "reset": with the broker stopped (SIGSTOP), sends data and closes with a reset, so that the
    broker reads the request from a peer that is already gone."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if how == "reset":
        os.kill(b.proc.pid, signal.SIGSTOP)
        try:
            s.sendall(data)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            time.sleep(0.1)
        finally:
            os.kill(b.proc.pid, signal.SIGCONT)
        return
    s.sendall(data)
    s.settimeout(2)
    try:
        while s.recv(65536):
            pass
    except socket.timeout:
        pass
    s.close()


@pytest.mark.parametrize("proto,data,how", FOUND)
def test_found_inputs(fb, proto, data, how):
    ports = {"kafka": fb.port, "redis": fb.redis_port, "http": fb.http_port}
    send_found(fb, ports[proto], data, how)
    for name, port in ports.items():
        assert PROTOCOLS[name]().probe(port, 30), name
    fb.stop()  # exit status 0 and no sanitizer report, or the test fails
