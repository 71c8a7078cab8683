"""`tidings schema` (register, list, show, check, delete, config) locally and against a running
broker's registry, `produce --schema` and `consume --format json` round trips, and a Kafka
client (confluent-kafka) reading what `produce --schema` wrote: Confluent's wire format (byte 0,
the schema ID in four bytes, the Avro binary encoding)."""
import base64
import json
import struct
import urllib.request

import pytest
from confluent_kafka import Consumer, TopicPartition

from conftest import BOTH_MODES, Broker, Cli

PAYMENT = {"type": "record", "name": "Payment", "namespace": "shop",
           "fields": [{"name": "id", "type": "string"}, {"name": "amount", "type": "long"}]}
# BACKWARD compatible with PAYMENT: the new field has a default.
PAYMENT_V2 = {**PAYMENT, "fields": PAYMENT["fields"] + [
    {"name": "note", "type": ["null", "string"], "default": None}]}
# Not BACKWARD compatible: a reader with this schema has no value for `currency`.
PAYMENT_BAD = {**PAYMENT, "fields": PAYMENT["fields"] + [{"name": "currency", "type": "string"}]}

ORDER_JSON = {"type": "object", "properties": {"sku": {"type": "string"},
                                               "qty": {"type": "integer", "minimum": 1}},
              "required": ["sku", "qty"]}


def write(tmp_path, name, schema):
    p = tmp_path / name
    p.write_text(json.dumps(schema))
    return str(p)


def registered_id(out):
    """The ID of `registered S version V: schema id I`."""
    assert "schema id " in out, out
    return int(out.rsplit("schema id ", 1)[1])


@BOTH_MODES
def test_schema_subcommands(cli, tmp_path):
    v1 = write(tmp_path, "payment.avsc", PAYMENT)
    v2 = write(tmp_path, "payment2.avsc", PAYMENT_V2)
    bad = write(tmp_path, "bad.avsc", PAYMENT_BAD)

    out = cli.out("schema", "register", "payments-value", v1)
    assert out.startswith("registered payments-value version 1: schema id "), out
    id1 = registered_id(out)
    # The same schema again: the same version and ID, nothing new.
    assert cli.out("schema", "register", "payments-value", v1) == out
    j = json.loads(cli.out("schema", "register", "payments-value", v2, "--json"))
    assert j["subject"] == "payments-value" and j["version"] == 2 and j["id"] != id1
    id2 = j["id"]

    # An incompatible schema is refused with the registry's reason, and changes nothing.
    p = cli.run("schema", "register", "payments-value", bad, check=False)
    assert p.returncode == 1, p.stderr
    assert b"registering schema: " in p.stderr and b"incompatible" in p.stderr.lower()

    # list: the subjects, then a subject's versions.
    lines = cli.out("schema", "list").splitlines()
    assert lines[0].split() == ["SUBJECT", "VERSION", "ID", "TYPE"]
    assert lines[1].split() == ["payments-value", "2", str(id2), "AVRO"]
    assert json.loads(cli.out("schema", "list", "--json")) == ["payments-value"]
    lines = cli.out("schema", "list", "payments-value").splitlines()
    assert [ln.split() for ln in lines[1:]] == [["1", str(id1), "AVRO"], ["2", str(id2), "AVRO"]]
    assert json.loads(cli.out("schema", "list", "payments-value", "--json")) == [1, 2]

    # show: by version, latest, and by ID.
    shown = json.loads(cli.out("schema", "show", "payments-value", "1", "--json"))
    assert shown["version"] == 1 and shown["id"] == id1
    assert json.loads(shown["schema"])["fields"] == PAYMENT["fields"]
    out = cli.out("schema", "show", "payments-value")
    assert "version     2\n" in out and f"id          {id2}\n" in out and '"note"' in out
    out = cli.out("schema", "show", "--id", str(id1))
    assert "subjects    payments-value version 1" in out and '"amount"' in out

    # check: compatible (exit 0), or not (exit 1, with the reasons).
    p = cli.run("schema", "check", "payments-value", v2)
    assert p.stdout == b"compatible\n"
    p = cli.run("schema", "check", "payments-value", bad, check=False)
    assert p.returncode == 1
    out = p.stdout.decode().splitlines()
    assert out[0] == "incompatible" and len(out) >= 2 and "currency" in p.stdout.decode(), out
    p = cli.run("schema", "check", "payments-value", bad, "--json", check=False)
    assert p.returncode == 1 and json.loads(p.stdout)["is_compatible"] is False

    # config: the global level, a subject's (falling back to the global one), set both.
    assert cli.out("schema", "config") == "global: BACKWARD\n"
    assert cli.out("schema", "config", "payments-value") == \
        "payments-value: BACKWARD (the global level)\n"
    assert cli.out("schema", "config", "payments-value", "NONE") == "payments-value: NONE\n"
    assert cli.out("schema", "config", "payments-value") == "payments-value: NONE\n"
    # With NONE, the schema that was refused registers.
    assert "version 3" in cli.out("schema", "register", "payments-value", bad)
    assert cli.out("schema", "config", "FULL") == "global: FULL\n"
    assert json.loads(cli.out("schema", "config", "--json")) == {"compatibilityLevel": "FULL"}

    # delete: one version, then the subject, then for good.
    assert cli.out("schema", "delete", "payments-value", "3") == \
        "deleted payments-value version 3\n"
    assert json.loads(cli.out("schema", "list", "payments-value", "--json")) == [1, 2]
    lines = cli.out("schema", "list", "payments-value", "--deleted").splitlines()
    assert lines[-1].split()[-1] == "(deleted)" and lines[-1].split()[0] == "3"
    assert cli.out("schema", "delete", "payments-value") == \
        "deleted payments-value: versions 1, 2\n"
    assert json.loads(cli.out("schema", "list", "--json")) == []
    assert "payments-value" in cli.out("schema", "list", "--deleted")
    assert "permanently" in cli.out("schema", "delete", "payments-value", "--permanent")
    assert json.loads(cli.out("schema", "list", "--deleted", "--json")) == []


@BOTH_MODES
def test_schema_errors(cli, tmp_path):
    v1 = write(tmp_path, "payment.avsc", PAYMENT)
    cli.out("schema", "register", "payments-value", v1)
    for args in (["show", "nope"], ["show", "payments-value", "7"], ["show", "--id", "9999"],
                 ["list", "nope"], ["delete", "nope"]):
        p = cli.run("schema", *args, check=False)
        assert p.returncode == 3, (args, p.stderr)
        assert p.stderr.startswith(b"tidings: ") and b"not found" in p.stderr.lower(), p.stderr
    # A subject without versions has nothing to be incompatible with (as Confluent's).
    assert cli.out("schema", "check", "nope", v1) == "compatible\n"
    # A file that is not a schema of its type: refused by the registry (exit 1).
    broken = tmp_path / "broken.avsc"
    broken.write_text('{"type": "record", "name": "X", "fields": [{"name": "a"}]}')
    p = cli.run("schema", "register", "x-value", str(broken), check=False)
    assert p.returncode == 1 and b"registering schema: " in p.stderr, p.stderr
    # Usage errors, before anything is asked.
    for args in (["register", "s"], ["show"], ["config", "s", "SIDEWAYS"],
                 ["show", "s", "zero"], ["register", "s", v1, "--type", "XML"],
                 ["register", "s", v1, "--ref", "no-version"]):
        p = cli.run("schema", *args, check=False)
        assert p.returncode == 2, (args, p.stderr)


@BOTH_MODES
def test_schema_json_and_stdin(cli, tmp_path):
    # The type from the file's name (.json: JSON Schema); standard input with --type.
    path = write(tmp_path, "order.json", ORDER_JSON)
    cli.out("schema", "register", "orders-value", path)
    shown = json.loads(cli.out("schema", "show", "orders-value", "--json"))
    assert shown["schemaType"] == "JSON" and json.loads(shown["schema"]) == ORDER_JSON
    out = cli.out("schema", "register", "orders2-value", "-", "--type", "JSON",
                  input=json.dumps(ORDER_JSON).encode())
    # The same schema under another subject has the same ID.
    assert registered_id(out) == shown["id"]


def avro_long(b, i):
    """Avro's zig-zag varint at b[i:]: (value, next index)."""
    shift = n = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return (n >> 1) ^ -(n & 1), i


def decode_payment(b):
    """PAYMENT's binary encoding, decoded by hand (independent of the broker's code)."""
    n, i = avro_long(b, 0)
    ident = b[i:i + n].decode()
    amount, i = avro_long(b, i + n)
    assert i == len(b), "bytes after the datum"
    return {"id": ident, "amount": amount}


PAYMENTS = [{"id": "p-1", "amount": 1250}, {"id": "p-2", "amount": -3},
            {"id": "é-3", "amount": 1 << 40}]


@BOTH_MODES
def test_produce_consume_avro(cli, tmp_path):
    cli.out("topic", "create", "payments")
    sid = registered_id(cli.out("schema", "register", "payments-value",
                                write(tmp_path, "p.avsc", PAYMENT)))
    lines = "".join(json.dumps(p) + "\n" for p in PAYMENTS)
    cli.out("produce", "payments", "--schema", "payments-value", input=lines.encode())
    # A plain event between them stays as it is.
    cli.out("produce", "payments", input=b"plain text\n")
    cli.out("produce", "payments", "--schema-id", str(sid), input=lines.encode()[:-1])
    out = [json.loads(ln) for ln in
           cli.out("consume", "payments", "--from-beginning", "--format", "json").splitlines()]
    assert [e["value"] for e in out] == PAYMENTS + ["plain text"] + PAYMENTS
    assert [e.get("value_schema_id") for e in out] == [sid] * 3 + [None] + [sid] * 3
    # The stored bytes: the wire format, as --format text prints them.
    raw = cli.run("consume", "payments", "--from-beginning", "--max", "1").stdout[:-1]
    assert raw[0] == 0 and struct.unpack(">i", raw[1:5])[0] == sid
    assert decode_payment(raw[5:]) == PAYMENTS[0]

    # A line that does not match: exit 1 naming it, after the lines before it.
    p = cli.run("produce", "payments", "--schema", "payments-value:1", check=False,
                input=b'{"id": "ok", "amount": 1}\n{"id": "p-9", "amount": "many"}\n'
                      b'{"id": "never", "amount": 2}\n')
    assert p.returncode == 1
    assert b"line 2 does not match schema" in p.stderr and b"/amount" in p.stderr, p.stderr
    assert b"the 1 event before it was written" in p.stderr
    out = [json.loads(ln) for ln in
           cli.out("consume", "payments", "--from-beginning", "--format", "json").splitlines()]
    assert [e["value"] for e in out[7:]] == [{"id": "ok", "amount": 1}]
    # An unknown subject or ID.
    for args in (["--schema", "nope-value"], ["--schema-id", "4242"]):
        p = cli.run("produce", "payments", *args, input=b"{}\n", check=False)
        assert p.returncode == 3, p.stderr


MONEY = {"type": "record", "name": "Money", "namespace": "shop",
         "fields": [{"name": "units", "type": "long"}, {"name": "currency", "type": "string"}]}
PRICED = {"type": "record", "name": "Priced", "namespace": "shop",
          "fields": [{"name": "sku", "type": "string"}, {"name": "price", "type": "shop.Money"}]}


@BOTH_MODES
def test_references(cli, tmp_path):
    """A schema that uses another registered one (--ref), then produced and consumed: the
    command fetches the reference to parse it."""
    cli.out("topic", "create", "prices")
    cli.out("schema", "register", "money-value", write(tmp_path, "money.avsc", MONEY))
    priced = write(tmp_path, "priced.avsc", PRICED)
    # Without the reference, the type shop.Money is unknown.
    assert cli.run("schema", "register", "prices-value", priced, check=False).returncode == 1
    sid = registered_id(cli.out("schema", "register", "prices-value", priced,
                                "--ref", "shop.Money=money-value:1"))
    shown = json.loads(cli.out("schema", "show", "prices-value", "--json"))
    assert shown["references"] == [{"name": "shop.Money", "subject": "money-value",
                                    "version": 1}]
    assert "references  shop.Money = money-value version 1" in \
        cli.out("schema", "show", "prices-value")
    value = {"sku": "a", "price": {"units": 12, "currency": "EUR"}}
    cli.out("produce", "prices", "--schema", "prices-value",
            input=(json.dumps(value) + "\n").encode())
    e = json.loads(cli.out("consume", "prices", "--from-beginning", "--format", "json"))
    assert e["value"] == value and e["value_schema_id"] == sid


@BOTH_MODES
def test_produce_consume_json_schema(cli, tmp_path):
    cli.out("topic", "create", "orders")
    sid = registered_id(cli.out("schema", "register", "orders-value",
                                write(tmp_path, "order.json", ORDER_JSON)))
    cli.out("produce", "orders", "--schema", "orders-value",
            input=b'{"sku": "a-1", "qty": 2}\n{"qty": 1, "sku": "b"}\n')
    p = cli.run("produce", "orders", "--schema", "orders-value", check=False,
                input=b'{"sku": "c", "qty": 0}\n')
    assert p.returncode == 1 and b"line 1 does not match" in p.stderr and b"/qty" in p.stderr
    out = [json.loads(ln) for ln in
           cli.out("consume", "orders", "--from-beginning", "--format", "json").splitlines()]
    assert [e["value"] for e in out] == [{"sku": "a-1", "qty": 2}, {"qty": 1, "sku": "b"}]
    assert all(e["value_schema_id"] == sid for e in out)
    raw = cli.run("consume", "orders", "--from-beginning", "--max", "1").stdout
    assert raw == b"\0" + struct.pack(">i", sid) + b'{"sku": "a-1", "qty": 2}\n'


ITEM_PROTO = """syntax = "proto3";
package shop;
message Item {
  string sku = 1;
  int64 qty = 2;
}
"""


def test_protobuf(rb, tmp_path):
    """A .proto registers as PROTOBUF (from the file's name); produce --schema refuses it (the
    command has no Protobuf encoder); consume --format json shows a Protobuf value's bytes with
    its schema ID."""
    base = f"http://127.0.0.1:{rb.http_port}"
    cli = Cli(rb.data, server=base)
    cli.out("topic", "create", "items")
    path = tmp_path / "item.proto"
    path.write_text(ITEM_PROTO)
    sid = registered_id(cli.out("schema", "register", "items-value", str(path)))
    assert json.loads(cli.out("schema", "show", "items-value", "--json"))["schemaType"] == \
        "PROTOBUF"
    p = cli.run("produce", "items", "--schema", "items-value", input=b'{"sku": "a"}\n',
                check=False)
    assert p.returncode == 2 and b"Protobuf" in p.stderr, p.stderr
    # The wire format as a Kafka client's serializer writes it: header, message index [0]
    # (one 0 byte), then the message: sku = "a", qty = 3.
    value = b"\0" + struct.pack(">i", sid) + b"\0" + b"\x0a\x01a\x10\x03"
    body = json.dumps([{"value_b64": base64.b64encode(value).decode()}]).encode()
    req = urllib.request.Request(f"{base}/v1/topics/items/events", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()
    e = json.loads(cli.out("consume", "items", "--from-beginning", "--format", "json"))
    assert e["value_schema_id"] == sid
    assert base64.b64decode(e.get("value_b64") or "") == value or \
        e.get("value", "").encode() == value


@pytest.fixture
def rb(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True).start()
    yield b
    if b.proc:
        b.stop()


def test_kafka_client_reads_the_wire_format(rb, tmp_path):
    cli = Cli(rb.data, server=f"http://127.0.0.1:{rb.http_port}")
    cli.out("topic", "create", "payments")
    sid = registered_id(cli.out("schema", "register", "payments-value",
                                write(tmp_path, "p.avsc", PAYMENT)))
    lines = "".join(json.dumps(p) + "\n" for p in PAYMENTS)
    cli.out("produce", "payments", "--schema", "payments-value", input=lines.encode())
    # The registry's own answer for the ID, as a Kafka client's deserializer would ask it.
    url = f"http://127.0.0.1:{rb.http_port}/registry/schemas/ids/{sid}"
    with urllib.request.urlopen(url, timeout=10) as r:
        assert json.loads(json.loads(r.read())["schema"])["name"] == "Payment"
    c = Consumer({"bootstrap.servers": rb.bootstrap, "group.id": "schema-check",
                  "enable.auto.commit": False})
    try:
        c.assign([TopicPartition("payments", 0, 0)])
        got = []
        for _ in range(100):
            if len(got) == len(PAYMENTS):
                break
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append(m.value())
        assert len(got) == len(PAYMENTS)
    finally:
        c.close()
    for value, want in zip(got, PAYMENTS):
        assert value[0] == 0 and struct.unpack(">i", value[1:5])[0] == sid
        assert decode_payment(value[5:]) == want


def test_remote_consume_of_values_with_nul_bytes(rb):
    """A value holding NUL bytes (the wire format's header has some) comes as a JSON string
    with \\u0000 from the HTTP API: the command reads it (it used to refuse the page as not
    JSON)."""
    base = f"http://127.0.0.1:{rb.http_port}"
    cli = Cli(rb.data, server=base)
    cli.out("topic", "create", "raw")
    value = b"\0\0\0\0\x07{\"a\":1}"
    body = json.dumps([{"value_b64": base64.b64encode(value).decode()}]).encode()
    req = urllib.request.Request(f"{base}/v1/topics/raw/events", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()
    out = cli.out("consume", "raw", "--from-beginning", "--format", "json")
    assert json.loads(out)["value"].encode() == value
    assert cli.run("consume", "raw", "--from-beginning").stdout == value + b"\n"
