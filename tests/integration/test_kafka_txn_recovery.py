"""Kafka transactions across a crash that loses the coordinator's last records
(docs/kafka.md#transactions, "What a crash can lose"): AddPartitionsToTxn is answered before its
Ongoing record is durable, so a power loss can take that record while a partition kept the
transactional records it let in. At start the coordinator finds the partitions' open
transactions and settles each: a partition of a known producer at its epoch joins that
producer's transaction again (which its producer commits, or its time-out aborts), and one that
no transactional id holds is aborted at once.

A power loss is simulated by kill -9 and then cutting the last batches off
__transaction_state's log (what an unsynced tail loses). Every wait is bounded.
"""
import glob
import os
import signal
import struct
import time

import confluent_kafka as ck
import pytest
from confluent_kafka import KafkaException

from conftest import Broker
from test_kafka_txn import create_topic, high, read, send, txn_producer

ONGOING = 1


def varint(b, pos):
    """A zigzag varint of a record at pos: (value, next position)."""
    shift = v = 0
    while True:
        c = b[pos]
        pos += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return (v >> 1) ^ -(v & 1), pos


def state_batches(data):
    """Each batch of __transaction_state's (only) segment: (file position, size, the state of
    its first record's value, None for a tombstone)."""
    (path,) = glob.glob(os.path.join(data, "topics", "__transaction_state", "0", "*.log"))
    b = open(path, "rb").read()
    out, pos = [], 0
    while pos + 61 <= len(b):
        length = struct.unpack(">i", b[pos + 8:pos + 12])[0]
        if length <= 0 or pos + 12 + length > len(b):
            break
        attributes = struct.unpack(">h", b[pos + 21:pos + 23])[0]
        assert attributes & 7 == 0, "the state topic's batches are not compressed"
        r = pos + 61
        _, r = varint(b, r)  # record length
        r += 1  # attributes
        _, r = varint(b, r)  # timestamp delta
        _, r = varint(b, r)  # offset delta
        klen, r = varint(b, r)
        r += max(klen, 0)
        vlen, r = varint(b, r)
        # TransactionLog value: int16 version, int64 pid, int16 epoch, int32 timeout, int8 state
        state = b[r + 16] if vlen >= 17 else None
        out.append((pos, 12 + length, state))
        pos += 12 + length
    return path, out


def lose_last_records(data, keep):
    """Cuts __transaction_state's log after its first `keep` batches (a crash that lost the
    others before they were synced); returns the states of the batches cut."""
    path, batches = state_batches(data)
    cut = batches[keep:]
    size = batches[keep][0] if cut else os.path.getsize(path)
    os.truncate(path, size)
    return [s for _, _, s in cut]


def restart(b, data, extra=()):
    """The broker again on the same port (the clients' bootstrap address stays valid)."""
    nb = Broker(data, extra=["--kafka", f"127.0.0.1:{b.port}", *extra])
    deadline = time.time() + 10
    while True:  # the killed broker's port can take a moment to be free
        try:
            return nb.start()
        except AssertionError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def test_a_lost_ongoing_record_rejoins_and_commits(tmp_path):
    data = str(tmp_path / "data")
    b = Broker(data).start()
    try:
        create_topic(b.bootstrap, "lost", 2)
        p = txn_producer(b.bootstrap, "lost-1")
        p.begin_transaction()
        send(p, "lost", [b"a%d" % i for i in range(5)], partition=0)
        send(p, "lost", [b"b%d" % i for i in range(5)], partition=1)
        b.stop(signal.SIGKILL)
        _, batches = state_batches(data)
        ongoing = [i for i, (_, _, s) in enumerate(batches) if s == ONGOING]
        assert ongoing, batches
        # Every Ongoing record gone: the id is back in Empty at the same epoch.
        assert set(lose_last_records(data, ongoing[0])) == {ONGOING}
        b = restart(b, data)
        # The partitions' open transactions hold the last stable offset back...
        assert high(b.bootstrap, "lost", committed=True) == 0
        # ...and belong to the producer's transaction again: its commit covers both.
        p.commit_transaction(30)
        got = read(b.bootstrap, "lost", 2, expect=10)
        assert sorted(v for _, _, v in got) == sorted(
            [b"a%d" % i for i in range(5)] + [b"b%d" % i for i in range(5)])
        assert "rejoins the transaction of 'lost-1'" in b.stderr()
        # The id goes on.
        p.begin_transaction()
        send(p, "lost", [b"next"], partition=0)
        p.commit_transaction(20)
        assert b"next" in [v for _, _, v in read(b.bootstrap, "lost", 2, expect=11)]
    finally:
        if b.proc:
            b.stop()


def test_a_lost_ongoing_record_times_out_without_its_producer(tmp_path):
    data = str(tmp_path / "data")
    fast = ["--set", "transaction.abort.timed.out.transaction.cleanup.interval.ms=200"]
    b = Broker(data, extra=fast).start()
    try:
        create_topic(b.bootstrap, "gone")
        p = txn_producer(b.bootstrap, "gone-1", **{"transaction.timeout.ms": 2000})
        p.begin_transaction()
        send(p, "gone", [b"g%d" % i for i in range(4)])
        b.stop(signal.SIGKILL)
        del p  # the producer dies with the broker
        _, batches = state_batches(data)
        first = min(i for i, (_, _, s) in enumerate(batches) if s == ONGOING)
        lose_last_records(data, first)
        b = restart(b, data, fast)
        plain = ck.Producer({"bootstrap.servers": b.bootstrap})
        plain.produce("gone", value=b"later")
        assert plain.flush(10) == 0
        assert high(b.bootstrap, "gone", committed=True) == 0  # held by the open transaction
        end = time.time() + 20
        while time.time() < end and high(b.bootstrap, "gone", True) == 0:
            time.sleep(0.2)
        # The time-out aborted it: only the later record shows.
        assert [v for _, _, v in read(b.bootstrap, "gone")] == [b"later"]
        assert len(read(b.bootstrap, "gone", committed=False, expect=5)) == 5
    finally:
        if b.proc:
            b.stop()


def test_an_open_transaction_no_id_holds_is_aborted_at_start(tmp_path):
    data = str(tmp_path / "data")
    b = Broker(data).start()
    try:
        create_topic(b.bootstrap, "stray")
        p = txn_producer(b.bootstrap, "stray-1")
        p.begin_transaction()
        send(p, "stray", [b"s%d" % i for i in range(3)])
        b.stop(signal.SIGKILL)
        lose_last_records(data, 0)  # the id's every record: nothing knows the producer
        b = restart(b, data)
        plain = ck.Producer({"bootstrap.servers": b.bootstrap})
        plain.produce("stray", value=b"later")
        assert plain.flush(10) == 0
        # Aborted before anything was served: the later record is stable at once.
        assert high(b.bootstrap, "stray", committed=True) == 5  # 3 records, the marker, later
        assert [v for _, _, v in read(b.bootstrap, "stray")] == [b"later"]
        assert "which no transactional id holds" in b.stderr()
        # Its producer can no longer commit what was aborted.
        with pytest.raises(KafkaException):
            p.commit_transaction(10)
    finally:
        if b.proc:
            b.stop()


PREPARE_COMMIT = 2


def test_a_restart_at_prepare_leaves_the_next_transaction_open(tmp_path):
    """A transaction's Prepare record is the id's last durable one, while its markers were
    durable and the producer's next transaction had records after them in the same partition
    (the Complete record and the next Ongoing one lost). The restart's completion must not
    write the first transaction's marker again there, which would commit the second one's
    records: it marks a partition only below its log end at Prepare (value v2), and the next
    transaction's records join that transaction again."""
    data = str(tmp_path / "data")
    b = Broker(data).start()
    try:
        create_topic(b.bootstrap, "next")
        p = txn_producer(b.bootstrap, "next-1")
        p.begin_transaction()
        send(p, "next", [b"first-%d" % i for i in range(3)])
        p.commit_transaction(20)
        assert len(read(b.bootstrap, "next", expect=3)) == 3  # the markers are durable
        p.begin_transaction()
        send(p, "next", [b"second-%d" % i for i in range(2)])
        b.stop(signal.SIGKILL)
        _, batches = state_batches(data)
        last = max(i for i, (_, _, s) in enumerate(batches) if s == PREPARE_COMMIT)
        lose_last_records(data, last + 1)
        b = restart(b, data)
        assert [v for _, _, v in read(b.bootstrap, "next")] == [b"first-%d" % i for i in range(3)]
        assert high(b.bootstrap, "next", committed=True) == 4  # held at the second's first
        p.commit_transaction(30)
        got = [v for _, _, v in read(b.bootstrap, "next", expect=5)]
        assert got == [b"first-%d" % i for i in range(3)] + [b"second-%d" % i for i in range(2)]
    finally:
        if b.proc:
            b.stop()
