"""One million events through six partitions with librdkafka: nothing lost, nothing
duplicated, order kept per partition, and the same after a broker restart."""
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

N = 1_000_000
PARTS = 6


def read_back(bootstrap):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "v", "enable.auto.commit": False,
                  "fetch.max.bytes": 8 << 20, "max.partition.fetch.bytes": 4 << 20})
    c.assign([TopicPartition("vol", p, -2) for p in range(PARTS)])
    seen = [[] for _ in range(PARTS)]
    n = 0
    deadline = time.time() + 300
    while n < N and time.time() < deadline:
        for m in c.consume(100000, 1.0):
            assert m.error() is None, m.error()
            seen[m.partition()].append((m.offset(), int(m.value())))
            n += 1
    c.close()
    return seen


def check(seen):
    values = []
    for part, rows in enumerate(seen):
        offsets = [o for o, _ in rows]
        assert offsets == list(range(len(rows))), f"partition {part}: offsets not 0..n-1"
        seq = [v for _, v in rows]
        assert seq == sorted(seq), f"partition {part}: order not kept"
        # Each producer key maps to one partition; values were sent in increasing order.
        values += seq
    assert len(values) == N, len(values)
    assert len(set(values)) == N
    assert min(values) == 0 and max(values) == N - 1


def test_one_million_events_six_partitions_and_restart(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("vol", PARTS, 1)])["vol"].result(10)
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20,
                  "batch.num.messages": 10000, "queue.buffering.max.messages": 200000,
                  "compression.type": "lz4"})
    deadline = time.time() + 300
    for i in range(N):
        while True:
            try:
                p.produce("vol", value=str(i).encode(), partition=i % PARTS)
                break
            except BufferError:
                p.poll(0.05)
                assert time.time() < deadline
        if i % 10000 == 0:
            p.poll(0)
    assert p.flush(120) == 0
    check(read_back(broker.bootstrap))
    broker.stop()
    broker.start()
    check(read_back(broker.bootstrap))
