"""Conditional appends through Kafka (docs/event-sourcing.md#kafka): a record header
tidings-expected-version carries its key's expected version, checked with the append; a mismatch
fails the partition's batch with INVALID_RECORD and a message naming the key and the current
version, and stores nothing (read back through HTTP GET /v1/topics/{t}/keys/{key}/events)."""
import pytest
import requests

from conftest import Broker

H = "tidings-expected-version"


@pytest.fixture
def b(tmp_path):
    br = Broker(str(tmp_path / "data"), http=True).start()
    yield br
    if br.proc:
        br.stop()


def create(b, name, keyed=True, partitions=3):
    cfg = {"fsync": "none"}
    if keyed:
        cfg["key.index"] = "true"
    r = requests.post(f"http://127.0.0.1:{b.http_port}/v1/topics",
                      json={"name": name, "partitions": partitions, "config": cfg}, timeout=10)
    assert r.status_code == 201, r.text


def events(b, topic, key):
    r = requests.get(f"http://127.0.0.1:{b.http_port}/v1/topics/{topic}/keys/{key}/events",
                     timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def producer(b, **conf):
    from confluent_kafka import Producer
    return Producer({"bootstrap.servers": b.bootstrap, "partitioner": "murmur2_random",
                     "message.timeout.ms": 15000, **conf})


def send(p, topic, msgs):
    """Produces msgs [(key, value, expected or None)] as one batch; the delivery reports."""
    got = []
    for key, value, exp in msgs:
        hdrs = [(H, exp)] if exp is not None else None
        p.produce(topic, key=key, value=value, headers=hdrs,
                  on_delivery=lambda err, m: got.append((err, m)))
    assert p.flush(30) == 0
    assert len(got) == len(msgs)
    return got


def test_conditional_produce(b):
    from confluent_kafka import KafkaError
    create(b, "acct")
    p = producer(b, **{"linger.ms": 50})
    [(err, m)] = send(p, "acct", [("a1", "opened", "no_stream")])
    assert err is None
    v = m.offset()
    # no_stream again: the stream exists now
    [(err, _)] = send(p, "acct", [("a1", "opened again", "no_stream")])
    assert err is not None and err.code() == KafkaError.INVALID_RECORD
    assert not err.retriable()
    # the right version, then the same version again (a lost race)
    [(err, m)] = send(p, "acct", [("a1", "deposit", str(v))])
    assert err is None
    v2 = m.offset()
    [(err, _)] = send(p, "acct", [("a1", "withdraw", str(v))])
    assert err is not None and err.code() == KafkaError.INVALID_RECORD
    body = events(b, "acct", "a1")
    assert [e["offset"] for e in body["events"]] == [v, v2]
    assert body["version"] == v2
    # exists: holds for a1, not for a key without events
    [(err, _)] = send(p, "acct", [("a1", "note", "exists")])
    assert err is None
    [(err, _)] = send(p, "acct", [("ghost", "x", "exists")])
    assert err is not None and err.code() == KafkaError.INVALID_RECORD
    assert events(b, "acct", "ghost")["events"] == []
    # any: no condition; and records without the header are unchanged
    assert [e for e, _ in send(p, "acct", [("a1", "y", "any"), ("a1", "z", None)])] == \
        [None, None]
    body = events(b, "acct", "a1")
    assert len(body["events"]) == 5
    # the header is stored with the record, as sent
    assert any(h["key"] == H for h in body["events"][0]["headers"])


def test_batch_all_or_nothing(b):
    """One failed condition in a batch: none of the batch's records stored, compressed or not."""
    from confluent_kafka import KafkaError
    create(b, "orders")
    for codec in ("none", "lz4"):
        p = producer(b, **{"linger.ms": 200, "compression.type": codec})
        k = f"o-{codec}"
        [(err, m)] = send(p, "orders", [(k, "placed", "no_stream")])
        assert err is None, err
        v = m.offset()
        got = send(p, "orders", [(k, "paid", str(v)), (k, "shipped", None),
                                 (k, "refunded", str(v + 1000))])
        assert all(e is not None and e.code() == KafkaError.INVALID_RECORD for e, _ in got)
        assert [e["offset"] for e in events(b, "orders", k)["events"]] == [v]


def test_refused_without_key_index_or_malformed(b):
    from confluent_kafka import KafkaError
    create(b, "plain", keyed=False)
    create(b, "keyed")
    p = producer(b)
    [(err, _)] = send(p, "plain", [("k", "v", "no_stream")])
    assert err is not None and err.code() == KafkaError.INVALID_RECORD
    # "any" is no condition: accepted anywhere, as over HTTP
    [(err, _)] = send(p, "plain", [("k", "v", "any")])
    assert err is None
    for bad in ("-1", "12x", "", "NO_STREAM", "99999999999999999999"):
        [(err, _)] = send(p, "keyed", [("k", "v", bad)])
        assert err is not None and err.code() == KafkaError.INVALID_RECORD, bad
    # a header on a record without a key
    [(err, _)] = send(p, "keyed", [(None, "v", "no_stream")])
    assert err is not None and err.code() == KafkaError.INVALID_RECORD
    assert events(b, "keyed", "k")["events"] == []


def test_record_errors_name_the_key_and_version(b):
    """Produce v9 by hand: record_errors names the failing record, the message its key and the
    stream's current version (librdkafka does not show the message)."""
    from kafka.record.default_records import DefaultRecordBatchBuilder
    from test_schema_enforce import raw_produce
    create(b, "one", partitions=1)

    def batch(recs, compression=0):
        bb = DefaultRecordBatchBuilder(magic=2, compression_type=compression,
                                       is_transactional=False, producer_id=-1,
                                       producer_epoch=-1, base_sequence=-1,
                                       batch_size=1 << 20)
        for i, (k, exp) in enumerate(recs):
            bb.append(i, timestamp=1700000000000 + i, key=k, value=b"v",
                      headers=[(H, exp)] if exp is not None else [])
        return bytes(bb.build())

    err, recs, msg = raw_produce(b, "one", batch([(b"u1", b"no_stream"), (b"u2", b"no_stream")]))
    assert (err, recs) == (0, [])
    for comp in (0, 1):  # none, gzip
        err, recs, msg = raw_produce(b, "one", batch([(b"u2", None), (b"u1", b"exists"),
                                                      (b"u2", b"0")], comp))
        assert err == 87
        assert [i for i, _ in recs] == [2]
        assert "key 'u2'" in msg and "expected version 0" in msg and "version is 1" in msg, msg
    err, recs, msg = raw_produce(b, "one", batch([(b"u1", b"junk")]))
    assert err == 87 and [i for i, _ in recs] == [0] and H in msg
    assert [e["offset"] for e in events(b, "one", "u2")["events"]] == [1]
    err, recs, msg = raw_produce(b, "one", batch([(b"u2", b"1"), (b"u1", b"0")]))
    assert (err, recs) == (0, [])
    assert [e["offset"] for e in events(b, "one", "u2")["events"]] == [1, 2]
    create(b, "flat", keyed=False, partitions=1)
    err, recs, msg = raw_produce(b, "flat", batch([(b"u1", b"any"), (b"u1", b"no_stream")]))
    assert err == 87 and [i for i, _ in recs] == [1] and "key.index=true" in msg, msg


def test_idempotent_producer(b):
    """An idempotent producer's conditional records (one batch, with a sequence) are checked
    like any other."""
    from confluent_kafka import KafkaError
    create(b, "idem")
    p = producer(b, **{"enable.idempotence": True, "linger.ms": 20})
    [(err, m)] = send(p, "idem", [("e1", "created", "no_stream")])
    assert err is None, err
    v = m.offset()
    [(err, _)] = send(p, "idem", [("e1", "stale", "no_stream")])
    assert err is not None and err.code() == KafkaError.INVALID_RECORD
    [(err, m)] = send(p, "idem", [("e1", "updated", str(v))])
    assert err is None, err
    assert [e["offset"] for e in events(b, "idem", "e1")["events"]] == [v, m.offset()]
