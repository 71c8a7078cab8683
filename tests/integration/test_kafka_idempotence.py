"""Idempotent producers: InitProducerId, Kafka's sequence rules on the wire, state that survives
broker restarts and crashes, and librdkafka's `enable.idempotence=true` while the broker drops
connections after appending but before answering (the test-only fault.drop.after.append switch):
the topic then holds every event exactly once, in order.

Every wait is bounded; producers send a fixed number of events.
"""
import collections
import signal
import struct
import time

import confluent_kafka as ck
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.record.default_records import DefaultRecordBatchBuilder

import kafkawire as kw
from conftest import Broker
from kafkawire import array, i16, i32, i64, string, tags

INIT_PRODUCER_ID = 22
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47
INVALID_RECORD = 87
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
FAST_RECONNECT = {"reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 100,
                  "retry.backoff.ms": 20}


def create_topic(bootstrap, name, partitions, config=None):
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(name, partitions, 1, config=config or {})])[name].result(timeout=10)


def consume_all(bootstrap, topic, partitions, expect, timeout=60):
    """Every record of every partition, from the beginning, until `expect` arrived and the
    topic stays quiet for a second (so that extra records would be seen too)."""
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "check",
                     "enable.auto.commit": False, "enable.partition.eof": False})
    c.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(partitions)])
    out = []
    deadline = time.time() + timeout
    quiet_since = time.time()
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            if len(out) >= expect and time.time() - quiet_since > 1.0:
                break
            continue
        assert m.error() is None, m.error()
        out.append((m.partition(), m.offset(), m.key(), m.value()))
        quiet_since = time.time()
    c.close()
    return out


def produce_keyed(bootstrap, topic, n, idempotent, timeout=90):
    """Sends n events (value i, key i % 11) and returns the delivery reports."""
    reports = []
    errors = []

    def cb(err, msg):
        if err:
            errors.append(str(err))
        else:
            reports.append((msg.partition(), msg.offset(), msg.key(), msg.value()))

    p = ck.Producer({"bootstrap.servers": bootstrap, "enable.idempotence": idempotent,
                     "acks": "all", "linger.ms": 2, "batch.num.messages": 25,
                     "message.timeout.ms": 120000, **FAST_RECONNECT})
    for i in range(n):
        p.produce(topic, key=b"k%d" % (i % 11), value=b"%d" % i, on_delivery=cb)
        p.poll(0)
    left = p.flush(timeout)
    assert left == 0, f"{left} events undelivered after {timeout}s"
    assert not errors, errors[:5]
    return reports


@pytest.fixture
def faulty(tmp_path):
    b = Broker(str(tmp_path / "data"), extra=["--set", "fault.drop.after.append=7"]).start()
    yield b
    if b.proc:
        b.stop()


def test_librdkafka_idempotent_producer_stores_each_event_once_despite_dropped_answers(faulty):
    n = 3000
    create_topic(faulty.bootstrap, "idem", 3)
    reports = produce_keyed(faulty.bootstrap, "idem", n, idempotent=True)
    drops = faulty.stderr().count("fault injection: closing")
    assert drops >= 5, f"only {drops} connections were dropped"
    stored = consume_all(faulty.bootstrap, "idem", 3, n)
    values = [int(v) for _, _, _, v in stored]
    assert len(stored) == n, f"{len(stored)} records stored for {n} events ({drops} drops)"
    assert sorted(values) == list(range(n))
    # In order: offsets dense per partition, and each key's values increasing.
    by_part = collections.defaultdict(list)
    by_key = collections.defaultdict(list)
    for part, off, key, v in stored:
        by_part[part].append(off)
        by_key[key].append(int(v))
    for offs in by_part.values():
        assert offs == list(range(len(offs)))
    for vals in by_key.values():
        assert vals == sorted(vals)
    # A retried batch was answered with the offsets it was stored at.
    assert sorted(reports) == sorted(stored)


def test_without_idempotence_the_same_faults_store_duplicates(faulty):
    """The control: the fault switch really loses answers after appending, so a producer that
    is not idempotent stores retried events twice."""
    n = 700
    create_topic(faulty.bootstrap, "plain", 1)
    produce_keyed(faulty.bootstrap, "plain", n, idempotent=False)
    assert faulty.stderr().count("fault injection: closing") >= 1
    stored = consume_all(faulty.bootstrap, "plain", 1, n + 1, timeout=30)
    values = [int(v) for _, _, _, v in stored]
    assert set(values) == set(range(n))
    assert len(values) > n, "no event was stored twice"


# ---------------------------------------------------------------------------------------------
# The wire
def init_producer_id(c, version, transactional_id=None, pid=-1, epoch=-1):
    flex = version >= 2
    body = string(transactional_id, flex) + i32(60000)
    if version >= 3:
        body += i64(pid) + i16(epoch)
    body += tags(flex)
    r = c.request(INIT_PRODUCER_ID, version, body, flex=flex)
    assert r.i32() == 0
    err, pid, epoch = r.i16(), r.i64(), r.i16()
    r.tags()
    assert r.done()
    return err, pid, epoch


def idem_batch(values, pid, epoch, seq, transactional=False):
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=transactional,
                                  producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                                  batch_size=1 << 20)
    for i, v in enumerate(values):
        b.append(i, timestamp=1700000000000 + i, key=None, value=v, headers=[])
    return bytes(b.build())


def produce(c, topic, records, version=9):
    """One partition's produce; returns (error, base offset, error message)."""
    flex = version >= 9
    r = c.request(0, version, kw.produce_body(topic, 0, records, flex=flex), flex=flex)
    if version < 8:
        (_, _, err, base), = kw.read_produce(r, version)
        return err, base, None
    assert r.array_len() == 1
    r.string()
    assert r.array_len() == 1
    r.i32()
    err, base = r.i16(), r.i64()
    r.i64()
    r.i64()
    for _ in range(r.array_len()):
        r.i32()
        r.string()
        r.tags()
    msg = r.string()
    r.tags()
    r.tags()
    r.i32()
    r.tags()
    assert r.done()
    return err, base, msg


def log_end(c, topic):
    body = i32(-1) + i8(0) + array([string(topic) + array([i32(0) + i64(-1)])])
    r = c.request(2, 2, body)
    r.i32()
    assert r.array_len() == 1
    r.string()
    assert r.array_len() == 1
    r.i32()
    assert r.i16() == 0
    r.i64()
    return r.i64()


def i8(v):
    return struct.pack(">b", v)


@pytest.mark.parametrize("version", range(5))
def test_init_producer_id_every_version(broker, version):
    c = kw.Conn(broker.port)
    err, pid1, epoch = init_producer_id(c, version)
    assert (err, epoch) == (0, 0) and pid1 >= 0
    # An idempotent producer's request for a new id (v3+ names the old one) gets a new id.
    err, pid2, epoch = init_producer_id(c, version, pid=pid1 if version >= 3 else -1,
                                        epoch=0 if version >= 3 else -1)
    assert (err, epoch) == (0, 0) and pid2 > pid1
    # A transactional id gets its own producer id from the transaction coordinator
    # (test_kafka_txn.py covers its epochs).
    err, pid, epoch = init_producer_id(c, version, transactional_id=f"tx{version}")
    assert err == 0 and epoch == 0 and pid not in (pid1, pid2)
    c.close()


def test_sequence_rules_on_the_wire(broker):
    c = kw.Conn(broker.port)
    create_topic(broker.bootstrap, "seq", 1)
    _, pid, epoch = init_producer_id(c, 4)
    assert produce(c, "seq", idem_batch([b"a", b"b"], pid, epoch, 0))[:2] == (0, 0)
    assert produce(c, "seq", idem_batch([b"c"], pid, epoch, 2))[:2] == (0, 2)
    # A retry: the original's offset, nothing stored.
    assert produce(c, "seq", idem_batch([b"a", b"b"], pid, epoch, 0))[:2] == (0, 0)
    assert produce(c, "seq", idem_batch([b"c"], pid, epoch, 2))[:2] == (0, 2)
    assert log_end(c, "seq") == 3
    # A gap, and a retry of a range that was never sent whole.
    err, base, msg = produce(c, "seq", idem_batch([b"x"], pid, epoch, 5))
    assert (err, base) == (OUT_OF_ORDER_SEQUENCE_NUMBER, -1)
    assert "sequence 5 after 2" in msg
    assert produce(c, "seq", idem_batch([b"b"], pid, epoch, 1))[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
    # A newer epoch starts at 0; then the old one is fenced.
    assert produce(c, "seq", idem_batch([b"y"], pid, epoch + 1, 3))[0] == \
        OUT_OF_ORDER_SEQUENCE_NUMBER
    assert produce(c, "seq", idem_batch([b"d"], pid, epoch + 1, 0))[:2] == (0, 3)
    err, _, msg = produce(c, "seq", idem_batch([b"e"], pid, epoch, 3))
    assert err == INVALID_PRODUCER_EPOCH and "older than its current epoch" in msg
    # Producers are independent; a batch without a producer id is never checked.
    _, pid2, _ = init_producer_id(c, 4)
    assert produce(c, "seq", idem_batch([b"f"], pid2, 0, 0))[:2] == (0, 4)
    assert produce(c, "seq", kw.make_batch([b"g"]))[:2] == (0, 5)
    assert produce(c, "seq", kw.make_batch([b"g"]))[:2] == (0, 6)
    # Refused outright: two batches of one idempotent producer in one partition's records, a
    # transactional batch outside a transaction, a negative sequence.
    two = idem_batch([b"h"], pid2, 0, 1) + idem_batch([b"i"], pid2, 0, 2)
    assert produce(c, "seq", two)[0] == INVALID_RECORD
    # (a transactional batch in a request that names no transactional id: Kafka's answer)
    assert produce(c, "seq", idem_batch([b"t"], pid2, 0, 1, transactional=True))[0] == \
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    assert produce(c, "seq", idem_batch([b"n"], pid2, 0, -1))[0] == INVALID_RECORD
    assert log_end(c, "seq") == 7
    # The older produce versions carry the same errors.
    assert produce(c, "seq", idem_batch([b"z"], pid2, 0, 9), version=3)[0] == \
        OUT_OF_ORDER_SEQUENCE_NUMBER
    c.close()


@pytest.mark.parametrize("how", ["restart", "sigkill"])
def test_retries_are_recognised_after_a_broker_restart(tmp_path, how):
    """Producer state comes back from the snapshots and the batch headers: small segments make
    the broker roll (and snapshot) while the producer writes; a SIGKILL leaves the last
    segment's batches to be read from the log."""
    b = Broker(str(tmp_path / "data")).start()
    try:
        c = kw.Conn(b.port)
        create_topic(b.bootstrap, "r", 1, {"segment.bytes": "2048"})
        _, pid, _ = init_producer_id(c, 4)
        seq = 0
        for i in range(60):
            values = [b"value-%d" % (seq + k) for k in range(1 + i % 3)]
            assert produce(c, "r", idem_batch(values, pid, 0, seq))[:2] == (0, seq)
            seq += len(values)
        last = idem_batch([b"value-%d" % seq, b"value-%d" % (seq + 1)], pid, 0, seq)
        assert produce(c, "r", last)[:2] == (0, seq)
        c.close()
        b.stop(signal.SIGKILL if how == "sigkill" else signal.SIGTERM)
        b.start()
        c = kw.Conn(b.port)
        assert produce(c, "r", last)[:2] == (0, seq)  # recognised: the original offset
        assert log_end(c, "r") == seq + 2
        assert produce(c, "r", idem_batch([b"next"], pid, 0, seq + 3))[0] == \
            OUT_OF_ORDER_SEQUENCE_NUMBER
        assert produce(c, "r", idem_batch([b"next"], pid, 0, seq + 2))[:2] == (0, seq + 2)
        # Producer ids are never handed out twice, across restarts too.
        _, pid2, _ = init_producer_id(c, 4)
        assert pid2 > pid
        c.close()
    finally:
        if b.proc:
            b.stop()
