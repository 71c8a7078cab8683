"""Health events (docs/health.md): each event caused for real (a consumer group of
confluent-kafka joining and leaving, a member that stops heartbeating, a queue group's dead
letter and its redrive, a refused login, a fenced producer, a group's lag, the disk, slow
fsyncs, a partition gone offline) and read back from its system topic through Kafka
(a regex subscription), Redis (XRANGE) and HTTP/SSE (the pattern `$sys.#`). The system topics
take no writes from clients, are left out of listings and of `#`, and say what their rate
limit dropped.
"""
import glob
import json
import os
import signal
import time

import pytest
import redis
from confluent_kafka import Consumer, Producer

import kafkawire as kw
from conftest import SYSTEM_TOPICS, Broker
from test_http import assert_error, call
from test_http_sse import Sse
from test_kafka_idempotence import idem_batch, init_producer_id, produce

FAST = ["--set", "health.check.interval.ms=200"]


@pytest.fixture
def hb(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True, redis=True, extra=FAST).start()
    yield b
    if b.proc:
        b.stop()


def events(b, topic, want=None, timeout=15):
    """The values of the events of a system topic (over HTTP), waiting until `want` (a list
    of types) are all there."""
    end = time.time() + timeout
    while True:
        st, _, body = call(b, "GET", f"/v1/topics/{topic}/events?partition=0&offset=0&limit=10000")
        assert st == 200, body
        vals = [e["value"] for e in body["events"]]
        for e in body["events"]:
            assert e["headers"] == [{"key": "tidings-health-type", "value": e["value"]["type"]}]
        types = [v["type"] for v in vals]
        if not want or all(w in types for w in want):
            return vals
        assert time.time() < end, f"{want} not all in {types}"
        time.sleep(0.1)


def envelope_ok(v):
    assert v["version"] == 1
    assert isinstance(v["time_ms"], int) and abs(v["time_ms"] - time.time() * 1000) < 120000
    assert v["time"].endswith("Z") and v["time"][:4] == time.strftime("%Y", time.gmtime())


def consume_group(b, group, topic, n):
    """A confluent-kafka consumer of `group` reads n events of topic, then leaves."""
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "session.timeout.ms": 6000})
    c.subscribe([topic])
    got, end = 0, time.time() + 30
    while got < n and time.time() < end:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got += 1
    c.close()
    assert got == n


def test_group_events_on_every_protocol(hb):
    p = Producer({"bootstrap.servers": hb.bootstrap})
    for i in range(3):
        p.produce("orders", value=b"o%d" % i)
    assert p.flush(15) == 0
    consume_group(hb, "billing", "orders", 3)
    want = ["group.member_joined", "group.rebalance_started", "group.rebalance_completed",
            "group.member_left"]
    vals = [v for v in events(hb, "$sys.groups", want) if v["group"] == "billing"]
    types = [v["type"] for v in vals]
    assert types[:4] == want, types
    joined, started, done, left = vals[:4]
    for v in vals:
        envelope_ok(v)
    assert joined["member"] == left["member"] and joined["member"].startswith("rdkafka-")
    assert joined["client_host"] == "/127.0.0.1" and joined["members"] == 1
    assert done["protocol"] in ("range", "roundrobin", "cooperative-sticky")
    assert done["leader"] == joined["member"] and done["generation"] == 1
    assert left["reason"] == "LeaveGroup" and left["members"] == 0

    # Kafka: a regex subscription of another group reads them (and its own joining).
    c = Consumer({"bootstrap.servers": hb.bootstrap, "group.id": "watcher",
                  "auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms": 500})
    c.subscribe(["^\\$sys\\..*"])
    seen, end = [], time.time() + 30
    while time.time() < end and not {"group.member_left", "storage.disk_usage_high"} <= {
            json.loads(m.value())["type"] for m in seen}:
        m = c.poll(0.5)
        if m is not None and not m.error():
            seen.append(m)
    c.close()
    kafka_types = [(m.topic(), json.loads(m.value())["type"]) for m in seen]
    assert ("$sys.groups", "group.member_left") in kafka_types
    billing = [json.loads(m.value()) for m in seen
               if m.topic() == "$sys.groups" and m.key() == b"billing"]
    assert [v["type"] for v in billing][:4] == want
    assert dict(seen[0].headers())["tidings-health-type"].decode() == \
        json.loads(seen[0].value())["type"]

    # Redis: the stream $sys.groups, each event's members as fields.
    r = redis.Redis(port=hb.redis_port)
    entries = r.xrange("$sys.groups")
    fields = [f for _, f in entries if f.get(b"group") == b"billing"]
    assert [f[b"type"].decode() for f in fields][:4] == want
    assert fields[0][b"key"] == b"billing" and fields[0][b"version"] == b"1"
    assert fields[0][b"member"].decode() == joined["member"]

    # SSE: $sys.# from the start reads every system topic; "#" none of them.
    s = Sse(hb, "topics=%24sys.%23&from=earliest")
    got = s.events(4)
    s.close()
    assert {e["data"]["topic"] for e in got} <= {"$sys.groups", "$sys.storage", "$sys.lag",
                                                  "$sys.queues", "$sys.clients", "$sys.cluster"}
    assert all(e["data"]["value"]["version"] == 1 for e in got)
    s = Sse(hb, "topics=%23&from=earliest")
    mine = s.events(3)
    s.close()
    assert {e["data"]["topic"] for e in mine} == {"orders"}


def test_member_timed_out(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True,
               extra=FAST + ["--set", "group.min.session.timeout.ms=500"]).start()
    try:
        c = kw.Conn(b.port)
        # JoinGroup v0 (session 1 s), then SyncGroup, then no heartbeat.
        proto = kw.string("range") + kw.bytes_(b"\x00\x00\x00\x00\x00\x00\x00\x00")
        body = (kw.string("lazy") + kw.i32(1000) + kw.string("") + kw.string("consumer") +
                kw.array([proto]))
        r = c.request(11, 0, body)
        assert r.i16() == 0
        gen = r.i32()
        r.string()
        r.string()
        member = r.string()
        sync = kw.string("lazy") + kw.i32(gen) + kw.string(member) + kw.array([])
        assert c.request(14, 0, sync).i16() == 0
        vals = [v for v in events(b, "$sys.groups", ["group.member_timed_out"])
                if v["group"] == "lazy"]
        out = [v for v in vals if v["type"] == "group.member_timed_out"]
        assert len(out) == 1 and out[0]["member"] == member
        assert out[0]["reason"] == "session timeout" and out[0]["members"] == 0
        assert out[0]["client_id"] == "wire-test"
    finally:
        b.stop()


def test_dead_letter_and_redrive(hb):
    call(hb, "POST", "/v1/topics", {"name": "jobs"})
    st, _, _ = call(hb, "PUT", "/v1/queues/work", {"topic": "jobs", "max_deliveries": 1})
    assert st in (200, 201)
    call(hb, "POST", "/v1/topics/jobs/events", {"events": [{"key": "k1", "value": {"n": 1}}]})
    st, _, got = call(hb, "POST", "/v1/queues/work/receive", {"max": 1, "wait_ms": 5000})
    assert st == 200 and len(got["events"]) == 1, got
    ids = [got["events"][0]["id"]]
    st, _, _ = call(hb, "POST", "/v1/queues/work/nack", {"ids": ids, "error": "db down"})
    assert st == 200
    vals = events(hb, "$sys.queues", ["queue.dead_lettered"])
    dl = [v for v in vals if v["type"] == "queue.dead_lettered"]
    assert len(dl) == 1
    envelope_ok(dl[0])
    assert dl[0]["group"] == "work" and dl[0]["topic"] == "jobs" and dl[0]["offset"] == 0
    assert dl[0]["dead_letter_topic"] == "jobs.dlq" and dl[0]["deliveries"] == 1
    assert dl[0]["error"] == "db down"
    st, _, job = call(hb, "POST", "/v1/topics/jobs.dlq/redrive")  # the body is optional
    assert st == 202, job
    vals = events(hb, "$sys.queues", ["queue.redrive_started", "queue.redrive_finished"])
    types = [v["type"] for v in vals]
    assert types == ["queue.dead_lettered", "queue.redrive_started", "queue.redrive_finished"]
    fin = vals[2]
    assert fin["dead_letter_topic"] == "jobs.dlq" and fin["moved"] == 1 and fin["total"] == 1
    assert fin["error"] is None


def test_auth_failures_rate_limited(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True, redis=True,
               extra=FAST + ["--set", "redis.password=right-Health-pw1",
                             "--set", "health.events.rate=2"]).start()
    try:
        for i in range(6):
            with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
                redis.Redis(port=b.redis_port, password=f"wrong{i}").ping()
        # 6 failures at once: the burst (2) is emitted, the other 4 dropped and counted.
        assert wait_counts(b, "client.auth_failed") == (2, 4)
        vals = wait_events(b, "$sys.clients", 2)
        assert [v["type"] for v in vals] == ["client.auth_failed"] * 2
        assert vals[0]["protocol"] == "redis" and vals[0]["peer"].startswith("127.0.0.1")
        assert "suppressed" not in vals[0] and "suppressed" not in vals[1]
        time.sleep(1.1)  # the bucket refills: the next one says what was dropped
        with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
            redis.Redis(port=b.redis_port, password="wrong").ping()
        vals = wait_events(b, "$sys.clients", 3)
        assert len(vals) == 3 and vals[2]["suppressed"] == 4
        assert wait_counts(b, "client.auth_failed") == (3, 4)
    finally:
        b.stop()


def wait_counts(b, typ, timeout=10):
    """(emitted, dropped) of a type once they stop changing."""
    end, last = time.time() + timeout, None
    while True:
        text = metrics_text(b)
        got = tuple(
            int(float(([l for l in text.splitlines() if l.startswith(
                'tidings_health_events_total{type="%s",result="%s"}' % (typ, r))] or
                ["x 0"])[0].split()[-1])) for r in ("emitted", "dropped"))
        if got == last or time.time() > end:
            return got
        last = got
        time.sleep(0.3)


def wait_events(b, topic, n, timeout=10):
    end = time.time() + timeout
    vals = events(b, topic)
    while len(vals) < n and time.time() < end:
        time.sleep(0.1)
        vals = events(b, topic)
    return vals


def metrics_text(b):
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{b.http_port}/metrics", timeout=10) as r:
        return r.read().decode()


def test_producer_fenced(hb):
    c = kw.Conn(hb.port)
    call(hb, "POST", "/v1/topics", {"name": "pay"})
    err, pid, epoch = init_producer_id(c, 4)
    assert err == 0
    # A newer epoch of the producer id starts at sequence 0; then the old epoch is fenced.
    assert produce(c, "pay", idem_batch([b"a"], pid, epoch, 0))[0] == 0
    assert produce(c, "pay", idem_batch([b"b"], pid, epoch + 1, 0))[0] == 0
    err, _, msg = produce(c, "pay", idem_batch([b"c"], pid, epoch, 1))
    assert err == 47 and "older than its current epoch" in msg  # INVALID_PRODUCER_EPOCH
    vals = events(hb, "$sys.clients", ["client.producer_fenced"])
    f = [v for v in vals if v["type"] == "client.producer_fenced"]
    assert len(f) == 1
    assert f[0]["topic"] == "pay" and f[0]["partition"] == 0
    assert f[0]["producer_id"] == pid and f[0]["producer_epoch"] == epoch
    assert f[0]["client_id"] == "wire-test"


def test_lag_over_and_recovered(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True,
               extra=FAST + ["--set", "health.lag.events=5"]).start()
    try:
        call(b, "POST", "/v1/topics", {"name": "clicks", "partitions": 2})
        call(b, "POST", "/v1/topics/clicks/events",
             {"events": [{"key": f"k{i}", "value": i} for i in range(8)]})
        st, _, body = call(b, "POST", "/v1/groups/stats/reset",
                           {"to": "earliest", "topics": ["clicks"]})
        assert st == 200, body
        vals = events(b, "$sys.lag", ["lag.over_threshold"])
        assert len(vals) == 1
        v = vals[0]
        envelope_ok(v)
        assert (v["group"], v["topic"], v["lag"], v["threshold_events"]) == \
            ("stats", "clicks", 8, 5)
        time.sleep(0.6)  # later passes say nothing new while it stays over
        assert len(events(b, "$sys.lag")) == 1
        st, _, body = call(b, "POST", "/v1/groups/stats/reset",
                           {"to": "latest", "topics": ["clicks"]})
        assert st == 200, body
        vals = events(b, "$sys.lag", ["lag.recovered"])
        assert [x["type"] for x in vals] == ["lag.over_threshold", "lag.recovered"]
        assert vals[1]["lag"] == 0
    finally:
        b.stop()


def test_lag_by_age(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True,
               extra=FAST + ["--set", "health.lag.ms=1000"]).start()
    try:
        call(b, "POST", "/v1/topics", {"name": "slow"})
        st, _, _ = call(b, "POST", "/v1/topics/slow/events", {"events": [{"value": 1}]})
        assert st == 200
        st, _, body = call(b, "POST", "/v1/groups/g/reset", {"to": "earliest", "topics": ["slow"]})
        assert st == 200, body
        t0 = time.time()
        v = events(b, "$sys.lag", ["lag.over_threshold"])[0]
        assert time.time() - t0 >= 0.5  # not before the event is a second old
        assert v["age_ms"] > 1000 and v["lag"] == 1 and v["threshold_ms"] == 1000
    finally:
        b.stop()


def test_storage_events(tmp_path):
    data = str(tmp_path / "data")
    b = Broker(data, http=True, extra=FAST + ["--set", "health.disk.percent=1",
                                              "--set", "health.fsync.ms=0"]).start()
    call(b, "POST", "/v1/topics", {"name": "t", "config": {"fsync": "always"}})
    call(b, "POST", "/v1/topics/t/events", {"events": [{"value": 1}]})
    vals = events(b, "$sys.storage", ["storage.disk_usage_high", "storage.fsync_slow"])
    disk = [v for v in vals if v["type"] == "storage.disk_usage_high"]
    assert len(disk) == 1 and disk[0]["threshold_percent"] == 1
    assert 1 <= disk[0]["used_percent"] <= 100 and disk[0]["total_bytes"] > 0
    slow = [v for v in vals if v["type"] == "storage.fsync_slow"][0]
    assert slow["count"] >= 1 and slow["threshold_ms"] == 0
    call(b, "POST", "/v1/topics/t/events", {"events": [{"value": 2}]})
    b.stop(signal.SIGKILL)
    # A batch damaged before a good one is corruption, not a torn tail: the partition goes
    # offline at the next start (recovery scans it after a kill), and that is said once.
    seg = sorted(glob.glob(os.path.join(data, "topics", "t", "0", "*.log")))[0]
    with open(seg, "r+b") as f:
        f.seek(40)  # the first batch's timestamps, under its CRC
        f.write(b"\xff" * 8)
    b = Broker(data, http=True, extra=FAST).start()
    try:
        vals = events(b, "$sys.storage", ["storage.partition_offline"])
        off = [v for v in vals if v["type"] == "storage.partition_offline"]
        assert len(off) == 1 and off[0]["topic"] == "t" and off[0]["partition"] == 0
        assert off[0]["reason"]
        time.sleep(0.6)
        assert len([v for v in events(b, "$sys.storage")
                    if v["type"] == "storage.partition_offline"]) == 1
    finally:
        b.stop()


def test_system_topics_are_the_brokers(hb):
    # HTTP: no writes, no deletes, no creation of another $sys. topic.
    assert_error(call(hb, "POST", "/v1/topics/$sys.groups/events", {"events": [{"value": 1}]}),
                 400, "invalid_name", "system topic")
    st, _, _ = call(hb, "DELETE", "/v1/topics/$sys.groups")
    assert st == 400
    st, _, _ = call(hb, "POST", "/v1/topics", {"name": "$sys.mine"})
    assert st == 400
    # Listed only with the internal ones, marked.
    st, _, lst = call(hb, "GET", "/v1/topics")
    assert not [t for t in lst["topics"] if t["name"].startswith("$sys.")]
    st, _, lst = call(hb, "GET", "/v1/topics?internal=true")
    sys_topics = {t["name"] for t in lst["topics"] if t.get("system")}
    assert sys_topics == {"$sys.groups", "$sys.lag", "$sys.queues", "$sys.storage",
                          "$sys.clients", "$sys.cluster"}
    # Kafka: INVALID_TOPIC_EXCEPTION (17), as for an internal topic.
    c = kw.Conn(hb.port)
    r = c.request(0, 3, kw.produce_body("$sys.groups", 0, kw.make_batch([b"x"])))
    (_, _, err, _), = kw.read_produce(r, 3)
    assert err == 17
    # Redis: XADD refused; the key is not in KEYS, but reads by name.
    r = redis.Redis(port=hb.redis_port)
    with pytest.raises(redis.ResponseError, match="system topic"):
        r.xadd("$sys.groups", {"a": "b"})
    assert not [k for k in r.keys("*") if k.startswith(b"$sys")]
    assert r.xlen("$sys.groups") == 0


def test_off(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True, extra=["--set", "health.events=false"]).start()
    try:
        st, _, lst = call(b, "GET", "/v1/topics?internal=true")
        assert not [t for t in lst["topics"] if t["name"].startswith("$sys.")]
        assert "tidings_health_events_total" not in metrics_text(b)
    finally:
        b.stop()


def test_queue_group_over_system_topics(hb):
    """A queue group on $sys.# hands health events to one consumer each, with acks; its dead
    letters go to sys.<topic>.dlq, since no client makes a topic under $sys."""
    st, _, g = call(hb, "PUT", "/v1/queues/alerts", {"topic": "$sys.#", "max_deliveries": 1})
    assert st == 201, g
    assert g["topic_count"] == len(SYSTEM_TOPICS)
    assert g["policy"]["dead_letter_topic"] == "sys.#.dlq"
    # Something to say: a member joins and leaves.
    p = Producer({"bootstrap.servers": hb.bootstrap})
    p.produce("orders", value=b"x")
    assert p.flush(15) == 0
    consume_group(hb, "billing", "orders", 1)
    got, end = [], time.time() + 20
    while time.time() < end and "group.member_left" not in [e["value"]["type"] for e in got]:
        st, _, body = call(hb, "POST", "/v1/queues/alerts/receive",
                           {"max": 50, "wait_ms": 1000, "consumer": "pager"})
        assert st == 200, body
        got += body["events"]
    assert {e["topic"] for e in got} >= {"$sys.groups"}
    assert "group.member_left" in [e["value"]["type"] for e in got]
    joined = [e for e in got if e["value"]["type"] == "group.member_joined"][0]
    st, _, _ = call(hb, "POST", "/v1/queues/alerts/nack", {"ids": [joined["id"]], "error": "x"})
    assert st == 200
    others = [e["id"] for e in got if e["id"] != joined["id"]]
    st, _, _ = call(hb, "POST", "/v1/queues/alerts/ack", {"ids": others})
    assert st == 200
    end = time.time() + 15
    while time.time() < end:
        st, _, body = call(hb, "GET", "/v1/topics/sys.groups.dlq/events?partition=0&offset=0")
        if st == 200 and body["events"]:
            break
        time.sleep(0.2)
    assert st == 200 and body["events"][0]["value"]["type"] == "group.member_joined"
    dl = [v for v in events(hb, "$sys.queues", ["queue.dead_lettered"])
          if v["type"] == "queue.dead_lettered"]
    assert dl[0]["group"] == "alerts" and dl[0]["dead_letter_topic"] == "sys.groups.dlq"


def test_events_during_shutdown(tmp_path):
    """Failed logins go on while the broker stops: their events are appended once the
    listeners are gone (health_quiesce), never into a listener's hooks being torn down (a TSan
    run caught that race), and the stop is clean."""
    data = str(tmp_path / "data")
    b = Broker(data, http=True, redis=True,
               extra=FAST + ["--set", "redis.password=right-Health-pw1",
                             "--set", "health.events.rate=1000"]).start()
    stop = time.time() + 0.6
    import threading

    def hammer():
        while time.time() < stop + 2:
            try:
                redis.Redis(port=b.redis_port, password="wrong", socket_timeout=2).ping()
            except Exception:  # noqa: BLE001: refused, or the broker is gone
                pass

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.6)
    b.stop()  # exit 0, no sanitizer report
    for t in threads:
        t.join(10)
    b = Broker(data, http=True, extra=FAST).start()
    try:
        vals = events(b, "$sys.clients", ["client.auth_failed"])
        assert len(vals) >= 1 and all(v["type"] == "client.auth_failed" for v in vals)
    finally:
        b.stop()
