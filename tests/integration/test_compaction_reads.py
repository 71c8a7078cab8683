"""Reads of compacted topics: every reader skips the gaps and empty batches a cleaned log has
(Kafka fetch with confluent-kafka and kafka-python, ListOffsets, HTTP consume, SSE, Redis stream
reads and counts, queue groups), on a partition hand-made by tests/tools/gaplog_tool (so the tests
do not depend on the cleaner); and table reads, GET /v1/topics/{t}/keys/{key}, with keys written
by Kafka producers, tombstones, restarts and kill -9.

The hand-made partition (tests/support/gaplog.h): log start 0, log end 26, records at offsets
1, 3, 13, 14, 22, 25; offset o holds key k<o> and value v<o>, but 25 is a tombstone of k1."""
import http.client
import json
import os
import signal
import subprocess
import time

import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition

from conftest import BIN, Broker
from test_http import assert_error, call

TOOL = os.path.join(os.path.dirname(BIN), "gaplog_tool")
OFFSETS = [1, 3, 13, 14, 22, 25]
END = 26


def value_of(o):
    return None if o == 25 else f"v{o}"


def key_of(o):
    return "k1" if o == 25 else f"k{o}"


@pytest.fixture
def gb(tmp_path):
    """A broker whose compacted topic g (one partition) holds the hand-made gapped log."""
    data = str(tmp_path / "data")
    b = Broker(data, http=True, redis=True).start()
    st, _, r = call(b, "POST", "/v1/topics",
                    {"name": "g", "partitions": 1, "config": {"cleanup.policy": "compact"}})
    assert st == 201, r
    b.stop()
    subprocess.run([TOOL, os.path.join(data, "topics", "g", "0")], check=True, timeout=30)
    b.start()
    yield b
    if b.proc:
        b.stop()


def confluent_read(b, start, want):
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "x", "enable.auto.commit": False})
    c.assign([TopicPartition("g", 0, start)])
    got, deadline = [], time.time() + 20
    while len(got) < want and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append((m.offset(), m.key().decode(), m.value() and m.value().decode()))
    lo, hi = c.get_watermark_offsets(TopicPartition("g", 0), timeout=10)
    c.close()
    return got, (lo, hi)


def expected(start):
    return [(o, key_of(o), value_of(o)) for o in OFFSETS if o >= start]


@pytest.mark.parametrize("start", [0, 2, 5, 10, 12, 15, 19, 20, 23])
def test_kafka_fetch_skips_gaps_confluent(gb, start):
    got, marks = confluent_read(gb, start, len(expected(start)))
    assert got == expected(start)
    assert marks == (0, END)


def test_kafka_fetch_skips_gaps_kafka_python_and_list_offsets(gb):
    c = KafkaConsumer(bootstrap_servers=gb.bootstrap, enable_auto_commit=False,
                      consumer_timeout_ms=3000)
    tp = KTopicPartition("g", 0)
    c.assign([tp])
    assert c.beginning_offsets([tp])[tp] == 0 and c.end_offsets([tp])[tp] == END
    # A time inside the removed batch 5..9 lands on the next record, 13.
    found = c.offsets_for_times({tp: 1700000000000 + 6})[tp]
    assert found is not None and found.offset == 13
    for start in (0, 7, 16):
        c.seek(tp, start)
        got = [(m.offset, m.key.decode(), m.value and m.value.decode()) for m in c]
        assert got == expected(start)
    c.close()


def test_http_consume_and_sse_skip_gaps(gb):
    for start in (0, 4, 15):
        st, _, r = call(gb, "GET", f"/v1/topics/g/events?partition=0&offset={start}&limit=100")
        assert st == 200, r
        assert [(e["offset"], e["key"]) for e in r["events"]] == \
            [(o, key_of(o)) for o in OFFSETS if o >= start]
        assert r["next_offsets"] == {"0": END}
    # Paging with a small limit goes through the gaps too.
    pos, seen = 0, []
    for _ in range(20):
        st, _, r = call(gb, "GET", f"/v1/topics/g/events?partition=0&offset={pos}&limit=1")
        seen += [e["offset"] for e in r["events"]]
        pos = r["next_offsets"]["0"]
        if pos == END:
            break
    assert seen == OFFSETS
    c = http.client.HTTPConnection("127.0.0.1", gb.http_port, timeout=15)
    c.request("GET", "/v1/subscribe?topics=g&from=earliest",
              headers={"Accept": "text/event-stream"})
    resp = c.getresponse()
    assert resp.status == 200
    got = []
    deadline = time.time() + 15
    while len(got) < len(OFFSETS) and time.time() < deadline:
        line = resp.readline().decode()
        if line.startswith("data:") and "offset" in json.loads(line[5:]):
            got.append(json.loads(line[5:])["key"])
    c.close()
    assert got == [key_of(o) for o in OFFSETS]


def redis_ids(r):
    ids = [i for i, _ in r.xrange("g")]
    assert len(ids) == len(OFFSETS)
    return ids


def test_redis_stream_reads_skip_gaps(gb):
    r = redis.Redis(port=gb.redis_port, decode_responses=True)
    ids = redis_ids(r)
    assert [f["v"] if "v" in f else None for _, f in r.xrange("g")] is not None
    assert [i for i, _ in r.xrange("g", count=3)] == ids[:3]
    # COUNT counts entries, not offsets: the reverse reads reach back over the gaps.
    for n in (1, 2, 5, 6, 10):
        assert [i for i, _ in r.xrevrange("g", count=n)] == ids[::-1][:n]
    # XREAD after each ID gives the next one, through the gaps.
    for a, b in zip(ids, ids[1:]):
        got = r.xread({"g": a}, count=1)
        assert got[0][1][0][0] == b
    r.close()


def test_redis_stream_counts(gb):
    r = redis.Redis(port=gb.redis_port, decode_responses=True)
    ids = redis_ids(r)
    assert r.xlen("g") == len(OFFSETS)
    info = r.xinfo_stream("g")
    assert info["length"] == len(OFFSETS)
    assert info["first-entry"][0] == ids[0] and info["last-entry"][0] == ids[-1]
    r.close()


def test_redis_trim_counts_entries(gb):
    r = redis.Redis(port=gb.redis_port, decode_responses=True)
    ids = redis_ids(r)
    # MAXLEN keeps that many entries, not offsets; the reply counts entries too.
    assert r.xtrim("g", maxlen=4, approximate=False) == 2
    assert [i for i, _ in r.xrange("g")] == ids[2:]
    assert r.xlen("g") == 4
    assert r.xtrim("g", maxlen=1, approximate=False) == 3
    assert [i for i, _ in r.xrange("g")] == ids[5:]
    r.close()


def test_redis_group_pends_only_entries(gb):
    r = redis.Redis(port=gb.redis_port, decode_responses=True)
    ids = redis_ids(r)
    r.xgroup_create("g", "grp", id="0")
    assert r.xinfo_groups("g")[0]["lag"] == len(OFFSETS)
    got = r.xreadgroup("grp", "c1", {"g": ">"}, count=2)
    assert [i for i, _ in got[0][1]] == ids[:2]
    assert r.xinfo_groups("g")[0]["lag"] == len(OFFSETS) - 2
    got = r.xreadgroup("grp", "c1", {"g": ">"}, count=100)
    assert [i for i, _ in got[0][1]] == ids[2:]
    pend = r.xpending("g", "grp")
    assert pend["pending"] == len(OFFSETS) and pend["min"] == ids[0] and pend["max"] == ids[-1]
    assert r.xreadgroup("grp", "c1", {"g": ">"}, count=10) == []
    assert r.xack("g", "grp", *ids) == len(OFFSETS)
    assert r.xpending("g", "grp")["pending"] == 0
    r.close()


def test_redis_group_counters_over_gaps(gb):
    """Redis's entries-read and lag (docs/redis.md, "Entries read and lag") on a compacted
    stream: entries added is the log end (26), the length counts records, and the first entry
    is the first record XDEL left."""
    r = redis.Redis(port=gb.redis_port, decode_responses=True)
    ids = redis_ids(r)

    def counters():
        g = r.xinfo_groups("g")[0]
        return g["entries-read"], g["lag"]

    assert r.xdel("g", ids[0]) == 1  # offset 1: the first entry is now offset 3
    r.xgroup_create("g", "grp", id="0")
    assert counters() == (None, len(OFFSETS) - 1)  # estimated: added - length before the first
    r.xreadgroup("grp", "c", {"g": ">"}, count=1)
    assert counters() == (END - (len(OFFSETS) - 1) + 1, len(OFFSETS) - 2)  # the first entry
    assert r.xdel("g", ids[3]) == 1  # a deleted entry ahead: no estimate holds
    assert counters() == (END - len(OFFSETS) + 2, None)
    r.xreadgroup("grp", "c", {"g": ">"}, count=1)
    assert counters() == (None, None)
    r.xreadgroup("grp", "c", {"g": ">"})  # to the last entry: exact again
    assert counters() == (END, 0)
    r.close()


def test_queue_group_skips_gaps(gb):
    st, _, q = call(gb, "PUT", "/v1/queues/w", {"topic": "g"})
    assert st in (200, 201), q
    st, _, q = call(gb, "GET", "/v1/queues/w")
    assert q["depth"] == len(OFFSETS), q
    got = []
    for _ in range(10):
        st, _, r = call(gb, "POST", "/v1/queues/w/receive", {"max": 2})
        assert st == 200, r
        if not r["events"]:
            break
        got += r["events"]
    assert [m["offset"] for m in got] == OFFSETS
    st, _, q = call(gb, "GET", "/v1/queues/w")
    assert q["depth"] == len(OFFSETS) and q["in_flight"] == len(OFFSETS), q
    st, _, r = call(gb, "POST", "/v1/queues/w/ack", {"ids": [m["id"] for m in got]})
    assert st == 200, r
    st, _, q = call(gb, "GET", "/v1/queues/w")
    assert q["depth"] == 0 and q["in_flight"] == 0, q


def test_key_reads_on_the_gapped_log(gb):
    st, _, r = call(gb, "GET", "/v1/topics/g/keys/k3")
    assert st == 200, r
    assert (r["offset"], r["key"], r["partition"]) == (3, "k3", 0)
    assert r["value_text"] == "v3" or r["value"] == "v3"
    assert_error(call(gb, "GET", "/v1/topics/g/keys/k1"), 404, "not_found")  # tombstone
    assert_error(call(gb, "GET", "/v1/topics/g/keys/k5"), 404, "not_found")  # batch removed
    # New records after the gaps: appended at the log end, and read by key at once.
    p = Producer({"bootstrap.servers": gb.bootstrap})
    p.produce("g", key=b"k1", value=b"again", partition=0)
    p.flush(10)
    st, _, r = call(gb, "GET", "/v1/topics/g/keys/k1")
    assert st == 200 and r["offset"] == END, r


# ------------------------------------------------------------------------------------------
# Table reads on compacted topics written by Kafka producers.

@pytest.fixture
def kb(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True).start()
    yield b
    if b.proc:
        b.stop()


def make_topic(b, name, parts, policy="compact"):
    st, _, r = call(b, "POST", "/v1/topics",
                    {"name": name, "partitions": parts, "config": {"cleanup.policy": policy}})
    assert st == 201, r


def value(b, topic, key, query=""):
    from urllib.parse import quote
    return call(b, "GET", f"/v1/topics/{topic}/keys/{quote(key, safe='')}{query}")


def metric(b, sample):
    c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return None


def events_out(b, topic):
    return metric(b, f'tidings_topic_events_out_total{{topic="{topic}"}}') or 0.0


def test_table_reads_kafka_producer_restart_and_kill(kb):
    make_topic(kb, "users", 4)
    make_topic(kb, "plain", 1, "delete")
    # kafka-python's default partitioner is Kafka's (murmur2), which the route uses by default.
    p = KafkaProducer(bootstrap_servers=kb.bootstrap, acks="all")
    keys = [f"user/{i} é" for i in range(60)]
    for rnd in range(3):
        for k in keys:
            p.send("users", key=k.encode(), value=json.dumps({"k": k, "round": rnd}).encode(),
                   headers=[("src", b"kp")])
    for k in keys[:10]:
        p.send("users", key=k.encode(), value=None)  # tombstones
    p.send("plain", key=b"a", value=b"1")
    p.flush(30)
    p.close()

    def check():
        for k in keys[10:]:
            st, _, r = value(kb, "users", k)
            assert st == 200, (k, r)
            assert r["key"] == k and r["value"] == {"k": k, "round": 2}, r
            assert r["headers"] == [{"key": "src", "value_text": "kp"}] or \
                r["headers"][0]["key"] == "src", r
            # The same partition named outright; another partition does not hold it.
            st, _, r2 = value(kb, "users", k, f"?partition={r['partition']}")
            assert st == 200 and r2["offset"] == r["offset"]
            st, _, _ = value(kb, "users", k, f"?partition={(r['partition'] + 1) % 4}")
            assert st == 404
        for k in keys[:10]:
            assert_error(value(kb, "users", k), 404, "not_found")
        assert_error(value(kb, "users", "nobody"), 404, "not_found")
        assert_error(value(kb, "plain", "a"), 400, "invalid_argument", "compact")
        assert_error(value(kb, "nosuch", "a"), 404, "not_found")
        assert_error(value(kb, "users", "a", "?partition=9"), 404, "not_found")
        assert_error(value(kb, "users", "a", "?partition=x"), 400, "invalid_argument")
        st, _, _ = call(kb, "POST", "/v1/topics/users/keys/a", {})
        assert st == 405

    before = events_out(kb, "users")
    check()
    # Each key read that answered an event counts as one event read from the topic.
    assert events_out(kb, "users") - before == 2 * len(keys[10:])
    # The indexes' memory and keys (a tombstoned key keeps its slot: the tombstone is its latest
    # record, and a rebuild reads it too).
    assert metric(kb, 'tidings_table_index_keys{topic="users"}') == len(keys)
    assert metric(kb, "tidings_table_index_max_bytes") == 134217728
    assert 0 < metric(kb, "tidings_table_index_bytes") < 65536
    assert metric(kb, 'tidings_table_index_keys{topic="plain"}') is None
    kb.stop()
    kb.start()
    check()  # rebuilt from the log at open
    kb.stop(signal.SIGKILL)
    kb.start()
    check()  # and after a kill -9


def test_table_reads_confluent_explicit_partition_and_memory_limit(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True,
               extra=["--set", "table.index.max.bytes=65536"]).start()
    try:
        make_topic(b, "t", 2)
        p = Producer({"bootstrap.servers": b.bootstrap})
        for i in range(6000):  # more keys than 64 KiB of index holds (24 bytes a slot)
            p.produce("t", key=f"k{i}".encode(), value=b"x", partition=i % 2)
        p.flush(30)
        st, _, r = value(b, "t", "k0", "?partition=0")
        assert_error((st, _, r), 503, "index_full", "table.index.max.bytes")
        assert metric(b, "tidings_table_index_bytes") <= 65536
        assert metric(b, "tidings_table_index_max_bytes") == 65536
    finally:
        b.stop()
