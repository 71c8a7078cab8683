"""Delayed delivery (docs/queues.md#delayed-delivery): an event names when queue groups deliver
it (the tidings-deliver-at and tidings-delay-ms headers, HTTP's deliver_at and delay_ms, Redis
XADD's DELAY and DELIVERAT, or its topic's delivery.delay.ms); the log keeps it in order of
arrival, so a raw reader sees it at once, and a queue group delivers it from its time on, never
before. Durable across kill -9; far events (beyond the horizon) cost no memory until their time
nears.
"""
import json
import random
import signal
import subprocess
import threading
import time

import pytest

from conftest import BIN, Broker

# The precision target (docs/queues.md#delayed-delivery) is 50 ms under light load, and
# bench/delay.py measures it (docs/performance.md). Tests run beside others: a release build is
# held to a p99 that still catches a delivery left for a later poll or the delivery thread's
# idle wake-up (a second). The sanitizer builds (make test) run several times slower, so 10 000
# events a second are a backlog for them: they are held to none early, none lost, none twice.
PRECISION_MS = 400 if "san" not in BIN else None
from test_health import metrics_text
from test_http import assert_error, call


@pytest.fixture
def db(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True, redis=True).start()
    yield b
    if b.proc:
        b.stop()


def now_ms():
    return int(time.time() * 1000)


def make(b, topic="jobs", group="work", config=None, **policy):
    body = {"name": topic}
    if config:
        body["config"] = config
    st, _, r = call(b, "POST", "/v1/topics", body)
    assert st in (200, 201) or r["error"]["code"] == "already_exists", r
    st, _, g = call(b, "PUT", f"/v1/queues/{group}", {"topic": topic, **policy})
    assert st == 201, g


def produce(b, events, topic="jobs"):
    st, _, body = call(b, "POST", f"/v1/topics/{topic}/events", events)
    assert st == 200, body
    return body["offsets"]


def receive(b, n=100, wait_ms=0, group="work", conn=None):
    st, _, body = call(b, "POST", f"/v1/queues/{group}/receive",
                       {"max": n, "wait_ms": wait_ms, "consumer": "c1"}, conn=conn)
    assert st == 200, body
    return body["events"]


def ack(b, evs, group="work", conn=None):
    if not evs:
        return
    st, _, body = call(b, "POST", f"/v1/queues/{group}/ack", {"ids": [e["id"] for e in evs]},
                       conn=conn)
    assert st == 200 and body["ok"] == len(evs), body


def describe(b, group="work"):
    st, _, g = call(b, "GET", f"/v1/queues/{group}")
    assert st == 200, g
    return g


def hdr(e, name):
    for h in e.get("headers") or []:
        if h["key"] == name:
            return h["value"]
    return None


def test_delayed_events_wait_for_their_time(db):
    make(db)
    t0 = now_ms()
    produce(db, [{"key": "now", "value": 1},
                 {"key": "soon", "value": 2, "delay_ms": 700},
                 {"key": "later", "value": 3, "deliver_at": t0 + 1500},
                 {"key": "hdr", "value": 4,
                  "headers": {"tidings-delay-ms": "1000"}}])
    first = receive(db, 10)
    assert [e["key"] for e in first] == ["now"]
    g = describe(db)
    assert g["scheduled"] == 3 and g["depth"] == 1, g
    assert g["next_scheduled_ms"] >= t0 + 700, g
    assert 'tidings_queue_scheduled{group="work"} 3' in metrics_text(db)
    out = subprocess.run([BIN, "queue", "describe", "work", "--server",
                          f"http://127.0.0.1:{db.http_port}"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0 and "scheduled      3\n" in out.stdout, out
    assert "next scheduled " in out.stdout, out.stdout
    ack(db, first)
    # The raw log keeps them in order of arrival, readable at once (as a Kafka consumer reads).
    st, _, raw = call(db, "GET", "/v1/topics/jobs/events?partition=0&offset=0&max=10")
    assert st == 200 and [e["key"] for e in raw["events"]] == ["now", "soon", "later", "hdr"]
    assert hdr(raw["events"][1], "tidings-delay-ms") == "700"
    assert hdr(raw["events"][2], "tidings-deliver-at") == str(t0 + 1500)
    got = {}
    end = time.time() + 10
    while len(got) < 3 and time.time() < end:
        for e in receive(db, 10, wait_ms=2000):
            got[e["key"]] = now_ms()
            ack(db, [e])
    ts = {e["key"]: e["timestamp"] for e in raw["events"]}
    assert set(got) == {"soon", "later", "hdr"}, got
    assert got["soon"] >= ts["soon"] + 700
    assert got["hdr"] >= ts["hdr"] + 1000
    assert got["later"] >= t0 + 1500
    g = describe(db)
    assert g["scheduled"] == 0 and g["next_scheduled_ms"] is None and g["acked"] == 4, g


def test_bad_delay_fields_are_refused(db):
    make(db)
    for ev, msg in [({"value": 1, "delay_ms": -1}, "delay_ms"),
                    ({"value": 1, "delay_ms": "5"}, "delay_ms"),
                    ({"value": 1, "deliver_at": "tomorrow"}, "deliver_at"),
                    ({"value": 1, "deliver_at": 0}, "deliver_at"),
                    ({"value": 1, "deliver_at": 1000000000000000000}, "deliver_at"),
                    ({"value": 1, "delay_ms": 5, "deliver_at": 5}, "not both")]:
        assert_error(call(db, "POST", "/v1/topics/jobs/events", [ev]), 400, "invalid_argument",
                     msg)
    # A UTC time is accepted, and a past time delivers at once.
    produce(db, [{"key": "past", "value": 1, "deliver_at": "2020-01-01T00:00:00.500Z"}])
    evs = receive(db, 10)
    assert [e["key"] for e in evs] == ["past"]
    assert hdr(evs[0], "tidings-deliver-at") == "1577836800500"
    # A header that does not parse is not a delay: delivered at once.
    produce(db, [{"key": "junk", "value": 1, "headers": {"tidings-delay-ms": "soon"}}])
    assert [e["key"] for e in receive(db, 10)] == ["junk"]


def test_topic_default_delay(db):
    make(db, config={"delivery.delay.ms": "800"})
    st, _, t = call(db, "GET", "/v1/topics/jobs")
    assert t["config"]["delivery.delay.ms"] == "800", t
    offs = produce(db, [{"key": "a", "value": 1},
                        {"key": "b", "value": 2, "delay_ms": 0}])  # its own: at once
    assert [e["key"] for e in receive(db, 10)] == ["b"]
    t0 = time.time()
    evs = receive(db, 10, wait_ms=3000)
    assert [e["key"] for e in evs] == ["a"] and time.time() - t0 > 0.3, evs
    assert offs[0]["offset"] == 0


def test_redis_xadd_delay(db):
    import redis
    r = redis.Redis(host="127.0.0.1", port=db.redis_port)
    r.xadd("rjobs", {"n": "0"})
    make(db, topic="rjobs", group="rwork")
    t0 = now_ms()
    r.execute_command("XADD", "rjobs", "DELAY", "600", "*", "n", "1")
    r.execute_command("XADD", "rjobs", "DELIVERAT", str(t0 + 900), "*", "n", "2")
    for args, msg in [(["DELAY", "-5"], "DELAY argument"),
                      (["DELAY", "x"], "not an integer"),
                      (["DELAY", "5", "DELIVERAT", "9"], "given once"),
                      (["DELAY", "5", "*", "tidings-key", "e"], "takes no DELAY")]:
        with pytest.raises(redis.ResponseError, match=msg):
            r.execute_command("XADD", "rjobs", *args, *([] if "*" in args else ["*"]),
                              "n", "3")
    # XREAD (the raw stream) sees both at once.
    assert len(r.xrange("rjobs")) == 3
    first = receive(db, 10, group="rwork")
    assert [e["value"] for e in first] == [{"n": "0"}], first
    ack(db, first, group="rwork")
    got = []
    end = time.time() + 10
    while len(got) < 2 and time.time() < end:
        for e in receive(db, 10, wait_ms=2000, group="rwork"):
            got.append((now_ms(), e))
            ack(db, [e], group="rwork")
    assert len(got) == 2, got
    assert got[0][0] >= t0 + 600 and got[1][0] >= t0 + 900, got


def test_ordering_by_key_with_a_delayed_event(db):
    make(db, ordering="key")
    produce(db, [{"key": "k", "value": 1, "delay_ms": 500}, {"key": "k", "value": 2}])
    first = receive(db, 10)
    assert [e["value"] for e in first] == [2]
    # It falls due while its key's later event is out: held behind it, not delivered beside it.
    time.sleep(0.8)
    assert receive(db, 10) == []
    assert describe(db)["held"] == 1
    ack(db, first)
    evs = receive(db, 10, wait_ms=2000)
    assert [e["value"] for e in evs] == [1]


class Consumer(threading.Thread):
    """Receives and acks until stopped; records by key when each event arrived (ms) and its
    timestamp."""

    def __init__(self, b, group="work"):
        super().__init__(daemon=True)
        self.b, self.group = b, group
        self.got, self.ts = {}, {}
        self.dups = 0
        self.stop = threading.Event()

    def run(self):
        import http.client
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.b.http_port, timeout=10)
                evs = receive(self.b, 1000, wait_ms=200, group=self.group, conn=conn)
                t = now_ms()
                for e in evs:
                    if e["key"] in self.got:
                        self.dups += 1
                    else:
                        self.got[e["key"]] = t
                        self.ts[e["key"]] = e["timestamp"]
                ack(self.b, evs, group=self.group, conn=conn)
            except (OSError, http.client.HTTPException, AssertionError):
                conn = None  # the broker was killed, or is not back yet
                time.sleep(0.05)


def produce_delayed(b, n, lead_ms, spread_ms, seed):
    """n events, each with delay_ms lead_ms plus a random share of spread_ms; the delays by
    key."""
    rnd = random.Random(seed)
    delay = {}
    batch = []
    for i in range(n):
        delay[f"e{i}"] = lead_ms + rnd.randrange(spread_ms)
        batch.append({"key": f"e{i}", "value": i, "delay_ms": delay[f"e{i}"]})
        if len(batch) == 2000:
            produce(b, batch)
            batch = []
    if batch:
        produce(b, batch)
    return delay


def lateness(c, delay, keys=None):
    """Per event received by c: its arrival minus its time (timestamp + delay), sorted; p50,
    p99, max."""
    late = sorted(c.got[k] - (c.ts[k] + delay[k]) for k in (keys or c.got))
    return late, late[len(late) // 2], late[int(len(late) * 0.99)], late[-1]


def wait_for(cond, timeout):
    end = time.time() + timeout
    while not cond() and time.time() < end:
        time.sleep(0.1)


def test_100k_delayed_events_on_time(db):
    """100 000 events with random delays up to 10 s: none early, none lost, on time."""
    make(db, max_in_flight=5000, max_in_flight_per_consumer=2000)
    c = Consumer(db)
    c.start()
    delay = produce_delayed(db, 100000, 1000, 10000, seed=1)
    wait_for(lambda: len(c.got) >= len(delay), 90)
    c.stop.set()
    c.join(15)
    assert len(c.got) == len(delay), (len(c.got), describe(db))
    late, p50, p99, worst = lateness(c, delay)
    print(f"lateness ms: p50 {p50} p99 {p99} max {worst}")
    assert late[0] >= 0, f"delivered {-late[0]} ms early"
    assert c.dups == 0
    if PRECISION_MS:
        assert p99 <= PRECISION_MS, (p50, p99, worst)


def test_delayed_events_survive_kill9(tmp_path):
    """Delayed events scheduled (most of them far, beyond a short horizon, so rescans run all
    along), some delivered, then kill -9, three times: in the end every event is delivered, none
    before its time."""
    data = str(tmp_path / "data")
    extra = ["--set", "queue.schedule.horizon.ms=1000"]
    b = Broker(data, http=True, extra=extra).start()
    consumers = []
    try:
        make(b, max_in_flight=5000, max_in_flight_per_consumer=2000)
        c = Consumer(b)
        c.start()
        consumers.append(c)
        delay = produce_delayed(b, 20000, 1000, 8000, seed=2)
        rnd = random.Random(7)
        for kill in range(3):
            have = len(set().union(*(x.got for x in consumers)))
            want = have + rnd.randrange(2000, 4000)
            wait_for(lambda: len(set().union(*(x.got for x in consumers))) >= want, 60)
            b.stop(signal.SIGKILL)
            c.stop.set()
            c.join(15)
            b = Broker(data, http=True, extra=extra).start()
            c = Consumer(b)
            c.start()
            consumers.append(c)
        ready = now_ms()
        wait_for(lambda: len(set().union(*(x.got for x in consumers))) >= len(delay), 60)
        c.stop.set()
        c.join(15)
        got = set().union(*(x.got for x in consumers))
        assert len(got) == len(delay), (len(got), describe(b))
        for x in consumers:
            late, _, _, _ = lateness(x, delay)
            assert late[0] >= 0, f"delivered {-late[0]} ms early"
        # Those due once the broker was back for good are on time as before.
        back = [k for k in c.got if c.ts[k] + delay[k] >= ready + 500]
        late, p50, p99, worst = lateness(c, delay, back)
        again = sum(len(x.got) for x in consumers) - len(got)
        print(f"after 3 kill -9: {len(back)} due later, p50 {p50} p99 {p99}; "
              f"{again} delivered again")
        if PRECISION_MS:
            assert p99 <= 2 * PRECISION_MS, (p50, p99, worst)
        # Left: what was out when the broker died, until its ack time-out (at least once).
        g = describe(b)
        assert g["scheduled"] == 0 and g["depth"] == g["in_flight"], g
    finally:
        for x in consumers:
            x.stop.set()
        if b.proc:
            b.stop()


def test_far_events_are_rescanned(tmp_path):
    """With a short horizon, events due later cost no memory until their time nears, and are
    delivered on time all the same."""
    b = Broker(str(tmp_path / "data"), http=True,
               extra=["--set", "queue.schedule.horizon.ms=300"]).start()
    try:
        make(b, max_in_flight=5000, max_in_flight_per_consumer=2000)
        c = Consumer(b)
        c.start()
        delay = produce_delayed(b, 5000, 1500, 3000, seed=3)
        peak = 0
        end = time.time() + 30
        while len(c.got) < len(delay) and time.time() < end:
            peak = max(peak, describe(b)["scheduled"])
            time.sleep(0.05)
        c.stop.set()
        c.join(15)
        assert len(c.got) == len(delay)
        late, p50, p99, worst = lateness(c, delay)
        assert late[0] >= 0
        assert c.dups == 0
        if PRECISION_MS:
            assert p99 <= 2 * PRECISION_MS, (p50, p99, worst)
        # Twice the horizon (0.6 s) holds about a fifth of events spread over 3 s.
        assert 0 < peak < len(delay) * 0.6, peak
    finally:
        b.stop()


def test_kafka_header_delays_a_queue_group_not_a_consumer(db):
    """A Kafka producer's tidings-delay-ms header: a Kafka consumer of the topic reads the record
    at once, while the topic's queue group still holds it; the group delivers it after the
    delay."""
    from confluent_kafka import Consumer as KConsumer, Producer, TopicPartition
    make(db, topic="kjobs", group="kwork")
    p = Producer({"bootstrap.servers": db.bootstrap})
    t0 = now_ms()
    p.produce("kjobs", key=b"k1", value=b"later", headers=[("tidings-delay-ms", b"5000")])
    p.produce("kjobs", key=b"k2", value=b"now")
    assert p.flush(10) == 0
    first = receive(db, 10, group="kwork")
    assert [e["key"] for e in first] == ["k2"], first
    ack(db, first, group="kwork")
    kc = KConsumer({"bootstrap.servers": db.bootstrap, "group.id": "raw"})
    kc.assign([TopicPartition("kjobs", 0, 0)])
    seen = []
    end = time.time() + 10
    while len(seen) < 2 and time.time() < end:
        m = kc.poll(0.5)
        if m is not None and not m.error():
            seen.append((m.key(), dict(m.headers() or [])))
    kc.close()
    read_ms = now_ms() - t0
    assert [k for k, _ in seen] == [b"k1", b"k2"], seen
    assert seen[0][1]["tidings-delay-ms"] == b"5000"
    g = describe(db, "kwork")
    assert read_ms < 5000 and g["scheduled"] == 1, (read_ms, g)
    evs = receive(db, 10, wait_ms=8000, group="kwork")
    assert [e["key"] for e in evs] == ["k1"] and now_ms() >= evs[0]["timestamp"] + 5000, evs


def test_delayed_view_forwards_events_at_their_time(tmp_path):
    """A forwarding group (forward.to) is a delayed view: the broker appends each event of the
    topic to the view topic when it falls due, so a Kafka consumer of the view reads them at
    their time and in that order; across kill -9 none is lost or early."""
    from confluent_kafka import Consumer as KConsumer
    data = str(tmp_path / "data")
    b = Broker(data, http=True).start()
    try:
        call(b, "POST", "/v1/topics", {"name": "orders", "partitions": 2})
        st, _, g = call(b, "PUT", "/v1/queues/orders-view",
                        {"topic": "orders", "forward_to": "orders.later"})
        assert st == 201 and g["policy"]["forward_to"] == "orders.later", g
        # A client cannot receive from it: the broker is its consumer.
        assert_error(call(b, "POST", "/v1/queues/orders-view/receive", {"max": 1}), 400,
                     "invalid_argument", "orders.later")
        # Nor settle what the broker has in flight.
        for op in ("ack", "nack", "extend"):
            assert_error(call(b, "POST", f"/v1/queues/orders-view/{op}", {"ids": ["1.0.0.1"]}),
                         400, "invalid_argument", "the broker settles")
        # Nor may it forward into what it reads.
        assert_error(call(b, "PUT", "/v1/queues/loop", {"topic": "orders.#",
                                                        "forward_to": "orders.x"}),
                     400, "invalid_config", "reads")
        delays = {"a": 1500, "b": 600, "c": 0, "d": 1100}
        t0 = now_ms()
        produce(b, [{"key": k, "value": k, "delay_ms": d} for k, d in delays.items()],
                topic="orders")
        kc = KConsumer({"bootstrap.servers": b.bootstrap, "group.id": "view-reader",
                        "auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms":
                        500})
        kc.subscribe(["orders.later"])
        got = []
        end = time.time() + 20
        while len(got) < 4 and time.time() < end:
            m = kc.poll(0.2)
            if m is not None and not m.error():
                got.append((m.key().decode(), now_ms(), dict(m.headers() or [])))
        kc.close()
        assert sorted(k for k, _, _ in got) == sorted(delays), got
        for k, t, h in got:
            assert t >= t0 + delays[k], (k, t - t0)
            assert h["x-causation-id"].decode().startswith("orders/"), h
        # Created with the origin's partitions; each holds its events in the order they fell
        # due (a key's partition is murmur2's, the same in both topics).
        st, _, view = call(b, "GET", "/v1/topics/orders.later")
        assert view["partition_count"] == 2
        for p in (0, 1):
            st, _, r = call(b, "GET", f"/v1/topics/orders.later/events?partition={p}&offset=0")
            ks = [e["key"] for e in r["events"]]
            assert ks == sorted(ks, key=lambda k: delays[k]), ks
        # Across kill -9: events scheduled before it are forwarded after it, none early.
        t1 = now_ms()
        produce(b, [{"key": f"k{i}", "value": i, "delay_ms": 1500} for i in range(50)],
                topic="orders")
        time.sleep(0.3)
        b.stop(signal.SIGKILL)
        b = Broker(data, http=True).start()
        seen = {}
        end = time.time() + 20
        while len(seen) < 50 and time.time() < end:
            for p in (0, 1):
                st, _, r = call(b, "GET", f"/v1/topics/orders.later/events?partition={p}"
                                          f"&offset=0&limit=1000")
                for e in r["events"]:
                    if e["key"].startswith("k"):
                        seen.setdefault(e["key"], now_ms())
            time.sleep(0.1)
        assert len(seen) == 50, len(seen)
        assert min(seen.values()) >= t1 + 1500
    finally:
        if b.proc:
            b.stop()


def test_cli_produce_delay(db):
    make(db)
    srv = f"http://127.0.0.1:{db.http_port}"
    out = subprocess.run([BIN, "produce", "jobs", "--server", srv, "--delay", "800", "-k", ":"],
                         input="a:1\nb:2\n", capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out
    bad = subprocess.run([BIN, "produce", "jobs", "--server", srv, "--delay", "-1"],
                         input="x\n", capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "--delay takes" in bad.stderr, bad
    assert describe(db)["scheduled"] == 0  # not read yet: a receive reads
    assert receive(db, 10) == []
    assert describe(db)["scheduled"] == 2
    evs = receive(db, 10, wait_ms=3000)
    assert sorted(e["key"] for e in evs) == ["a", "b"]
    assert all(now_ms() >= e["timestamp"] + 800 for e in evs)
    assert all(hdr(e, "tidings-delay-ms") == "800" for e in evs)


def test_view_refusing_one_event_fails_it_alone(db):
    """An event the view topic refuses (larger than its max.message.bytes) is nacked alone,
    and dead-lettered after max_deliveries; the others of its batch reach the view once."""
    call(db, "POST", "/v1/topics", {"name": "src"})
    call(db, "POST", "/v1/topics", {"name": "small", "config": {"max.message.bytes": "400"}})
    st, _, g = call(db, "PUT", "/v1/queues/fw", {"topic": "src", "forward_to": "small",
                                                 "max_deliveries": 1})
    assert st == 201, g
    produce(db, [{"key": "a", "value": "x"}, {"key": "big", "value": "y" * 2000},
                 {"key": "b", "value": "z", "delay_ms": 300}], topic="src")
    keys = []
    end = time.time() + 10
    while time.time() < end and (len(keys) < 2 or describe(db, "fw")["dead_lettered"] < 1):
        st, _, r = call(db, "GET", "/v1/topics/small/events?partition=0&offset=0")
        keys = [e["key"] for e in r["events"]]
        time.sleep(0.1)
    assert keys == ["a", "b"], keys
    assert describe(db, "fw")["dead_lettered"] == 1
    st, _, r = call(db, "GET", "/v1/topics/src.dlq/events?partition=0&offset=0")
    assert [e["key"] for e in r["events"]] == ["big"], r


def test_view_copy_is_a_hop_of_the_trace(db):
    """A view's copy is a hop of its event's trace, as a dead letter is: a child traceparent
    (same trace, new span), x-causation-span-id the event's span, x-causation-id its origin."""
    call(db, "POST", "/v1/topics", {"name": "traced"})
    assert call(db, "PUT", "/v1/queues/tv", {"topic": "traced", "forward_to": "traced.view"})[0] \
        == 201
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    produce(db, [{"key": "t1", "value": 1, "delay_ms": 200, "headers": {"traceparent": tp}}],
            topic="traced")
    evs = []
    end = time.time() + 10
    while not evs and time.time() < end:
        st, _, r = call(db, "GET", "/v1/topics/traced.view/events?partition=0&offset=0")
        evs = r["events"] if st == 200 else []
        time.sleep(0.1)
    assert len(evs) == 1, evs
    child = hdr(evs[0], "traceparent")
    assert child.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-") and child != tp, child
    assert hdr(evs[0], "x-causation-span-id") == "00f067aa0ba902b7"
    assert hdr(evs[0], "x-causation-id") == "traced/0/0"
