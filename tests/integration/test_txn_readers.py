"""What the readers that are not Kafka see of Kafka transactions (docs/storage.md#readers-that-
are-not-kafka, docs/http-api.md#transactions, docs/redis.md#kafka-transactions, docs/queues.md#model):
committed data only. A topic gets
committed transactions, an aborted one, an open one and a plain record after it; HTTP reads,
Server-Sent Events, Redis XRANGE/XREVRANGE/XREAD and a consumer group (XREADGROUP, XPENDING) and
a queue group's receive see exactly the committed records, in order, never an aborted or open
one, nor what follows the open transaction; once it commits they see it and what followed,
those that wait (SSE, XREAD BLOCK, XREADGROUP BLOCK, a long-polling receive) woken by the
commit. HTTP's ?isolation=read_uncommitted sees everything. The embedded iterator has its unit
test (tests/unit/test_iter_txn.c).

Every wait is bounded.
"""
import threading
import time

import confluent_kafka as ck
import pytest
import redis

from conftest import Broker
from test_http import assert_error, call
from test_http_sse import Sse
from test_kafka_txn import create_topic, send, txn_producer

TOPIC = "txr"
COMMITTED = [b"c%d" % i for i in range(5)] + [b"p0"] + [b"c5", b"c6"]
ABORTED = [b"a%d" % i for i in range(3)]
OPEN = [b"o%d" % i for i in range(3)]
AFTER = [b"p1"]  # a plain record after the open transaction's


@pytest.fixture
def tx(tmp_path):
    """A broker whose topic holds committed, aborted and open transactions; yields (broker,
    the producer of the open transaction)."""
    b = Broker(str(tmp_path / "data"), http=True, redis=True).start()
    producers = []
    try:
        create_topic(b.bootstrap, TOPIC)
        p = txn_producer(b.bootstrap, "r-commit")
        producers.append(p)
        p.begin_transaction()
        send(p, TOPIC, COMMITTED[:5])
        p.commit_transaction(20)
        plain = ck.Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5})
        send(plain, TOPIC, [b"p0"])
        a = txn_producer(b.bootstrap, "r-abort")
        producers.append(a)
        a.begin_transaction()
        send(a, TOPIC, ABORTED)
        p.begin_transaction()  # interleaved with the aborted one
        send(p, TOPIC, COMMITTED[6:])
        a.abort_transaction(20)
        p.commit_transaction(20)
        o = txn_producer(b.bootstrap, "r-open")
        producers.append(o)
        o.begin_transaction()
        send(o, TOPIC, OPEN)
        send(plain, TOPIC, AFTER)
        yield b, o
    finally:
        if b.proc:
            b.stop()


def commit(o):
    o.commit_transaction(20)


def value(ev):
    """An HTTP or SSE event's value as bytes (Kafka's bytes are not JSON: value_text)."""
    v = ev["value_text"] if "value_text" in ev else ev["value"]
    return v.encode() if isinstance(v, str) else v


def events(b, query=""):
    st, _, r = call(b, "GET", f"/v1/topics/{TOPIC}/events?from=earliest&limit=1000{query}")
    assert st == 200, r
    return [value(e) for e in r["events"]], r["next_offsets"]["0"]


def rclient(b):
    return redis.Redis(host="127.0.0.1", port=b.redis_port, socket_timeout=20)


def vals(entries):
    return [f[b"value"] for _, f in entries]


def wait_blocked(r, n):
    deadline = time.time() + 10
    while int(r.info("clients")["blocked_clients"]) < n:
        assert time.time() < deadline, "the readers did not block"
        time.sleep(0.02)


def test_http_reads(tx):
    b, o = tx
    got, nxt = events(b)
    assert got == COMMITTED
    every, _ = events(b, "&isolation=read_uncommitted")
    assert sorted(every) == sorted(COMMITTED + ABORTED + OPEN + AFTER)
    assert every[-len(OPEN + AFTER):] == OPEN + AFTER
    st, _, r = call(b, "GET", f"/v1/topics/{TOPIC}/events?from=earliest&isolation=read_committed")
    assert st == 200 and [value(e) for e in r["events"]] == COMMITTED
    assert_error(call(b, "GET", f"/v1/topics/{TOPIC}/events?isolation=dirty"), 400,
                 "invalid_argument", "isolation")
    # The next offset is where the open transaction begins: a read from it waits for it.
    st, _, r = call(b, "GET", f"/v1/topics/{TOPIC}/events?partition=0&offset={nxt}")
    assert st == 200 and r["events"] == [] and r["next_offsets"]["0"] == nxt
    # Latest is where committed readers stop; read_uncommitted's is the high watermark.
    st, _, r = call(b, "GET", f"/v1/topics/{TOPIC}/events?from=latest")
    assert r["next_offsets"]["0"] == nxt
    st, _, r = call(b, "GET", f"/v1/topics/{TOPIC}/events?from=latest&isolation=read_uncommitted")
    assert r["next_offsets"]["0"] > nxt
    commit(o)
    # EndTxn is answered once the outcome is durable; the markers follow at once.
    deadline = time.time() + 10
    while (got := events(b)[0]) != COMMITTED + OPEN + AFTER and time.time() < deadline:
        time.sleep(0.05)
    assert got == COMMITTED + OPEN + AFTER
    st, _, r = call(b, "GET", f"/v1/topics/{TOPIC}/events?partition=0&offset={nxt}")
    assert [value(e) for e in r["events"]] == OPEN + AFTER


def sse_values(s, n):
    return [value(e["data"]) for e in s.events(n)]


def test_sse(tx):
    b, o = tx
    early = Sse(b, f"topics={TOPIC}&from=earliest")
    latest = Sse(b, f"topics={TOPIC}&from=latest")
    dirty = Sse(b, f"topics={TOPIC}&from=earliest&isolation=read_uncommitted")
    try:
        for s in (early, latest, dirty):
            assert s.next()["event"] == "subscribed"
        assert sse_values(early, len(COMMITTED)) == COMMITTED
        every = sse_values(dirty, len(COMMITTED + ABORTED + OPEN + AFTER))
        assert sorted(every) == sorted(COMMITTED + ABORTED + OPEN + AFTER)
        # Nothing more comes while the transaction is open (heartbeats only).
        early.c.sock.settimeout(1.0)
        with pytest.raises(OSError):
            while True:
                ev = early.next()
                assert ev is not None and "comment" in ev, ev
        early.close()
        # A subscription resumed from the last id it got (a reconnecting EventSource).
        again = Sse(b, f"topics={TOPIC}", last_id=early.last_id)
        assert again.next()["event"] == "subscribed"
        commit(o)
        # Woken by the commit: the open transaction's records, then what followed them.
        assert sse_values(again, len(OPEN + AFTER)) == OPEN + AFTER
        assert sse_values(latest, len(OPEN + AFTER)) == OPEN + AFTER
        again.close()
    finally:
        latest.close()
        dirty.close()
        early.close()
    assert_error(call(b, "GET", f"/v1/subscribe?topics={TOPIC}&isolation=x",
                      headers={"Accept": "text/event-stream"}), 400, "invalid_argument",
                 "isolation")


def test_redis_reads(tx):
    b, o = tx
    r = rclient(b)
    assert vals(r.xrange(TOPIC)) == COMMITTED
    assert vals(r.xrevrange(TOPIC, count=3)) == COMMITTED[::-1][:3]
    assert vals(r.xrevrange(TOPIC)) == COMMITTED[::-1]
    [[_, entries]] = r.xread({TOPIC: "0-0"})
    assert vals(entries) == COMMITTED
    last_id = entries[-1][0]
    assert r.xread({TOPIC: last_id}) == []  # nothing committed after it yet
    info = r.xinfo_stream(TOPIC)
    assert info["first-entry"][1][b"value"] == COMMITTED[0]
    assert info["last-entry"][1][b"value"] == COMMITTED[-1]
    out = {}

    def reader(tag, sid):
        out[tag] = rclient(b).xread({TOPIC: sid}, block=15000)

    threads = [threading.Thread(target=reader, args=("dollar", "$")),
               threading.Thread(target=reader, args=("after", last_id))]
    for t in threads:
        t.start()
    wait_blocked(r, 2)
    commit(o)
    for t in threads:
        t.join(20)
    for tag in ("dollar", "after"):
        [[key, entries]] = out[tag]
        assert key == TOPIC.encode() and vals(entries) == OPEN + AFTER, tag
    assert vals(r.xrange(TOPIC)) == COMMITTED + OPEN + AFTER
    assert vals(r.xrevrange(TOPIC, count=2)) == (OPEN + AFTER)[::-1][:2]


def test_redis_consumer_group(tx):
    b, o = tx
    r = rclient(b)
    r.xgroup_create(TOPIC, "g", id="0")
    r.xgroup_create(TOPIC, "late", id="$")  # while the transaction is open
    [[_, entries]] = r.xreadgroup("g", "c1", {TOPIC: ">"})
    assert vals(entries) == COMMITTED
    assert r.xpending(TOPIC, "g")["pending"] == len(COMMITTED)
    assert r.xreadgroup("g", "c1", {TOPIC: ">"}) == []
    assert r.xreadgroup("late", "c1", {TOPIC: ">"}) == []
    # A COUNT smaller than what is there, past the markers and the aborted records.
    r.xgroup_create(TOPIC, "small", id="0")
    got = []
    for _ in range(20):
        res = r.xreadgroup("small", "c", {TOPIC: ">"}, count=2)
        if not res:
            break
        got += vals(res[0][1])
    assert got == COMMITTED
    assert r.xpending(TOPIC, "small")["pending"] == len(COMMITTED)
    out = {}

    def reader(group):
        out[group] = rclient(b).xreadgroup(group, "c2", {TOPIC: ">"}, block=15000)

    threads = [threading.Thread(target=reader, args=(g,)) for g in ("g", "late")]
    for t in threads:
        t.start()
    wait_blocked(r, 2)
    commit(o)
    for t in threads:
        t.join(20)
    for g in ("g", "late"):
        [[_, entries]] = out[g]
        assert vals(entries) == OPEN + AFTER, g
    assert r.xpending(TOPIC, "g")["pending"] == len(COMMITTED + OPEN + AFTER)
    assert r.xpending(TOPIC, "late")["pending"] == len(OPEN + AFTER)
    ids = [i for i, _ in r.xrange(TOPIC)]
    assert r.xack(TOPIC, "g", *ids) == len(ids)
    assert r.xpending(TOPIC, "g")["pending"] == 0


def receive(b, group, wait_ms=0):
    st, _, r = call(b, "POST", f"/v1/queues/{group}/receive", {"max": 100, "wait_ms": wait_ms})
    assert st == 200, r
    return [value(e) for e in r["events"]]


def test_queue_group(tx):
    b, o = tx
    st, _, r = call(b, "PUT", "/v1/queues/q", {"topic": TOPIC, "ack_timeout_ms": 60000})
    assert st == 201, r
    st, _, r = call(b, "PUT", "/v1/queues/ql", {"topic": TOPIC, "start": "latest",
                                                "ack_timeout_ms": 60000})
    assert st == 201, r
    assert receive(b, "q") == COMMITTED
    assert receive(b, "q") == []
    assert receive(b, "ql") == []
    out = {}

    def waiter(group):
        t = time.time()
        out[group] = receive(b, group, wait_ms=15000)
        out[group + "-took"] = time.time() - t

    threads = [threading.Thread(target=waiter, args=(g,)) for g in ("q", "ql")]
    for t in threads:
        t.start()
    time.sleep(0.5)
    commit(o)
    for t in threads:
        t.join(20)
    for g in ("q", "ql"):
        assert out[g] == OPEN + AFTER, g
        assert out[g + "-took"] < 10, g  # woken by the commit, not by the end of the wait
