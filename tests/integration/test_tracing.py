"""W3C Trace Context across the protocols (docs/tracing.md): an HTTP request's traceparent and
tracestate become event headers (read back over HTTP and by a Kafka consumer), an invalid one is
ignored; a Kafka traceparent header reads over HTTP and Redis; Redis XADD's traceparent and
tracestate fields are headers and read back as fields; trace.inject gives events without a
context a new one (not Kafka's batches); a dead-lettered then redriven event stays in its trace,
each copy a child span of the one before, with x-causation-* headers naming its cause."""
import re
import time

import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import Broker
from test_http import call
from test_http_sse import Sse
from test_redis_streams import raw_cmd

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TP_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def start(tmp_path, *extra):
    return Broker(str(tmp_path / "data"), extra=extra, http=True, redis=True).start()


@pytest.fixture
def tb(tmp_path):
    b = start(tmp_path)
    yield b
    if b.proc:
        b.stop()


def hdrs(ev):
    """An HTTP-read event's headers as a list of (key, value)."""
    return [(h["key"], h.get("value")) for h in ev["headers"]]


def read(b, topic, n, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        st, _, r = call(b, "GET", f"/v1/topics/{topic}/events?limit=1000")
        assert st == 200, r
        if len(r["events"]) >= n:
            return r["events"]
        time.sleep(0.05)
    raise AssertionError(f"{topic}: fewer than {n} events")


def kafka_read(b, topic, n, timeout=20):
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "t", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got, end = [], time.time() + timeout
    while len(got) < n and time.time() < end:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m)
    c.close()
    assert len(got) == n
    return got


def produce(b, topic, body, headers=None):
    st, _, r = call(b, "POST", f"/v1/topics/{topic}/events", body, headers=headers)
    assert st == 200, r
    return r


def test_http_headers_become_event_headers(tb):
    assert call(tb, "POST", "/v1/topics", {"name": "orders"})[0] == 201
    own = "00-11111111111111111111111111111111-2222222222222222-00"
    produce(tb, "orders", [{"value": {"n": 1}},
                           {"value": {"n": 2}, "headers": {"traceparent": own, "a": "b"}},
                           {"value": {"n": 3}, "headers": {"tracestate": "mine=1"}}],
            headers={"traceparent": TP, "tracestate": "rojo=00f067aa0ba902b7,congo=t61"})
    evs = read(tb, "orders", 3)
    assert hdrs(evs[0]) == [("traceparent", TP),
                            ("tracestate", "rojo=00f067aa0ba902b7,congo=t61")]
    # An event's own context wins, with its own state (none here).
    assert hdrs(evs[1]) == [("traceparent", own), ("a", "b")]
    # Its own tracestate is kept, the request's traceparent added.
    assert hdrs(evs[2]) == [("tracestate", "mine=1"), ("traceparent", TP)]
    # The same through a live subscription (SSE) ...
    sse = Sse(tb, "topics=orders&from=earliest")
    try:
        (first,) = sse.events(1)
        assert hdrs(first["data"]) == hdrs(evs[0])
    finally:
        sse.close()
    # ... and a Kafka consumer.
    ms = kafka_read(tb, "orders", 3)
    assert ms[0].headers() == [("traceparent", TP.encode()),
                               ("tracestate", b"rojo=00f067aa0ba902b7,congo=t61")]
    assert ms[1].headers()[0] == ("traceparent", own.encode())


@pytest.mark.parametrize("bad", [
    TP.upper(),                                               # uppercase hex
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace-id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero parent-id
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff
    TP[:-1],                                                  # truncated
    TP + "0",                                                 # version 00 is 55 bytes
])
def test_invalid_traceparent_is_ignored(tb, bad):
    call(tb, "POST", "/v1/topics", {"name": "t"})
    produce(tb, "t", {"value": 1}, headers={"traceparent": bad, "tracestate": "a=1"})
    (ev,) = read(tb, "t", 1)
    assert hdrs(ev) == []  # neither traceparent nor (then meaningless) tracestate


def test_later_version_is_carried(tb):
    call(tb, "POST", "/v1/topics", {"name": "t"})
    later = "01" + TP[2:] + "-future"
    produce(tb, "t", {"value": 1}, headers={"traceparent": later})
    (ev,) = read(tb, "t", 1)
    assert hdrs(ev) == [("traceparent", later)]


def test_kafka_traceparent_reads_over_http_and_redis(tb):
    call(tb, "POST", "/v1/topics", {"name": "k"})
    p = Producer({"bootstrap.servers": tb.bootstrap})
    p.produce("k", value=b'{"id":7}', headers=[("traceparent", TP.encode())])
    assert p.flush(30) == 0
    (ev,) = read(tb, "k", 1)
    assert hdrs(ev) == [("traceparent", TP)]
    r = redis.Redis(port=tb.redis_port)
    ((_, fields),) = r.xrange("k")
    assert fields == {b"id": b"7", b"traceparent": TP.encode()}


def test_redis_trace_fields_round_trip(tb):
    r = redis.Redis(port=tb.redis_port)
    i1 = r.xadd("s", {"order": "o-1", "traceparent": TP, "tracestate": "x=1"})
    # Binary-safe form (a value that is not UTF-8) keeps the mapping too.
    i2 = r.execute_command("XADD", "s", "*", "traceparent", TP, "blob", b"\xff\x00")
    # A repeated name is not a header: Redis's fields as given.
    i3 = r.execute_command("XADD", "s", "*", "traceparent", "a", "traceparent", "b")
    # Only the context: an empty object value.
    i4 = r.xadd("s", {"traceparent": TP})
    got = raw_cmd(tb, "XRANGE", "s", "-", "+")
    assert [e[0] for e in got] == [i1, i2, i3, i4]
    assert got[0][1] == [b"order", b"o-1", b"traceparent", TP.encode(), b"tracestate", b"x=1"]
    assert got[1][1] == [b"blob", b"\xff\x00", b"traceparent", TP.encode()]
    assert got[2][1] == [b"traceparent", b"a", b"traceparent", b"b"]
    assert got[3][1] == [b"traceparent", TP.encode()]
    # XREAD gives the same.
    ((_, xr),) = raw_cmd(tb, "XREAD", "COUNT", "1", "STREAMS", "s", "0")
    assert xr[0][1] == got[0][1]
    # Over HTTP: headers, and the value without them.
    evs = read(tb, "s", 4)
    assert evs[0]["value"] == {"order": "o-1"}
    assert hdrs(evs[0]) == [("traceparent", TP), ("tracestate", "x=1")]
    assert ("traceparent", TP) in hdrs(evs[1])
    assert evs[3]["value"] == {} and hdrs(evs[3]) == [("traceparent", TP)]


def test_redis_pipelined_trace_fields(tb):
    """Pipelined XADDs are appended as batches: each entry keeps its own trace headers, whatever
    its neighbours carry (none, one, both, a binary value)."""
    r = redis.Redis(port=tb.redis_port)
    p = r.pipeline(transaction=False)
    want = []
    for i in range(60):
        tp = "00-%032x-%016x-01" % (i + 1, i + 1)
        kind = i % 4
        if kind == 0:
            fields = [b"n", b"%d" % i]
        elif kind == 1:
            fields = [b"n", b"%d" % i, b"traceparent", tp.encode()]
        elif kind == 2:
            fields = [b"tracestate", b"s=%d" % i, b"n", b"%d" % i, b"traceparent", tp.encode()]
        else:
            fields = [b"traceparent", tp.encode(), b"bin", b"\xff%d" % i]
        p.execute_command("XADD", "ps", "*", *fields)
        # What reads give back: the other fields, then the trace ones in their order.
        plain = [f for k in range(0, len(fields), 2) for f in fields[k:k + 2]
                 if fields[k] not in (b"traceparent", b"tracestate")]
        trace = [f for k in range(0, len(fields), 2) for f in fields[k:k + 2]
                 if fields[k] in (b"traceparent", b"tracestate")]
        want.append(plain + trace)
    p.execute()
    got = raw_cmd(tb, "XRANGE", "ps", "-", "+")
    assert [e[1] for e in got] == want
    evs = read(tb, "ps", 60)
    for i, ev in enumerate(evs):
        keys = [k for k, _ in hdrs(ev)]
        if i % 4 == 0:
            assert "traceparent" not in keys
        else:
            assert ("traceparent", "00-%032x-%016x-01" % (i + 1, i + 1)) in hdrs(ev)
        assert ("tracestate" in keys) == (i % 4 == 2)


def test_injection_off_by_default(tb):
    call(tb, "POST", "/v1/topics", {"name": "t"})
    produce(tb, "t", {"value": 1})
    redis.Redis(port=tb.redis_port).xadd("t", {"a": "1"})
    evs = read(tb, "t", 2)
    assert [hdrs(e) for e in evs] == [[], []]


@pytest.mark.parametrize("sampled", [False, True])
def test_injection_missing(tmp_path, sampled):
    extra = ["--set", "trace.inject=missing"]
    if sampled:
        extra += ["--set", "trace.inject.sampled=true"]
    b = start(tmp_path, *extra)
    try:
        call(b, "POST", "/v1/topics", {"name": "t"})
        produce(b, "t", [{"value": 1}, {"value": 2, "headers": {"traceparent": TP}}])
        r = redis.Redis(port=b.redis_port)
        r.xadd("t", {"a": "1"})  # batched XADDs
        r.xadd("t", {"a": "2", "traceparent": TP})
        p = Producer({"bootstrap.servers": b.bootstrap})
        p.produce("t", value=b"k")
        assert p.flush(30) == 0
        evs = read(b, "t", 5)
        ids = []
        for i in (0, 2):
            (tp,) = [v for k, v in hdrs(evs[i]) if k == "traceparent"]
            m = TP_RE.match(tp)
            assert m and m.group(3) == ("01" if sampled else "00"), tp
            assert m.group(1) != "0" * 32 and m.group(2) != "0" * 16
            ids.append(m.group(1))
        assert ids[0] != ids[1]  # a new trace each
        assert hdrs(evs[1]) == [("traceparent", TP)]  # its own, untouched
        assert [v for k, v in hdrs(evs[3]) if k == "traceparent"] == [TP]
        assert hdrs(evs[4]) == []  # Kafka's batches are stored as the client made them
        # The injected context reads back through Redis as a field.
        assert b"traceparent" in r.xrange("t", count=1)[0][1]
    finally:
        b.stop()


def test_invalid_setting_refused(tmp_path):
    b = Broker(str(tmp_path / "data"), extra=["--set", "trace.inject=all"])
    with pytest.raises(AssertionError):
        b.start()
    assert "trace.inject: expected none or missing" in b.stderr()


def wait_for(fn, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_dead_letter_and_redrive_stay_in_the_trace(tb):
    """An order event produced with a traceparent fails its one delivery: its dead letter is a
    child span of it, and its redriven copy a child of the dead letter, all in one trace."""
    call(tb, "POST", "/v1/topics", {"name": "orders"})
    produce(tb, "orders", {"key": "o-1", "value": {"order": 1}}, headers={"traceparent": TP})
    st, _, _ = call(tb, "PUT", "/v1/queues/billing",
                    {"topic": "orders", "max_deliveries": 1, "ack_timeout_ms": 10000})
    assert st in (200, 201)
    st, _, r = call(tb, "POST", "/v1/queues/billing/receive", {"max": 1, "wait_ms": 2000})
    assert st == 200 and len(r["events"]) == 1
    ev = r["events"][0]
    assert ("traceparent", TP) in hdrs(ev)  # a delivery carries the event's context
    st, _, r = call(tb, "POST", "/v1/queues/billing/nack",
                    {"ids": [ev["id"]], "error": "card declined"})
    assert st == 200
    (dead,) = wait_for(lambda: call(tb, "GET", "/v1/topics/orders.dlq/events")[2]
                       .get("events") if call(tb, "GET", "/v1/topics/orders.dlq")[0] == 200
                       else None)
    h = dict(hdrs(dead))
    m = TP_RE.match(h["traceparent"])
    orig = TP_RE.match(TP)
    assert m.group(1) == orig.group(1)  # the same trace
    assert m.group(2) != orig.group(2)  # a span of its own ...
    assert h["x-causation-span-id"] == orig.group(2)  # ... whose parent is the event's
    assert m.group(3) == orig.group(3)
    assert h["x-causation-id"] == "orders/0/0"
    assert h["x-dlq-topic"] == "orders" and h["x-dlq-error"] == "card declined"
    assert [k for k, _ in hdrs(dead)].count("traceparent") == 1
    # Redrive: back to orders, a child of the dead letter, x-dlq-* gone.
    st, _, job = call(tb, "POST", "/v1/topics/orders.dlq/redrive", {})
    assert st == 202, job
    wait_for(lambda: call(tb, "GET", f"/v1/redrives/{job['id']}")[2]["state"] == "done")
    evs = read(tb, "orders", 2)
    back = dict(hdrs(evs[1]))
    assert evs[1]["key"] == "o-1" and evs[1]["value"] == {"order": 1}
    m2 = TP_RE.match(back["traceparent"])
    assert m2.group(1) == orig.group(1)
    assert m2.group(2) not in (orig.group(2), m.group(2))
    assert back["x-causation-span-id"] == m.group(2)
    assert back["x-causation-id"] == "orders.dlq/0/%d" % dead["offset"]
    assert not [k for k in back if k.startswith("x-dlq-")]
    assert [k for k, _ in hdrs(evs[1])].count("traceparent") == 1
    assert [k for k, _ in hdrs(evs[1])].count("x-causation-id") == 1


def test_dead_letter_without_context(tb):
    """An event without a traceparent: its dead letter names its cause, and has no context
    (injection is off)."""
    call(tb, "POST", "/v1/topics", {"name": "jobs"})
    produce(tb, "jobs", {"value": 1})
    call(tb, "PUT", "/v1/queues/w", {"topic": "jobs", "max_deliveries": 1})
    st, _, r = call(tb, "POST", "/v1/queues/w/receive", {"max": 1, "wait_ms": 2000})
    call(tb, "POST", "/v1/queues/w/nack", {"ids": [r["events"][0]["id"]]})
    (dead,) = wait_for(lambda: call(tb, "GET", "/v1/topics/jobs.dlq/events")[2]
                       .get("events") if call(tb, "GET", "/v1/topics/jobs.dlq")[0] == 200
                       else None)
    h = dict(hdrs(dead))
    assert h["x-causation-id"] == "jobs/0/0"
    assert "traceparent" not in h and "x-causation-span-id" not in h
