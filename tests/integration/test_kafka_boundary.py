"""A consistency boundary through Kafka (docs/event-sourcing.md#kafka-1): the first record of a
batch carries tidings-condition-key headers (one per key) and a tidings-condition-after header;
the batch is stored only if none of the keys has an event after that position in the batch's
partition, else it fails with INVALID_RECORD and a message naming the key and its version, and
nothing of it is stored."""
import pytest
import requests

from conftest import Broker

HK, HA = "tidings-condition-key", "tidings-condition-after"


@pytest.fixture
def b(tmp_path):
    br = Broker(str(tmp_path / "data"), http=True).start()
    yield br
    if br.proc:
        br.stop()


def create(b, name, keyed=True, partitions=1):
    cfg = {"fsync": "none"}
    if keyed:
        cfg["key.index"] = "true"
    r = requests.post(f"http://127.0.0.1:{b.http_port}/v1/topics",
                      json={"name": name, "partitions": partitions, "config": cfg}, timeout=10)
    assert r.status_code == 201, r.text


def offsets(b, topic, key):
    r = requests.get(f"http://127.0.0.1:{b.http_port}/v1/topics/{topic}/keys/{key}/events",
                     timeout=10)
    assert r.status_code == 200, r.text
    return [e["offset"] for e in r.json()["events"]]


def cond_headers(keys, after):
    return [(HK, k) for k in keys] + [(HA, str(after))]


def test_condition_with_confluent_kafka(b):
    from confluent_kafka import KafkaError, Producer
    create(b, "courses")
    p = Producer({"bootstrap.servers": b.bootstrap, "partitioner": "murmur2_random",
                  "linger.ms": 50, "message.timeout.ms": 15000})
    got = []

    def send(msgs):
        """msgs [(key, value, headers)], produced together then flushed: one batch."""
        got.clear()
        for key, value, hdrs in msgs:
            p.produce("courses", key=key, value=value, headers=hdrs,
                      on_delivery=lambda err, m: got.append((err, m)))
        assert p.flush(30) == 0
        assert len(got) == len(msgs)
        return list(got)

    [(err, m)] = send([("course-c1", "defined", None)])
    assert err is None and m.offset() == 0
    sub = [("course-c1", "subscribed s1", cond_headers(["course-c1", "student-s1"], 0)),
           ("student-s1", "subscribed c1", None)]
    res = send(sub)
    assert [e for e, _ in res] == [None, None]
    assert [m.offset() for _, m in res] == [1, 2]
    # The same decision on the old position: the batch fails whole.
    res = send(sub)
    assert all(e is not None and e.code() == KafkaError.INVALID_RECORD for e, _ in res)
    assert offsets(b, "courses", "course-c1") == [0, 1]
    assert offsets(b, "courses", "student-s1") == [2]
    # no_stream: none of the keys has an event.
    res = send([("course-c2", "defined", cond_headers(["course-c2"], "no_stream"))])
    assert res[0][0] is None
    res = send([("course-c2", "again", cond_headers(["course-c2"], "no_stream"))])
    assert res[0][0].code() == KafkaError.INVALID_RECORD


def test_record_errors_name_the_condition_key(b):
    """Produce v9 by hand: record_errors names record 0, the message the key that changed and
    its version; malformed conditions are refused the same way; no key.index: refused."""
    from kafka.record.default_records import DefaultRecordBatchBuilder
    from test_schema_enforce import raw_produce
    create(b, "one")

    def batch(recs, compression=0):
        bb = DefaultRecordBatchBuilder(magic=2, compression_type=compression,
                                       is_transactional=False, producer_id=-1,
                                       producer_epoch=-1, base_sequence=-1,
                                       batch_size=1 << 20)
        for i, (k, hdrs) in enumerate(recs):
            bb.append(i, timestamp=1700000000000 + i, key=k, value=b"v", headers=hdrs)
        return bytes(bb.build())

    def hs(keys, after):
        return [(HK, k) for k in keys] + [(HA, after)]

    err, recs, msg = raw_produce(b, "one", batch([(b"a", []), (b"b", []), (b"c", [])]))
    assert (err, recs) == (0, [])
    for comp in (0, 1):  # none, gzip
        err, recs, msg = raw_produce(b, "one", batch([(b"x", hs([b"a", b"c"], b"1")),
                                                      (b"y", [])], comp))
        assert err == 87, msg
        assert [i for i, _ in recs] == [0]
        assert "condition key 1 'c'" in msg and "version 2 is after the position 1" in msg, msg
    err, recs, msg = raw_produce(b, "one", batch([(b"x", hs([b"a", b"b"], b"1")), (b"y", [])]))
    assert (err, recs) == (0, []), msg
    assert offsets(b, "one", "x") == [3]
    bad = [
        [(b"x", [(HK, b"a")])],                                 # no position
        [(b"x", [(HA, b"3")])],                                 # no key
        [(b"x", hs([b"a"], b"exists"))],                        # not a position
        [(b"x", hs([b"a"], b"3") + [(HA, b"4")])],              # two positions
        [(b"x", []), (b"y", hs([b"a"], b"3"))],                 # not on the first record
        [(b"x", hs([b"k%d" % i for i in range(65)], b"3"))],    # too many keys
    ]
    for recs_ in bad:
        err, recs, msg = raw_produce(b, "one", batch(recs_))
        assert err == 87, (recs_, msg)
    assert offsets(b, "one", "x") == [3]
    create(b, "flat", keyed=False)
    err, recs, msg = raw_produce(b, "flat", batch([(b"x", hs([b"a"], b"no_stream"))]))
    assert err == 87 and "key.index=true" in msg, msg


def test_tags_in_kafka_headers(b):
    """Event tags through Kafka (docs/event-sourcing.md#tags): tidings-tag headers on records,
    tidings-condition-tag headers on a batch's first record; the refusal names the tag and its
    version; malformed tags are refused."""
    from kafka.record.default_records import DefaultRecordBatchBuilder
    from test_schema_enforce import raw_produce
    create(b, "tagged")
    HT, HG = "tidings-condition-tag", "tidings-tag"

    def batch(recs):
        bb = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                       producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                       batch_size=1 << 20)
        for i, (k, hdrs) in enumerate(recs):
            bb.append(i, timestamp=1700000000000 + i, key=k, value=b"v", headers=hdrs)
        return bytes(bb.build())

    err, recs, msg = raw_produce(b, "tagged", batch([(b"a", [(HG, b"course:c1")]),
                                                     (b"b", [(HG, b"student:s1")])]))
    assert (err, recs) == (0, []), msg
    # c1 at 0, s1 at 1: after 0, s1 changed.
    cond = [(HT, b"course:c1"), (HT, b"student:s1"), (HA, b"0")]
    err, recs, msg = raw_produce(b, "tagged", batch([(b"x", cond + [(HG, b"course:c1")])]))
    assert err == 87, msg
    assert "condition tag 1 'student:s1'" in msg and "version 1 is after the position 0" in msg
    cond[-1] = (HA, b"1")
    err, recs, msg = raw_produce(b, "tagged", batch([(b"x", cond + [(HG, b"course:c1")])]))
    assert (err, recs) == (0, []), msg
    # The event just stored (offset 2) carries course:c1: the same condition now fails.
    err, recs, msg = raw_produce(b, "tagged", batch([(b"y", cond)]))
    assert err == 87 and "condition tag 0 'course:c1'" in msg and "version 2" in msg, msg
    # A key and a tag of the same bytes are distinct: no event has the key course:c1.
    err, recs, msg = raw_produce(b, "tagged", batch([(b"y", [(HK, b"course:c1"),
                                                             (HA, b"no_stream")])]))
    assert (err, recs) == (0, []), msg
    for hdrs in ([(HG, b"")], [(HG, b"t")] * 17, [(HT, b""), (HA, b"1")]):
        err, recs, msg = raw_produce(b, "tagged", batch([(b"z", hdrs)]))
        assert err == 87, (hdrs, msg)
    assert offsets(b, "tagged", "z") == []
