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


def read(bootstrap, topic, partitions=1, committed=True, quiet=1.0, timeout=30, first=5.0,
         expect=0):
    """Every record of the topic from the start, as a read_committed (or read_uncommitted)
    consumer sees it: at least `expect` records (or until the time-out), then until it has been
    quiet for `quiet` seconds after a record (or for `first` seconds without any: a loaded host
    can take more than `quiet` to the first, or between partitions)."""
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "check",
                     "enable.auto.commit": False, "enable.partition.eof": False,
                     "isolation.level": "read_committed" if committed else "read_uncommitted"})
    c.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(partitions)])
    out = []
    end = time.time() + timeout
    last = time.time()
    while time.time() < end and (len(out) < expect or
                                 time.time() - last < (quiet if out else max(quiet, first))):
        m = c.poll(0.1)
        if m is None:
            continue
        assert m.error() is None, m.error()
        out.append((m.partition(), m.offset(), m.value()))
        last = time.time()
    c.close()
    return out


def until(fn, timeout=10):
    """fn()'s first truthy result within the time-out (else its last). EndTxn is answered once
    the outcome is durable, as Kafka's is; the markers, the offsets and the Complete record
    follow, and what shows them is polled for."""
    deadline = time.time() + timeout
    while not (r := fn()) and time.time() < deadline:
        time.sleep(0.05)
    return r


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
    committed = read(broker.bootstrap, "tx", 2, expect=13)
    assert sorted(v for _, _, v in committed) == sorted(
        [b"c%d" % i for i in range(10)] + [b"d%d" % i for i in range(3)])
    everything = read(broker.bootstrap, "tx", 2, committed=False, expect=18)
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


def partition_0_error(r):
    """The error code of a response's one topic and its one partition, 0 (after the leading
    fields the caller read)."""
    assert r.array_len() == 1
    r.string()
    assert r.array_len() == 1
    assert r.i32() == 0
    return r.i16()


def raw_produce(c, tid, topic, batch):
    """Produce v8 of one batch to partition 0 naming transactional id tid: the error code."""
    body = kw.string(tid) + kw.i16(-1) + kw.i32(10000) + kw.array(
        [kw.string(topic) + kw.array([kw.i32(0) + kw.bytes_(batch)])])
    return partition_0_error(c.request(0, 8, body))


def add_partition_v0(c, tid, pid, epoch, topic):
    body = kw.string(tid) + kw.i64(pid) + kw.i16(epoch) + kw.array(
        [kw.string(topic) + kw.array([kw.i32(0)])])
    r = c.request(24, 0, body)
    r.i32()
    return partition_0_error(r)


def test_transactional_records_outside_a_transaction_are_refused(broker):
    create_topic(broker.bootstrap, "raw")
    c = kw.Conn(broker.port)
    _, pid, epoch = init_producer_id(c, 4, transactional_id="raw-1")
    _, pid2, epoch2 = init_producer_id(c, 4, transactional_id="raw-2")
    batch = idem_batch([b"r"], pid, epoch, 0, transactional=True)
    # The produce request names the transactional id, but the partition was never added.
    assert raw_produce(c, "raw-1", "raw", batch) == INVALID_TXN_STATE
    assert add_partition_v0(c, "raw-1", pid, epoch, "raw") == 0
    assert add_partition_v0(c, "raw-2", pid2, epoch2, "raw") == 0
    # Another transactional id's request cannot write into raw-1's transaction.
    assert raw_produce(c, "raw-2", "raw", batch) == INVALID_TXN_STATE
    assert raw_produce(c, "raw-1", "raw", batch) == 0
    # While its transaction is open, the producer's records outside it are refused.
    plain = idem_batch([b"p"], pid, epoch, 1, transactional=False)
    assert raw_produce(c, None, "raw", plain) == INVALID_TXN_STATE
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
    out = sorted(v for _, _, v in read(broker.bootstrap, "out", 2, expect=100))
    assert out == sorted(b"oi%d" % i for i in range(100))  # each exactly once
    assert len(read(broker.bootstrap, "out", 2, committed=False, expect=101)) > 100  # aborted


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
    assert until(lambda: offset_fetch_v7(w, "stab", "src", 0, True) == (42, 0))
    assert c.committed([ck.TopicPartition("src", 0)], timeout=10)[0].offset == 42
    # An aborted transaction's offsets never show.
    p.begin_transaction()
    p.send_offsets_to_transaction([ck.TopicPartition("src", 0, 50)],
                                  c.consumer_group_metadata(), 10)
    p.abort_transaction(10)
    assert until(lambda: offset_fetch_v7(w, "stab", "src", 0, True) == (42, 0))
    w.close()
    c.close()


@pytest.mark.parametrize("commit", [True, False])
def test_kill9_between_prepare_and_markers(tmp_path, commit):
    """A kill -9 after the PrepareCommit (PrepareAbort) record is durable and before any marker:
    the restarted coordinator writes the markers (and a commit's offsets) itself."""
    data = str(tmp_path / "data")
    b = Broker(data, extra=["--set", "fault.txn.pause.after.prepare.ms=60000"]).start()
    try:
        create_topic(b.bootstrap, "pm", 2)
        p = txn_producer(b.bootstrap, "pm-1")
        c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "pm-group"})
        p.begin_transaction()
        send(p, "pm", [b"v%d" % i for i in range(6)])
        p.send_offsets_to_transaction([ck.TopicPartition("pm", 0, 3)],
                                      c.consumer_group_metadata(), 10)
        c.close()
        # EndTxn is answered once the Prepare record is durable, as Kafka's is: the outcome is
        # settled from there, and the markers follow (here held back by the fault's pause).
        (p.commit_transaction if commit else p.abort_transaction)(30)
        time.sleep(0.5)
        assert high(b.bootstrap, "pm", committed=True) == 0  # no marker written yet
        b.stop(signal.SIGKILL)
    finally:
        if b.proc:
            b.stop()
    b = Broker(data).start()
    try:
        end = time.time() + 15
        want = 6 if commit else 0
        got = []
        while time.time() < end:
            got = read(b.bootstrap, "pm", 2, quiet=0.5)
            if len(got) >= want and high(b.bootstrap, "pm", True) > 0:
                break
        assert sorted(v for _, _, v in got) == ([b"v%d" % i for i in range(6)] if commit else [])
        c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "pm-group"})
        off = c.committed([ck.TopicPartition("pm", 0)], timeout=10)[0].offset
        c.close()
        assert off == (3 if commit else ck.OFFSET_INVALID)
        # The id goes on: a new session gets the next epoch.
        p = txn_producer(b.bootstrap, "pm-1")
        p.begin_transaction()
        send(p, "pm", [b"after"])
        p.commit_transaction(20)
        assert b"after" in [v for _, _, v in read(b.bootstrap, "pm", 2)]
    finally:
        b.stop()


class Processor:
    """A consume-transform-produce loop ("in" -> "out", value b"o" + input) with transactions,
    as an exactly-once application writes it: on an abortable error it aborts and rewinds to
    the committed offsets; on anything else it starts over with new clients."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "eos",
                              "enable.auto.commit": False, "auto.offset.reset": "earliest",
                              "isolation.level": "read_committed",
                              "session.timeout.ms": 6000})
        self.c.subscribe(["ein"])
        self.p = txn_producer(bootstrap, "eos-1", **{"transaction.timeout.ms": 10000})

    def rewind(self):
        for tp in self.c.committed(self.c.assignment(), timeout=10):
            self.c.seek(ck.TopicPartition(tp.topic, tp.partition,
                                          tp.offset if tp.offset >= 0 else ck.OFFSET_BEGINNING))

    def step(self, abandon=False):
        """One transaction of up to 25 inputs; returns how many it committed."""
        msgs = [m for m in self.c.consume(25, 0.5) if m.error() is None]
        if not msgs:
            return 0
        self.p.begin_transaction()
        for m in msgs:
            self.p.produce("eout", key=m.key(), value=b"o" + m.value())
        if abandon:  # the client dies mid transaction: its successor must fence it
            self.p.flush(10)
            return -1
        self.p.send_offsets_to_transaction(self.c.position(self.c.assignment()),
                                           self.c.consumer_group_metadata(), 10)
        self.p.commit_transaction(10)
        return len(msgs)

    def close(self):
        try:
            self.c.close()
        except Exception:
            pass


def test_exactly_once_across_kill9_and_client_deaths(tmp_path):
    import random
    import threading
    rnd = random.Random(7)
    data = str(tmp_path / "data")
    b = Broker(data).start()
    create_topic(b.bootstrap, "ein", 2)
    create_topic(b.bootstrap, "eout", 2)
    plain = ck.Producer({"bootstrap.servers": b.bootstrap})
    n = 1500
    for i in range(n):
        plain.produce("ein", key=b"%d" % i, value=b"%d" % i)
    assert plain.flush(10) == 0
    deadline = time.time() + 150
    for round_ in range(6):  # rounds 0-3 end with a kill -9, 4 with a dead client, 5 finishes
        if not b.proc:
            b = Broker(data).start()
        try:
            proc = Processor(b.bootstrap)
        except KafkaException:
            continue
        killer = None
        if round_ < 4:
            killer = threading.Timer(rnd.uniform(0.5, 2.0), b.stop, args=(signal.SIGKILL,))
            killer.start()
        try:
            while time.time() < deadline:
                done = proc.step(abandon=(round_ == 4))
                if done < 0:
                    break  # round 4: the client died mid transaction
                if round_ == 5 and done == 0 and committed_all(b.bootstrap):
                    break
                if killer and not killer.is_alive() and not b.proc:
                    break
        except KafkaException as e:
            err = e.args[0]
            if err.txn_requires_abort():
                try:
                    proc.p.abort_transaction(10)
                    proc.rewind()
                except KafkaException:
                    pass
        finally:
            if killer:
                killer.join()
            proc.close()
        if round_ == 5:
            break
    try:
        assert committed_all(b.bootstrap)
        out = [v for _, _, v in read(b.bootstrap, "eout", 2, expect=n)]
        assert sorted(out) == sorted(b"o%d" % i for i in range(n)), (len(out), len(set(out)))
        # The abandoned transaction's records are in the log, aborted by its successor.
        assert len(read(b.bootstrap, "eout", 2, committed=False, expect=n + 1)) > n
    finally:
        if b.proc:
            b.stop()


def committed_all(bootstrap):
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "eos"})
    got = c.committed([ck.TopicPartition("ein", p) for p in range(2)], timeout=10)
    ends = [c.get_watermark_offsets(ck.TopicPartition("ein", p), timeout=10)[1] for p in range(2)]
    c.close()
    return [tp.offset for tp in got] == ends


def describe_transactions(c, ids):
    body = kw.array([kw.string(i, True) for i in ids], True) + kw.tags(True)
    r = c.request(65, 0, body, flex=True)
    r.i32()
    out = {}
    for _ in range(r.array_len()):
        err, tid, state = r.i16(), r.string(), r.string()
        timeout, start, pid, epoch = r.i32(), r.i64(), r.i64(), r.i16()
        topics = {}
        for _ in range(r.array_len()):
            name = r.string()
            topics[name] = [r.i32() for _ in range(r.array_len())]
            r.tags()
        r.tags()
        out[tid] = (err, state, timeout, start, pid, epoch, topics)
    r.tags()
    assert r.done()
    return out


def list_transactions(c, states=(), pids=()):
    body = (kw.array([kw.string(s, True) for s in states], True) +
            kw.array([kw.i64(p) for p in pids], True) + kw.tags(True))
    r = c.request(66, 0, body, flex=True)
    r.i32()
    err = r.i16()
    unknown = [r.string() for _ in range(r.array_len())]
    listed = {}
    for _ in range(r.array_len()):
        tid, pid, state = r.string(), r.i64(), r.string()
        r.tags()
        listed[tid] = (pid, state)
    r.tags()
    assert r.done()
    return err, unknown, listed


def describe_producers(c, topic, partition):
    body = kw.array([kw.string(topic, True) + kw.array([kw.i32(partition)], True) +
                     kw.tags(True)], True) + kw.tags(True)
    r = c.request(61, 0, body, flex=True)
    r.i32()
    assert r.array_len() == 1
    r.string()
    assert r.array_len() == 1
    assert r.i32() == partition
    err = r.i16()
    r.string()
    producers = {}
    for _ in range(r.array_len()):
        pid, epoch, seq, ts, cepoch, start = r.i64(), r.i32(), r.i32(), r.i64(), r.i32(), r.i64()
        r.tags()
        producers[pid] = (epoch, seq, start)
    r.tags()
    r.tags()
    r.tags()
    assert r.done()
    return err, producers


def test_admin_apis_describe_transactions_and_producers(broker):
    create_topic(broker.bootstrap, "adm", 2)
    p = txn_producer(broker.bootstrap, "adm-1", **{"transaction.timeout.ms": 30000})
    q = txn_producer(broker.bootstrap, "adm-2")
    p.begin_transaction()
    send(p, "adm", [b"x"], partition=1)
    w = kw.Conn(broker.port)
    d = describe_transactions(w, ["adm-1", "adm-2", "nope"])
    err, state, timeout, start, pid, epoch, topics = d["adm-1"]
    assert (err, state, timeout, epoch, topics) == (0, "Ongoing", 30000, 0, {"adm": [1]})
    assert start > 0 and pid >= 0
    assert d["adm-2"][:2] == (0, "Empty") and d["adm-2"][3] == -1
    assert d["nope"][0] == 105  # TRANSACTIONAL_ID_NOT_FOUND
    err, unknown, listed = list_transactions(w)
    assert err == 0 and unknown == []
    assert listed["adm-1"] == (pid, "Ongoing") and listed["adm-2"][1] == "Empty"
    err, unknown, listed = list_transactions(w, states=["Ongoing", "Bogus"])
    assert unknown == ["Bogus"] and set(listed) == {"adm-1"}
    err, unknown, listed = list_transactions(w, pids=[pid])
    assert set(listed) == {"adm-1"}
    # The partition's producers: the open transaction's first offset.
    err, producers = describe_producers(w, "adm", 1)
    assert err == 0 and producers[pid] == (0, 0, 0)
    p.commit_transaction(10)
    assert until(lambda: describe_producers(w, "adm", 1)[1][pid][2] == -1)  # nothing open
    assert until(lambda: describe_transactions(w, ["adm-1"])["adm-1"][1] == "CompleteCommit")
    assert describe_producers(w, "nothere", 0)[0] == 3
    w.close()
    q.flush(1)


def txn_offset_commit_v3(c, tid, group, pid, epoch, generation, member, topic, offset):
    f = True
    part = kw.i32(0) + kw.i64(offset) + kw.i32(-1) + kw.string(None, f) + kw.tags(f)
    body = (kw.string(tid, f) + kw.string(group, f) + kw.i64(pid) + kw.i16(epoch) +
            kw.i32(generation) + kw.string(member, f) + kw.string(None, f) +
            kw.array([kw.string(topic, f) + kw.array([part], f) + kw.tags(f)], f) + kw.tags(f))
    r = c.request(28, 3, body, flex=True)
    r.i32()
    return partition_0_error(r)


def test_txn_offset_commit_fences_zombie_consumers(broker):
    create_topic(broker.bootstrap, "zin")
    p = txn_producer(broker.bootstrap, "zombie-1")
    c = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "zg",
                     "auto.offset.reset": "earliest"})
    c.subscribe(["zin"])
    end = time.time() + 20
    while time.time() < end and not c.assignment():
        c.poll(0.2)
    meta = c.consumer_group_metadata()
    p.begin_transaction()
    p.send_offsets_to_transaction([ck.TopicPartition("zin", 0, 1)], meta, 10)  # a member: fine
    w = kw.Conn(broker.port)
    pid, epoch = describe_transactions(w, ["zombie-1"])["zombie-1"][4:6]
    # A member the group does not know, and a generation that is not the group's (KIP-447).
    assert txn_offset_commit_v3(w, "zombie-1", "zg", pid, epoch, -1, "ghost", "zin", 5) == 25
    assert txn_offset_commit_v3(w, "zombie-1", "zg", pid, epoch, 999, "", "zin", 5) == 22
    # No member and generation -1: a client that manages its partitions itself may commit.
    assert txn_offset_commit_v3(w, "zombie-1", "zg", pid, epoch, -1, "", "zin", 5) == 0
    p.commit_transaction(10)
    assert c.committed([ck.TopicPartition("zin", 0)], timeout=10)[0].offset == 5
    w.close()
    c.close()


def test_idle_transactional_ids_expire(tmp_path):
    b = Broker(str(tmp_path / "data"), extra=[
        "--set", "transactional.id.expiration.ms=1000",
        "--set", "transaction.abort.timed.out.transaction.cleanup.interval.ms=200"]).start()
    try:
        w = kw.Conn(b.port)
        err, pid, epoch = init_producer_id(w, 4, transactional_id="idle-1")
        assert (err, epoch) == (0, 0)
        assert "idle-1" in list_transactions(w)[2]
        end = time.time() + 10
        while time.time() < end and "idle-1" in list_transactions(w)[2]:
            time.sleep(0.2)
        assert "idle-1" not in list_transactions(w)[2]
        assert describe_transactions(w, ["idle-1"])["idle-1"][0] == 105
        # Forgotten for good (a tombstone), also after a restart: a new producer id.
        w.close()
        b.stop()
        b.start()
        w = kw.Conn(b.port)
        err, pid2, epoch2 = init_producer_id(w, 4, transactional_id="idle-1")
        assert err == 0 and pid2 != pid and epoch2 == 0
        w.close()
    finally:
        b.stop()


def test_concurrent_producers_end_together(broker):
    """Four producers committing and aborting at once: their EndTxn calls are batched by the
    coordinator (one fsync for their Prepare records, their markers together), and
    read_committed sees exactly the committed transactions, each whole."""
    import threading
    create_topic(broker.bootstrap, "many", 2)
    errors = []

    def run(k):
        try:
            p = txn_producer(broker.bootstrap, f"many-{k}")
            for t in range(12):
                p.begin_transaction()
                send(p, "many", [b"%d-%d-%d" % (k, t, i) for i in range(5)])
                if t % 3 == 2:
                    p.abort_transaction(20)
                else:
                    p.commit_transaction(20)
        except Exception as e:  # reported below, with the assertion
            errors.append(e)

    ts = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors
    want = sorted(b"%d-%d-%d" % (k, t, i) for k in range(4) for t in range(12) if t % 3 != 2
                  for i in range(5))
    got = sorted(v for _, _, v in read(broker.bootstrap, "many", 2, expect=len(want)))
    assert got == want
