"""Configuration and record deletion over Kafka: DescribeConfigs, AlterConfigs,
IncrementalAlterConfigs and DeleteRecords, through confluent-kafka's and kafka-python's admin
clients where they offer the call, and at byte level (kafkawire) for every version and for what
these clients cannot send (IncrementalAlterConfigs, DeleteRecords)."""
import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource as KConfigResource
from kafka.admin import ConfigResourceType as KConfigResourceType

from kafkawire import Conn, array, i8, i32, i64, make_batch, produce_body, read_produce, \
    string, tags
from test_kafka_clients import consume_all

DESCRIBE_CONFIGS, ALTER_CONFIGS, INCREMENTAL_ALTER_CONFIGS, DELETE_RECORDS = 32, 33, 44, 21
LIST_OFFSETS, FETCH = 2, 1
TOPIC, BROKER = 2, 4
INVALID_CONFIG, INVALID_REQUEST, UNKNOWN_TOPIC, OUT_OF_RANGE = 40, 42, 3, 1


def describe(admin, topic):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return admin.describe_configs([res])[res].result(10)


def test_confluent_describe_and_alter_configs(broker):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic("cfg", 2, 1, config={"retention.ms": "60000"})])["cfg"].result(10)
    d = describe(a, "cfg")
    assert d["retention.ms"].value == "60000"
    assert not d["retention.ms"].is_default
    assert d["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert d["segment.bytes"].value == "1073741824"
    assert d["segment.bytes"].is_default
    assert d["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    assert d["fsync"].value == "always"
    assert d["cleanup.policy"].value == "delete"
    assert not d["max.message.bytes"].is_read_only

    # AlterConfigs replaces the whole set: retention.ms, not named, returns to its default.
    res = ConfigResource(ConfigResource.Type.TOPIC, "cfg",
                         set_config={"max.message.bytes": "2000", "fsync": "interval:100"})
    a.alter_configs([res])[res].result(10)
    d = describe(a, "cfg")
    assert d["max.message.bytes"].value == "2000"
    assert d["fsync"].value == "interval:100"
    assert d["retention.ms"].value == "604800000"
    assert d["retention.ms"].is_default

    # The new limit is in force at once.
    p = Producer({"bootstrap.servers": broker.bootstrap, "message.max.bytes": 100000})
    errors = []
    p.produce("cfg", value=b"x" * 5000, partition=0, on_delivery=lambda e, m: errors.append(e))
    p.flush(10)  # alone in its batch: a batch is accepted or refused whole
    p.produce("cfg", value=b"small", partition=0, on_delivery=lambda e, m: errors.append(e))
    p.flush(10)
    assert errors[0] is not None and "MSG_SIZE_TOO_LARGE" in str(errors[0])
    assert errors[1] is None

    # validate_only checks without changing anything.
    res = ConfigResource(ConfigResource.Type.TOPIC, "cfg", set_config={"retention.ms": "5"})
    a.alter_configs([res], validate_only=True)[res].result(10)
    assert describe(a, "cfg")["retention.ms"].value == "604800000"

    for bad in ({"no.such.key": "1"}, {"retention.ms": "soon"}, {"cleanup.policy": "shred"}):
        res = ConfigResource(ConfigResource.Type.TOPIC, "cfg", set_config=bad)
        with pytest.raises(KafkaException) as e:
            a.alter_configs([res])[res].result(10)
        assert "INVALID_CONFIG" in str(e.value), bad
    assert describe(a, "cfg")["max.message.bytes"].value == "2000"

    res = ConfigResource(ConfigResource.Type.TOPIC, "nope")
    with pytest.raises(KafkaException) as e:
        a.describe_configs([res])[res].result(10)
    assert "UNKNOWN_TOPIC" in str(e.value)

    # The broker's settings, read-only, under Kafka's names.
    res = ConfigResource(ConfigResource.Type.BROKER, "1")
    b = a.describe_configs([res])[res].result(10)
    assert b["advertised.listeners"].value == f"PLAINTEXT://127.0.0.1:{broker.port}"
    assert b["auto.create.topics.enable"].value == "true"
    assert b["num.partitions"].value == "1"
    assert b["log.dirs"].value == broker.data
    assert all(e.is_read_only for e in b.values())
    res = ConfigResource(ConfigResource.Type.BROKER, "1", set_config={"num.partitions": "3"})
    with pytest.raises(KafkaException) as e:
        a.alter_configs([res])[res].result(10)
    assert "INVALID_REQUEST" in str(e.value)


def test_configs_survive_a_restart(broker):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic("keep", 1, 1)])["keep"].result(10)
    res = ConfigResource(ConfigResource.Type.TOPIC, "keep",
                         set_config={"retention.bytes": "123456789"})
    a.alter_configs([res])[res].result(10)
    broker.stop()
    broker.start()
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    assert describe(a, "keep")["retention.bytes"].value == "123456789"


def test_kafka_python_describe_and_alter_configs(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    from kafka.admin import NewTopic as KNewTopic
    admin.create_topics([KNewTopic("kpc", 1, 1)])
    admin.alter_configs([KConfigResource(KConfigResourceType.TOPIC, "kpc",
                                         configs={"retention.ms": "1234"})])
    resp = admin.describe_configs([KConfigResource(KConfigResourceType.TOPIC, "kpc")])
    entries = {}
    for r in resp:
        for err, _msg, _type, name, configs in r.resources:
            assert err == 0 and name == "kpc"
            entries.update({c[0]: c[1] for c in configs})
    assert entries["retention.ms"] == "1234"
    assert entries["message.timestamp.type"] == "CreateTime"
    admin.close()


# --- byte level -------------------------------------------------------------------------------

def describe_raw(conn, v, resources, synonyms=True, docs=True):
    """resources: [(type, name, keys or None)] -> [(error, msg, type, name, {key: entry})]"""
    flex = v >= 4
    body = array([i8(t) + string(n, flex) +
                  array(None if ks is None else [string(k, flex) for k in ks], flex) + tags(flex)
                  for t, n, ks in resources], flex)
    if v >= 1:
        body += i8(1 if synonyms else 0)
    if v >= 3:
        body += i8(1 if docs else 0)
    r = conn.request(DESCRIBE_CONFIGS, v, body + tags(flex), flex=flex)
    assert r.i32() == 0
    out = []
    for _ in range(r.array_len()):
        err, msg, typ, name = r.i16(), r.string(), r.i8(), r.string()
        entries = {}
        for _ in range(r.array_len()):
            e = {"name": r.string(), "value": r.string(), "read_only": r.i8()}
            if v == 0:
                e["is_default"] = r.i8()
            else:
                e["source"] = r.i8()
            e["sensitive"] = r.i8()
            if v >= 1:
                e["synonyms"] = []
                for _ in range(r.array_len()):
                    e["synonyms"].append((r.string(), r.string(), r.i8()))
                    r.tags()
            if v >= 3:
                e["type"], e["doc"] = r.i8(), r.string()
            r.tags()
            entries[e["name"]] = e
        r.tags()
        out.append((err, msg, typ, name, entries))
    r.tags()
    assert r.done()
    return out


def alter_raw(conn, key, v, resources, validate_only=False):
    """resources: [(type, name, [(key, op, value)])] -> [(error, message)]"""
    flex = v >= (1 if key == INCREMENTAL_ALTER_CONFIGS else 2)
    def entry(k, op, val):
        return string(k, flex) + (i8(op) if key == INCREMENTAL_ALTER_CONFIGS else b"") + \
            string(val, flex) + tags(flex)
    body = array([i8(t) + string(n, flex) + array([entry(*c) for c in cs], flex) + tags(flex)
                  for t, n, cs in resources], flex)
    body += i8(1 if validate_only else 0) + tags(flex)
    r = conn.request(key, v, body, flex=flex)
    assert r.i32() == 0
    out = []
    for _ in range(r.array_len()):
        err, msg, _typ, _name = r.i16(), r.string(), r.i8(), r.string()
        r.tags()
        out.append((err, msg))
    r.tags()
    assert r.done()
    return out


@pytest.mark.parametrize("v", [0, 1, 2, 3, 4])
def test_describe_configs_every_version(broker, v):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic("dv", 1, 1, config={"segment.ms": "3600000"})])["dv"].result(10)
    c = Conn(broker.port)
    [(err, msg, typ, name, e), (berr, _, _, _, be), (uerr, _, _, _, ue), (xerr, _, _, _, _)] = \
        describe_raw(c, v, [(TOPIC, "dv", None), (BROKER, "1", ["num.partitions", "zzz"]),
                            (TOPIC, "missing", None), (99, "x", None)])
    assert (err, msg, typ, name) == (0, None, TOPIC, "dv")
    assert e["segment.ms"]["value"] == "3600000"
    if v == 0:
        assert e["segment.ms"]["is_default"] == 0 and e["retention.ms"]["is_default"] == 1
    else:
        assert e["segment.ms"]["source"] == 1 and e["retention.ms"]["source"] == 5
        # Synonyms name where a non-default value comes from.
        assert e["segment.ms"]["synonyms"] == [("segment.ms", "3600000", 1)]
        assert e["retention.ms"]["synonyms"] == []
    if v >= 3:
        assert e["retention.ms"]["type"] == 5  # LONG
        assert e["fsync"]["type"] == 2  # STRING
        assert e["cleanup.policy"]["type"] == 7  # LIST
        assert "segment" in e["segment.ms"]["doc"]
    assert berr == 0 and list(be) == ["num.partitions"]
    assert uerr == UNKNOWN_TOPIC and ue == {}
    assert xerr == INVALID_REQUEST
    c.close()


@pytest.mark.parametrize("v", [0, 1, 2])
def test_alter_configs_every_version(broker, v):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic("av", 1, 1)])["av"].result(10)
    c = Conn(broker.port)
    assert alter_raw(c, ALTER_CONFIGS, v, [(TOPIC, "av", [("retention.ms", 0, "777")])]) == \
        [(0, None)]
    [(_, _, _, _, e)] = describe_raw(c, 0, [(TOPIC, "av", ["retention.ms"])])
    assert e["retention.ms"]["value"] == "777"
    [(err, msg)] = alter_raw(c, ALTER_CONFIGS, v, [(TOPIC, "av", [("retention.ms", 0, None)])])
    assert err == INVALID_CONFIG and "null" in msg
    [(err, _), (err2, _)] = alter_raw(c, ALTER_CONFIGS, v, [
        (TOPIC, "av", [("segment.ms", 0, "5")]), (TOPIC, "av", [("segment.ms", 0, "6")])])
    assert err == 0 and err2 == INVALID_REQUEST
    c.close()


@pytest.mark.parametrize("v", [0, 1])
def test_incremental_alter_configs(broker, v):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic("inc", 1, 1, config={"retention.ms": "1000"})])["inc"].result(10)
    c = Conn(broker.port)
    SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3

    def values():
        [(_, _, _, _, e)] = describe_raw(c, 4, [(TOPIC, "inc", None)])
        return {k: x["value"] for k, x in e.items()}

    # SET keeps the other keys (unlike AlterConfigs).
    assert alter_raw(c, INCREMENTAL_ALTER_CONFIGS, v,
                     [(TOPIC, "inc", [("segment.bytes", SET, "65536")])]) == [(0, None)]
    got = values()
    assert got["segment.bytes"] == "65536" and got["retention.ms"] == "1000"
    # DELETE returns a key to its default; APPEND of a policy the topic has is a no-op.
    assert alter_raw(c, INCREMENTAL_ALTER_CONFIGS, v, [(TOPIC, "inc", [
        ("retention.ms", DELETE, None), ("cleanup.policy", APPEND, "delete")])]) == [(0, None)]
    got = values()
    assert got["retention.ms"] == "604800000" and got["segment.bytes"] == "65536"
    assert got["cleanup.policy"] == "delete"
    # APPEND and SUBTRACT edit the list.
    assert alter_raw(c, INCREMENTAL_ALTER_CONFIGS, v,
                     [(TOPIC, "inc", [("cleanup.policy", APPEND, "compact")])]) == [(0, None)]
    assert values()["cleanup.policy"] == "compact,delete"
    assert alter_raw(c, INCREMENTAL_ALTER_CONFIGS, v,
                     [(TOPIC, "inc", [("cleanup.policy", SUBTRACT, "compact")])]) == [(0, None)]
    assert values()["cleanup.policy"] == "delete"
    # Refused changes leave everything as it was, validate_only changes nothing.
    for changes, code in [([("cleanup.policy", APPEND, "shred")], INVALID_CONFIG),
                          ([("cleanup.policy", SUBTRACT, "delete")], INVALID_CONFIG),
                          ([("segment.bytes", APPEND, "1")], INVALID_CONFIG),
                          ([("unknown.key", SET, "1")], INVALID_CONFIG),
                          ([("segment.bytes", SET, "1")], INVALID_CONFIG),  # below 1024
                          ([("segment.bytes", 9, "2048")], INVALID_REQUEST),
                          ([("segment.bytes", SET, "2048"), ("segment.bytes", SET, "4096")],
                           INVALID_REQUEST)]:
        [(err, msg)] = alter_raw(c, INCREMENTAL_ALTER_CONFIGS, v, [(TOPIC, "inc", changes)])
        assert err == code, (changes, err, msg)
        assert msg
    assert alter_raw(c, INCREMENTAL_ALTER_CONFIGS, v,
                     [(TOPIC, "inc", [("segment.bytes", SET, "2048")])], validate_only=True) == \
        [(0, None)]
    assert values()["segment.bytes"] == "65536"
    [(err, _)] = alter_raw(c, INCREMENTAL_ALTER_CONFIGS, v,
                           [(TOPIC, "gone", [("segment.bytes", SET, "2048")])])
    assert err == UNKNOWN_TOPIC
    c.close()


def delete_records_raw(conn, v, topic, parts):
    """parts: [(partition, offset)] -> [(partition, low_watermark, error)]"""
    flex = v >= 2
    body = array([string(topic, flex) +
                  array([i32(p) + i64(o) + tags(flex) for p, o in parts], flex) + tags(flex)],
                 flex) + i32(5000) + tags(flex)
    r = conn.request(DELETE_RECORDS, v, body, flex=flex)
    assert r.i32() == 0
    out = []
    for _ in range(r.array_len()):
        assert r.string() == topic
        for _ in range(r.array_len()):
            out.append((r.i32(), r.i64(), r.i16()))
            r.tags()
        r.tags()
    r.tags()
    assert r.done()
    return out


def earliest(conn, topic, partition):
    body = i32(-1) + i8(0) + array([string(topic) + array([i32(partition) + i32(-1) + i64(-2)])])
    r = conn.request(LIST_OFFSETS, 5, body)
    r.i32()
    r.array_len()
    r.string()
    r.array_len()
    assert r.i32() == partition
    assert r.i16() == 0
    r.i64()
    return r.i64()


@pytest.mark.parametrize("v", [0, 1, 2])
def test_delete_records(broker, v):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic("dr", 2, 1, config={"segment.bytes": "4096"})])["dr"].result(10)
    c = Conn(broker.port)
    for n in range(10):  # ten batches of ten: offsets 0..99 in partition 0
        batch = make_batch([f"e{n * 10 + i}".encode() * 20 for i in range(10)])
        [(_, _, err, base)] = read_produce(c.request(0, 7, produce_body("dr", 0, batch)), 7)
        assert (err, base) == (0, n * 10)
    out = delete_records_raw(c, v, "dr", [(0, 45), (1, 0), (7, 0)])
    assert out == [(0, 45, 0), (1, 0, 0), (7, -1, UNKNOWN_TOPIC)]
    assert earliest(c, "dr", 0) == 45
    # Beyond the high watermark, or below -1: out of range; lower than the start: no change.
    assert delete_records_raw(c, v, "dr", [(0, 101)]) == [(0, -1, OUT_OF_RANGE)]
    assert delete_records_raw(c, v, "dr", [(0, -5)]) == [(0, -1, OUT_OF_RANGE)]
    assert delete_records_raw(c, v, "dr", [(0, 10)]) == [(0, 45, 0)]
    assert delete_records_raw(c, v, "nope", [(0, 1)]) == [(0, -1, UNKNOWN_TOPIC)]
    # A consumer from the beginning starts at 45, in the middle of a batch.
    got = consume_all(broker.bootstrap, "dr", 1, 55)
    assert [m.offset() for m in got] == list(range(45, 100))
    assert got[0].value() == b"e45" * 20
    c.close()
    # After a restart the deleted records stay deleted; -1 deletes up to the high watermark.
    broker.stop()
    broker.start()
    c = Conn(broker.port)
    assert earliest(c, "dr", 0) == 45
    assert delete_records_raw(c, v, "dr", [(0, -1)]) == [(0, 100, 0)]
    assert earliest(c, "dr", 0) == 100
    c.close()
