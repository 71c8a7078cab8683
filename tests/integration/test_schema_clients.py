"""Schema registry clients against tidings' registry (served under the HTTP listener at
/registry) and its enforcement on produce, on topics with value.schema.validation=true and
schema.validation.mode=full, as Confluent documents them:

- kafkajs with @kafkajs/confluent-schema-registry (tests/node/schema_registry.mjs): Avro, JSON
  Schema and Protobuf schemas registered, events encoded and produced, read back and decoded; a
  compatible evolution accepted, an incompatible one refused with the registry's 409; records
  not in the wire format, with an unknown schema id, or whose payload does not decode, refused
  with INVALID_RECORD (CORRUPT_MESSAGE below Produce v8) and not stored.
- confluent-kafka (librdkafka): SerializingProducer / DeserializingConsumer with the JSON Schema
  serializer (python3-jsonschema) and the Protobuf serializer (python3-protobuf; the message
  class is built at run time from a FileDescriptorProto, as protoc's generated module would do;
  the serializer registers the schema as a base64-encoded FileDescriptorProto, which Confluent's
  registry accepts besides .proto text; the same schema registered as .proto text is tested
  apart), and a plain Producer's records refused.

The Avro coverage by clients is kafkajs's: confluent-kafka's Avro serializer needs fastavro,
which Debian does not package.
"""
import json
import os
import subprocess

import pytest
from confluent_kafka import (Consumer, DeserializingConsumer, KafkaError, Producer,
                             SerializingProducer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import StringDeserializer, StringSerializer
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from conftest import Broker

NODE_DIR = os.path.join(os.path.dirname(__file__), "..", "node")
VALIDATED = {"value.schema.validation": "true", "schema.validation.mode": "full"}
TYPES = ["avro", "json", "protobuf"]
PER_VERSION = 10  # schema_registry.mjs's events per schema version
# A refused record's error: INVALID_RECORD (87) exists from Produce v8 (KIP-467); Kafka answers
# older versions CORRUPT_MESSAGE (2, librdkafka's INVALID_MSG). Debian's librdkafka 2.0.2 and
# kafkajs 2.x send Produce v7.
REFUSED = KafkaError.INVALID_MSG


@pytest.fixture(scope="module")
def sbroker(tmp_path_factory):
    b = Broker(str(tmp_path_factory.mktemp("schema-clients") / "data"), http=True).start()
    b.registry = f"http://127.0.0.1:{b.http_port}/registry"
    yield b
    b.stop()


@pytest.fixture(scope="module")
def node_run(sbroker):
    env = dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1")
    p = subprocess.run(["node", "schema_registry.mjs", sbroker.bootstrap, sbroker.registry,
                        "node", json.dumps(VALIDATED)],
                       cwd=NODE_DIR, capture_output=True, timeout=90, env=env)
    assert p.returncode == 0, p.stderr.decode()[-4000:]
    return json.loads(p.stdout)


def expected_event(i):
    e = {"id": i, "sensor": f"s{i % 3}", "value": i / 2}
    if i >= PER_VERSION:
        e["unit"] = "K"
    return e


@pytest.mark.parametrize("kind", TYPES)
def test_kafkajs_registry_client(node_run, kind):
    r = node_run[kind]
    assert "error" not in r, f"{kind} stopped after {r['steps']}: {r['error']}"
    # Versions 1 and 2 got two new ids, and the registry answers for both.
    id1, id2 = r["ids"]
    assert id1 > 0 and id2 > 0 and id1 != id2
    assert r["latest"] == id2 and r["lookupV1"] == id1
    # The incompatible version 3 is refused with Confluent's 409, surfaced by the client.
    assert r["incompatible"].get("status") == 409, r["incompatible"]
    assert "incompatible" in r["incompatible"]["message"].lower()
    # The refused records, none of them stored. kafkajs 2.x speaks Produce v7, which has no
    # INVALID_RECORD (v8, KIP-467): Kafka answers older versions CORRUPT_MESSAGE instead.
    for what in ("notWire", "badPayload", "unknownId"):
        assert r[what].get("type") == "CORRUPT_MESSAGE", (what, r[what])
    assert r["end"] == 2 * PER_VERSION
    # Read back and decoded by the client: every event, in order, with the id it was written
    # with.
    got = r["consumed"]
    assert [m["offset"] for m in got] == list(range(2 * PER_VERSION))
    assert all("decodeError" not in m for m in got), got
    assert [m["schemaId"] for m in got] == [id1] * PER_VERSION + [id2] * PER_VERSION
    assert [m["value"] for m in got] == [expected_event(i) for i in range(2 * PER_VERSION)]


def create_topic(bootstrap, topic, config):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, 1, 1, config=config)])
    futures[topic].result(15)


def produce_all(producer, topic, records, one_by_one=False):
    """Produces (key, value) records to topic, then returns each one's delivery error (None
    when delivered), in order. one_by_one: each record in a batch of its own (a refused record
    refuses its whole batch)."""
    delivered = object()
    errors = [None] * len(records)
    for i, (k, v) in enumerate(records):
        def report(err, _msg, i=i):
            errors[i] = err if err else delivered
        producer.produce(topic=topic, key=k, value=v, on_delivery=report)
        producer.poll(0)
        if one_by_one:
            assert producer.flush(15) == 0
    assert producer.flush(15) == 0
    return [None if e is delivered else e for e in errors]


def read_back(consumer, topic, count):
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []
    for _ in range(200):
        if len(got) >= count:
            break
        m = consumer.poll(0.1)
        if m is None:
            continue
        assert m.error() is None, m.error()
        got.append(m)
    consumer.close()
    return got


def high_watermark(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "hw"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        c.close()


READING_JSON = json.dumps({
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Reading",
    "type": "object",
    "properties": {
        "id": {"type": "integer", "minimum": 0},
        "sensor": {"type": "string", "pattern": "^s[0-9]+$"},
        "value": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
    },
    "required": ["id", "sensor", "value"],
    "additionalProperties": False,
})


def test_confluent_json_schema_serializer(sbroker):
    """confluent-kafka's JSONSerializer registers the schema under <topic>-value and writes the
    wire format; the broker validates each event against it (full mode); JSONDeserializer reads
    the very objects back. A payload that breaks the schema (written around the serializer,
    which would refuse it itself) is refused by the broker."""
    topic = "py-json"
    create_topic(sbroker.bootstrap, topic, VALIDATED)
    sr = SchemaRegistryClient({"url": sbroker.registry})
    p = SerializingProducer({"bootstrap.servers": sbroker.bootstrap, "acks": "all",
                             "key.serializer": StringSerializer(),
                             "value.serializer": JSONSerializer(READING_JSON, sr)})
    objs = [{"id": i, "sensor": f"s{i}", "value": i * 1.5, "tags": ["a", "b"][: i % 3]}
            for i in range(20)]
    assert produce_all(p, topic, [(f"k{i}", o) for i, o in enumerate(objs)]) == [None] * len(objs)
    latest = sr.get_latest_version(f"{topic}-value")
    assert latest.version == 1 and latest.schema.schema_type == "JSON"

    # The same wire format, the same schema id, but not what the schema allows: refused.
    plain = Producer({"bootstrap.servers": sbroker.bootstrap, "acks": "all"})
    head = b"\0" + latest.schema_id.to_bytes(4, "big")
    errs = produce_all(plain, topic, [(None, head + json.dumps(o).encode()) for o in (
        {"id": -1, "sensor": "s1", "value": 1},           # minimum
        {"id": 1, "sensor": "x1", "value": 1},            # pattern
        {"id": 1, "sensor": "s1"},                        # required
        {"id": 1, "sensor": "s1", "value": 1, "more": 1},  # additionalProperties
    )], one_by_one=True)
    assert [e and e.code() for e in errs] == [REFUSED] * 4, errs

    c = DeserializingConsumer({"bootstrap.servers": sbroker.bootstrap, "group.id": "py-json",
                               "key.deserializer": StringDeserializer(),
                               "value.deserializer": JSONDeserializer(READING_JSON)})
    got = read_back(c, topic, len(objs))
    assert [m.value() for m in got] == objs
    assert [m.key() for m in got] == [f"k{i}" for i in range(len(objs))]
    assert high_watermark(sbroker.bootstrap, topic) == len(objs)


def reading_class():
    """The message class protoc would generate for

        syntax = "proto3"; package tidings.test;
        message Reading { int32 id = 1; string sensor = 2; double value = 3;
                          repeated string tags = 4; Location where = 5;
                          message Location { double lat = 1; double lon = 2; } }

    built at run time (Debian has no protoc among the test dependencies)."""
    F = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(name="tidings_test_reading.proto",
                                            package="tidings.test", syntax="proto3")
    m = fd.message_type.add(name="Reading")
    for name, number, ftype, label, type_name in (
            ("id", 1, F.TYPE_INT32, F.LABEL_OPTIONAL, None),
            ("sensor", 2, F.TYPE_STRING, F.LABEL_OPTIONAL, None),
            ("value", 3, F.TYPE_DOUBLE, F.LABEL_OPTIONAL, None),
            ("tags", 4, F.TYPE_STRING, F.LABEL_REPEATED, None),
            ("where", 5, F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".tidings.test.Reading.Location")):
        f = m.field.add(name=name, number=number, type=ftype, label=label, json_name=name)
        if type_name:
            f.type_name = type_name
    loc = m.nested_type.add(name="Location")
    loc.field.add(name="lat", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL,
                  json_name="lat")
    loc.field.add(name="lon", number=2, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL,
                  json_name="lon")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    desc = pool.FindMessageTypeByName("tidings.test.Reading")
    return message_factory.MessageFactory(pool).GetPrototype(desc)


READING_PROTO = """syntax = "proto3";
package tidings.test;

message Reading {
  int32 id = 1;
  string sensor = 2;
  double value = 3;
  repeated string tags = 4;
  Location where = 5;

  message Location {
    double lat = 1;
    double lon = 2;
  }
}
"""


def readings(Reading):
    msgs = []
    for i in range(20):
        r = Reading(id=i, sensor=f"s{i}", value=i * 0.25, tags=["t"] * (i % 3))
        r.where.lat, r.where.lon = 48.0 + i, 2.0 - i
        msgs.append(r)
    return msgs


def check_protobuf_topic(sbroker, topic, Reading, schema_id, msgs):
    """Bytes in the wire format with the topic's schema id that are not a Reading are refused;
    confluent-kafka's ProtobufDeserializer reads back the messages produced before."""
    plain = Producer({"bootstrap.servers": sbroker.bootstrap, "acks": "all"})
    head = b"\0" + schema_id.to_bytes(4, "big")
    errs = produce_all(plain, topic, [(None, head + b) for b in (
        b"\x00\x12\x64s1",     # index [0]; sensor's length 100, 2 bytes follow
        b"\x00\x1a\x02\x00",   # index [0]; field 3 (double) sent as length-delimited
        b"\x05\x01\x02\x03",   # indexes that name no message of the file
    )], one_by_one=True)
    assert [e and e.code() for e in errs] == [REFUSED] * 3, errs
    c = DeserializingConsumer({"bootstrap.servers": sbroker.bootstrap, "group.id": topic,
                               "key.deserializer": StringDeserializer(),
                               "value.deserializer": ProtobufDeserializer(Reading)})
    got = read_back(c, topic, len(msgs))
    assert [m.value() for m in got] == msgs
    assert high_watermark(sbroker.bootstrap, topic) == len(msgs)


def test_confluent_protobuf_serializer(sbroker):
    """confluent-kafka's ProtobufSerializer registers the message's file under <topic>-value as
    a base64-encoded FileDescriptorProto (what this client sends; Confluent's registry parses
    it as it parses .proto text) and writes the wire format with the message indexes; the
    broker decodes each event against the schema (full mode); the ProtobufDeserializer reads
    the same messages back."""
    topic = "py-protobuf"
    create_topic(sbroker.bootstrap, topic, VALIDATED)
    Reading = reading_class()
    sr = SchemaRegistryClient({"url": sbroker.registry})
    p = SerializingProducer({"bootstrap.servers": sbroker.bootstrap, "acks": "all",
                             "key.serializer": StringSerializer(),
                             "value.serializer": ProtobufSerializer(Reading, sr)})
    msgs = readings(Reading)
    assert produce_all(p, topic, [(f"k{i}", m) for i, m in enumerate(msgs)]) == [None] * len(msgs)
    latest = sr.get_latest_version(f"{topic}-value")
    assert latest.version == 1 and latest.schema.schema_type == "PROTOBUF"
    check_protobuf_topic(sbroker, topic, Reading, latest.schema_id, msgs)


def test_confluent_protobuf_proto_text(sbroker):
    """The same with the schema registered as .proto text through SchemaRegistryClient, and
    the events written in the wire format as Confluent's serializers write them (the message
    indexes [0] as the byte 0, then the message) by a plain producer."""
    topic = "py-protobuf-text"
    create_topic(sbroker.bootstrap, topic, VALIDATED)
    Reading = reading_class()
    sr = SchemaRegistryClient({"url": sbroker.registry})
    schema_id = sr.register_schema(f"{topic}-value", Schema(READING_PROTO, "PROTOBUF"))
    msgs = readings(Reading)
    p = Producer({"bootstrap.servers": sbroker.bootstrap, "acks": "all"})
    head = b"\0" + schema_id.to_bytes(4, "big") + b"\0"
    assert produce_all(p, topic, [(f"k{i}", head + m.SerializeToString())
                                  for i, m in enumerate(msgs)]) == [None] * len(msgs)
    check_protobuf_topic(sbroker, topic, Reading, schema_id, msgs)


def test_plain_producer_refused(sbroker):
    """A plain producer's records to a topic with value.schema.validation=true: not in the wire
    format (plain JSON, a wrong magic byte, shorter than the header) or naming a schema id that
    is not registered under <topic>-value are refused (CORRUPT_MESSAGE at librdkafka's Produce
    v7, INVALID_RECORD from v8), and nothing of them
    is stored; the same bytes go to a topic without validation."""
    topic = "py-plain"
    create_topic(sbroker.bootstrap, topic, VALIDATED)
    create_topic(sbroker.bootstrap, "py-plain-open", {})
    sr = SchemaRegistryClient({"url": sbroker.registry})
    own = sr.register_schema(f"{topic}-value", Schema(READING_JSON, "JSON"))
    other = sr.register_schema("py-elsewhere-value", Schema(json.dumps(
        {"title": "Other", "type": "object"}), "JSON"))
    assert own != other
    good = b"\0" + own.to_bytes(4, "big") + b'{"id": 1, "sensor": "s1", "value": 2}'
    bad = [b'{"id": 1, "sensor": "s1", "value": 2}',
           b"\1" + own.to_bytes(4, "big") + b'{"id": 1, "sensor": "s1", "value": 2}',
           b"\0\0\0",
           b"\0" + other.to_bytes(4, "big") + b'{"id": 1}',
           b"\0" + (other + 1000).to_bytes(4, "big") + b'{"id": 1}']
    p = Producer({"bootstrap.servers": sbroker.bootstrap, "acks": "all"})
    errs = produce_all(p, topic, [(None, v) for v in bad] + [(None, good)],
                       one_by_one=True)
    assert [e and e.code() for e in errs] == [REFUSED] * len(bad) + [None]
    assert high_watermark(sbroker.bootstrap, topic) == 1
    assert produce_all(p, "py-plain-open", [(None, v) for v in bad]) == [None] * len(bad)
