"""Kafka transactions (docs/kafka.md#transactions) with librdkafka (confluent-kafka) and on the
wire: InitProducerId with a transactional id (epochs across calls and restarts, time-outs),
commit and abort, what read_committed and read_uncommitted consumers see, the last stable
offset an open transaction holds back, fencing of an older producer with the same id, the
abort of a transaction open past its time-out, and the aborted-transaction index across a
kill -9.

Every wait is bounded; producers send a fixed number of events.
"""
import signal
import time

import confluent_kafka as ck
import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

import kafkawire as kw
from conftest import Broker
from test_kafka_idempotence import idem_batch, init_producer_id

INVALID_TRANSACTION_TIMEOUT = 50
INVALID_TXN_STATE = 48


def create_topic(bootstrap, name, partitions=1):
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=10)


def txn_producer(bootstrap, tid, **extra):
    p = ck.Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "linger.ms": 5,
                     **extra})
    p.init_transactions(20)
    return p


def send(p, topic, values, partition=None):
    for v in values:
        if partition is None:
            p.produce(topic, key=v, value=v)
        else:
            p.produce(topic, key=v, value=v, partition=partition)
    assert p.flush(20) == 0


def read(bootstrap, topic, partitions=1, committed=True, quiet=1.0, timeout=30):
    """Every record of the topic from the start, as a read_committed (or read_uncommitted)
    consumer sees it, until it has been quiet for `quiet` seconds."""
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "check",
                     "enable.auto.commit": False, "enable.partition.eof": False,
                     "isolation.level": "read_committed" if committed else "read_uncommitted"})
    c.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(partitions)])
    out = []
    end = time.time() + timeout
    last = time.time()
    while time.time() < end and time.time() - last < quiet:
        m = c.poll(0.1)
        if m is None:
            continue
        assert m.error() is None, m.error()
        out.append((m.partition(), m.offset(), m.value()))
        last = time.time()
    c.close()
    return out


def high(bootstrap, topic, committed):
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "wm",
                     "isolation.level": "read_committed" if committed else "read_uncommitted"})
    lo, hi = c.get_watermark_offsets(ck.TopicPartition(topic, 0), timeout=10, cached=False)
    c.close()
    return hi


@pytest.mark.parametrize("version", range(5))
def test_init_producer_id_with_a_transactional_id(tmp_path, version):
    b = Broker(str(tmp_path / "data")).start()
    try:
        c = kw.Conn(b.port)
        err, pid, epoch = init_producer_id(c, version, transactional_id="t1")
        assert (err, epoch) == (0, 0) and pid >= 0
        # Each new session of the id: the same producer id at the next epoch.
        assert init_producer_id(c, version, transactional_id="t1") == (0, pid, 1)
        # A time-out the broker does not allow (transaction.max.timeout.ms, 15 minutes).
        body_timeout = 900001
        err = init_producer_id_timeout(c, version, "t2", body_timeout)
        assert err == INVALID_TRANSACTION_TIMEOUT
        c.close()
        b.stop(signal.SIGKILL)
        b.start()
        c = kw.Conn(b.port)
        assert init_producer_id(c, version, transactional_id="t1") == (0, pid, 2)
        c.close()
    finally:
        b.stop()


def init_producer_id_timeout(c, version, tid, timeout_ms):
    flex = version >= 2
    body = kw.string(tid, flex) + kw.i32(timeout_ms)
    if version >= 3:
        body += kw.i64(-1) + kw.i16(-1)
    body += kw.tags(flex)
    r = c.request(22, version, body, flex=flex)
    r.i32()
    return r.i16()


def test_commit_and_abort(broker):
    create_topic(broker.bootstrap, "tx", 2)
    p = txn_producer(broker.bootstrap, "app-1")
    p.begin_transaction()
    send(p, "tx", [b"c%d" % i for i in range(10)])
    p.commit_transaction(20)
    p.begin_transaction()
    send(p, "tx", [b"a%d" % i for i in range(5)])
    p.abort_transaction(20)
    p.begin_transaction()
    send(p, "tx", [b"d%d" % i for i in range(3)])
    p.commit_transaction(20)
    committed = read(broker.bootstrap, "tx", 2)
    assert sorted(v for _, _, v in committed) == sorted(
        [b"c%d" % i for i in range(10)] + [b"d%d" % i for i in range(3)])
    everything = read(broker.bootstrap, "tx", 2, committed=False)
    assert len(everything) == 18  # the aborted ones too, and never a marker
    # Each transaction's marker took one offset in each partition it wrote to.
    for part in range(2):
        offs = [o for pt, o, _ in everything if pt == part]
        assert offs == sorted(offs)
        assert high(broker.bootstrap, "tx", False) >= len(offs)


def test_open_transaction_holds_back_read_committed(broker):
    create_topic(broker.bootstrap, "lso")
    plain = ck.Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce("lso", value=b"before")
    assert plain.flush(10) == 0
    p = txn_producer(broker.bootstrap, "app-2")
    p.begin_transaction()
    send(p, "lso", [b"t%d" % i for i in range(10)])
    plain.produce("lso", value=b"after")  # behind the open transaction
    assert plain.flush(10) == 0
    assert high(broker.bootstrap, "lso", committed=False) == 12
    assert high(broker.bootstrap, "lso", committed=True) == 1  # the transaction's first offset
    assert [v for _, _, v in read(broker.bootstrap, "lso")] == [b"before"]
    assert len(read(broker.bootstrap, "lso", committed=False)) == 12
    p.commit_transaction(20)
    got = [v for _, _, v in read(broker.bootstrap, "lso")]
    assert got == [b"before"] + [b"t%d" % i for i in range(10)] + [b"after"]
    assert high(broker.bootstrap, "lso", committed=True) == 13  # past the marker at 12


def test_interleaved_producers_one_aborts(broker):
    create_topic(broker.bootstrap, "mix")
    a = txn_producer(broker.bootstrap, "app-a")
    b = txn_producer(broker.bootstrap, "app-b")
    a.begin_transaction()
    b.begin_transaction()
    for i in range(5):
        send(a, "mix", [b"a%d" % i])
        send(b, "mix", [b"b%d" % i])
    a.abort_transaction(20)
    b.commit_transaction(20)
    # Many small transactions after, alternately aborted and committed, read in one go.
    for i in range(10):
        a.begin_transaction()
        send(a, "mix", [b"x%d" % i, b"y%d" % i])
        if i % 2:
            a.commit_transaction(20)
        else:
            a.abort_transaction(20)
    got = [v for _, _, v in read(broker.bootstrap, "mix")]
    want = [b"b%d" % i for i in range(5)]
    for i in range(1, 10, 2):
        want += [b"x%d" % i, b"y%d" % i]
    assert got == want
    # A consumer that starts in the middle of an aborted transaction skips the rest of it.
    c = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "mid",
                     "isolation.level": "read_committed"})
    c.assign([ck.TopicPartition("mix", 0, 3)])
    seen = []
    end = time.time() + 15
    while time.time() < end and len(seen) < len(want) - 1:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            seen.append(m.value())
    c.close()
    assert not [v for v in seen if v.startswith(b"a")]
    assert not [v for v in seen if v.startswith(b"x") and int(v[1:]) % 2 == 0]


def test_a_new_instance_fences_the_old(broker):
    create_topic(broker.bootstrap, "fence")
    old = txn_producer(broker.bootstrap, "app-3")
    old.begin_transaction()
    send(old, "fence", [b"zombie%d" % i for i in range(5)])
    new = txn_producer(broker.bootstrap, "app-3")  # aborts the old one's transaction
    new.begin_transaction()
    send(new, "fence", [b"fresh"])
    new.commit_transaction(20)
    with pytest.raises(KafkaException) as e:
        old.produce("fence", value=b"late")
        old.flush(10)
        old.commit_transaction(10)
    err = e.value.args[0]
    assert err.fatal(), err
    assert [v for _, _, v in read(broker.bootstrap, "fence")] == [b"fresh"]


def test_a_stalled_transaction_is_aborted_after_its_timeout(tmp_path):
    b = Broker(str(tmp_path / "data"), extra=[
        "--set", "transaction.abort.timed.out.transaction.cleanup.interval.ms=200"]).start()
    try:
        create_topic(b.bootstrap, "stall")
        p = txn_producer(b.bootstrap, "app-4", **{"transaction.timeout.ms": 1500})
        p.begin_transaction()
        send(p, "stall", [b"s%d" % i for i in range(3)])
        plain = ck.Producer({"bootstrap.servers": b.bootstrap})
        plain.produce("stall", value=b"later")
        assert plain.flush(10) == 0
        end = time.time() + 15
        while time.time() < end and high(b.bootstrap, "stall", True) == 0:
            time.sleep(0.2)
        # The abort moved the last stable offset past the marker: the later record shows.
        assert [v for _, _, v in read(b.bootstrap, "stall")] == [b"later"]
        with pytest.raises(KafkaException):
            p.commit_transaction(10)
    finally:
        b.stop()


def test_transactional_records_outside_a_transaction_are_refused(broker):
    create_topic(broker.bootstrap, "raw")
    c = kw.Conn(broker.port)
    _, pid, epoch = init_producer_id(c, 4, transactional_id="raw-1")
    batch = idem_batch([b"r"], pid, epoch, 0, transactional=True)
    # The produce request names the transactional id, but the partition was never added.
    body = kw.string("raw-1") + kw.i16(-1) + kw.i32(10000) + kw.array(
        [kw.string("raw") + kw.array([kw.i32(0) + kw.bytes_(batch)])])
    r = c.request(0, 8, body)
    r.array_len()
    r.string()
    r.array_len()
    assert r.i32() == 0
    assert r.i16() == INVALID_TXN_STATE
    c.close()


def test_aborted_transactions_survive_kill9(tmp_path):
    b = Broker(str(tmp_path / "data")).start()
    try:
        create_topic(b.bootstrap, "crash")
        p = txn_producer(b.bootstrap, "app-5")
        for i in range(6):
            p.begin_transaction()
            send(p, "crash", [b"%d-%d" % (i, k) for k in range(4)])
            if i % 2:
                p.abort_transaction(20)
            else:
                p.commit_transaction(20)
        b.stop(signal.SIGKILL)
        b.start()
        got = [v for _, _, v in read(b.bootstrap, "crash")]
        assert got == [b"%d-%d" % (i, k) for i in (0, 2, 4) for k in range(4)]
        # The same id goes on after the restart.
        p = txn_producer(b.bootstrap, "app-5")
        p.begin_transaction()
        send(p, "crash", [b"after"])
        p.commit_transaction(20)
        assert [v for _, _, v in read(b.bootstrap, "crash")][-1] == b"after"
    finally:
        b.stop()


def test_consume_transform_produce(broker):
    """Exactly-once processing: each transaction writes its outputs and commits the input
    offsets; an aborted one commits nothing, so its inputs are processed again."""
    create_topic(broker.bootstrap, "in", 2)
    create_topic(broker.bootstrap, "out", 2)
    plain = ck.Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(100):
        plain.produce("in", key=b"%d" % i, value=b"i%d" % i)
    assert plain.flush(10) == 0
    c = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "ctp",
                     "enable.auto.commit": False, "auto.offset.reset": "earliest",
                     "isolation.level": "read_committed"})
    c.subscribe(["in"])
    p = txn_producer(broker.bootstrap, "ctp-1")
    done, aborted_once = 0, False
    end = time.time() + 60
    while done < 100 and time.time() < end:
        msgs = [m for m in c.consume(20, 1.0) if m.error() is None]
        if not msgs:
            continue
        p.begin_transaction()
        for m in msgs:
            p.produce("out", key=m.key(), value=b"o" + m.value())
        p.send_offsets_to_transaction(c.position(c.assignment()),
                                      c.consumer_group_metadata(), 10)
        if not aborted_once:
            aborted_once = True
            assert p.flush(10) == 0  # in the log, then aborted
            p.abort_transaction(10)
            # Nothing was committed: the group has no offsets, and the inputs come again.
            assert all(tp.offset == ck.OFFSET_INVALID
                       for tp in c.committed(c.assignment(), timeout=10))
            for tp in c.assignment():
                c.seek(ck.TopicPartition(tp.topic, tp.partition, ck.OFFSET_BEGINNING))
            continue
        p.commit_transaction(10)
        done += len(msgs)
    assert done == 100
    committed = {tp.partition: tp.offset for tp in c.committed(c.assignment(), timeout=10)}
    c.close()
    lo_hi = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "x"})
    ends = {part: lo_hi.get_watermark_offsets(ck.TopicPartition("in", part), timeout=10)[1]
            for part in range(2)}
    lo_hi.close()
    assert committed == ends  # the group resumes after the last input
    out = sorted(v for _, _, v in read(broker.bootstrap, "out", 2))
    assert out == sorted(b"oi%d" % i for i in range(100))  # each exactly once
    assert len(read(broker.bootstrap, "out", 2, committed=False)) > 100  # the aborted ones


def offset_fetch_v7(c, group, topic, partition, stable):
    """OffsetFetch v7 of one partition: (committed offset, error code)."""
    body = (kw.string(group, True) +
            kw.array([kw.string(topic, True) + kw.array([kw.i32(partition)], True) +
                      kw.tags(True)], True) +
            kw.i8(1 if stable else 0) + kw.tags(True))
    r = c.request(9, 7, body, flex=True)
    r.i32()
    assert r.array_len() == 1
    r.string()
    assert r.array_len() == 1
    assert r.i32() == partition
    offset = r.i64()
    r.i32()
    r.string()
    return offset, r.i16()


def test_offsets_in_an_open_transaction_are_unstable(broker):
    create_topic(broker.bootstrap, "src")
    p = txn_producer(broker.bootstrap, "stab-1")
    c = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "stab"})
    p.begin_transaction()
    p.send_offsets_to_transaction([ck.TopicPartition("src", 0, 42)],
                                  c.consumer_group_metadata(), 10)
    w = kw.Conn(broker.port)
    # RequireStable (KIP-447): UNSTABLE_OFFSET_COMMIT, which clients retry; without it, the
    # last committed offset (none yet).
    assert offset_fetch_v7(w, "stab", "src", 0, True) == (-1, 88)
    assert offset_fetch_v7(w, "stab", "src", 0, False) == (-1, 0)
    p.commit_transaction(10)
    assert offset_fetch_v7(w, "stab", "src", 0, True) == (42, 0)
    assert c.committed([ck.TopicPartition("src", 0)], timeout=10)[0].offset == 42
    # An aborted transaction's offsets never show.
    p.begin_transaction()
    p.send_offsets_to_transaction([ck.TopicPartition("src", 0, 50)],
                                  c.consumer_group_metadata(), 10)
    p.abort_transaction(10)
    assert offset_fetch_v7(w, "stab", "src", 0, True) == (42, 0)
    w.close()
    c.close()
