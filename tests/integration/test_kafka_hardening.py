"""Kafka behaviours that real clients tripped on (issue 19): topic names with NUL bytes, negative
committed offsets (kafkajs's resetOffsets), Fetch's max_bytes (librdkafka), a static leader that
rejoins below JoinGroup v9, CreateTopics with a replica assignment, and
Kafka's topic configuration keys (compression.type recompressing on every protocol's append)."""
import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from kafka.admin import KafkaAdminClient, NewTopic as KNewTopic
from kafka.errors import InvalidTopicError

from conftest import INTERNAL_TOPICS, SYSTEM_TOPICS, Broker
from kafkawire import (Conn, Reader, array, bytes_, header, i8, i16, i32, i64, make_batch,
                       produce_body, read_produce, string)
from test_kafka_admin import describe_raw
from test_kafka_group_wire import JOIN, SYNC, heartbeat, join, read_join, req, sync

NODE_DIR = os.path.join(os.path.dirname(__file__), "..", "node")
PRODUCE, FETCH, METADATA, CREATE_TOPICS, DELETE_TOPICS = 0, 1, 3, 19, 20
BAD = "ab\x00cd"


@pytest.fixture
def gbroker(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True, redis=True,
               extra=["--set", "group.initial.rebalance.delay.ms=0",
                      "--set", "group.min.session.timeout.ms=100"]).start()
    yield b
    if b.proc:
        b.stop()


def metadata_v4(conn, topics, auto_create=True):
    """Metadata v4 -> {name: (error, partition count)}."""
    r = conn.request(METADATA, 4, array(None if topics is None else [string(t) for t in topics])
                     + i8(1 if auto_create else 0))
    r.i32()
    for _ in range(r.array_len()):
        r.i32(), r.string(), r.i32(), r.string()
    r.string(), r.i32()
    out = {}
    for _ in range(r.array_len()):
        err, name, _internal = r.i16(), r.string(), r.i8()
        n = r.array_len()
        for _ in range(n):
            r.i16(), r.i32(), r.i32()
            for _ in range(2):  # replicas, isr
                for _ in range(r.array_len()):
                    r.i32()
        out[name] = (err, n)
    assert r.done()
    return out


def topic_names(conn):
    # All topics, without the broker's internal and system ones (listed as Kafka lists its own).
    return {n for n in metadata_v4(conn, None, auto_create=False)
            if n not in INTERNAL_TOPICS | SYSTEM_TOPICS}


# --- 7. topic names are never cut at a NUL byte ------------------------------------------------
def test_topic_names_with_nul_are_refused_everywhere(gbroker):
    conn = Conn(gbroker.port)
    # Metadata with auto-creation: the name is echoed whole, with INVALID_TOPIC_EXCEPTION, and
    # neither "ab" nor anything else is created.
    assert metadata_v4(conn, [BAD]) == {BAD: (17, 0)}
    assert topic_names(conn) == set()
    # CreateTopics (v4): INVALID_TOPIC_EXCEPTION, echoing the name.
    body = array([string(BAD) + i32(1) + i16(1) + array([]) + array([])]) + i32(5000) + i8(0)
    r = conn.request(CREATE_TOPICS, 4, body)
    r.i32()
    assert r.array_len() == 1
    name, err, msg = r.string(), r.i16(), r.string()
    assert (name, err) == (BAD, 17), (name, err, msg)
    assert topic_names(conn) == set()
    # kafka-python's admin client: the same refusal, raised.
    admin = KafkaAdminClient(bootstrap_servers=gbroker.bootstrap)
    with pytest.raises(InvalidTopicError):
        admin.create_topics([KNewTopic(BAD, 1, 1)])
    # With "ab" existing, nothing that names BAD reaches it.
    admin.create_topics([KNewTopic("ab", 1, 1)])
    admin.close()
    assert metadata_v4(conn, [BAD]) == {BAD: (17, 0)}
    r = conn.request(PRODUCE, 7, produce_body(BAD, 0, make_batch([b"x"])))
    assert read_produce(r, 7) == [(BAD, 0, 17, -1)]
    r = conn.request(DELETE_TOPICS, 3, array([string(BAD)]) + i32(5000))
    r.i32()
    assert r.array_len() == 1 and (r.string(), r.i16()) == (BAD, 17)
    for topic, pattern in (("a" * 250, "a" * 250), (".", "."), ("..", ".."), ("a b", "a b")):
        assert metadata_v4(conn, [topic]) == {pattern: (17, 0)}
    assert topic_names(conn) == {"ab"}
    assert metadata_v4(conn, ["ab"]) == {"ab": (0, 1)}
    r = conn.request(PRODUCE, 7, produce_body("ab", 0, make_batch([b"kept"])))
    assert read_produce(r, 7) == [("ab", 0, 0, 0)]
    conn.close()


# --- negative committed offsets: kafkajs's resetOffsets ---------------------------------------
def test_kafkajs_reset_offsets_to_earliest(gbroker):
    p = subprocess.run(["node", "reset_offsets.mjs", gbroker.bootstrap, "resets", "resetters"],
                       cwd=NODE_DIR, capture_output=True, timeout=90)
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    out = json.loads(p.stdout)
    assert out["offsets"] == [[0, "-2"], [1, "-2"]]
    assert out["seen"] == ["v0", "v1", "v2"]


# --- Fetch max_bytes (KIP-74): only the first partition with data may exceed it ---------------
def test_fetch_max_bytes_holds_for_librdkafka(gbroker):
    admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
    admin.create_topics([NewTopic("big", 3, 1)])["big"].result(timeout=10)
    p = Producer({"bootstrap.servers": gbroker.bootstrap, "compression.type": "none",
                  "linger.ms": 0})
    for part in range(3):
        p.produce("big", value=bytes([65 + part]) * 60000, partition=part)
    assert p.flush(10) == 0
    # Three 60 kB batches: a response carrying all three would be ~180 kB, above what this
    # consumer accepts (receive.message.max.bytes), and librdkafka would drop it as invalid.
    c = Consumer({"bootstrap.servers": gbroker.bootstrap, "group.id": "big-readers",
                  "auto.offset.reset": "earliest", "fetch.max.bytes": 100000,
                  "receive.message.max.bytes": 100512, "message.max.bytes": 100000,
                  "fetch.wait.max.ms": 100})
    c.subscribe(["big"])
    got = {}
    deadline = time.time() + 20
    while len(got) < 3 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got[m.partition()] = len(m.value())
    c.close()
    assert got == {0: 60000, 1: 60000, 2: 60000}
    # On the wire: one request for all three partitions, max_bytes 100 000, returns one.
    conn = Conn(gbroker.port)
    parts = array([i32(k) + i32(-1) + i64(0) + i64(-1) + i32(1 << 20) for k in range(3)])
    body = (i32(-1) + i32(0) + i32(1) + i32(100000) + i8(0) + i32(0) + i32(-1) +
            array([string("big") + parts]) + array([]) + string(""))
    r = conn.request(FETCH, 11, body)
    r.i32(), r.i16(), r.i32()
    sizes = []
    for _ in range(r.array_len()):
        r.string()
        for _ in range(r.array_len()):
            r.i32(), r.i16(), r.i64(), r.i64(), r.i64()
            for _ in range(r.array_len()):
                r.i64(), r.i64()
            r.i32()
            rec = r.bytes()
            sizes.append(len(rec or b""))
    assert len([s for s in sizes if s]) == 1 and max(sizes) > 60000, sizes
    conn.close()


# --- a static leader rejoining below JoinGroup v9 -----------------------------------------------
def send(conn, key, v, body):
    """Sends a (classic-encoding) request without waiting for its answer."""
    conn.corr += 1
    frame = header(key, v, conn.corr, False) + body
    conn.send_raw(i32(len(frame)) + frame)
    return conn.corr


def recv(conn, corr):
    r = Reader(conn.recv_frame())
    assert r.i32() == corr
    return r


def sync_body(group, gen, member, plan=()):
    return (string(group) + i32(gen) + string(member) + string(None) +
            array([string(m) + bytes_(x) for m, x in plan]))


def test_static_leader_rejoin_v5_keeps_generation(gbroker):
    """Kafka's GroupCoordinator: a static leader rejoining a Stable group with JoinGroup < v9
    gets the same generation, no members, and its OLD member id as the leader, so it syncs as a
    follower and keeps its assignment; no rebalance."""
    admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
    admin.create_topics([NewTopic("wt", 2, 1)])["wt"].result(timeout=10)
    a, b = Conn(gbroker.port), Conn(gbroker.port)
    ra = read_join(req(a, JOIN, 5, join(a, 5, "sg", instance="host-a")), 5)
    assert ra["err"] == 0 and ra["leader"] == ra["member"]
    assert sync(a, 3, "sg", ra["gen"], ra["member"], [(ra["member"], b"x")]) == (0, b"x")
    # b joins: a rebalance, which a (the leader) rejoins with its member id.
    cb = send(b, JOIN, 5, join(b, 5, "sg", instance="host-b"))
    deadline = time.time() + 10
    while heartbeat(a, 3, "sg", ra["gen"], ra["member"]) != 27 and time.time() < deadline:
        time.sleep(0.05)
    ra = read_join(req(a, JOIN, 5, join(a, 5, "sg", member=ra["member"], instance="host-a")), 5)
    rb = read_join(recv(b, cb), 5)
    gen, old = ra["gen"], ra["member"]
    assert rb["gen"] == gen and ra["leader"] == old and len(ra["members"]) == 2
    cb = send(b, SYNC, 3, sync_body("sg", gen, rb["member"]))
    plan = [(old, b"x"), (rb["member"], b"y")]
    assert sync(a, 3, "sg", gen, old, plan) == (0, b"x")
    r = recv(b, cb)
    assert (r.i32(), r.i16(), r.bytes()) == (0, 0, b"y")
    # a restarts under the same instance id, with JoinGroup v5 (no skip_assignment).
    a.close()
    a2 = Conn(gbroker.port, timeout=5)
    r2 = read_join(req(a2, JOIN, 5, join(a2, 5, "sg", instance="host-a")), 5)
    assert r2["err"] == 0 and r2["gen"] == gen, r2
    assert r2["member"] != old and r2["leader"] == old and r2["members"] == []
    assert heartbeat(b, 3, "sg", gen, rb["member"]) == 0  # no rebalance
    assert sync(a2, 3, "sg", gen, r2["member"]) == (0, b"x")
    assert heartbeat(a2, 3, "sg", gen, old) == 25  # UNKNOWN_MEMBER_ID: replaced
    assert heartbeat(a2, 3, "sg", gen, r2["member"]) == 0
    a2.close()
    b.close()


# --- CreateTopics with a replica assignment naming this broker --------------------------------
def test_create_topics_with_replica_assignment(gbroker):
    admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
    fs = admin.create_topics([NewTopic("assigned", 3, replica_assignment=[[1], [1], [1]]),
                              NewTopic("elsewhere", 1, replica_assignment=[[2]]),
                              NewTopic("twice", 1, replica_assignment=[[1, 1]])])
    fs["assigned"].result(timeout=10)
    for name in ("elsewhere", "twice"):
        with pytest.raises(KafkaException) as e:
            fs[name].result(timeout=10)
        assert e.value.args[0].code() == KafkaError.INVALID_REPLICA_ASSIGNMENT
    md = admin.list_topics(timeout=10)
    assert len(md.topics["assigned"].partitions) == 3
    assert "elsewhere" not in md.topics and "twice" not in md.topics


# --- Kafka's topic configuration keys -----------------------------------------------------------
KAFKA_KEYS = {  # a value for each Kafka 3.x topic key that is not tidings' default
    "compression.type": "gzip", "message.format.version": "2.8", "min.insync.replicas": "1",
    "unclean.leader.election.enable": "true",
    "message.timestamp.difference.max.ms": "31536000000000", "flush.messages": "1000",
    "flush.ms": "5000", "preallocate": "true", "index.interval.bytes": "8192",
    "delete.retention.ms": "1000", "file.delete.delay.ms": "1000",
    "follower.replication.throttled.replicas": "0:1", "leader.replication.throttled.replicas": "*",
    "local.retention.bytes": "-2", "local.retention.ms": "1000", "max.compaction.lag.ms": "5000",
    "message.downconversion.enable": "false", "min.cleanable.dirty.ratio": "0.25",
    "min.compaction.lag.ms": "10", "remote.storage.enable": "false",
    "segment.index.bytes": "65536", "segment.jitter.ms": "100",
    "message.timestamp.before.max.ms": "31536000000000",
    "message.timestamp.after.max.ms": "3600000", "cleanup.policy": "delete",
}
TYPES = {"compression.type": 2, "message.format.version": 2, "min.insync.replicas": 3,
         "unclean.leader.election.enable": 1, "preallocate": 1, "flush.messages": 5,
         "min.cleanable.dirty.ratio": 6, "leader.replication.throttled.replicas": 7,
         "segment.index.bytes": 3, "cleanup.policy": 7}


def raw_batches(conn, topic, partition=0):
    """Every stored batch's (codec, record count), read with Fetch v4."""
    parts = array([i32(partition) + i64(0) + i32(1 << 20)])
    body = (i32(-1) + i32(0) + i32(1) + i32(1 << 20) + i8(0) + array([string(topic) + parts]))
    r = conn.request(FETCH, 4, body)
    r.i32()
    r.array_len(), r.string(), r.array_len()
    r.i32(), r.i16(), r.i64(), r.i64()
    for _ in range(max(r.array_len(), 0)):
        r.i64(), r.i64()
    data = r.bytes() or b""
    out, off = [], 0
    while off + 61 <= len(data):
        length = int.from_bytes(data[off + 8:off + 12], "big", signed=True)
        attrs = int.from_bytes(data[off + 21:off + 23], "big")
        out.append((attrs & 7, int.from_bytes(data[off + 57:off + 61], "big")))
        off += 12 + length
    return out


def test_kafka_topic_configs_accepted_described_and_validated(gbroker):
    admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
    admin.create_topics([NewTopic("cfg", 1, 1, config=KAFKA_KEYS)])["cfg"].result(timeout=10)
    res = ConfigResource(ConfigResource.Type.TOPIC, "cfg")
    got = admin.describe_configs([res])[res].result(timeout=10)
    for k, v in KAFKA_KEYS.items():
        assert got[k].value == v, (k, got[k].value)
    # Sources and types on the wire (DescribeConfigs v3): set keys are DYNAMIC_TOPIC_CONFIG,
    # the others DEFAULT_CONFIG with Kafka's defaults.
    conn = Conn(gbroker.port)
    (err, _msg, _t, _n, entries), = describe_raw(conn, 3, [(2, "cfg", None)])
    assert err == 0
    for k, v in KAFKA_KEYS.items():
        default = k in ("local.retention.bytes", "remote.storage.enable", "min.insync.replicas",
                        "cleanup.policy")
        assert entries[k]["source"] == (5 if default else 1), (k, entries[k])
    for k, t in TYPES.items():
        assert entries[k]["type"] == t, (k, entries[k])
    admin.create_topics([NewTopic("plain", 1, 1)])["plain"].result(timeout=10)
    (_e, _m, _t, _n, plain), = describe_raw(conn, 3, [(2, "plain", None)])
    assert {k: plain[k]["value"] for k in ("compression.type", "message.format.version",
                                            "min.insync.replicas", "flush.messages",
                                            "preallocate", "min.cleanable.dirty.ratio",
                                            "unclean.leader.election.enable")} == {
        "compression.type": "producer", "message.format.version": "3.0-IV1",
        "min.insync.replicas": "1", "flush.messages": "9223372036854775807",
        "preallocate": "false", "min.cleanable.dirty.ratio": "0.5",
        "unclean.leader.election.enable": "false"}
    assert all(e["source"] == 5 for e in plain.values())
    # Values Kafka refuses, and what cannot be honoured yet: INVALID_CONFIG with a reason.
    bad = {"compression.type": "brotli", "min.insync.replicas": "0", "preallocate": "maybe",
           "min.cleanable.dirty.ratio": "1.5", "message.format.version": "banana",
           "cleanup.policy": "compact,shred", "remote.storage.enable": "true",
           "leader.replication.throttled.replicas": "x:y", "flush.messages": "0"}
    fs = admin.create_topics([NewTopic(f"bad{i}", 1, 1, config={k: v})
                              for i, (k, v) in enumerate(bad.items())])
    for i, (k, v) in enumerate(bad.items()):
        with pytest.raises(KafkaException) as e:
            fs[f"bad{i}"].result(timeout=10)
        err = e.value.args[0]
        assert err.code() == KafkaError.INVALID_CONFIG and k in err.str(), (k, err)
    # Compaction is supported: compact and delete,compact topics are created.
    fs = admin.create_topics([NewTopic("ok-c", 1, 1, config={"cleanup.policy": "delete,compact"}),
                              NewTopic("ok-c2", 1, 1, config={"cleanup.policy": "compact"})])
    for f in fs.values():
        f.result(timeout=10)
    conn.close()


def test_compression_type_recompresses_every_protocol(gbroker):
    admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
    admin.create_topics([NewTopic("zt", 1, 1, config={"compression.type": "zstd"})]
                        )["zt"].result(timeout=10)
    # Kafka: an uncompressed batch from confluent-kafka, a gzip one on the wire.
    p = Producer({"bootstrap.servers": gbroker.bootstrap, "compression.type": "none"})
    p.produce("zt", value=b"kafka-plain", partition=0)
    assert p.flush(10) == 0
    conn = Conn(gbroker.port)
    r = conn.request(PRODUCE, 7, produce_body("zt", 0, make_batch([b"kafka-gzip"], compression=1)))
    assert read_produce(r, 7)[0][2] == 0
    # HTTP (the engine's td_produce) and Redis XADD.
    body = json.dumps({"value_text": "http", "partition": 0}).encode()
    urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{gbroker.http_port}/v1/topics/zt/events", data=body,
        headers={"Content-Type": "application/json"}, method="POST"), timeout=10).read()
    s = socket.create_connection(("127.0.0.1", gbroker.redis_port), timeout=10)
    s.sendall(b"*5\r\n$4\r\nXADD\r\n$2\r\nzt\r\n$1\r\n*\r\n$1\r\nf\r\n$5\r\nredis\r\n")
    assert s.recv(100).startswith(b"$")
    s.close()
    assert raw_batches(conn, "zt") == [(4, 1)] * 4  # zstd, all of them
    # Changed to uncompressed: what comes next is stored plain; the rest stays as stored.
    res = ConfigResource(ConfigResource.Type.TOPIC, "zt", set_config={
        "compression.type": "uncompressed"})
    admin.alter_configs([res])[res].result(timeout=10)
    r = conn.request(PRODUCE, 7, produce_body("zt", 0, make_batch([b"x", b"y"], compression=1)))
    assert read_produce(r, 7)[0][2] == 0
    assert raw_batches(conn, "zt")[4:] == [(0, 2)]
    # Every client reads the same values back.
    c = Consumer({"bootstrap.servers": gbroker.bootstrap, "group.id": "zr",
                  "auto.offset.reset": "earliest"})
    c.subscribe(["zt"])
    vals = []
    deadline = time.time() + 15
    while len(vals) < 6 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            vals.append(m.value())
    c.close()
    assert vals[:2] == [b"kafka-plain", b"kafka-gzip"] and vals[4:] == [b"x", b"y"]
    assert vals[2] == b"http" and vals[3] == b'{"f":"redis"}'
    conn.close()


def test_min_insync_replicas_and_timestamp_bounds(gbroker):
    admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
    admin.create_topics([NewTopic("isr", 1, 1, config={"min.insync.replicas": "2"}),
                         NewTopic("ts", 1, 1, config={
                             "message.timestamp.difference.max.ms": "3600000"})])
    time.sleep(0.5)
    conn = Conn(gbroker.port)
    # acks=all on a topic asking for two in-sync replicas: NOT_ENOUGH_REPLICAS; acks=1 is fine.
    r = conn.request(PRODUCE, 7, produce_body("isr", 0, make_batch([b"a"]), acks=-1))
    assert read_produce(r, 7) == [("isr", 0, 19, -1)]
    r = conn.request(PRODUCE, 7, produce_body("isr", 0, make_batch([b"a"]), acks=1))
    assert read_produce(r, 7) == [("isr", 0, 0, 0)]
    # make_batch's timestamps are from 2023: more than an hour away from now.
    r = conn.request(PRODUCE, 7, produce_body("ts", 0, make_batch([b"old"])))
    assert read_produce(r, 7) == [("ts", 0, 32, -1)]  # INVALID_TIMESTAMP
    p = Producer({"bootstrap.servers": gbroker.bootstrap})
    p.produce("ts", value=b"now", partition=0)
    assert p.flush(10) == 0
    assert raw_batches(conn, "ts") == [(0, 1)]
    conn.close()
