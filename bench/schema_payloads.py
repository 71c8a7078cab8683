"""bench/schema.sh's events: registers a 20-field Avro schema and the JSON Schema of the same
record with tidings' registry, and writes COUNT different events of each, in Confluent's wire
format (magic byte 0, the schema id, the payload), each SIZE bytes long with its header, to
OUT/avro.bin and OUT/json.bin (each event: a 4-byte big-endian length, then the bytes; the
format bench_kafka's producefile reads).

    schema_payloads.py REGISTRY_URL OUT_DIR SUBJECT_PREFIX... [--count N] [--size BYTES]

Each schema is registered under <prefix>-avro-value (Avro) and <prefix>-json-value (JSON) for
every SUBJECT_PREFIX given: the same schema gets the same id under every subject. The Avro
binary encoding is written here (Debian packages no Avro library for Python 3's fastavro); the
registry's own decoder is what checks it, in the run (mode=full refuses what does not decode).
"""
import json
import random
import struct
import sys
import urllib.request

FIELDS = [  # name, Avro type, JSON Schema
    ("event_id", "string", {"type": "string", "pattern": "^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$"}),
    ("ts", {"type": "long", "logicalType": "timestamp-millis"}, {"type": "integer", "minimum": 0}),
    ("user_id", "long", {"type": "integer", "minimum": 1}),
    ("session", "string", {"type": "string", "pattern": "^[0-9a-f]{32}$"}),
    ("country", "string", {"type": "string", "pattern": "^[A-Z]{2}$"}),
    ("city", "string", {"type": "string", "minLength": 1, "maxLength": 64}),
    ("device", {"type": "enum", "name": "Device", "symbols": ["DESKTOP", "MOBILE", "TABLET"]},
     {"enum": ["DESKTOP", "MOBILE", "TABLET"]}),
    ("os", "string", {"type": "string", "maxLength": 32}),
    ("app_version", "string", {"type": "string", "pattern": "^[0-9]+\\.[0-9]+\\.[0-9]+$"}),
    ("amount", "double", {"type": "number", "minimum": 0}),
    ("currency", "string", {"type": "string", "enum": ["EUR", "USD", "GBP", "JPY"]}),
    ("quantity", "int", {"type": "integer", "minimum": 1, "maximum": 1000}),
    ("premium", "boolean", {"type": "boolean"}),
    ("tags", {"type": "array", "items": "string"},
     {"type": "array", "items": {"type": "string", "maxLength": 16}, "maxItems": 8}),
    ("score", "float", {"type": "number", "minimum": 0, "maximum": 1}),
    ("referrer", ["null", "string"], {"type": ["string", "null"]}),
    ("path", "string", {"type": "string", "pattern": "^/"}),
    ("user_agent", "string", {"type": "string", "maxLength": 512}),
    ("attributes", {"type": "map", "values": "string"},
     {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 8}),
    ("note", "string", {"type": "string", "maxLength": 1024}),
]

AVRO = {"type": "record", "name": "PageEvent", "namespace": "tidings.bench",
        "fields": [{"name": n, "type": t} for n, t, _ in FIELDS]}
JSON_SCHEMA = {"$schema": "http://json-schema.org/draft-07/schema#", "title": "PageEvent",
               "type": "object", "properties": {n: j for n, _, j in FIELDS},
               "required": [n for n, _, _ in FIELDS if n != "referrer"],
               "additionalProperties": False}


def register(url, subject, schema_type, schema):
    body = {"schema": json.dumps(schema)}
    if schema_type != "AVRO":
        body["schemaType"] = schema_type
    req = urllib.request.Request(f"{url}/subjects/{subject}/versions",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["id"]


def zigzag(n):
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def avro_string(s):
    b = s.encode()
    return zigzag(len(b)) + b


def avro_encode(e):
    out = bytearray()
    out += avro_string(e["event_id"]) + zigzag(e["ts"]) + zigzag(e["user_id"])
    out += avro_string(e["session"]) + avro_string(e["country"]) + avro_string(e["city"])
    out += zigzag(["DESKTOP", "MOBILE", "TABLET"].index(e["device"]))
    out += avro_string(e["os"]) + avro_string(e["app_version"])
    out += struct.pack("<d", e["amount"]) + avro_string(e["currency"]) + zigzag(e["quantity"])
    out += b"\1" if e["premium"] else b"\0"
    if e["tags"]:
        out += zigzag(len(e["tags"])) + b"".join(avro_string(t) for t in e["tags"])
    out += zigzag(0)
    out += struct.pack("<f", e["score"])
    out += zigzag(0) if e["referrer"] is None else zigzag(1) + avro_string(e["referrer"])
    out += avro_string(e["path"]) + avro_string(e["user_agent"])
    if e["attributes"]:
        out += zigzag(len(e["attributes"]))
        for k, v in e["attributes"].items():
            out += avro_string(k) + avro_string(v)
    out += zigzag(0)
    out += avro_string(e["note"])
    return bytes(out)


def event(rng):
    hexs = lambda n: "".join(rng.choice("0123456789abcdef") for _ in range(n))  # noqa: E731
    return {
        "event_id": f"{hexs(8)}-{hexs(4)}-{hexs(4)}-{hexs(4)}-{hexs(12)}",
        "ts": 1796000000000 + rng.randrange(10**9),
        "user_id": rng.randrange(1, 10**9),
        "session": hexs(32),
        "country": rng.choice(["FR", "DE", "US", "JP", "BR"]),
        "city": rng.choice(["Paris", "Berlin", "New York", "Osaka", "Recife"]),
        "device": rng.choice(["DESKTOP", "MOBILE", "TABLET"]),
        "os": rng.choice(["Linux", "Android 14", "iOS 17.4", "Windows 11"]),
        "app_version": f"{rng.randrange(10)}.{rng.randrange(40)}.{rng.randrange(100)}",
        "amount": round(rng.uniform(0, 500), 2),
        "currency": rng.choice(["EUR", "USD", "GBP", "JPY"]),
        "quantity": rng.randrange(1, 20),
        "premium": rng.random() < 0.3,
        "tags": [rng.choice(["new", "sale", "promo", "mobile", "ab-test"])
                 for _ in range(rng.randrange(4))],
        "score": struct.unpack("<f", struct.pack("<f", rng.random()))[0],
        "referrer": None if rng.random() < 0.5 else "https://example.org/" + hexs(12),
        "path": "/catalog/" + hexs(10) + "/item/" + hexs(6),
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                      "Chrome/124.0.0.0 Safari/537.36",
        "attributes": {f"k{i}": hexs(8) for i in range(rng.randrange(1, 5))},
        "note": "",
    }


def sized(e, encode, size):
    """Pads the note so that the encoded event, with its 5-byte header, is size bytes."""
    for _ in range(4):  # the note's length prefix can grow by a byte: converge
        short = size - 5 - len(encode(e))
        if short == 0:
            return encode(e)
        if short < 0 and not e["note"]:
            raise SystemExit(f"an event is over {size} bytes without its note")
        e["note"] = "n" * max(0, len(e["note"]) + short)
    raise SystemExit("could not size an event")


def main():
    args = sys.argv[1:]
    count, size = 64, 1024
    if "--count" in args:
        i = args.index("--count")
        count = int(args[i + 1])
        del args[i:i + 2]
    if "--size" in args:
        i = args.index("--size")
        size = int(args[i + 1])
        del args[i:i + 2]
    url, out, prefixes = args[0].rstrip("/"), args[1], args[2:]
    ids = {}
    for p in prefixes:
        ids["avro"] = register(url, f"{p}-avro-value", "AVRO", AVRO)
        ids["json"] = register(url, f"{p}-json-value", "JSON", JSON_SCHEMA)
    rng = random.Random(24)
    encoders = {"avro": avro_encode,
                "json": lambda e: json.dumps(e, separators=(",", ":")).encode()}
    for kind, enc in encoders.items():
        with open(f"{out}/{kind}.bin", "wb") as f:
            for _ in range(count):
                body = sized(event(rng), enc, size)
                wire = b"\0" + ids[kind].to_bytes(4, "big") + body
                f.write(len(wire).to_bytes(4, "big") + wire)
    print(f"schemas: avro id {ids['avro']}, json id {ids['json']}; "
          f"{count} events of {size} bytes each")


if __name__ == "__main__":
    main()
