"""The broker's state in internal compacted topics (docs/storage.md, "State topics"):
committed offsets in __consumer_offsets and producer-id blocks in __cluster_state, replayed at
start, durable before a commit is answered, deleted with tombstones, hidden from ordinary
listings and closed to client writes on every protocol, readable by administrators, and
migrated from an older data directory's catalog.
"""
import json
import os
import shutil
import signal
import sqlite3
import struct
import threading
import time
import urllib.error
import urllib.request

import confluent_kafka as ck
import pytest
import redis
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic
from kafka import KafkaAdminClient

import kafkawire as kw
from conftest import INTERNAL_TOPICS, SYSTEM_TOPICS, Broker

OFFSETS = "__consumer_offsets"
CLUSTER = "__cluster_state"


def create_topic(bootstrap, name, partitions=1):
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=30)


def commit(bootstrap, group, topic, offsets):
    """Commits {partition: offset} synchronously (a simple consumer: generation -1)."""
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "enable.auto.commit": False})
    try:
        tps = [ck.TopicPartition(topic, p, o) for p, o in offsets.items()]
        res = c.commit(offsets=tps, asynchronous=False)
        for tp in res:
            assert tp.error is None, tp.error
    finally:
        c.close()


def committed(bootstrap, group, topic, partitions):
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "enable.auto.commit": False})
    try:
        res = c.committed([ck.TopicPartition(topic, p) for p in partitions], timeout=30)
        return {tp.partition: tp.offset for tp in res}
    finally:
        c.close()


def read_all(bootstrap, topic, partition=0, timeout=20):
    """Every record of a partition, as an administrator (anonymous: all) reads it."""
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "reader",
                     "enable.auto.commit": False, "enable.partition.eof": True})
    c.assign([ck.TopicPartition(topic, partition, ck.OFFSET_BEGINNING)])
    out, deadline = [], time.time() + timeout
    try:
        while time.time() < deadline:
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                if m.error().code() == ck.KafkaError._PARTITION_EOF:
                    return out
                raise AssertionError(m.error())
            out.append((m.key(), m.value()))
        raise AssertionError("no end of partition")
    finally:
        c.close()


def offset_key(group, topic, partition):
    """Kafka's OffsetCommitKey v1, which __consumer_offsets uses."""
    def s(x):
        b = x.encode()
        return struct.pack(">h", len(b)) + b
    return struct.pack(">h", 1) + s(group) + s(topic) + struct.pack(">i", partition)


def catalog_rows(data, sql):
    db = sqlite3.connect(os.path.join(data, "catalog.db"))
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_offsets_replayed_after_restart(tmp_path):
    b = Broker(str(tmp_path / "data")).start()
    try:
        create_topic(b.bootstrap, "t", 3)
        commit(b.bootstrap, "g1", "t", {0: 5, 1: 7, 2: 9})
        commit(b.bootstrap, "g1", "t", {1: 8})  # the latest record of a key wins
        commit(b.bootstrap, "g2", "t", {0: 1})
        # The record is Kafka's: key v1, value v3 (offset, leader epoch, metadata, time).
        recs = dict(read_all(b.bootstrap, OFFSETS))
        v = recs[offset_key("g1", "t", 0)]
        assert struct.unpack(">hqi", v[:14]) == (3, 5, -1)
        assert len(v) == 14 + 2 + len(struct.unpack(">h", v[14:16])[0] * b"x") + 8
    finally:
        b.stop()
    # Nothing of it is in the catalog any more.
    assert catalog_rows(b.data, "SELECT count(*) FROM offsets") == [(0,)]
    b = Broker(b.data).start()
    try:
        assert committed(b.bootstrap, "g1", "t", [0, 1, 2]) == {0: 5, 1: 8, 2: 9}
        assert committed(b.bootstrap, "g2", "t", [0]) == {0: 1}
    finally:
        b.stop()


def commit_body(group, topic, partition, offset):
    """OffsetCommit v2 of a client that manages its partitions (generation -1)."""
    return (kw.string(group) + kw.i32(-1) + kw.string("") + kw.i64(-1) +
            kw.array([kw.string(topic) + kw.array([kw.i32(partition) + kw.i64(offset) +
                                                   kw.string("")])]))


def commit_error(r):
    """The one partition's error code of an OffsetCommit v2 response."""
    assert r.array_len() == 1
    r.string()
    assert r.array_len() == 1
    r.i32()
    return r.i16()


def test_kill9_loses_no_answered_commit(tmp_path):
    """Clients commit increasing offsets as fast as they are answered; the broker is killed;
    after the restart each partition's offset is at least the last one answered."""
    b = Broker(str(tmp_path / "data")).start()
    create_topic(b.bootstrap, "load", 4)
    answered = {}
    lock = threading.Lock()

    def worker(i):
        try:
            c = kw.Conn(b.port, timeout=5)
            for off in range(1, 100000):
                r = c.request(8, 2, commit_body(f"load-{i}", "load", i % 4, off))
                if commit_error(r) != 0:
                    return
                with lock:
                    answered[i] = off
        except (OSError, ConnectionError, AssertionError):
            return  # the broker is gone

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    deadline = time.time() + 20
    while time.time() < deadline and (len(answered) < 6 or min(answered.values()) < 30):
        time.sleep(0.05)
    b.stop(signal.SIGKILL)
    with lock:
        last = dict(answered)
    for t in threads:
        t.join(timeout=30)
    assert len(last) == 6 and min(last.values()) >= 30, last
    b = Broker(b.data).start()
    try:
        for i, off in last.items():
            got = committed(b.bootstrap, f"load-{i}", "load", [i % 4])[i % 4]
            assert got >= off, (i, got, off)
    finally:
        b.stop()


def test_deletions_write_tombstones(tmp_path):
    b = Broker(str(tmp_path / "data")).start()
    try:
        create_topic(b.bootstrap, "keep", 1)
        create_topic(b.bootstrap, "gone", 1)
        commit(b.bootstrap, "dg", "keep", {0: 3})
        commit(b.bootstrap, "tg", "keep", {0: 4})
        commit(b.bootstrap, "tg", "gone", {0: 5})
        ka = KafkaAdminClient(bootstrap_servers=b.bootstrap)
        try:
            assert dict(ka.delete_consumer_groups(["dg"]))["dg"].errno == 0
        finally:
            ka.close()
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        a.delete_topics(["gone"])["gone"].result(timeout=30)
        recs = read_all(b.bootstrap, OFFSETS)
        tombs = {k for k, v in recs if v is None}
        assert offset_key("dg", "keep", 0) in tombs
        assert offset_key("tg", "gone", 0) in tombs
        assert offset_key("tg", "keep", 0) not in tombs
    finally:
        b.stop()
    b = Broker(b.data).start()
    try:
        create_topic(b.bootstrap, "gone", 1)
        assert committed(b.bootstrap, "dg", "keep", [0]) == {0: ck.OFFSET_INVALID}
        assert committed(b.bootstrap, "tg", "gone", [0]) == {0: ck.OFFSET_INVALID}
        assert committed(b.bootstrap, "tg", "keep", [0]) == {0: 4}
    finally:
        b.stop()


def http(b, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{b.http_port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_internal_topics_hidden_and_protected(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True, redis=True).start()
    try:
        create_topic(b.bootstrap, "user", 1)
        commit(b.bootstrap, "g", "user", {0: 1})
        # Kafka: listed as internal (to whom may describe them, here anonymous: all).
        ka = KafkaAdminClient(bootstrap_servers=b.bootstrap)
        try:
            d = {t["topic"]: t for t in ka.describe_topics([OFFSETS, "user"])}
            assert d[OFFSETS]["is_internal"] is True
            assert d["user"]["is_internal"] is False
        finally:
            ka.close()
        # Kafka: produce is INVALID_TOPIC_EXCEPTION, as Kafka answers for internal topics.
        errs = []
        p = ck.Producer({"bootstrap.servers": b.bootstrap, "message.send.max.retries": 0})
        p.produce(OFFSETS, key=b"k", value=b"v", on_delivery=lambda e, m: errs.append(e))
        p.flush(30)
        assert errs and errs[0] is not None and errs[0].code() == ck.KafkaError.TOPIC_EXCEPTION
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        with pytest.raises(ck.KafkaException) as ei:
            a.delete_topics([OFFSETS])[OFFSETS].result(timeout=30)
        assert ei.value.args[0].code() == ck.KafkaError.TOPIC_EXCEPTION
        with pytest.raises(ck.KafkaException):
            a.create_partitions([NewPartitions(OFFSETS, 4)])[OFFSETS].result(timeout=30)
        res = ConfigResource("topic", OFFSETS, set_config={"cleanup.policy": "delete"})
        with pytest.raises(ck.KafkaException):
            a.alter_configs([res])[res].result(timeout=30)
        # HTTP: hidden unless asked; marked internal; no writes, no deletion.
        st, j = http(b, "GET", "/v1/topics")
        assert st == 200 and [t["name"] for t in j["topics"]] == ["user"]
        st, j = http(b, "GET", "/v1/topics?internal=true")
        names = {t["name"]: t for t in j["topics"]}
        assert names[OFFSETS]["internal"] is True and names[CLUSTER]["internal"] is True
        assert "internal" not in names["user"]
        st, _ = http(b, "POST", f"/v1/topics/{OFFSETS}/events", [{"key": "k", "value": "v"}])
        assert st == 400
        st, _ = http(b, "DELETE", f"/v1/topics/{OFFSETS}")
        assert st == 400
        st, j = http(b, "GET", f"/v1/topics/{OFFSETS}/events?partition=0&offset=0&limit=10")
        assert st == 200 and len(j["events"]) >= 1  # readable by an administrator
        # In the metrics like any topic: the commit above is an event in.
        with urllib.request.urlopen(f"http://127.0.0.1:{b.http_port}/metrics", timeout=30) as m:
            text = m.read().decode()
        assert f'tidings_topic_events_in_total{{topic="{OFFSETS}"}} 1' in text, [
            ln for ln in text.splitlines() if OFFSETS in ln][:5]
        # Redis: not among the keys; no XADD; readable.
        r = redis.Redis(port=b.redis_port)
        assert r.keys("*") == [b"user"]
        assert OFFSETS.encode() not in set(r.scan_iter("*"))
        with pytest.raises(redis.ResponseError, match="internal topic"):
            r.xadd(OFFSETS, {"a": "b"})
        assert len(r.xrange(OFFSETS, "-", "+")) >= 1
        r.close()
    finally:
        b.stop()
    # The command line: hidden unless --internal; and the topics are still there, compacted.
    from conftest import Cli
    c = Cli(b.data)
    assert OFFSETS not in c.out("topic", "list")
    out = c.out("topic", "list", "--internal", "--json")
    assert {t["name"] for t in json.loads(out)["topics"]} == {"user"} | INTERNAL_TOPICS | SYSTEM_TOPICS
    d = json.loads(c.out("topic", "describe", OFFSETS, "--json"))
    assert d["config"]["cleanup.policy"] == "compact"
    assert d["config"]["fsync"] == "always"
    assert c.run("topic", "delete", OFFSETS, check=False).returncode != 0


def test_internal_topics_need_describe(tmp_path):
    """Kafka's Metadata lists an internal topic only to principals allowed to Describe it, and
    a Fetch of it needs Read, as for any topic: here anonymous clients under ACLs, allowed to
    describe and read `user` only, then also __consumer_offsets."""
    from conftest import Cli
    data = str(tmp_path / "data")
    c = Cli(data)
    c.run("topic", "create", "user")
    for op in ("Describe", "Read"):
        c.run("acl", "add", "--allow-principal", "User:ANONYMOUS", "--operation", op,
              "--topic", "user")
    b = Broker(data, extra=["--set", "anonymous.access=acl"]).start()
    try:
        md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=30)
        assert set(md.topics) == {"user"}
    finally:
        b.stop()
    c.run("acl", "add", "--allow-principal", "User:ANONYMOUS", "--operation", "Describe",
          "--topic", OFFSETS)
    b = Broker(data, extra=["--set", "anonymous.access=acl"]).start()
    try:
        md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=30)
        assert set(md.topics) == {"user", OFFSETS}
    finally:
        b.stop()


def old_directory(tmp_path, groups):
    """A data directory as an older broker left it: offsets and the next producer id in the
    catalog, no state topics."""
    b = Broker(str(tmp_path / "data")).start()
    create_topic(b.bootstrap, "t", 2)
    b.stop()
    for name in (OFFSETS, CLUSTER):
        shutil.rmtree(os.path.join(b.data, "topics", name))
    db = sqlite3.connect(os.path.join(b.data, "catalog.db"))
    db.execute(f"DELETE FROM topics WHERE name IN ('{OFFSETS}', '{CLUSTER}')")
    for g, part, off in groups:
        db.execute("INSERT INTO offsets(grp, topic, partition, offset, leader_epoch, metadata, "
                   "commit_ms) VALUES(?, 't', ?, ?, -1, 'old', 1700000000000)", (g, part, off))
    db.execute("INSERT OR REPLACE INTO meta VALUES('next_producer_id', 5000)")
    db.commit()
    db.close()
    return b.data


def producer_blocks(bootstrap):
    out = []
    for k, v in read_all(bootstrap, CLUSTER):
        if k == struct.pack(">h", 0) and v:
            out.append(struct.unpack(">hqi", v)[1:])
    return out


def test_migration_of_an_old_directory(tmp_path):
    data = old_directory(tmp_path, [("og", 0, 11), ("og", 1, 12), ("og2", 0, 3)])
    b = Broker(data).start()
    try:
        assert committed(b.bootstrap, "og", "t", [0, 1]) == {0: 11, 1: 12}
        assert committed(b.bootstrap, "og2", "t", [0]) == {0: 3}
        # An idempotent producer gets an id of a block after the catalog's next id.
        p = ck.Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True})
        p.produce("t", value=b"x", partition=0)
        assert p.flush(30) == 0
        assert producer_blocks(b.bootstrap) == [(5000, 0), (5000, 1000)]
    finally:
        b.stop()
    assert catalog_rows(data, "SELECT count(*) FROM offsets") == [(0,)]
    assert catalog_rows(data, "SELECT count(*) FROM meta WHERE key='next_producer_id'") == [(0,)]
    # A crash between the records and the rows' removal migrates again: the same state.
    db = sqlite3.connect(os.path.join(data, "catalog.db"))
    db.execute("INSERT INTO offsets VALUES('og', 't', 0, 11, -1, 'old', 1700000000000)")
    db.execute("INSERT INTO meta VALUES('next_producer_id', 5000)")
    db.commit()
    db.close()
    b = Broker(data).start()
    try:
        assert committed(b.bootstrap, "og", "t", [0, 1]) == {0: 11, 1: 12}
        # The block already recorded ends above the catalog's id: no block goes back.
        assert producer_blocks(b.bootstrap) == [(5000, 0), (5000, 1000)]
        p = ck.Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True})
        p.produce("t", value=b"y", partition=0)
        assert p.flush(30) == 0
        assert producer_blocks(b.bootstrap)[-1] == (6000, 1000)
    finally:
        b.stop()
    assert catalog_rows(data, "SELECT count(*) FROM offsets") == [(0,)]


def test_settings(tmp_path):
    """offsets.topic.num.partitions when the topic is made; state.topic.fsync at each start that
    sets it (a local command, or a start without it, keeps it); a bad value stops the start."""
    from conftest import Cli
    data = str(tmp_path / "data")
    b = Broker(data, extra=["--set", "offsets.topic.num.partitions=3",
                            "--set", "state.topic.fsync=interval:100"]).start()
    b.stop()
    c = Cli(data)
    d = json.loads(c.out("topic", "describe", OFFSETS, "--json"))
    assert d["partition_count"] == 3 and d["config"]["fsync"] == "interval:100"
    b = Broker(data, extra=["--set", "offsets.topic.num.partitions=5"]).start()
    b.stop()
    d = json.loads(c.out("topic", "describe", OFFSETS, "--json"))
    assert d["partition_count"] == 3 and d["config"]["fsync"] == "interval:100"
    b = Broker(data, extra=["--set", "state.topic.fsync=always"]).start()
    b.stop()
    d = json.loads(c.out("topic", "describe", OFFSETS, "--json"))
    assert d["config"]["fsync"] == "always"
    with pytest.raises(AssertionError):
        Broker(data, extra=["--set", "state.topic.fsync=sometimes"]).start()


# --- group metadata (GroupMetadata records, key version 2) ------------------------------------
def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def group_broker(data, port):
    return Broker(data, extra=["--kafka", f"127.0.0.1:{port}",
                               "--set", "group.initial.rebalance.delay.ms=0",
                               "--set", "group.min.session.timeout.ms=100"]).start()


class GroupConsumer:
    """A confluent-kafka consumer that commits every message it reads, synchronously."""

    def __init__(self, bootstrap, group, topic):
        self.assigns = 0
        self.revokes = 0
        self.c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                              "enable.auto.commit": False, "auto.offset.reset": "earliest",
                              "session.timeout.ms": 30000, "heartbeat.interval.ms": 300,
                              "reconnect.backoff.max.ms": 200})
        self.c.subscribe([topic], on_assign=self.on_assign, on_revoke=self.on_revoke)
        self.got = []

    def on_assign(self, c, parts):
        self.assigns += 1

    def on_revoke(self, c, parts):
        self.revokes += 1

    def poll(self):
        m = self.c.poll(0.1)
        if m is not None and not m.error():
            self.got.append(m.value())
            self.c.commit(message=m, asynchronous=False)


def consume(consumers, want, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline and sum(len(c.got) for c in consumers) < want:
        for c in consumers:
            c.poll()


def metadata_records(bootstrap, group):
    """The GroupMetadata values of a group in __consumer_offsets, in order."""
    key = struct.pack(">hh", 2, len(group)) + group.encode()
    return [v for k, v in read_all(bootstrap, OFFSETS) if k == key]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_groups_survive_a_restart(tmp_path, sig):
    """A Stable group of two confluent-kafka consumers goes on after a restart of the broker
    with its generation and members: no rebalance, no re-delivery; a wire member heartbeats and
    commits at its generation; an Empty group keeps its generation and is listed."""
    import test_kafka_group_wire as gw
    port = free_port()
    b = group_broker(str(tmp_path / "data"), port)
    consumers = []
    try:
        create_topic(b.bootstrap, "gm", 2)
        create_topic(b.bootstrap, "wt", 1)  # the wire helpers' topic
        p = ck.Producer({"bootstrap.servers": b.bootstrap})
        for i in range(20):
            p.produce("gm", f"a{i}".encode(), partition=i % 2)
        p.flush(30)
        consumers = [GroupConsumer(b.bootstrap, "cg", "gm") for _ in range(2)]
        consume(consumers, 20, 60)
        assert sorted(v for c in consumers for v in c.got) == sorted(
            f"a{i}".encode() for i in range(20))
        assert all(c.assigns >= 1 for c in consumers)
        conn = kw.Conn(b.port)
        # "w": one wire member, Stable; "we": a member that leaves (Empty, generation 2).
        j = gw.join_member(conn, 5, "w", protocols=(("range", gw.subscription(["gm"])),))
        assert j["err"] == 0 and j["gen"] == 1
        assert gw.sync(conn, 5, "w", 1, j["member"], [(j["member"], b"plan")]) == (0, b"plan")
        e = gw.join_member(conn, 5, "we")
        assert gw.sync(conn, 5, "we", e["gen"], e["member"])[0] == 0
        assert gw.leave(conn, 3, "we", [e["member"]])[0] == 0
        # The record of a Stable group: value v3, its generation, protocol, leader, members.
        recs = metadata_records(b.bootstrap, "w")
        v = struct.unpack_from(">hh", recs[-1])
        assert v[0] == 3
        assert recs[-1].endswith(struct.pack(">i", 4) + b"plan")
        gen_cg = gw.describe(conn, 5, "cg")
        assert gen_cg["state"] == "Stable" and len(gen_cg["members"]) == 2
        members = sorted(m["id"] for m in gen_cg["members"])
        # The first consumer's generation may have been revoked when the second joined.
        rounds = [(c.assigns, c.revokes) for c in consumers]
        conn.close()
        b.stop(sig)
        b = group_broker(b.data, port)

        conn = kw.Conn(b.port)
        assert gw.heartbeat(conn, 3, "w", 1, j["member"]) == 0
        assert gw.commit(conn, 2, "w", 1, j["member"], [(0, 0, None)]) == {0: 0}
        d = gw.describe(conn, 5, "w")
        assert d["state"] == "Stable" and d["protocol"] == "range"
        assert [(m["id"], m["assignment"]) for m in d["members"]] == [(j["member"], b"plan")]
        err, listed = gw.list_groups(conn, 4, ["Empty"])
        assert err == 0 and "we" in listed
        assert gw.describe(conn, 5, "we")["state"] == "Empty"
        # The next generation of the Empty group continues the numbering.
        e2 = gw.join_member(conn, 5, "we")
        assert e2["err"] == 0 and e2["gen"] == e["gen"] + 2
        # The consumers go on: same members, no new assignment, nothing read twice.
        p = ck.Producer({"bootstrap.servers": b.bootstrap})
        for i in range(20):
            p.produce("gm", f"b{i}".encode(), partition=i % 2)
        p.flush(30)
        consume(consumers, 40, 60)
        got = [v for c in consumers for v in c.got]
        assert sorted(got) == sorted([f"a{i}".encode() for i in range(20)] +
                                     [f"b{i}".encode() for i in range(20)])
        assert [(c.assigns, c.revokes) for c in consumers] == rounds
        d = gw.describe(conn, 5, "cg")
        assert d["state"] == "Stable"
        assert sorted(m["id"] for m in d["members"]) == members
        conn.close()
    finally:
        for c in consumers:
            c.c.close()
        b.stop()


def test_deleted_group_stays_deleted(tmp_path):
    """DeleteGroups writes the group's tombstone: after a restart the group is gone."""
    import test_kafka_group_wire as gw
    port = free_port()
    b = group_broker(str(tmp_path / "data"), port)
    try:
        create_topic(b.bootstrap, "gm", 1)
        conn = kw.Conn(b.port)
        e = gw.join_member(conn, 5, "gone")
        assert gw.sync(conn, 5, "gone", e["gen"], e["member"])[0] == 0
        assert gw.leave(conn, 3, "gone", [e["member"]])[0] == 0
        assert gw.delete_groups(conn, 2, ["gone"]) == {"gone": 0}
        assert metadata_records(b.bootstrap, "gone")[-1] is None
        conn.close()
        b.stop()
        b = group_broker(b.data, port)
        conn = kw.Conn(b.port)
        assert "gone" not in gw.list_groups(conn, 4)[1]
        assert gw.describe(conn, 5, "gone")["state"] == "Dead"
        conn.close()
    finally:
        b.stop()
