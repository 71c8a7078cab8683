"""Schemas enforced on produce (docs/schemas.md, "Enforcement on produce"): the topic keys
through Kafka's CreateTopics/AlterConfigs/DescribeConfigs and HTTP, Kafka produce of wire-format
records (confluent-kafka, kcat, and raw produces for record_errors), HTTP events validated
against the value subject's JSON Schema and stored with the wire header, Redis XADD field maps,
and the tidings_schema_events_total counters. One broker for the module; schemas registered
through the registry's REST API on the HTTP listener (/registry)."""
import base64
import http.client
import json
import re
import shutil
import struct
import subprocess

import pytest
import redis
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from conftest import Broker, Cli
from kafkawire import Conn, array, bytes_, i16, i32, make_batch, string, tags
from test_kafka_admin import INCREMENTAL_ALTER_CONFIGS, INVALID_CONFIG, TOPIC, alter_raw

PERSON = {"type": "object", "title": "Person",
          "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name"]}
OTHER = {"type": "object", "title": "Other", "properties": {"x": {"type": "number"}}}
FIELDS = {"type": "object", "properties": {"s": {"type": "string"}, "n": {"type": "integer"},
                                           "tags": {"type": "array"}},
          "required": ["s"]}


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    b = Broker(str(tmp_path_factory.mktemp("schema") / "data"), http=True, redis=True).start()
    yield b
    if b.proc:
        b.stop()


def call(b, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=10)
    hdrs = {"Content-Type": "application/json"} if body is not None else {}
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=hdrs)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, (json.loads(data) if data else None)


def register(b, subject, schema, schema_type="JSON"):
    body = {"schema": json.dumps(schema)}
    if schema_type != "AVRO":
        body["schemaType"] = schema_type
    st, out = call(b, "POST", f"/registry/subjects/{subject}/versions", body)
    assert st == 200, (st, out)
    return out["id"]


def wire(schema_id, payload):
    return b"\x00" + struct.pack(">i", schema_id) + payload


def admin(b):
    """One client for the module: a client freed while its futures wait fails them."""
    if not hasattr(b, "admin"):
        b.admin = AdminClient({"bootstrap.servers": b.bootstrap})
    return b.admin


def create(b, name, config):
    fs = admin(b).create_topics([NewTopic(name, 1, 1, config=config)])
    fs[name].result(timeout=10)


def inc_set(b, topic, key, value):
    """IncrementalAlterConfigs SET of one key (confluent-kafka 1.7 cannot send it)."""
    c = Conn(b.port)
    try:
        [(err, msg)] = alter_raw(c, INCREMENTAL_ALTER_CONFIGS, 1, [(TOPIC, topic,
                                                                   [(key, 0, value)])])
        return err, msg
    finally:
        c.close()


def describe(b, name):
    res = ConfigResource(ConfigResource.Type.TOPIC, name)
    return admin(b).describe_configs([res])[res].result(timeout=10)


def stored(b, topic):
    st, out = call(b, "GET", f"/v1/topics/{topic}/events?partition=0&offset=0&limit=1000")
    assert st == 200, out
    return out["events"]


def produce_each(b, topic, values, key=None):
    """Produces each value alone (one batch each); returns the error (or None) of each."""
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0, "retries": 0,
                  "enable.idempotence": False})
    errs = []
    for v in values:
        got = []
        p.produce(topic, value=v, key=key, on_delivery=lambda e, m: got.append(e))
        p.flush(10)
        assert len(got) == 1
        errs.append(got[0])
    return errs


# librdkafka produces with v7 at most, which has no INVALID_RECORD: the broker answers
# CORRUPT_MESSAGE (librdkafka's INVALID_MSG) there, as Kafka does; v8+ is checked raw below.
REFUSED = ("INVALID_RECORD", "INVALID_MSG")


def refused(e):
    return e is not None and e.name() in REFUSED


def metric(b, topic, result, reason):
    c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    pat = (r'^tidings_schema_events_total\{topic="%s",result="%s",reason="%s"\} (\S+)$'
           % (re.escape(topic), result, reason))
    m = re.search(pat, text, re.M)
    return float(m.group(1)) if m else 0.0


def test_topic_keys_through_kafka_and_http(sb):
    create(sb, "cfg-a", {"confluent.value.schema.validation": "true",
                         "value.subject.name.strategy":
                             "io.confluent.kafka.serializers.subject.RecordNameStrategy"})
    d = describe(sb, "cfg-a")
    assert d["value.schema.validation"].value == "true"
    assert d["confluent.value.schema.validation"].value == "true"
    assert d["value.subject.name.strategy"].value == "RecordNameStrategy"
    assert d["key.schema.validation"].value == "false"
    assert d["key.schema.validation"].is_default
    assert d["schema.validation.mode"].value == "id"
    # AlterConfigs (the whole set) and IncrementalAlterConfigs.
    res = ConfigResource(ConfigResource.Type.TOPIC, "cfg-a",
                         set_config={"key.schema.validation": "true",
                                     "schema.validation.mode": "full"})
    admin(sb).alter_configs([res])[res].result(timeout=10)
    d = describe(sb, "cfg-a")
    assert d["key.schema.validation"].value == "true"
    assert d["confluent.key.schema.validation"].value == "true"
    assert d["schema.validation.mode"].value == "full"
    assert inc_set(sb, "cfg-a", "confluent.key.subject.name.strategy",
                   "TopicRecordNameStrategy") == (0, None)
    assert describe(sb, "cfg-a")["key.subject.name.strategy"].value == "TopicRecordNameStrategy"
    # Bad values are refused with the rule.
    for k, v in (("value.schema.validation", "yes"), ("schema.validation.mode", "strict"),
                 ("value.subject.name.strategy", "NoSuchStrategy")):
        err, msg = inc_set(sb, "cfg-a", k, v)
        assert err == INVALID_CONFIG and k in msg, (err, msg)
    # HTTP: the same keys in the topic's config, settable by PATCH.
    st, out = call(sb, "PATCH", "/v1/topics/cfg-a", {"config": {"value.schema.validation": None}})
    assert st == 200, out
    assert out["config"]["value.schema.validation"] == "false"
    assert out["config"]["confluent.value.schema.validation"] == "false"
    # The whole configuration as GET gives it can be sent back (every key, aliases too).
    st, out2 = call(sb, "PATCH", "/v1/topics/cfg-a", {"config": out["config"]})
    assert st == 200, out2
    assert out2["config"] == out["config"]


def test_topic_keys_through_the_cli(sb, tmp_path):
    for cli in (Cli(sb.data, server=f"http://127.0.0.1:{sb.http_port}"),
                Cli(str(tmp_path / "local"))):
        cli.run("topic", "create", "cli-s", "--config", "confluent.value.schema.validation=true",
                "-c", "value.subject.name.strategy=RecordNameStrategy")
        cli.run("topic", "alter", "cli-s", "--config", "schema.validation.mode=full")
        d = json.loads(cli.out("topic", "describe", "cli-s", "--json"))["config"]
        assert d["value.schema.validation"] == "true"
        assert d["value.subject.name.strategy"] == "RecordNameStrategy"
        assert d["confluent.value.subject.name.strategy"] == "RecordNameStrategy"
        assert d["schema.validation.mode"] == "full"
        r = cli.run("topic", "alter", "cli-s", "--config", "schema.validation.mode=all",
                    check=False)
        assert r.returncode != 0 and b"schema.validation.mode" in r.stderr, r.stderr


def test_kafka_wire_format_id_mode(sb):
    create(sb, "kw", {"value.schema.validation": "true"})
    good = register(sb, "kw-value", PERSON)
    other = register(sb, "elsewhere-value", OTHER)
    before = {r: metric(sb, "kw", "rejected", r) for r in ("wire_format", "unknown_id",
                                                           "wrong_subject")}
    errs = produce_each(sb, "kw", [
        wire(good, b'{"name":"a"}'),   # good
        b'{"name":"b"}',               # no magic byte
        wire(99999, b'{"name":"c"}'),  # unknown id
        wire(other, b'{"x":1}'),       # another subject's id
        None,                          # a tombstone passes
        b"\x00\x00\x00",               # too short for a header
    ])
    assert errs[0] is None and errs[4] is None, errs
    for e in (errs[1], errs[2], errs[3], errs[5]):
        assert refused(e), e
    evs = stored(sb, "kw")
    assert len(evs) == 2
    assert evs[0]["value"] == {"name": "a"} and evs[0]["value_schema_id"] == good
    assert evs[1]["value"] is None
    assert metric(sb, "kw", "accepted", "none") == 2
    assert metric(sb, "kw", "rejected", "wire_format") - before["wire_format"] == 2
    assert metric(sb, "kw", "rejected", "unknown_id") - before["unknown_id"] == 1
    assert metric(sb, "kw", "rejected", "wrong_subject") - before["wrong_subject"] == 1
    # Keys are not checked unless key.schema.validation is on; then they are.
    assert produce_each(sb, "kw", [wire(good, b'{"name":"k"}')], key=b"plain")[0] is None
    assert inc_set(sb, "kw", "key.schema.validation", "true") == (0, None)
    e = produce_each(sb, "kw", [wire(good, b'{"name":"k"}')], key=b"plain")[0]
    assert refused(e), e
    assert len(stored(sb, "kw")) == 3


def raw_produce(b, topic, batch, version=9):
    c = Conn(b.port)
    try:
        flex = version >= 9
        part = i32(0) + bytes_(batch, flex) + tags(flex)
        t = string(topic, flex) + array([part], flex) + tags(flex)
        body = string(None, flex) + i16(-1) + i32(10000) + array([t], flex) + tags(flex)
        r = c.request(0, version, body, flex=flex)
        out = []
        for _ in range(r.array_len()):
            r.string()
            for _ in range(r.array_len()):
                r.i32()
                err = r.i16()
                r.i64(), r.i64(), r.i64()
                recs, msg = [], None
                if version >= 8:
                    for _ in range(r.array_len()):
                        recs.append((r.i32(), r.string()))
                        r.tags()
                    msg = r.string()
                r.tags()
                out.append((err, recs, msg))
            r.tags()
        return out[0]
    finally:
        c.close()


@pytest.mark.parametrize("compression", [0, 1])  # none, gzip (kafka-python's encoders here)
def test_mixed_batch_fails_whole_with_record_errors(sb, compression):
    topic = f"mixed-{compression}"
    create(sb, topic, {"value.schema.validation": "true"})
    sid = register(sb, f"{topic}-value", PERSON)
    values = [wire(sid, b'{"name":"a"}'), b"plain", wire(sid, b'{"name":"b"}'),
              wire(sid + 1000, b"{}")]
    err, recs, msg = raw_produce(sb, topic, make_batch(values, compression=compression))
    assert err == 87  # INVALID_RECORD
    assert [i for i, _ in recs] == [1, 3]
    assert "wire format" in recs[0][1] and "unknown" in recs[1][1]
    assert msg and "2 record(s)" in msg
    assert stored(sb, topic) == []
    # Produce v7 has no record_errors: CORRUPT_MESSAGE, still nothing stored.
    err, recs, _ = raw_produce(sb, topic, make_batch(values, compression=compression), version=7)
    assert err == 2 and recs == []
    assert stored(sb, topic) == []
    good = [wire(sid, b'{"name":"x"}')] * 3
    err, recs, _ = raw_produce(sb, topic, make_batch(good, compression=compression))
    assert err == 0 and recs == []
    assert len(stored(sb, topic)) == 3


@pytest.mark.parametrize("codec", ["lz4", "zstd", "snappy"])
def test_compressed_batch_from_librdkafka_is_all_or_nothing(sb, codec):
    topic = f"comp-{codec}"
    create(sb, topic, {"value.schema.validation": "true"})
    sid = register(sb, f"{topic}-value", PERSON)
    p = Producer({"bootstrap.servers": sb.bootstrap, "linger.ms": 200, "retries": 0,
                  "compression.type": codec, "enable.idempotence": False})
    got = []
    # A first event alone, so that the connection is up and the next three make one batch.
    p.produce(topic, value=b"warm-up", partition=0, on_delivery=lambda e, m: got.append(e))
    p.flush(10)
    assert len(got) == 1 and refused(got[0])
    got.clear()
    for v in (wire(sid, b'{"name":"a"}'), b"plain", wire(sid, b'{"name":"b"}')):
        p.produce(topic, value=v, partition=0, on_delivery=lambda e, m: got.append(e))
    p.flush(10)
    assert len(got) == 3 and all(refused(e) for e in got), got  # one batch: all refused
    assert stored(sb, topic) == []
    got.clear()
    for v in (wire(sid, b'{"name":"a"}'), wire(sid, b'{"name":"b"}')):
        p.produce(topic, value=v, partition=0, on_delivery=lambda e, m: got.append(e))
    p.flush(10)
    assert got == [None, None]
    assert [e["value"] for e in stored(sb, topic)] == [{"name": "a"}, {"name": "b"}]


def test_full_mode_validates_payload(sb):
    create(sb, "full", {"value.schema.validation": "true", "schema.validation.mode": "full"})
    sid = register(sb, "full-value", PERSON)
    before = metric(sb, "full", "rejected", "invalid_payload")
    errs = produce_each(sb, "full", [
        wire(sid, b'{"name":"a","age":3}'),
        wire(sid, b'{"age":3}'),              # required name missing
        wire(sid, b'{"name":"a","age":"x"}'),  # age of the wrong type
        wire(sid, b"not json"),
    ])
    assert errs[0] is None
    assert all(refused(e) for e in errs[1:]), errs
    assert len(stored(sb, "full")) == 1
    assert metric(sb, "full", "rejected", "invalid_payload") - before == 3
    # The same payloads in id mode pass: only the header is checked.
    assert inc_set(sb, "full", "schema.validation.mode", "id") == (0, None)
    assert produce_each(sb, "full", [wire(sid, b'{"age":3}')])[0] is None


def test_full_mode_large_batch_lists_each_bad_record(sb):
    # 300 records in one batch: more than the validation pool's chunks (16 records), so the
    # loop and the pool's threads share it; the bad records come back in order, each with its
    # own reason, and nothing of the batch is stored.
    create(sb, "fullbig", {"value.schema.validation": "true", "schema.validation.mode": "full"})
    sid = register(sb, "fullbig-value", PERSON)
    bad = {0: b'{"age":1}', 15: b'{"name":"a","age":"x"}', 16: b"nope", 17: b'{"age":2}',
           150: b'{"name":7}', 299: b"[]"}
    values = [wire(sid, bad.get(i, b'{"name":"p%d","age":%d}' % (i, i))) for i in range(300)]
    for compression in (0, 1):
        err, recs, msg = raw_produce(sb, "fullbig", make_batch(values, compression=compression))
        assert err == 87, (err, msg)  # INVALID_RECORD
        assert [i for i, _ in recs] == sorted(bad), recs
        assert "required" in recs[0][1] and "'/age'" in recs[1][1], recs
        assert msg and "6 record(s)" in msg
        assert stored(sb, "fullbig") == []
    good = [wire(sid, b'{"name":"p%d","age":%d}' % (i, i)) for i in range(300)]
    err, recs, _ = raw_produce(sb, "fullbig", make_batch(good, compression=1))
    assert err == 0 and recs == []
    got = stored(sb, "fullbig")
    assert [e["value"]["age"] for e in got] == list(range(300))


def test_record_name_strategy(sb):
    create(sb, "rns", {"value.schema.validation": "true",
                       "value.subject.name.strategy": "TopicRecordNameStrategy"})
    sid = register(sb, "rns-Person", PERSON)
    wrong = register(sb, "rns-value", OTHER)  # TopicNameStrategy's subject: not this one
    errs = produce_each(sb, "rns", [wire(sid, b'{"name":"a"}'), wire(wrong, b'{"x":1}')])
    assert errs[0] is None
    assert refused(errs[1]), errs


@pytest.mark.skipif(not shutil.which("kcat"), reason="kcat is not installed")
def test_kcat_plain_values_refused(sb):
    create(sb, "kc", {"value.schema.validation": "true"})
    r = subprocess.run(["kcat", "-P", "-b", sb.bootstrap, "-t", "kc", "-p", "0"],
                       input=b"plain text\n", capture_output=True, timeout=30)
    assert r.returncode != 0 and b"Delivery failed" in r.stderr, r.stderr
    assert b"Invalid message" in r.stderr or b"Invalid record" in r.stderr, r.stderr
    assert stored(sb, "kc") == []


def test_http_events(sb):
    create(sb, "hv", {"value.schema.validation": "true"})
    sid = register(sb, "hv-value", PERSON)
    st, out = call(sb, "POST", "/v1/topics/hv/events", {"key": "k", "value": {"name": "ann"}})
    assert st == 200, out
    st, out = call(sb, "POST", "/v1/topics/hv/events", {"value": {"name": "bob", "age": "x"}})
    assert st == 422
    e = out["error"]
    assert e["code"] == "schema_violation" and e["status"] == 422 and e["index"] == 0
    assert e["pointer"] == "/age" and e["rule"] == "type", e
    st, out = call(sb, "POST", "/v1/topics/hv/events", {"value": {"age": 3}})
    assert st == 422 and out["error"]["rule"] == "required", out
    # An array is all or nothing.
    st, out = call(sb, "POST", "/v1/topics/hv/events",
                   [{"value": {"name": "c"}}, {"value": {"name": "d"}}, {"value": {"age": 1}}])
    assert st == 422 and out["error"]["index"] == 2, out
    assert len(stored(sb, "hv")) == 1
    st, out = call(sb, "POST", "/v1/topics/hv/events",
                   [{"value": {"name": "c"}}, {"value": {"name": "d"}}])
    assert st == 200, out
    # Stored with the wire header (what Kafka consumers' deserializers read); read as JSON.
    evs = stored(sb, "hv")
    assert [ev["value"] for ev in evs] == [{"name": "ann"}, {"name": "c"}, {"name": "d"}]
    assert all(ev["value_schema_id"] == sid for ev in evs)
    st, out = call(sb, "GET", "/v1/topics/hv/events?partition=0&offset=0&values=string")
    raw = out["events"][0]
    got = base64.b64decode(raw["value_b64"]) if "value_b64" in raw else raw["value"].encode()
    assert got == wire(sid, b'{"name":"ann"}')
    # Bytes must already be in the wire format.
    st, out = call(sb, "POST", "/v1/topics/hv/events", {"value_text": "plain"})
    assert st == 422 and "wire format" in out["error"]["message"], out
    st, out = call(sb, "POST", "/v1/topics/hv/events",
                   {"value_b64": base64.b64encode(wire(sid, b'{"name":"e"}')).decode()})
    assert st == 200, out
    assert metric(sb, "hv", "accepted", "none") == 4
    assert metric(sb, "hv", "rejected", "invalid_payload") == 3


def test_http_events_of_an_avro_subject_are_refused(sb):
    create(sb, "hav", {"value.schema.validation": "true"})
    register(sb, "hav-value", {"type": "record", "name": "R",
                               "fields": [{"name": "a", "type": "int"}]}, "AVRO")
    st, out = call(sb, "POST", "/v1/topics/hav/events", {"value": {"a": 1}})
    assert st == 422 and "AVRO" in out["error"]["message"], out
    create(sb, "hnone", {"value.schema.validation": "true"})
    st, out = call(sb, "POST", "/v1/topics/hnone/events", {"value": {"a": 1}})
    assert st == 422 and "no schema" in out["error"]["message"], out
    assert metric(sb, "hnone", "rejected", "no_schema") == 1
    assert stored(sb, "hav") == [] and stored(sb, "hnone") == []


def test_redis_xadd(sb):
    create(sb, "rs", {"value.schema.validation": "true"})
    register(sb, "rs-value", FIELDS)
    r = redis.Redis(port=sb.redis_port, socket_timeout=10)
    assert r.xadd("rs", {"s": "hello", "n": "12", "tags": "[1,2]"})
    # "n" must be an integer: a value that is no JSON integer is refused at its field.
    with pytest.raises(redis.ResponseError) as e:
        r.xadd("rs", {"s": "hello", "n": "twelve"})
    assert str(e.value).startswith("schema violation at /n:"), str(e.value)
    with pytest.raises(redis.ResponseError) as e:
        r.xadd("rs", {"n": "1"})
    assert "schema violation at" in str(e.value) and "required" in str(e.value)
    # A repeated name makes no JSON object.
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("XADD", "rs", "*", "s", "a", "s", "b")
    assert "repeats" in str(e.value)
    # A string property takes the text as it is, even when it looks like JSON.
    assert r.xadd("rs", {"s": "12"})
    # Pipelined XADDs keep their order around a refused one.
    p = r.pipeline(transaction=False)
    p.xadd("rs", {"s": "a"})
    p.xadd("rs", {"n": "x"})
    p.xadd("rs", {"s": "b"})
    out = p.execute(raise_on_error=False)
    assert isinstance(out[1], redis.ResponseError)
    assert not isinstance(out[0], Exception) and not isinstance(out[2], Exception)
    assert r.xlen("rs") == 4
    assert metric(sb, "rs", "rejected", "invalid_payload") == 4
    r.close()
