"""Log compaction with real clients: a compacted topic updated many times per key ends with the
latest record of each key (plus the active segment), a Kafka consumer from offset 0 sees every
key's latest value and no deleted key once its tombstone expired, `tidings topic describe`
shows the cleaner's figures, and records without a key are refused on every protocol.

The suite makes 200 000 updates to 1 000 keys: the cleaner must reclaim more than 10 bytes an
update, so it cleans through eight segments of 256 KiB at least. The issue's figure, 1 000 000
updates, runs in `make soak` (TIDINGS_COMPACTION_UPDATES sets the number). Every wait is bounded.
"""
import http.client
import json
import os
import socket
import subprocess
import time

import confluent_kafka as ck
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BIN, Broker

KEYS = 1000
UPDATES = int(os.environ.get("TIDINGS_COMPACTION_UPDATES", "200000"))
CLEANER = ["--set", "log.cleaner.backoff.ms=50"]
TOPIC_CONFIG = {"cleanup.policy": "compact", "segment.bytes": "262144",
                "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "1500",
                "min.compaction.lag.ms": "0"}


@pytest.fixture
def cb(tmp_path):
    b = Broker(str(tmp_path / "data"), extra=CLEANER, http=True, redis=True).start()
    yield b
    b.stop()


def create(b, name, config):
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    a.create_topics([NewTopic(name, 1, 1, config=config)])[name].result(timeout=10)


def produce(b, topic, items):
    """items: [(key bytes, value bytes or None)], in order; waits for every delivery."""
    p = ck.Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 20,
                     "enable.idempotence": True, "batch.num.messages": 2000})
    errors = []

    def dr(err, _msg):
        if err:
            errors.append(err)
    for k, v in items:
        while True:
            try:
                p.produce(topic, key=k, value=v, on_delivery=dr)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0
    assert not errors, errors[:3]


def describe(b, topic):
    c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=10)
    c.request("GET", f"/v1/topics/{topic}")
    r = c.getresponse()
    body = json.loads(r.read())
    c.close()
    assert r.status == 200, body
    return body["partitions"][0]


def wait_cleaned(b, topic, reclaimed_above, timeout=60):
    """Until the cleaner has nothing cleanable left and reclaimed more than the given bytes."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        c = describe(b, topic)["compaction"]
        if c["cleanable_bytes"] == 0 and c["reclaimed_bytes"] > reclaimed_above:
            return c
        time.sleep(0.1)
    raise AssertionError(f"not cleaned in {timeout} s: {describe(b, topic)}")


def consume_from_zero(b, topic):
    """Every record of partition 0 from offset 0 up to the high watermark: [(offset, key,
    value)]."""
    hw = describe(b, topic)["high_watermark"]
    c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "check",
                     "enable.auto.commit": False})
    c.assign([ck.TopicPartition(topic, 0, 0)])
    out, deadline = [], time.time() + 60
    while (not out or out[-1][0] < hw - 1) and time.time() < deadline:
        for m in c.consume(1000, 0.5):
            assert not m.error(), m.error()
            out.append((m.offset(), m.key(), m.value()))
    c.close()
    offsets = [o for o, _, _ in out]
    assert offsets == sorted(set(offsets)), "offsets must only increase"
    return out


def http_offsets(b, topic):
    """The offsets of partition 0 from offset 0 as HTTP reads them, page by page."""
    c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=30)
    out, at = [], 0
    for _ in range(1000):  # bounded: 10 000 events a page
        c.request("GET", f"/v1/topics/{topic}/events?partition=0&offset={at}&limit=10000",
                  headers={"Host": "localhost"})
        r = c.getresponse()
        body = json.loads(r.read())
        assert r.status == 200, body
        if not body["events"]:
            break
        out += [e["offset"] for e in body["events"]]
        at = body["next_offsets"]["0"]
    c.close()
    return out


def table_read(b, topic, key):
    c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=30)
    c.request("GET", f"/v1/topics/{topic}/keys/{key}", headers={"Host": "localhost"})
    r = c.getresponse()
    body = json.loads(r.read())
    c.close()
    return r.status, body.get("value_text") if r.status == 200 else None


def updates(n, keys, gen):
    return [(b"k%d" % (i % keys), b"v%d-%d" % (i % keys, gen + i)) for i in range(n)]


def test_compaction_keeps_latest_and_expires_tombstones(cb):
    create(cb, "tbl", TOPIC_CONFIG)
    produce(cb, "tbl", updates(UPDATES, KEYS, 0))
    latest = {b"k%d" % (i % KEYS): b"v%d-%d" % (i % KEYS, i) for i in range(UPDATES)}
    deleted = [b"k%d" % i for i in range(0, KEYS, 10)]
    produce(cb, "tbl", [(k, None) for k in deleted])
    for k in deleted:
        del latest[k]
    # Enough updates of other keys to roll the segment that holds the tombstones.
    filler = [(k, v + b"-f") for k, v in list(latest.items())[:500]] * 24  # > segment.bytes
    produce(cb, "tbl", filler)
    latest.update(dict(filler))
    end = describe(cb, "tbl")["log_end_offset"]
    assert end == UPDATES + len(deleted) + len(filler)
    c = wait_cleaned(cb, "tbl", UPDATES * 10)  # most of the updates' bytes went
    after = describe(cb, "tbl")
    # What stays: the active segment (at most segment.bytes) and one record per key.
    assert after["size_bytes"] < 262144 + KEYS * 200, after
    assert after["log_end_offset"] == end  # offsets never change

    # The tombstones' horizon passes; the next cleaning (more dirty data) removes them.
    time.sleep(2)
    produce(cb, "tbl", filler)
    wait_cleaned(cb, "tbl", c["reclaimed_bytes"])
    got = consume_from_zero(cb, "tbl")
    seen = {}
    for _, k, v in got:
        assert k is not None
        seen[k] = v
    assert seen == latest  # every key's latest value, and no deleted key at all
    assert not any(k in deleted for _, k, _ in got)
    # 1 000 live keys at most once each below the active segment, plus the active segment.
    assert len(got) <= KEYS + len(filler)
    # HTTP and Redis read the same cleaned log, gaps skipped, and the table read answers the
    # latest value of a key, 404 for a deleted one.
    assert http_offsets(cb, "tbl") == [o for o, _, _ in got]
    import redis
    r = redis.Redis(port=cb.redis_port, socket_timeout=30)
    assert r.xlen("tbl") == len(got)
    assert len(r.xrange("tbl", "-", "+")) == len(got)
    r.close()
    live = next(k for k in latest if latest[k] is not None)
    assert table_read(cb, "tbl", live.decode()) == (200, latest[live].decode())
    assert table_read(cb, "tbl", deleted[0].decode())[0] == 404

    # The same after a restart (the cleaned segments, their indexes and the checkpoint).
    cb.stop()
    cb.start()
    assert {k: v for _, k, v in consume_from_zero(cb, "tbl")} == latest
    out = subprocess.run([BIN, "topic", "describe", "tbl", "--server",
                          f"http://127.0.0.1:{cb.http_port}"], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert "DIRTY-RATIO" in text and "RECLAIMED-BYTES" in text and "CLEANABLE-BYTES" in text


def test_metrics_show_the_cleaner(cb):
    create(cb, "m", TOPIC_CONFIG)
    produce(cb, "m", updates(20000, 100, 0))
    wait_cleaned(cb, "m", 0)
    c = http.client.HTTPConnection("127.0.0.1", cb.http_port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    line = [x for x in text.splitlines()
            if x.startswith('tidings_partition_cleaner_reclaimed_bytes_total{topic="m"')]
    assert line and float(line[0].split()[-1]) > 0
    assert 'tidings_partition_cleaner_dirty_ratio{topic="m",partition="0"}' in text
    runs = [x for x in text.splitlines() if x.startswith("tidings_cleaner_runs_total")]
    assert runs and float(runs[0].split()[-1]) >= 1


def test_records_without_key_are_refused(cb):
    create(cb, "nk", TOPIC_CONFIG)
    # Kafka: librdkafka's delivery report carries INVALID_RECORD.
    p = ck.Producer({"bootstrap.servers": cb.bootstrap, "linger.ms": 0})
    errs = []
    p.produce("nk", value=b"no key", on_delivery=lambda e, m: errs.append(e))
    assert p.flush(30) == 0
    p.produce("nk", key=b"k", value=b"keyed", on_delivery=lambda e, m: errs.append(e))
    assert p.flush(30) == 0
    # INVALID_RECORD from produce v8, CORRUPT_MESSAGE (librdkafka's INVALID_MSG) before, as
    # Kafka answers; librdkafka picks the version.
    assert errs[0] is not None and errs[0].code() in (ck.KafkaError.INVALID_RECORD,
                                                      ck.KafkaError.INVALID_MSG), errs
    assert errs[1] is None
    # HTTP: 400 with a clear message.
    c = http.client.HTTPConnection("127.0.0.1", cb.http_port, timeout=10)
    c.request("POST", "/v1/topics/nk/events", body=json.dumps({"value": "x"}),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    body = json.loads(r.read())
    assert r.status == 400 and "without key" in body["error"]["message"], body
    c.request("POST", "/v1/topics/nk/events", body=json.dumps({"key": "a", "value": "x"}),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    assert r.status == 200
    c.close()
    # Redis: XADD has no key to give: -ERR.
    s = socket.create_connection(("127.0.0.1", cb.redis_port), timeout=10)
    s.sendall(b"*5\r\n$4\r\nXADD\r\n$2\r\nnk\r\n$1\r\n*\r\n$1\r\nf\r\n$1\r\nv\r\n")
    reply = s.recv(4096)
    s.close()
    assert reply.startswith(b"-ERR") and b"without key" in reply, reply
    # Nothing of the refused records was stored.
    assert describe(cb, "nk")["log_end_offset"] == 2


def test_kcat_null_key_refused(cb):
    create(cb, "kc", TOPIC_CONFIG)
    p = subprocess.run(["kcat", "-b", cb.bootstrap, "-P", "-t", "kc", "-p", "0"],
                       input=b"keyless\n", capture_output=True, timeout=30)
    assert p.returncode != 0 or b"INVALID_RECORD" in p.stderr or b"without key" in p.stderr, \
        p.stderr
    assert describe(cb, "kc")["log_end_offset"] == 0


def test_kafka_wire_errors_by_version(cb):
    """Kafka answers a record without a key on a compacted topic with INVALID_RECORD (87) and
    its message from produce v8, CORRUPT_MESSAGE (2) before."""
    import kafkawire as kw
    from test_kafka_idempotence import produce as produce_raw
    create(cb, "w", TOPIC_CONFIG)
    c = kw.Conn(cb.port)
    err, base, msg = produce_raw(c, "w", kw.make_batch([b"a", b"b"], keys=[b"k", None]), 9)
    assert err == 87 and base == -1, (err, base)
    assert msg == "Compacted topic cannot accept message without key in topic partition w-0."
    err, _, _ = produce_raw(c, "w", kw.make_batch([b"a"]), 7)
    assert err == 2
    err, base, _ = produce_raw(c, "w", kw.make_batch([b"a"], keys=[b"k"]), 9)
    assert err == 0 and base == 0
    c.close()


def test_tombstones_go_without_new_writes(cb):
    """With no writes after them, tombstones go once their delete horizon has passed: the
    cleaner comes back for them by itself, though nothing new is dirty."""
    config = dict(TOPIC_CONFIG, **{"segment.bytes": "16384"})
    create(cb, "mk", config)
    produce(cb, "mk", [(b"gone", b"v"), (b"gone", None)])
    produce(cb, "mk", [(b"f%d" % i, b"x" * 100) for i in range(1000)])  # rolls past them
    end = describe(cb, "mk")["log_end_offset"]
    deadline = time.time() + 60
    while time.time() < deadline:
        keys = [k for _, k, _ in consume_from_zero(cb, "mk")]
        if b"gone" not in keys:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the tombstone is still there")
    assert describe(cb, "mk")["log_end_offset"] == end  # no writes, offsets unchanged


def log_batches(b, topic):
    """(base offset, attributes) of every batch in the segment files of partition 0, read from
    the data directory (a reader never sees a marker)."""
    d = os.path.join(b.data, "topics", topic, "0")
    out = []
    for name in sorted(os.listdir(d)):
        if not name.endswith(".log"):
            continue
        with open(os.path.join(d, name), "rb") as f:
            data = f.read()
        pos = 0
        while pos + 61 <= len(data):
            base = int.from_bytes(data[pos:pos + 8], "big")
            length = int.from_bytes(data[pos + 8:pos + 12], "big")
            attrs = int.from_bytes(data[pos + 21:pos + 23], "big")
            out.append((base, attrs))
            pos += 12 + length
    return out


def test_markers_and_tombstones_go_without_new_writes(cb):
    """With no writes after them, a tombstone goes once its delete horizon has passed, and an
    aborted transaction's marker too, with its entry in aborted-txns (the cleaner comes back
    for them by itself: nothing new is dirty). The marker of the producer's last transaction,
    whose batch stays to keep the producer's sequence, stays."""
    config = dict(TOPIC_CONFIG, **{"segment.bytes": "16384"})
    create(cb, "mt", config)
    produce(cb, "mt", [(b"gone", b"v"), (b"gone", None)])
    p = ck.Producer({"bootstrap.servers": cb.bootstrap, "transactional.id": "mt-t",
                     "linger.ms": 5})
    p.init_transactions(20)
    p.begin_transaction()
    p.produce("mt", key=b"k", value=b"aborted", partition=0)
    assert p.flush(20) == 0
    p.abort_transaction(20)
    p.begin_transaction()
    p.produce("mt", key=b"q", value=b"committed", partition=0)
    p.commit_transaction(20)
    del p  # closes it: nothing transactional comes after
    # The commit is answered once its Prepare is durable; its marker follows a moment later.
    deadline = time.time() + 20
    while True:
        control = [o for o, a in log_batches(cb, "mt") if a & 0x20]
        if len(control) >= 2 or time.time() > deadline:
            break
        time.sleep(0.05)
    assert len(control) == 2, control
    produce(cb, "mt", [(b"f%d" % i, b"x" * 100) for i in range(1000)])  # rolls past them
    abort_file = os.path.join(cb.data, "topics", "mt", "0", "aborted-txns")
    assert os.path.getsize(abort_file) == 36
    end = describe(cb, "mt")["log_end_offset"]
    deadline = time.time() + 60
    while time.time() < deadline:
        left = [o for o, a in log_batches(cb, "mt") if a & 0x20]
        keys = [k for _, k, _ in consume_from_zero(cb, "mt")]
        if left == control[1:] and b"gone" not in keys and os.path.getsize(abort_file) == 0:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"markers {left} (of {control}), gone in keys: {b'gone' in keys}, "
                             f"aborted-txns {os.path.getsize(abort_file)} bytes")
    assert describe(cb, "mt")["log_end_offset"] == end  # no writes, offsets unchanged
    assert b"k" not in keys and b"q" in keys
