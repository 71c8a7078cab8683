"""Redis Streams on topics with redis-py, redis-cli, kcat and HTTP: XADD's ID forms and trimming,
XRANGE/XREVRANGE, XREAD with BLOCK woken from another connection, from a Kafka producer and from
HTTP, XTRIM, XSETID, Redis's error texts, exact field round trips, and one event seen through
every protocol (docs/redis.md#streams)."""
import json
import subprocess
import threading
import time

import pytest
import redis

from conftest import Broker
from test_http import call
from test_kafka_clients import kcat
from test_redis import Raw, client, rb  # noqa: F401 (rb is the broker fixture)


def raw_cmd(b, *args):
    """A command's reply as the protocol has it (no redis-py reply callback)."""
    c = redis.Connection(host="127.0.0.1", port=b.redis_port, socket_timeout=10)
    try:
        c.send_command(*args)
        return c.read_response()
    finally:
        c.disconnect()


def err(fn, *args):
    with pytest.raises(redis.ResponseError) as e:
        fn(*args)
    return str(e.value)


def parse_id(i):
    ms, seq = i.split(b"-")
    return int(ms), int(seq)


def test_xadd_ids_and_errors(rb):
    r = client(rb)
    # A missing stream is created by XADD (a topic of one partition), not with NOMKSTREAM.
    assert r.execute_command("XADD", "nope", "NOMKSTREAM", "*", "a", "1") is None
    assert r.exists("nope") == 0
    before = int(time.time() * 1000)
    a = r.xadd("s", {"a": "1"})
    ms, seq = parse_id(a)
    assert before - 1000 <= ms <= int(time.time() * 1000) + 1000
    # Explicit IDs are kept exactly; IDs must grow.
    assert r.xadd("e", {"f": "v"}, id="1-1") == b"1-1"
    assert r.xadd("e", {"f": "v"}, id="1-5") == b"1-5"
    assert r.xadd("e", {"f": "v"}, id="1-*") == b"1-6"
    assert r.xadd("e", {"f": "v"}, id="7") == b"7-0"
    assert "equal or smaller than the target stream top item" in err(
        r.xadd, "e", {"f": "v"}, "7-0")
    assert "equal or smaller" in err(r.xadd, "e", {"f": "v"}, "6-*")
    assert "must be greater than 0-0" in err(r.xadd, "z", {"f": "v"}, "0-0")
    assert "Invalid stream ID" in err(r.xadd, "e", {"f": "v"}, "1-x")
    assert "Invalid stream ID" in err(r.xadd, "e", {"f": "v"}, "-1")
    assert "wrong number of arguments for 'xadd'" in err(
        r.execute_command, "XADD", "e", "*", "f", "v", "g")
    assert "The MAXLEN argument must be >= 0" in err(
        r.execute_command, "XADD", "e", "MAXLEN", "-1", "*", "f", "v")
    assert "LIMIT cannot be used without the special ~ option" in err(
        r.execute_command, "XADD", "e", "MAXLEN", "1", "LIMIT", "5", "*", "f", "v")
    # An auto ID after explicit ones continues after the largest.
    nxt = parse_id(r.xadd("e", {"f": "v"}))
    assert nxt > (7, 0)
    assert [parse_id(i) for i, _ in r.xrange("e")] == [(1, 1), (1, 5), (1, 6), (7, 0), nxt]
    assert r.xlen("e") == 5 and r.xlen("missing") == 0
    assert r.type("e") == b"stream"
    # A key whose topic name would pass 249 bytes is refused with a clear error; the connection
    # goes on (any shorter key is a stream: test_redis_keys.py).
    assert "invalid stream key" in err(r.xadd, "k" * 250, {"f": "v"})
    assert r.ping()


def test_fields_round_trip_exactly(rb):
    r = client(rb)
    cases = [
        [(b"name", "caf\u00e9 \"quoted\"\n".encode()), (b"n", b"")],
        [(b"a", b"1"), (b"a", b"2"), (b"b", b"3")],  # repeated names
        [(b"bin", bytes(range(256))), (b"\xff\x00", b"x")],  # not UTF-8
    ]
    for fields in cases:
        args = [x for kv in fields for x in kv]
        i = r.execute_command("XADD", "rt", "*", *args)
        got = raw_cmd(rb, "XRANGE", "rt", i, i)
        assert got[0][0] == i
        assert got[0][1] == args, fields


def test_xrange_xrevrange_and_count(rb):
    r = client(rb)
    ids = [r.xadd("s", {"n": str(n)}, id=f"{10 + n}-{n}") for n in range(10)]
    assert [i for i, _ in r.xrange("s")] == ids
    assert [i for i, _ in r.xrange("s", "12", "14")] == ids[2:5]
    assert [i for i, _ in r.xrange("s", "(12-2", "(14-4")] == ids[3:4]
    assert [i for i, _ in r.xrange("s", "-", "+", count=3)] == ids[:3]
    # COUNT 0 of a stream is a null array, as in Redis 7.0 (an empty one for a missing key).
    assert r.execute_command("XRANGE", "s", "-", "+", "COUNT", "0") is None
    assert r.execute_command("XRANGE", "missing", "-", "+", "COUNT", "0") == []
    assert [i for i, _ in r.xrevrange("s")] == ids[::-1]
    assert [i for i, _ in r.xrevrange("s", "+", "-", count=2)] == ids[:-3:-1]
    assert [i for i, _ in r.xrevrange("s", "15", "12")] == ids[2:6][::-1]
    assert r.xrange("s", "99", "+") == [] and r.xrange("missing") == []
    assert r.xrevrange("s", "1", "5") == []
    assert "Invalid stream ID" in err(r.xrange, "s", "x", "+")
    assert "invalid end ID for the interval" in err(r.xrange, "s", "-", "(0-0")
    # COUNT paging with the exclusive form, as clients page through a stream.
    seen, last = [], "-"
    while True:
        page = r.xrange("s", last if last == "-" else "(" + last.decode(), "+", count=4)
        if not page:
            break
        seen += [i for i, _ in page]
        last = page[-1][0]
    assert seen == ids


def test_xtrim_and_xadd_trimming(rb):
    r = client(rb)
    for n in range(20):
        r.xadd("t", {"n": str(n)}, id=f"{n + 1}-0")
    assert r.xtrim("t", maxlen=15, approximate=False) == 5
    assert r.xlen("t") == 15 and r.xrange("t", count=1)[0][0] == b"6-0"
    assert r.xtrim("t", minid="10", approximate=False) == 4
    assert r.xrange("t", count=1)[0][0] == b"10-0"
    # "~" trims only when enough entries would go (Redis trims whole nodes), and LIMIT bounds it.
    assert r.xtrim("t", maxlen=5, approximate=True) == 0
    for n in range(200):
        r.xadd("t", {"n": str(n)})
    # The first node (entries 1-0 to 20-0 and the first 80 of these) goes whole, 91 live
    # entries; the next one (100) would pass the LIMIT: redis-server answers 91 too.
    assert r.execute_command("XTRIM", "t", "MAXLEN", "~", "10", "LIMIT", "150") == 91
    assert r.xlen("t") == 211 - 91
    r.xadd("t", {"last": "1"}, maxlen=3, approximate=False)
    assert r.xlen("t") == 3
    assert r.xrange("t")[-1][1] == {b"last": b"1"}
    # The last ID stays after trimming: new IDs keep growing.
    top = r.xrange("t")[-1][0]
    assert r.xtrim("t", maxlen=0, approximate=False) == 3 and r.xlen("t") == 0
    assert parse_id(r.xadd("t", {"again": "1"})) > parse_id(top)
    assert "syntax error" in err(r.execute_command, "XTRIM", "t", "LEN", "1")


def test_xsetid(rb):
    r = client(rb)
    r.xadd("x", {"a": "1"}, id="5-5")
    assert "smaller than the target stream top item" in err(r.execute_command, "XSETID", "x", "5-4")
    assert r.execute_command("XSETID", "x", "100-7") == b"OK"
    assert r.xadd("x", {"a": "2"}, id="100-*") == b"100-8"
    assert "equal or smaller" in err(r.xadd, "x", {"a": "3"}, "100-8")
    assert "no such key" in err(r.execute_command, "XSETID", "missing", "1-1")


def test_xread_and_block(rb):
    r = client(rb)
    a = r.xadd("s1", {"k": "1"})
    b_ = r.xadd("s2", {"k": "2"})
    got = r.xread({"s1": "0", "s2": "0"})
    assert got == [[b"s1", [(a, {b"k": b"1"})]], [b"s2", [(b_, {b"k": b"2"})]]]
    assert r.xread({"s1": a}) == []
    assert "Unbalanced XREAD list of streams" in err(
        r.execute_command, "XREAD", "STREAMS", "s1", "s2", "0")
    assert "timeout is negative" in err(r.execute_command, "XREAD", "BLOCK", "-1", "STREAMS",
                                        "s1", "$")
    # A timeout answers nil.
    t0 = time.time()
    assert r.xread({"s1": "$"}, block=200) == []
    assert time.time() - t0 >= 0.15
    # BLOCK woken by another connection's XADD, on a key that did not exist yet too.
    for key in ("s1", "fresh"):
        result = {}

        def reader():
            c = client(rb)
            result["v"] = c.xread({key: "$"}, block=10000)

        th = threading.Thread(target=reader)
        th.start()
        deadline = time.time() + 10
        while int(r.info("clients")["blocked_clients"]) < 1:
            assert time.time() < deadline
            time.sleep(0.02)
        new = r.xadd(key, {"woke": key})
        th.join(10)
        assert result["v"] == [[key.encode(), [(new, {b"woke": key.encode()})]]]
    assert int(r.info("clients")["blocked_clients"]) == 0
    # BLOCK 0 waits for as long as it takes; a pipelined command after it waits its turn.
    raw = Raw(rb)
    raw.send(b"*6\r\n$5\r\nXREAD\r\n$5\r\nBLOCK\r\n$1\r\n0\r\n$7\r\nSTREAMS\r\n$2\r\ns2\r\n$1\r\n$\r\n"
             b"*1\r\n$4\r\nPING\r\n")
    time.sleep(0.5)
    assert raw.buf == b""
    r.xadd("s2", {"late": "1"})
    raw.read_until(b"late\r\n$1\r\n1\r\n")
    raw.read_until(b"+PONG\r\n")
    # Inside MULTI, XREAD does not block.
    p = r.pipeline(transaction=True)
    p.xread({"s2": "$"}, block=0)
    assert p.execute() == [[]]


def test_xread_block_woken_by_kafka_and_http(rb):
    r = client(rb)
    r.xadd("cross", {"first": "1"})
    result = {}

    def reader(tag):
        c = client(rb)
        result[tag] = c.xread({"cross": "$"}, block=15000)

    def wait_blocked():
        deadline = time.time() + 10
        while int(r.info("clients")["blocked_clients"]) < 1:
            assert time.time() < deadline
            time.sleep(0.02)

    th = threading.Thread(target=reader, args=("kafka",))
    th.start()
    wait_blocked()
    kcat(rb, "-P", "-t", "cross", "-k", "order-1", "-H", "traceparent=00-abc",
         input=b'{"id": 7, "total": 12.5}')
    th.join(15)
    [[key, [(i, fields)]]] = result["kafka"]
    assert key == b"cross"
    assert fields == {b"key": b"order-1", b"id": b"7", b"total": b"12.5",
                      b"traceparent": b"00-abc"}
    th = threading.Thread(target=reader, args=("http",))
    th.start()
    wait_blocked()
    st, _, _ = call(rb, "POST", "/v1/topics/cross/events", {"value": "plain text"})
    assert st == 200
    th.join(15)
    [[_, [(j, fields)]]] = result["http"]
    # HTTP stores a JSON value as its text: a JSON string keeps its quotes.
    assert fields == {b"value": b'"plain text"'} and parse_id(j) > parse_id(i)


def test_one_event_every_protocol(rb):
    r = client(rb)
    i = r.xadd("orders", {"id": "42", "status": "paid"})
    # Kafka consumers read XADD's fields as a JSON object, its timestamp the ID's ms.
    out = kcat(rb, "-C", "-t", "orders", "-o", "beginning", "-e", "-J")
    rec = json.loads(out.strip().splitlines()[0])
    assert json.loads(rec["payload"]) == {"id": "42", "status": "paid"}
    assert rec["ts"] == parse_id(i)[0] and rec["key"] is None
    # HTTP readers too.
    st, _, body = call(rb, "GET", "/v1/topics/orders/events?partition=0&offset=0")
    assert st == 200
    assert body["events"][0]["value"] == {"id": "42", "status": "paid"}
    # Binary fields reach Kafka as a RESP array with a content-type header saying so.
    r.xadd("orders", {b"raw": b"\xff\xfe"})
    out = subprocess.run(["kcat", "-b", rb.bootstrap, "-C", "-t", "orders", "-o", "1", "-e",
                          "-f", "%h|%s"], capture_output=True, timeout=30).stdout
    assert out.startswith(b"content-type=application/x-redis-fields|*2\r\n$3\r\nraw\r\n$2\r\n")
    # Events produced with kcat appear with key, value and headers as fields.
    kcat(rb, "-P", "-t", "orders", "-k", "k9", "-H", "h1=v1", input=b"not json")
    last = r.xrevrange("orders", count=1)[0][1]
    assert last == {b"key": b"k9", b"value": b"not json", b"h1": b"v1"}


def test_partitions_as_streams(rb):
    r = client(rb)
    st, _, _ = call(rb, "POST", "/v1/topics", {"name": "multi", "partitions": 3})
    assert st in (200, 201)
    assert "has 3 partitions: name one as the stream key multi/<partition>" in err(
        r.xadd, "multi", {"a": "1"})
    ids = [r.xadd(f"multi/{p}", {"p": str(p)}) for p in range(3)]
    for p in range(3):
        assert r.xrange(f"multi/{p}") == [(ids[p], {b"p": str(p).encode()})]
        assert r.xlen(f"multi/{p}") == 1
    # The key commands know partitions too; DEL deletes whole topics only.
    assert r.type("multi/2") == b"stream" and r.type("multi/3") == b"none"
    assert r.exists("multi/0", "multi/3", "multi/x", "multi") == 2
    assert r.delete("multi/1") == 0 and r.xlen("multi/1") == 1
    # A partition the topic does not have: the key is a stream of its own, topic multi%2F3.
    r.xadd("multi/3", {"a": "1"})
    assert r.xlen("multi/3") == 1 and r.type("multi/3") == b"stream"
    assert b"multi/3" in r.keys("multi*") and r.delete("multi/3") == 1
    assert "has 3 partitions" in err(r.xlen, "multi")
    # Kafka's partitioner sends a key to one partition: per key, Redis's order holds.
    for n in range(10):
        kcat(rb, "-P", "-t", "multi", "-k", "same-key", input=str(n).encode())
    values = []
    for p in range(3):
        values += [f[b"value"] for _, f in r.xrange(f"multi/{p}") if f.get(b"key") == b"same-key"]
    assert values == [str(n).encode() for n in range(10)]


def test_ids_and_entries_survive_restart(rb):
    r = client(rb)
    r.xadd("keep", {"a": "1"}, id="3-3")
    r.xadd("keep", {"a": "2"})
    r.execute_command("XSETID", "keep", "999999999999999-9")
    before = r.xrange("keep")
    rb.stop()
    rb.start()
    r = client(rb)
    assert r.xrange("keep") == before
    assert r.xadd("keep", {"a": "3"}) == b"999999999999999-10"


def test_pipelined_xadds_and_redis_cli(rb):
    r = client(rb)
    p = r.pipeline(transaction=False)
    for n in range(10000):
        p.xadd("pipe", {"n": str(n)})
    ids = p.execute()
    assert len(ids) == 10000 and sorted(ids, key=parse_id) == ids
    assert r.xlen("pipe") == 10000
    out = subprocess.run(["redis-cli", "-p", str(rb.redis_port), "XRANGE", "pipe", "-", "+",
                          "COUNT", "1"], capture_output=True, timeout=30, text=True).stdout
    assert out.split() == [ids[0].decode(), "n", "0"]
    # MULTI/EXEC with XADD: one reply array, the entries written.
    t = r.pipeline(transaction=True)
    t.xadd("pipe", {"tx": "1"})
    t.xlen("pipe")
    res = t.execute()
    assert res[1] == 10001


def test_reply_limit(tmp_path):
    """A read of entries whose reply would pass redis.max.reply.bytes is refused with an error
    (the entries are buffered before they are sent); COUNT reads the range in parts, a single
    entry is always served, and the broker goes on."""
    b = Broker(str(tmp_path / "data"), redis=True,
               extra=["--set", "redis.max.reply.bytes=65536"]).start()
    try:
        r = client(b)
        big = "x" * 1000
        ids = [r.xadd("s", {"f": big}) for _ in range(100)]  # about 100 KB of replies
        r.xadd("t", {"f": "y" * 40000})
        r.xadd("u", {"f": "z" * 40000})
        r.xadd("one", {"f": "w" * 70000})
        for args in (("XRANGE", "s", "-", "+"), ("XREVRANGE", "s", "+", "-"),
                     ("XREAD", "STREAMS", "s", "0"), ("XRANGE", "s", "-", "+", "COUNT", "70"),
                     ("XREAD", "STREAMS", "t", "u", "0", "0")):
            e = err(r.execute_command, *args)
            assert "redis.max.reply.bytes (65536 bytes)" in e and "COUNT" in e, (args, e)
        # In parts with COUNT, everything is read.
        got, start = [], "-"
        while True:
            part = r.xrange("s", start, "+", count=30)
            got += [i for i, _ in part]
            if len(part) < 30:
                break
            start = "(" + part[-1][0].decode()
        assert got == ids
        assert [i for i, _ in r.xrevrange("s", "+", "-", count=50)] == ids[::-1][:50]
        assert len(r.xread({"s": "0"}, count=40)[0][1]) == 40
        assert len(r.xread({"t": "0"})[0][1]) == 1
        assert r.xrange("one", "-", "+")[0][1] == {b"f": b"w" * 70000}  # one entry is served
        # A group read past the limit: the entries were delivered, so they stay pending for the
        # consumer, which reads them as its history with COUNT.
        r.xgroup_create("s", "g", id="0")
        e = err(r.xreadgroup, "g", "c", {"s": ">"})
        assert "redis.max.reply.bytes" in e, e
        assert r.xpending("s", "g")["pending"] == 100
        hist = r.xreadgroup("g", "c", {"s": "0"}, count=30)[0][1]
        assert [i for i, _ in hist] == ids[:30]
        assert r.ping()
    finally:
        b.stop()
