"""Request/reply (docs/http-api.md#request-reply): an HTTP caller's POST
/v1/topics/{t}/requests answered by a service that consumes the requests and produces its
replies with the correlation id: a confluent-kafka service (the id as a header), a redis-py
service (the id as a field), many concurrent callers each getting their own reply, time-outs
(504), replies that match no waiting request, the command `tidings request`, and the checks
of the body.
"""
import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from confluent_kafka import Consumer, Producer

from conftest import BIN, Broker
from test_http import assert_error, call


@pytest.fixture
def rb(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True, redis=True).start()
    yield b
    if b.proc:
        b.stop()


class KafkaService(threading.Thread):
    """Consumes `topic` and answers each request on its reply-to topic: the value doubled,
    with the correlation-id header; stops after `stop` is set."""

    def __init__(self, b, topic, skip=()):
        super().__init__(daemon=True)
        self.b, self.topic, self.skip = b, topic, set(skip)
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.seen = []

    def run(self):
        c = Consumer({"bootstrap.servers": self.b.bootstrap, "group.id": "svc-" + self.topic,
                      "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
        p = Producer({"bootstrap.servers": self.b.bootstrap, "linger.ms": 0})
        c.subscribe([self.topic])
        end = time.time() + 60
        while not self.stop.is_set() and time.time() < end:
            m = c.poll(0.1)
            if m is None:
                if c.assignment():
                    self.ready.set()
                continue
            if m.error():
                continue
            self.ready.set()
            h = {k: v.decode() for k, v in (m.headers() or [])}
            self.seen.append(h)
            req = json.loads(m.value())
            if req.get("n") in self.skip:
                continue
            p.produce(h["reply-to"], value=json.dumps({"doubled": req["n"] * 2}).encode(),
                      headers=[("correlation-id", h["correlation-id"].encode())])
            p.flush(10)
        c.close()


def test_kafka_service_answers_concurrent_callers(rb):
    for t in ("quotes", "quotes.replies"):
        call(rb, "POST", "/v1/topics", {"name": t, "partitions": 2})
    svc = KafkaService(rb, "quotes")
    svc.start()
    assert svc.ready.wait(30)
    try:
        st, _, r = call(rb, "POST", "/v1/topics/quotes/requests",
                        {"key": "c1", "value": {"n": 21}, "headers": {"x-caller": "test"}})
        assert st == 200, r
        assert r["reply"]["value"] == {"doubled": 42} and r["reply"]["topic"] == "quotes.replies"
        corr = r["correlation_id"]
        assert len(corr) == 32 and int(corr, 16) >= 0
        assert {"key": "correlation-id", "value": corr} in r["reply"]["headers"]
        # The request as the service saw it: its headers, and the two added.
        h = svc.seen[0]
        assert h["reply-to"] == "quotes.replies" and h["correlation-id"] == corr
        assert h["x-caller"] == "test"
        st, _, ev = call(rb, "GET", f"/v1/topics/quotes/events?partition="
                                    f"{r['request']['partition']}&offset={r['request']['offset']}"
                                    f"&limit=1")
        assert ev["events"][0]["value"] == {"n": 21} and ev["events"][0]["key"] == "c1"

        # 40 callers at once, on several connections: each gets the reply to its own request.
        def one(i):
            st, _, r = call(rb, "POST", "/v1/topics/quotes/requests",
                            {"value": {"n": i}, "timeout_ms": 20000})
            return st, r

        with ThreadPoolExecutor(8) as ex:
            res = list(ex.map(one, range(100, 140)))
        assert all(st == 200 for st, _ in res), [r for st, r in res if st != 200][:2]
        assert [r["reply"]["value"]["doubled"] for _, r in res] == [2 * i for i in range(100, 140)]
        assert len({r["correlation_id"] for _, r in res}) == 40
    finally:
        svc.stop.set()
        svc.join(30)


def test_redis_service_answers(rb):
    for t in ("jobs", "jobs.out"):
        call(rb, "POST", "/v1/topics", {"name": t})
    r = redis.Redis(port=rb.redis_port, decode_responses=True)
    stop = threading.Event()

    def service():
        last = "0"
        while not stop.is_set():
            got = r.xread({"jobs": last}, count=10, block=100)
            for _, entries in got or []:
                for eid, f in entries:
                    last = eid
                    # The request's value members and its headers, as fields.
                    r.xadd(f["reply-to"], {"correlation-id": f["correlation-id"],
                                           "result": f["task"].upper()})

    th = threading.Thread(target=service, daemon=True)
    th.start()
    try:
        st, _, ans = call(rb, "POST", "/v1/topics/jobs/requests",
                          {"value": {"task": "resize"}, "reply_to": "jobs.out",
                           "timeout_ms": 10000})
        assert st == 200, ans
        assert ans["reply"]["value"] == {"correlation-id": ans["correlation_id"],
                                         "result": "RESIZE"}
        assert ans["reply"]["topic"] == "jobs.out"
    finally:
        stop.set()
        th.join(10)


def test_timeouts_strays_and_checks(rb):
    for t in ("slow", "slow.replies"):
        call(rb, "POST", "/v1/topics", {"name": t})
    t0 = time.time()
    resp = call(rb, "POST", "/v1/topics/slow/requests", {"value": 1, "timeout_ms": 300})
    assert 0.3 <= time.time() - t0 < 5
    assert_error(resp, 504, "timeout", "no reply on topic slow.replies with correlation-id")
    # A reply for no waiting request, and one without any correlation id, answer nothing; the
    # caller's own reply still comes through.
    st, _, r = call(rb, "GET", "/v1/topics/slow/events?partition=0&offset=0")
    first = r["events"][0]
    corr = {h["key"]: h["value"] for h in first["headers"]}["correlation-id"]
    call(rb, "POST", "/v1/topics/slow.replies/events",
         [{"value": "late", "headers": {"correlation-id": corr}}, {"value": "plain"}])
    results = {}

    def caller():
        results["r"] = call(rb, "POST", "/v1/topics/slow/requests",
                            {"value": 2, "timeout_ms": 10000})

    th = threading.Thread(target=caller)
    th.start()
    end = time.time() + 10
    mine = None
    while mine is None and time.time() < end:
        st, _, r = call(rb, "GET", "/v1/topics/slow/events?partition=0&offset=1")
        if r["events"]:
            mine = {h["key"]: h["value"] for h in r["events"][0]["headers"]}["correlation-id"]
        time.sleep(0.02)
    call(rb, "POST", "/v1/topics/slow.replies/events",
         [{"value": "other", "headers": {"correlation-id": "0" * 32}},
          {"value": {"ok": True}, "headers": {"correlation-id": mine}}])
    th.join(15)
    st, _, ans = results["r"]
    assert st == 200 and ans["reply"]["value"] == {"ok": True}
    # The body's checks.
    assert_error(call(rb, "POST", "/v1/topics/slow/requests", {"value": 1, "timeout_ms": 0}),
                 400, "invalid_argument", "timeout_ms")
    assert_error(call(rb, "POST", "/v1/topics/slow/requests", {"value": 1, "reply_to": 5}),
                 400, "invalid_argument", "reply_to")
    assert_error(call(rb, "POST", "/v1/topics/slow/requests", {"value": 1, "what": 5}),
                 400, "invalid_argument", "unknown field")
    assert_error(call(rb, "POST", "/v1/topics/slow/requests",
                      {"value": 1, "reply_to": "nowhere"}), 404, "not_found", "reply topic")
    assert_error(call(rb, "POST", "/v1/topics/absent/requests",
                      {"value": 1, "reply_to": "slow.replies"}), 404, "not_found")
    st, _, _ = call(rb, "GET", "/v1/topics/slow/requests")
    assert st == 405


def test_cli_request(rb):
    for t in ("quotes", "quotes.replies"):
        call(rb, "POST", "/v1/topics", {"name": t})
    svc = KafkaService(rb, "quotes")
    svc.start()
    assert svc.ready.wait(30)
    url = f"http://127.0.0.1:{rb.http_port}"
    try:
        p = subprocess.run([BIN, "request", "quotes", '{"n": 4}', "--server", url],
                           capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout) == {"doubled": 8}
        p = subprocess.run([BIN, "request", "quotes", '{"n": 5}', "--json", "--key", "k",
                            "--header", "x-a=b", "--server", url], capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
        ans = json.loads(p.stdout)
        assert ans["reply"]["value"] == {"doubled": 10} and len(ans["correlation_id"]) == 32
        assert svc.seen[-1]["x-a"] == "b"
    finally:
        svc.stop.set()
        svc.join(30)
    p = subprocess.run([BIN, "request", "quotes", '{"n": 6}', "--timeout", "200",
                        "--server", url], capture_output=True, timeout=60)
    assert p.returncode == 1 and b"no reply on topic quotes.replies" in p.stderr
    p = subprocess.run([BIN, "request", "quotes"], capture_output=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin"})
    assert p.returncode == 2 and b"running broker" in p.stderr
