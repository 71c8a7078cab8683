"""Redis keys as streams (issue 23, item 1; docs/redis.md#keys-and-topics): any key a Redis client
sends is a stream, held by the topic td_key_to_name makes of it. The key commands (KEYS, SCAN,
TYPE, EXISTS, DEL, UNLINK) against a real redis-server with odd keys (binary, spaces, NUL,
0xFF, UTF-8, the empty key, '.', '..', '%'); the partition-key rule; ACL key patterns; and the
same streams through Kafka (confluent-kafka, kcat), HTTP (urllib, curl, SSE) and redis-cli."""
import json
import os
import subprocess
import urllib.parse
import urllib.request

import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from redis_peer import Conn, pair, peer  # noqa: F401 (fixtures)
from test_http import call
from test_kafka_clients import kcat
from test_kafka_node import NODE_DIR
from test_redis import client, rb  # noqa: F401 (rb is the broker fixture)

# Keys Redis users write, and keys only a binary-safe protocol can: each with its topic name.
KEYS = [
    (b"user:1:events", "user:1:events"),
    (b"{tenant}:stream", "{tenant}:stream"),
    (b"orders:eu", "orders:eu"),
    (b"a|b@c", "a|b@c"),
    (b"my key", "my%20key"),
    (b"a/b", "a%2Fb"),
    (b"", "%"),
    (b"\x00", "%00"),
    (b"\xff", "%FF"),
    (b"caf\xc3\xa9", "caf%C3%A9"),
    (b".", "%2E"),
    (b"..", "%2E%2E"),
    (b"%", "%25"),
    (b"%41", "%2541"),
    (b"a,b\"c\\d*#", "a%2Cb%22c%5Cd%2A%23"),
    (b"tab\there\r\n", "tab%09here%0D%0A"),
]


def keys_of(conn, *args):
    """A KEYS or SCAN-style reply's keys as a sorted list (raw RESP2 array of bulk strings)."""
    reply = conn(*args)
    out, rest = [], reply
    head, _, rest = rest.partition(b"\r\n")
    assert head.startswith(b"*"), reply
    for _ in range(int(head[1:])):
        line, _, rest = rest.partition(b"\r\n")
        n = int(line[1:])
        out.append(rest[:n])
        rest = rest[n + 2:]
    return sorted(out)


def fill(pair):
    for i, (k, _) in enumerate(KEYS):
        pair.same("XADD", k, f"{i + 1}-1", "f", "v")


def test_odd_keys_as_redis(pair):
    """XADD, XLEN, XRANGE, TYPE, EXISTS, KEYS, SCAN, DEL and UNLINK with every odd key give what
    redis-server gives, byte for byte (KEYS and SCAN compared as sets: Redis's order is its hash
    table's)."""
    ours, theirs = pair
    fill(pair)
    for i, (k, _) in enumerate(KEYS):
        pair.same("XLEN", k)
        pair.same("XRANGE", k, "-", "+")
        pair.same("TYPE", k)
        pair.same("EXISTS", k)
        pair.same("XADD", k, f"{i + 1}-2", "g", "w")
        pair.same("XREVRANGE", k, "+", "-", "COUNT", "1")
    pair.same("EXISTS", *[k for k, _ in KEYS], b"missing", b"user:1")
    # Replies that name keys name them as sent: XREAD's, in RESP2 and RESP3.
    keys = [k for k, _ in KEYS]
    pair.same("XREAD", "COUNT", "1", "STREAMS", *keys, *["0"] * len(keys))
    pair.both("HELLO", "3")  # (the server's version and the client id differ)
    pair.same("XREAD", "STREAMS", *keys, *["1-1"] * len(keys))
    pair.both("HELLO", "2")
    for pattern in (b"*", b"user:*", b"*:*", b"*key*", b"\\**", b"?", b"", b"\x00", b"[.%]*",
                    b"caf*", b"*\xff*", b"a[/|]b*"):
        assert keys_of(ours, "KEYS", pattern) == keys_of(theirs, "KEYS", pattern), pattern
    pair.same("DBSIZE")
    # SCAN over everything, then with MATCH: the same keys once each.
    for match in (None, b"*:*"):
        got = {}
        for side, conn in (("ours", ours), ("theirs", theirs)):
            seen, cursor = [], b"0"
            for _ in range(100):
                args = ["SCAN", cursor, "COUNT", "3"] + (["MATCH", match] if match else [])
                reply = conn(*args)
                parts = reply.split(b"\r\n")
                cursor = parts[2]
                body = b"\r\n".join(parts[3:])
                seen += keys_of(lambda *a: body)
                if cursor == b"0":
                    break
            got[side] = sorted(seen)
        assert got["ours"] == got["theirs"], match
    pair.same("DEL", b"", b"\x00", b"missing", b"\x00")
    pair.same("UNLINK", b"my key", b".", b"..")
    for k, _ in KEYS:
        pair.same("TYPE", k)
        pair.same("EXISTS", k)
    pair.same("DBSIZE")


def test_redis_py_binary_keys(pair):
    """redis-py with binary keys: the same answers from tidings and redis-server, including
    scan_iter over every key and the keys of XREAD."""
    ours = redis.Redis(host="127.0.0.1", port=pair.broker.redis_port, socket_timeout=10)
    theirs = redis.Redis(host="127.0.0.1", port=pair.peer_port, socket_timeout=10)
    keys = [b"", b"\x00", b"\xff\xfe", "caf\u00e9".encode(), b"sp ace", b"a/b/0", b"%2F"]
    for r in (ours, theirs):
        for i, k in enumerate(keys):
            assert r.xadd(k, {"n": str(i)}, id=f"{i + 1}-0") == f"{i + 1}-0".encode()
    for k in keys:
        assert ours.xrange(k) == theirs.xrange(k)
        assert ours.type(k) == theirs.type(k) == b"stream"
    assert sorted(ours.scan_iter(count=2)) == sorted(theirs.scan_iter(count=2)) == sorted(keys)
    assert sorted(ours.keys()) == sorted(theirs.keys())
    assert ours.xread({k: "0" for k in keys}) == theirs.xread({k: "0" for k in keys})
    assert ours.delete(*keys) == theirs.delete(*keys) == len(keys)
    assert ours.keys() == theirs.keys() == []


def test_key_length_limit(rb):
    """A key's topic name holds at most 249 bytes (Kafka's limit, and the partition directories'
    names): 249 plain bytes or 83 escaped ones are streams, one more is a clear error."""
    r = client(rb)
    assert r.xadd("k" * 249, {"f": "v"}) and r.xlen("k" * 249) == 1
    assert r.xadd(b" " * 83, {"f": "v"}) and r.xlen(b" " * 83) == 1
    for key in ("k" * 250, b" " * 84, b"\xff" * 1000):
        with pytest.raises(redis.ResponseError) as e:
            r.xadd(key, {"f": "v"})
        assert "invalid stream key" in str(e.value) and "at most 249" in str(e.value)
        assert r.exists(key) == 0 and r.type(key) == b"none" and r.delete(key) == 0
    assert sorted(r.keys()) == sorted([b"k" * 249, b" " * 83])


def test_partition_keys(rb):
    """T/N is partition N of T only while no topic holds the key T/N and T has partition N;
    otherwise it is a stream of its own (topic T%2FN)."""
    r = client(rb)
    st, _, _ = call(rb, "POST", "/v1/topics", {"name": "multi", "partitions": 3})
    assert st == 201
    id0 = r.xadd("multi/1", {"p": "1"})
    assert r.xrange("multi/1") == [(id0, {b"p": b"1"})]
    st, _, body = call(rb, "GET", "/v1/topics/multi")
    assert [p["high_watermark"] for p in body["partitions"]] == [0, 1, 0]
    # Not a partition: a decimal with a leading zero, a partition T does not have, a T that is
    # not a topic.
    for key in ("multi/01", "multi/3", "nosuch/0", "multi/-1", "multi/1/"):
        r.xadd(key, {"own": "1"})
        assert r.xlen(key) == 1, key
    names = [t["name"] for t in call(rb, "GET", "/v1/topics")[2]["topics"]]
    for n in ("multi%2F01", "multi%2F3", "nosuch%2F0", "multi%2F-1", "multi%2F1%2F"):
        assert n in names
    assert "nosuch" not in names
    # A topic that holds the key itself wins over the partition.
    st, _, _ = call(rb, "POST", "/v1/topics", {"name": "multi%2F1", "partitions": 1})
    assert st == 201
    assert r.xlen("multi/1") == 0
    r.xadd("multi/1", {"now": "own"})
    st, _, body = call(rb, "GET", "/v1/topics/multi")
    assert [p["high_watermark"] for p in body["partitions"]] == [0, 1, 0]
    assert r.delete("multi/1") == 1  # the topic multi%2F1, not a partition
    assert r.xlen("multi/1") == 1  # partition 1 of multi again
    assert r.delete("multi/1") == 0  # a partition is never deleted alone
    with pytest.raises(redis.ResponseError) as e:
        r.xlen("multi")
    assert "has 3 partitions" in str(e.value)
    # The KEYS of it all: keys, never topic names.
    assert sorted(r.keys("multi*")) == sorted(
        [b"multi", b"multi/01", b"multi/3", b"multi/-1", b"multi/1/"])


def test_kafka_clients_see_redis_keys(rb):
    """A Redis key with ':' is a Kafka topic of that very name: created by CreateTopics
    (confluent-kafka's AdminClient), described by Metadata, produced to by librdkafka and read by
    kcat and by XRANGE; and a key with a space is the topic my%20key for Kafka clients."""
    r = client(rb)
    admin = AdminClient({"bootstrap.servers": rb.bootstrap})
    fs = admin.create_topics([NewTopic("orders:eu", num_partitions=1, replication_factor=1)])
    fs["orders:eu"].result(timeout=30)
    md = admin.list_topics(timeout=30)
    assert "orders:eu" in md.topics and md.topics["orders:eu"].error is None
    p = Producer({"bootstrap.servers": rb.bootstrap})
    for i in range(3):
        p.produce("orders:eu", key=b"k", value=f"v{i}".encode())
    assert p.flush(30) == 0
    entries = r.xrange("orders:eu")
    assert [f[b"value"] for _, f in entries] == [b"v0", b"v1", b"v2"]
    assert r.type("orders:eu") == b"stream"
    kcat(rb, "-P", "-t", "orders:eu", "-k", "k2", input=b"v3")
    assert r.xlen("orders:eu") == 4 and r.xrange("orders:eu")[-1][1][b"value"] == b"v3"
    # Redis first, Kafka after.
    r.xadd("user:1:events", {"value": "hello"})
    r.xadd(b"my key", {"value": "spaced"})
    out = kcat(rb, "-C", "-t", "user:1:events", "-o", "beginning", "-e", "-f", "%t %s\\n")
    assert out == 'user:1:events {"value":"hello"}\n'
    out = kcat(rb, "-C", "-t", "my%20key", "-o", "beginning", "-e", "-f", "%t %s\\n")
    assert out == 'my%20key {"value":"spaced"}\n'
    kcat(rb, "-L", "-t", "user:1:events")  # Metadata of one topic by name
    c = Consumer({"bootstrap.servers": rb.bootstrap, "group.id": "g:1", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.subscribe(["user:1:events"])
    got = None
    for _ in range(60):
        m = c.poll(1)
        if m is not None and not m.error():
            got = m
            break
    c.close()
    assert got is not None and got.topic() == "user:1:events" and got.value() == b'{"value":"hello"}'
    # A name Kafka clients send that is not canonical is refused as Kafka refuses bad names.
    fs = admin.create_topics([NewTopic("my key", num_partitions=1, replication_factor=1)])
    with pytest.raises(Exception) as e:
        fs["my key"].result(timeout=30)
    assert "INVALID_TOPIC" in str(e.value).upper().replace(" ", "_")


@pytest.mark.parametrize("node_client", ["kafkajs", "platformatic"])
def test_node_clients_take_redis_keys(rb, node_client):
    """kafkajs and @platformatic/kafka create, produce to and read back a topic named like a
    Redis key (tests/node/roundtrip.mjs), which XLEN then counts (kafkajs's run deletes the
    records below offset 5 at its end)."""
    topic = f"node:{node_client}:{{t}}"
    env = dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1")
    p = subprocess.run(["node", "roundtrip.mjs", node_client, rb.bootstrap, topic, "1", "20"],
                       cwd=NODE_DIR, capture_output=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr.decode()[-4000:]
    out = json.loads(p.stdout)
    assert out["produced"] == 20 and len(out["consumed"]) == 20
    assert client(rb).xlen(topic) == (15 if node_client == "kafkajs" else 20)


def test_http_sees_redis_keys(rb):
    """HTTP addresses topics by name, URL-encoded as usual: /v1/topics/user:1:events, and the
    key "my key" (topic my%20key) as /v1/topics/my%2520key; JSON, the list, the events and SSE
    carry the names as they are, and the SSE cursor resumes with names holding ':' and ';'."""
    r = client(rb)
    r.xadd("user:1:events", {"value": "a"})
    r.xadd(b"my key", {"value": "b"})
    r.xadd("semi;colon:x=1", {"value": "c"})
    st, _, body = call(rb, "GET", "/v1/topics/user:1:events")
    assert st == 200 and body["name"] == "user:1:events"
    enc = urllib.parse.quote("my%20key", safe="")
    assert enc == "my%2520key"
    st, _, body = call(rb, "GET", f"/v1/topics/{enc}")
    assert st == 200 and body["name"] == "my%20key"
    st, _, body = call(rb, "GET", f"/v1/topics/{enc}/events")
    assert st == 200 and [e["value"] for e in body["events"]] == [{"value": "b"}]
    # Not URL-encoded again, the name is read as the key "my key" would be by a URL: no topic.
    assert call(rb, "GET", "/v1/topics/my%20key")[0] == 404
    names = [t["name"] for t in call(rb, "GET", "/v1/topics")[2]["topics"]]
    assert {"user:1:events", "my%20key", "semi;colon:x=1"} <= set(names)
    # The metrics' labels carry the names as they are (no character of a name needs escaping
    # in a label: '"' and '\\' are written %22 and %5C).
    with urllib.request.urlopen(f"http://127.0.0.1:{rb.http_port}/metrics", timeout=10) as m:
        text = m.read().decode()
    for n in ("user:1:events", "my%20key", "semi;colon:x=1"):
        assert f'tidings_topic_events_in_total{{topic="{n}"}} 1' in text, n
    # curl, as a shell user types it.
    out = subprocess.run(["curl", "-sS", f"http://127.0.0.1:{rb.http_port}/v1/topics/user:1:events"],
                         capture_output=True, timeout=30, check=True).stdout
    assert json.loads(out)["name"] == "user:1:events"
    # Produce over HTTP to a name with ':' and '{', read over Redis.
    st, _, _ = call(rb, "POST", "/v1/topics", {"name": "{t}:s", "partitions": 1})
    assert st == 201
    st, _, _ = call(rb, "POST", "/v1/topics/" + urllib.parse.quote("{t}:s", safe="") + "/events",
                    {"value": "x"})
    assert st == 200 and r.xlen("{t}:s") == 1
    # SSE over urllib: the cursor names topics with ':' and ';', and resumes.
    url = (f"http://127.0.0.1:{rb.http_port}/v1/subscribe?from=earliest&topics="
           + urllib.parse.quote("semi;colon:x=1,user:1:events", safe=""))
    ids = []
    with urllib.request.urlopen(url, timeout=10) as resp:
        for line in resp:
            if line.startswith(b"id: "):
                ids.append(line[4:].strip().decode())
            if line.startswith(b"data: ") and len(ids) >= 3:
                break
    last = ids[-1]
    assert "semi%3Bcolon:x=1:0=1" in last and "user:1:events:0=1" in last
    r.xadd("user:1:events", {"value": "later"})
    req = urllib.request.Request(url, headers={"Last-Event-ID": last})
    with urllib.request.urlopen(req, timeout=10) as resp:
        for line in resp:
            if line.startswith(b"data: "):
                ev = json.loads(line[6:])
                if ev.get("topic"):
                    break
    assert ev["topic"] == "user:1:events" and ev["offset"] == 1


def test_redis_cli_binary_keys(rb):
    """redis-cli sends keys with spaces, \\x00 and \\xff (its quoted-string escapes) and reads
    them back from KEYS."""
    script = ('XADD "a b" 1-1 f v\nXADD "\\x00\\xff" 1-1 f v\nXADD "" 1-1 f v\n'
              'XLEN "\\x00\\xff"\nTYPE ""\n')
    p = subprocess.run(["redis-cli", "-p", str(rb.redis_port)], input=script.encode(),
                       capture_output=True, timeout=30, check=True)
    assert p.stdout.split(b"\n")[:5] == [b"1-1", b"1-1", b"1-1", b"1", b"stream"]
    p = subprocess.run(["redis-cli", "--no-raw", "-p", str(rb.redis_port), "KEYS", "*"],
                       capture_output=True, timeout=30, check=True)
    keys = sorted(line.split(") ", 1)[1] for line in p.stdout.decode().splitlines())
    assert keys == sorted(['"a b"', '"\\x00\\xff"', '""'])


def test_acl_key_patterns(rb):
    """ACL SETUSER's key patterns are on keys: ~user* lets a user write user:1:events and
    "user 2" but not orders:eu; GETUSER shows the patterns as they were given."""
    r = client(rb)
    r.execute_command("ACL", "SETUSER", "app", "on", ">pw", "~user*", "~caf\u00e9", "+@all")
    u = client(rb, username="app", password="pw")
    assert u.xadd("user:1:events", {"a": "1"}) and u.xadd(b"user 2", {"a": "1"})
    assert u.xadd("caf\u00e9", {"a": "1"})
    for bad in ("orders:eu", "caf\u00e9s", "cafe"):
        with pytest.raises(redis.exceptions.NoPermissionError):
            u.xadd(bad, {"a": "1"})
    info = r.execute_command("ACL", "GETUSER", "app")
    # (tidings lists the patterns in the order of its ACLs, sorted by name.)
    assert info[info.index(b"keys") + 1] == "~caf\u00e9 ~user*".encode()


def test_acl_patterns_as_redis(pair):
    """Key and channel patterns with odd bytes as Redis 7.0 takes and shows them: a space or NUL
    is a syntax error, an escaped glob character, UTF-8 and the empty pattern are kept."""
    for rule in (b"~my key", b"%R~a\x00b", b"&ch an*", b"~a\\ b", b"~tab\t"):
        pair.same("ACL", "SETUSER", "u", rule)
    for rule in (b"~a\\*b", "~caf\u00e9*".encode(), b"~", b"~{t}:s", b"%R~a/b:*"):
        pair.same("ACL", "SETUSER", "u", "reset", "on", ">pw", rule, "+@all")
        ours, theirs = pair.both("ACL", "GETUSER", "u")
        field = lambda reply: reply.split(b"$4\r\nkeys\r\n")[1].split(b"\r\n")[1]  # noqa
        assert field(ours) == field(theirs) == rule


def test_acl_channel_patterns(rb):
    """Channels are checked as the topic names of their names, like keys, and may be longer
    than a topic name: a user with &news.* publishes to a 300-byte channel under news. and to
    "news.a b", not to "sport"."""
    r = client(rb)
    r.execute_command("ACL", "SETUSER", "pub", "on", ">pw", "&news.*", "+@all")
    u = client(rb, username="pub", password="pw")
    assert u.publish("news." + "x" * 300, "m") == 0
    assert u.publish(b"news.a b", "m") == 0 and u.publish(b"news.\x00\xff", "m") == 0
    for bad in (b"sport", b"news", b"x" * 300):
        with pytest.raises(redis.exceptions.NoPermissionError):
            u.publish(bad, "m")


def test_notifications_name_keys_of_other_protocols(rb):
    """A keyspace notification of a change made through Kafka or HTTP names the Redis key of
    the topic (decoded), as an XADD to that key would."""
    r = client(rb)
    assert r.config_set("notify-keyspace-events", "KEA")
    sub = client(rb).pubsub()
    sub.psubscribe("__key*__:*")
    assert sub.get_message(timeout=5)["type"] == "psubscribe"
    r.xadd(b"my key\xff", {"a": "1"})  # creates the topic my%20key%FF
    st, _, _ = call(rb, "POST", "/v1/topics/" + urllib.parse.quote("my%20key%FF", safe="")
                    + "/events", {"value": "from-http"}, headers={"Host": "localhost"})
    assert st in (200, 201), st
    kcat(rb, "-P", "-t", "user:1:events", input=b"from-kafka\n")
    seen = []
    for _ in range(200):
        m = sub.get_message(timeout=5)
        if m is None:
            break
        if m["type"] == "pmessage":
            seen.append((m["channel"], m["data"]))
        if seen.count((b"__keyspace@0__:my key\xff", b"xadd")) == 2 and \
                (b"__keyspace@0__:user:1:events", b"xadd") in seen:
            break
    assert seen.count((b"__keyspace@0__:my key\xff", b"xadd")) == 2, seen
    assert (b"__keyevent@0__:xadd", b"my key\xff") in seen, seen
    assert (b"__keyspace@0__:user:1:events", b"xadd") in seen, seen
    assert not any(b"%20" in ch or b"%20" in data for ch, data in seen), seen
    sub.close()
