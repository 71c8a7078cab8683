"""Real Kafka clients against a real broker: kcat, confluent-kafka (librdkafka) and
kafka-python, each with its own version negotiation and encodings."""
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition
from kafka.admin import NewTopic as KNewTopic
from kafka.partitioner.default import murmur2

from conftest import BIN


def kcat(broker, *args, input=None, timeout=30):
    p = subprocess.run(["kcat", "-b", broker.bootstrap, *args], input=input,
                       capture_output=True, timeout=timeout)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode()


def consume_all(bootstrap, topic, partitions, expect, timeout=60, **conf):
    """Reads `expect` messages from the beginning of every partition with confluent-kafka."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "t", "enable.auto.commit": False,
                  "enable.partition.eof": False, **conf})
    c.assign([TopicPartition(topic, p, -2) for p in range(partitions)])
    out = []
    deadline = time.time() + timeout
    while len(out) < expect and time.time() < deadline:
        for m in c.consume(10000, 1.0):
            assert m.error() is None, m.error()
            out.append(m)
    c.close()
    return out


def test_kcat_metadata_produce_consume_with_keys_and_headers(broker):
    meta = kcat(broker, "-L")
    assert f"broker 1 at 127.0.0.1:{broker.port} (controller)" in meta
    lines = "".join(f"key{i}:value {i}\n" for i in range(20))
    kcat(broker, "-P", "-t", "kc", "-K:", "-H", "source=kcat", "-H", "trace=abc", input=lines.encode())
    out = kcat(broker, "-C", "-t", "kc", "-e", "-f", "%k|%s|%h|%p|%o\n")
    rows = [l.split("|") for l in out.strip().split("\n")]
    assert [r[0] for r in rows] == [f"key{i}" for i in range(20)]
    assert [r[1] for r in rows] == [f"value {i}" for i in range(20)]
    assert all(r[2] == "source=kcat,trace=abc" for r in rows)
    assert [int(r[4]) for r in rows] == list(range(20))
    # The topic was auto-created and now shows in metadata.
    assert 'topic "kc" with 1 partitions' in kcat(broker, "-L")


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_confluent_produce_consume_each_codec(broker, codec):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic = f"codec-{codec}"
    a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(10)
    p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec,
                  "linger.ms": 20, "partitioner": "murmur2_random"})
    sent = {}
    for i in range(300):
        key = f"k{i % 17}".encode()
        p.produce(topic, key=key, value=f"{codec}-{i}".encode() * 5,
                  headers=[("n", str(i).encode())])
        sent[f"{codec}-{i}".encode() * 5] = (key, str(i).encode())
    assert p.flush(30) == 0
    got = consume_all(broker.bootstrap, topic, 3, 300)
    assert sorted(m.value() for m in got) == sorted(sent)
    for m in got:
        key, n = sent[m.value()]
        assert m.key() == key
        assert m.partition() == (murmur2(m.key()) & 0x7FFFFFFF) % 3
        assert m.headers() == [("n", n)]
    # Per partition, offsets run 0.. without gaps.
    for part in range(3):
        offs = sorted(m.offset() for m in got if m.partition() == part)
        assert offs == list(range(len(offs)))


def test_confluent_admin_create_list_delete(broker):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    fs = a.create_topics([NewTopic("adm1", 4, 1, config={"retention.ms": "60000"}),
                          NewTopic("adm2", 2, 1)])
    for f in fs.values():
        f.result(10)
    with pytest.raises(KafkaException) as e:
        a.create_topics([NewTopic("adm1", 1, 1)])["adm1"].result(10)
    assert "TOPIC_ALREADY_EXISTS" in str(e.value)
    with pytest.raises(KafkaException) as e:
        a.create_topics([NewTopic("bad/name", 1, 1)])["bad/name"].result(10)
    assert "val=17" in str(e.value)  # INVALID_TOPIC_EXCEPTION
    with pytest.raises(KafkaException) as e:
        a.create_topics([NewTopic("cfg", 1, 1, config={"no.such.key": "1"})])["cfg"].result(10)
    assert "INVALID_CONFIG" in str(e.value)
    md = a.list_topics(timeout=10)
    assert len(md.topics["adm1"].partitions) == 4
    assert len(md.topics["adm2"].partitions) == 2
    assert md.controller_id == 1
    a.delete_topics(["adm2"])["adm2"].result(10)
    assert "adm2" not in a.list_topics(timeout=10).topics
    with pytest.raises(KafkaException) as e:
        a.delete_topics(["adm2"])["adm2"].result(10)
    assert "UNKNOWN_TOPIC" in str(e.value)


def test_kafka_python_producer_consumer_admin(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([KNewTopic("kp", 2, 1)])
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    futures = [p.send("kp", key=f"key{i}".encode(), value=f"v{i}".encode()) for i in range(100)]
    p.flush()
    metas = [f.get(timeout=10) for f in futures]
    for i, m in enumerate(metas):
        assert m.partition == (murmur2(f"key{i}".encode()) & 0x7FFFFFFF) % 2
    p.close()
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, consumer_timeout_ms=3000)
    c.assign([KTopicPartition("kp", 0), KTopicPartition("kp", 1)])
    c.seek_to_beginning()
    got = sorted((m.partition, m.offset, m.key, m.value) for m in c)
    c.close()
    assert len(got) == 100
    assert sorted(v for _, _, _, v in got) == sorted(f"v{i}".encode() for i in range(100))
    admin.delete_topics(["kp"])
    assert "kp" not in admin.list_topics()
    admin.close()


def test_long_poll_is_woken_by_an_append(broker):
    """A fetch waiting up to 20 s returns as soon as data arrives, not at its timeout."""
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic("lp", 1, 1)])["lp"].result(10)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "t",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 20000})
    c.assign([TopicPartition("lp", 0, -2)])
    assert c.poll(1.0) is None  # the consumer is now parked in a long poll
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce("lp", value=b"wake")
    p.flush(10)
    t0 = time.time()
    m = None
    while m is None and time.time() - t0 < 15:
        m = c.poll(0.5)
    c.close()
    assert m is not None and m.value() == b"wake"
    assert time.time() - t0 < 15  # well before the 20 s the fetch was allowed to wait


def test_keys_partition_the_same_through_the_broker_and_the_client(broker, tmp_path):
    """The CLI's broker-side partitioner and a Kafka client's murmur2 agree."""
    broker.stop()
    subprocess.run([BIN, "topic", "create", "keyed", "--partitions", "5", "--data", broker.data],
                   check=True, capture_output=True)
    lines = "".join(f"user-{i}\tpayload {i}\n" for i in range(200)).encode()
    subprocess.run([BIN, "produce", "keyed", "--key-separator", "\t", "--data", broker.data],
                   input=lines, check=True, capture_output=True)
    broker.start()
    got = consume_all(broker.bootstrap, "keyed", 5, 200)
    assert len(got) == 200
    for m in got:
        assert m.partition() == (murmur2(m.key()) & 0x7FFFFFFF) % 5, m.key()


def test_confluent_create_partitions(broker):
    from confluent_kafka.admin import NewPartitions
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic("grow", 2, 1)])["grow"].result(10)
    a.create_partitions([NewPartitions("grow", 5)])["grow"].result(10)
    assert len(a.list_topics(timeout=10).topics["grow"].partitions) == 5
    with pytest.raises(KafkaException) as e:
        a.create_partitions([NewPartitions("grow", 3)])["grow"].result(10)
    assert "INVALID_PARTITIONS" in str(e.value)
    with pytest.raises(KafkaException) as e:
        a.create_partitions([NewPartitions("nope", 3)])["nope"].result(10)
    assert "UNKNOWN_TOPIC" in str(e.value)
    # The new partitions take events.
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce("grow", value=b"in four", partition=4)
    assert p.flush(10) == 0
    got = consume_all(broker.bootstrap, "grow", 5, 1)
    assert [(m.partition(), m.value()) for m in got] == [(4, b"in four")]
