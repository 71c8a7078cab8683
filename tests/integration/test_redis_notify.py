"""Keyspace notifications and sharded Pub/Sub (issue 23, items 7 and 8), against a real
redis-server 7.0 (redis_peer.py): the same commands on both, a subscriber on each, and the
messages they get compared byte for byte; and a subscriber on tidings seeing the changes made
through Kafka, HTTP and the CLI."""
import json
import os
import subprocess
import time
import urllib.request

import redis
from confluent_kafka import Producer

from conftest import BIN
from kafkawire import Conn as KConn
from redis_peer import Conn, pair, peer  # noqa: F401 (fixtures)
from test_kafka_admin import delete_records_raw


def drain(conn, sentinel_channel=b"sentinel", limit=200):
    """The messages a subscriber got until the sentinel's (bounded in count, and in time by the
    connection's timeout)."""
    out = []
    for _ in range(limit):
        m = conn.reply()
        if sentinel_channel in m and (b"message" in m):
            return out
        out.append(m)
    raise AssertionError(f"no sentinel among {out!r}")


def subscribed_pair(pair, flags, *sub):
    """A subscriber on each server (sub: the subscription command), notifications set to
    flags on both."""
    pair.same("CONFIG", "SET", "notify-keyspace-events", flags)
    so, st = pair.connect()
    for c in (so, st):
        c.send(*sub)
        for _ in range(len(sub) - 1):
            c.reply()
        c("SUBSCRIBE", "sentinel")
    return so, st


def finish(pair, so, st):
    pair.same("PUBLISH", "sentinel", "end")
    mine, theirs = drain(so), drain(st)
    so.close()
    st.close()
    return mine, theirs


def test_config_notify_keyspace_events_as_redis(pair):
    for v in ["KEA", "Et", "AKE", "gt$K", "", "mK", "n", "KEAn", "Ag$lshzxeKEtmdn", "tgE",
              "lshzxed", "AAAA", "KKEE", "m"]:
        pair.same("CONFIG", "SET", "notify-keyspace-events", v)
        pair.same("CONFIG", "GET", "notify-keyspace-events")
    for bad in ["Q", "KEA!", "k", " ", "K E"]:
        pair.same("CONFIG", "SET", "notify-keyspace-events", bad)
    pair.same("CONFIG", "GET", "notify-keyspace-events")
    pair.same("CONFIG", "GET", "notify-*")
    pair.same("CONFIG", "SET", "notify-keyspace-events")  # wrong number of arguments
    ours, _ = pair
    assert ours("HELLO", "3")[:1] == b"%"
    assert ours("CONFIG", "GET", "notify-keyspace-events") == \
        b"%1\r\n$22\r\nnotify-keyspace-events\r\n$1\r\nm\r\n"


# The commands of the comparisons: every stream event tidings sends, in Redis's order.
STREAM_SEQUENCE = [
    ("XADD", "s", "1-1", "a", "1"),
    ("XADD", "s", "2-1", "b", "2"),
    ("XADD", "s", "3-1", "c", "3"),
    ("XADD", "s", "MAXLEN", "2", "4-1", "d", "4"),  # xadd then xtrim
    ("XADD", "s", "MAXLEN", "10", "5-1", "e", "5"),  # nothing trimmed: no xtrim
    ("XTRIM", "s", "MAXLEN", "2"),
    ("XTRIM", "s", "MAXLEN", "2"),  # nothing trimmed: no event
    ("XDEL", "s", "4-1"),
    ("XDEL", "s", "4-1"),  # nothing deleted: no event
    ("XSETID", "s", "100-1"),
    ("XGROUP", "CREATE", "s", "g", "0"),
    ("XGROUP", "CREATE", "s", "g", "0"),  # BUSYGROUP: no event
    ("XGROUP", "CREATECONSUMER", "s", "g", "c1"),
    ("XGROUP", "CREATECONSUMER", "s", "g", "c1"),  # exists: no event
    ("XGROUP", "SETID", "s", "g", "0"),
    ("XREADGROUP", "GROUP", "g", "c2", "COUNT", "1", "STREAMS", "s", ">"),  # creates c2
    ("XREADGROUP", "GROUP", "g", "c2", "COUNT", "1", "STREAMS", "s", ">"),  # c2 exists
    ("XCLAIM", "s", "g", "c3", "0", "5-1"),  # claims: creates c3
    ("XAUTOCLAIM", "s", "g", "c4", "0", "0-0"),  # claims: creates c4
    ("XGROUP", "DELCONSUMER", "s", "g", "c1"),
    ("XGROUP", "DELCONSUMER", "s", "g", "nobody"),  # no event
    ("XGROUP", "DESTROY", "s", "g"),
    ("XGROUP", "DESTROY", "s", "g"),  # no event
    ("XGROUP", "CREATE", "s2", "g", "$", "MKSTREAM"),  # new, xgroup-create
    ("DEL", "s", "nothing", "s2"),
    ("XADD", "s3", "NOMKSTREAM", "*", "a", "1"),  # nothing: no event
    ("XADD", "s3", "7-1", "a", "1"),
    ("UNLINK", "s3"),
]


def run_sequence(pair, seq):
    for cmd in seq:
        pair.same(*cmd)


def test_stream_events_as_redis_pattern_subscriber(pair):
    so, st = subscribed_pair(pair, "KEA", "PSUBSCRIBE", "__key*__:*")
    run_sequence(pair, STREAM_SEQUENCE)
    mine, theirs = finish(pair, so, st)
    assert mine == theirs
    assert len(mine) > 40  # keyspace and keyevent for each of the ~22 events


def test_new_events_and_classes_as_redis(pair):
    """n (not in A) adds `new`; E alone gives only keyevent; t without g leaves `del` out."""
    for flags in ["KEAn", "Et", "Kg", "Kn", "KEt$"]:
        so, st = subscribed_pair(pair, flags, "PSUBSCRIBE", "*")
        run_sequence(pair, STREAM_SEQUENCE)
        mine, theirs = finish(pair, so, st)
        assert mine == theirs, flags
        pair.same("FLUSHALL")


# Consumers that XCLAIM and XAUTOCLAIM create only when they claim something, and that
# XREADGROUP creates whatever it reads.
CONSUMER_SEQUENCE = [
    ("XADD", "s", "1-1", "a", "1"),
    ("XGROUP", "CREATE", "s", "g", "0"),
    ("XCLAIM", "s", "g", "cc", "100000", "1-1"),  # nothing pending
    ("XAUTOCLAIM", "s", "g", "cd", "100000", "0"),
    ("XREADGROUP", "GROUP", "g", "ce", "STREAMS", "s", "0"),  # history, empty
    ("XCLAIM", "s", "g", "cf", "0", "1-1", "FORCE"),
    ("XREADGROUP", "GROUP", "g", "c0", "STREAMS", "s", ">"),
    ("XCLAIM", "s", "g", "cg", "100000", "1-1"),  # not idle long enough
    ("XAUTOCLAIM", "s", "g", "ch", "100000", "0", "JUSTID"),
    ("XCLAIM", "s", "g", "ci", "0", "1-1", "JUSTID"),
    ("XAUTOCLAIM", "s", "g", "cj", "0", "0", "JUSTID"),
    ("XREADGROUP", "GROUP", "nogroup", "ck", "STREAMS", "s", ">"),  # NOGROUP
]


def test_consumer_creation_as_redis(pair):
    so, st = subscribed_pair(pair, "KEt", "PSUBSCRIBE", "*")
    run_sequence(pair, CONSUMER_SEQUENCE)
    mine, theirs = finish(pair, so, st)
    assert mine == theirs
    assert sum(b"xgroup-createconsumer" in m for m in mine) == 10  # five, both channels


KEYMISS_SEQUENCE = [
    ("XADD", "s", "1-1", "a", "1"),
    ("XRANGE", "nokey", "-", "+"),
    ("XREVRANGE", "nokey", "+", "-"),
    ("XRANGE", "s", "-", "+"),  # found: nothing
    ("XLEN", "nokey"),
    ("XREAD", "STREAMS", "nokey", "0"),  # Redis looks the key up twice
    ("XREAD", "COUNT", "1", "STREAMS", "s", "nokey", "0", "0"),
    ("XREAD", "BLOCK", "10", "STREAMS", "nokey", "$"),
    ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "nokey", ">"),
    ("XACK", "nokey", "g", "1-1"),
    ("XPENDING", "nokey", "g"),
    ("XCLAIM", "nokey", "g", "c", "0", "1-1"),
    ("XAUTOCLAIM", "nokey", "g", "c", "0", "0"),
    ("XINFO", "STREAM", "nokey"),
    ("XINFO", "GROUPS", "nokey"),
    ("TYPE", "nokey"),
    ("TYPE", "s"),
    ("EXISTS", "nokey", "s", "nokey2"),
    # Writes' lookups send no keymiss.
    ("XTRIM", "nokey", "MAXLEN", "0"),
    ("XDEL", "nokey", "1-1"),
    ("XADD", "nokey", "NOMKSTREAM", "*", "a", "1"),
    ("DEL", "nokey"),
]


def test_keymiss_as_redis(pair):
    for flags in ["Km", "Em", "KEA"]:
        so, st = subscribed_pair(pair, flags, "PSUBSCRIBE", "*")
        run_sequence(pair, KEYMISS_SEQUENCE)
        mine, theirs = finish(pair, so, st)
        assert mine == theirs, flags
        assert len(mine) == {"Km": 19, "Em": 19, "KEA": 2}[flags]
        pair.same("FLUSHALL")


def test_channel_subscriber_resp3_as_redis(pair):
    so, st = pair.connect()
    for c in (so, st):
        assert c("HELLO", "3")[:1] == b"%"
        c.send("SUBSCRIBE", "__keyevent@0__:xadd", "__keyspace@0__:k", "sentinel")
        for _ in range(3):
            c.reply()
    pair.same("CONFIG", "SET", "notify-keyspace-events", "KEt")
    pair.same("XADD", "k", "1-1", "f", "v")
    pair.same("XADD", "other", "1-1", "f", "v")
    pair.same("XTRIM", "k", "MAXLEN", "0")
    mine, theirs = finish(pair, so, st)
    assert mine == theirs
    assert mine[0] == b">3\r\n$7\r\nmessage\r\n$16\r\n__keyspace@0__:k\r\n$4\r\nxadd\r\n"


def test_notifications_off_send_nothing(pair):
    so, st = subscribed_pair(pair, "", "PSUBSCRIBE", "*")
    run_sequence(pair, STREAM_SEQUENCE[:5])
    mine, theirs = finish(pair, so, st)
    assert mine == theirs == []


def test_multi_exec_events_as_redis(pair):
    so, st = subscribed_pair(pair, "KEA", "PSUBSCRIBE", "__key*__:*")
    pair.same("MULTI")
    pair.same("XADD", "m", "1-1", "a", "1")
    pair.same("XGROUP", "CREATE", "m", "g", "0")
    pair.same("XDEL", "m", "1-1")
    pair.same("EXEC")
    mine, theirs = finish(pair, so, st)
    assert mine == theirs and len(mine) == 6


def test_redis_py_subscriber(pair):
    ours, _ = pair
    r = redis.Redis(port=pair.broker.redis_port)
    r.config_set("notify-keyspace-events", "KEA")
    assert r.config_get("notify-keyspace-events") == {"notify-keyspace-events": "AKE"}
    p = r.pubsub(ignore_subscribe_messages=True)
    p.psubscribe("__keyevent@0__:*")
    r.xadd("orders", {"a": "1"})
    r.xgroup_create("orders", "g", id="0")
    r.xreadgroup("g", "c", {"orders": ">"})
    r.delete("orders")
    got = []
    deadline = time.time() + 10
    while len(got) < 4 and time.time() < deadline:
        m = p.get_message(timeout=1)
        if m:
            got.append((m["channel"], m["data"]))
    assert got == [(b"__keyevent@0__:xadd", b"orders"),
                   (b"__keyevent@0__:xgroup-create", b"orders"),
                   (b"__keyevent@0__:xgroup-createconsumer", b"orders"),
                   (b"__keyevent@0__:del", b"orders")]
    p.close()
    r.close()


# ---------------------------------------------------------------------------------------------
# Changes made through Kafka, HTTP and the CLI


def http(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


def collect(conn, n):
    """n messages of a subscriber (the connection's timeout bounds the wait)."""
    return [conn.reply() for _ in range(n)]


def pmsg(channel, data, pattern=b"*"):
    return b"*4\r\n$8\r\npmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
        len(pattern), pattern, len(channel), channel, len(data), data)


def events(kind_key_pairs):
    out = []
    for event, key in kind_key_pairs:
        out.append(pmsg(b"__keyspace@0__:" + key, event))
        out.append(pmsg(b"__keyevent@0__:" + event, key))
    return out


def test_events_caused_through_kafka_http_and_cli(pair):
    ours, _ = pair
    b = pair.broker
    assert ours("CONFIG", "SET", "notify-keyspace-events", "KEAn") == b"+OK\r\n"
    sub = Conn(b.redis_port)
    sub("PSUBSCRIBE", "*")
    # HTTP: a topic created is `new`, two events are two `xadd`.
    assert http(b.http_port, "POST", "/v1/topics", {"name": "ht", "partitions": 1}) == 201
    assert http(b.http_port, "POST", "/v1/topics/ht/events",
                [{"value": {"n": 1}}, {"value": {"n": 2}}]) == 200
    assert collect(sub, 6) == events([(b"new", b"ht"), (b"xadd", b"ht"), (b"xadd", b"ht")])
    # Kafka: three records are three `xadd` on the topic's key.
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0})
    for i in range(3):
        p.produce("ht", value=b"k%d" % i)
    assert p.flush(20) == 0
    assert collect(sub, 6) == events([(b"xadd", b"ht")] * 3)
    # The entries are readable once told of.
    assert ours("XLEN", "ht") == b":5\r\n"
    # Kafka DeleteRecords: `xtrim`.
    kc = KConn(b.port)
    assert delete_records_raw(kc, 1, "ht", [(0, 2)]) == [(0, 2, 0)]
    kc.close()
    assert collect(sub, 2) == events([(b"xtrim", b"ht")])
    # The CLI (over HTTP): an event is an `xadd`.
    subprocess.run([BIN, "produce", "ht", "--server", f"http://127.0.0.1:{b.http_port}"],
                   input=b"from-cli\n", check=True, capture_output=True, timeout=60)
    assert collect(sub, 2) == events([(b"xadd", b"ht")])
    # A topic of two partitions: its keys are <topic>/<partition>; deleted, one `del` each.
    assert http(b.http_port, "POST", "/v1/topics", {"name": "two", "partitions": 2}) == 201
    assert collect(sub, 4) == events([(b"new", b"two/0"), (b"new", b"two/1")])
    assert http(b.http_port, "POST", "/v1/topics/two/events",
                {"value": 1, "partition": 1}) == 200
    assert collect(sub, 2) == events([(b"xadd", b"two/1")])
    assert http(b.http_port, "DELETE", "/v1/topics/two") == 204
    assert http(b.http_port, "DELETE", "/v1/topics/ht") == 204
    assert collect(sub, 6) == events([(b"del", b"two/0"), (b"del", b"two/1"), (b"del", b"ht")])
    # Redis's own commands are told once (not again by the broker's hook), in their order.
    ours("XADD", "r", "1-1", "a", "1")
    ours("DEL", "r")
    assert collect(sub, 6) == events([(b"new", b"r"), (b"xadd", b"r"), (b"del", b"r")])
    # With notifications off, nothing (the sentinel comes first).
    ours("CONFIG", "SET", "notify-keyspace-events", "")
    http(b.http_port, "POST", "/v1/topics", {"name": "quiet", "partitions": 1})
    http(b.http_port, "POST", "/v1/topics/quiet/events", {"value": 1})
    ours("PUBLISH", "sentinel", "x")
    assert collect(sub, 1) == [pmsg(b"sentinel", b"x")]
    sub.close()


# ---------------------------------------------------------------------------------------------
# Sharded Pub/Sub


def test_sharded_pubsub_as_redis(pair):
    so, st = pair.connect()
    for c in (so, st):
        assert c("SSUBSCRIBE", "a", "b") == b"*3\r\n$10\r\nssubscribe\r\n$1\r\na\r\n:1\r\n"
        c.reply()
    o2, t2 = pair.connect()
    for c in (o2, t2):
        c("PSUBSCRIBE", "*")
        c("SUBSCRIBE", "a")
    # Redis lists channels in its hash table's order: compared as sets.
    a, b = pair.both("PUBSUB", "SHARDCHANNELS")
    assert a[:4] == b[:4] == b"*2\r\n" and sorted(a.split(b"\r\n")) == sorted(b.split(b"\r\n"))
    pair.same("PUBSUB", "SHARDCHANNELS", "a*")
    for c in pair:
        lines = c("CLIENT", "LIST").split(b"\n")
        assert [ln for ln in lines if b" flags=P " in ln and b" sub=0 psub=0 ssub=2 " in ln]
        info = c("INFO", "stats")
        assert b"pubsubshard_channels:2\r\n" in info and b"pubsub_channels:1\r\n" in info
    pair.same("PUBSUB", "SHARDNUMSUB", "a", "b", "c")
    pair.same("PUBSUB", "SHARDNUMSUB")
    pair.same("PUBSUB", "CHANNELS")
    pair.same("PUBSUB", "NUMSUB", "a")
    pair.same("SPUBLISH", "a", "hello")  # the shard subscriber only
    pair.same("SPUBLISH", "nobody", "x")
    pair.same("PUBLISH", "a", "plain")  # the channel and pattern subscribers, not the shard one
    assert so.reply() == st.reply() == b"*3\r\n$8\r\nsmessage\r\n$1\r\na\r\n$5\r\nhello\r\n"
    for c in (o2, t2):
        assert c.reply() == b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nplain\r\n"
        assert c.reply() == b"*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\na\r\n$5\r\nplain\r\n"
    # Subscribed mode: what may run, and the counts (sharded channels apart).
    for c in (so, st):
        c.send("XLEN", "s")
    assert so.reply() == st.reply()
    for cmd in [("PING",), ("SUBSCRIBE", "x"), ("SUNSUBSCRIBE", "a"), ("SUNSUBSCRIBE", "zz"),
                ("UNSUBSCRIBE",), ("SUNSUBSCRIBE",), ("SUNSUBSCRIBE",)]:
        so.send(*cmd)
        st.send(*cmd)
        n = 1 if len(cmd) <= 2 else len(cmd) - 1
        assert [so.reply() for _ in range(n)] == [st.reply() for _ in range(n)], cmd
    # Out of subscribed mode again: a command runs.
    assert so("XLEN", "s") == st("XLEN", "s") == b":0\r\n"
    for c in (so, st, o2, t2):
        c.close()


def test_sharded_pubsub_resp3_as_redis(pair):
    so, st = pair.connect()
    for c in (so, st):
        c("HELLO", "3")
        c.send("SSUBSCRIBE", "ch")
        c.reply()
    pair.same("SPUBLISH", "ch", "m")
    assert so.reply() == st.reply() == b">3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$1\r\nm\r\n"
    assert so("XLEN", "s") == st("XLEN", "s")  # RESP3: any command while subscribed
    assert so("SUNSUBSCRIBE", "ch") == st("SUNSUBSCRIBE", "ch")
    assert so("SUNSUBSCRIBE") == st("SUNSUBSCRIBE")
    for c in (so, st):
        c("MULTI")
        c("SSUBSCRIBE", "x")
    assert so("EXEC") == st("EXEC")
    so.close()
    st.close()


def test_sharded_commands_info_as_redis(pair):
    for cmd in ["spublish", "ssubscribe", "sunsubscribe"]:
        pair.same("COMMAND", "INFO", cmd)  # test_redis_command_parity.py checks every command
    pair.same("PUBSUB", "HELP")
    pair.same("SPUBLISH", "a")
    pair.same("SSUBSCRIBE")


def test_start_setting(tmp_path):
    from conftest import Broker
    b = Broker(str(tmp_path / "data"), redis=True,
               extra=["--set", "redis.notify.keyspace.events=Et"]).start()
    c = Conn(b.redis_port)
    assert c("CONFIG", "GET", "notify-keyspace-events") == \
        b"*2\r\n$22\r\nnotify-keyspace-events\r\n$2\r\ntE\r\n"
    c.send("SUBSCRIBE", "__keyevent@0__:xadd")
    c.reply()
    w = Conn(b.redis_port)
    w("XADD", "k", "*", "a", "1")
    assert c.reply() == b"*3\r\n$7\r\nmessage\r\n$19\r\n__keyevent@0__:xadd\r\n$1\r\nk\r\n"
    c.close()
    w.close()
    b.stop()
    p = subprocess.run([BIN, "serve", "--data", str(tmp_path / "d2"), "--kafka", "off",
                        "--http", "off", "--redis", "127.0.0.1:0", "--set",
                        "redis.notify.keyspace.events=KEX"], capture_output=True, timeout=60)
    assert p.returncode != 0
    assert b"redis.notify.keyspace.events" in p.stderr


def read_lines(f, n, timeout=10):
    """n lines of a pipe, waiting at most timeout seconds in all."""
    import select
    out, buf, deadline = [], b"", time.time() + timeout
    while len(out) < n:
        left = deadline - time.time()
        assert left > 0, f"only {out!r} within {timeout} s"
        if select.select([f], [], [], left)[0]:
            chunk = os.read(f.fileno(), 4096)
            assert chunk, f"closed after {out!r}"
            buf += chunk
            while b"\n" in buf and len(out) < n:
                line, buf = buf.split(b"\n", 1)
                if not line.startswith(b"Reading messages"):
                    out.append(line.strip())
    return out


def test_redis_cli_subscriber(pair):
    """redis-cli --csv as the subscriber: the lines it prints for the notifications."""
    ours, _ = pair
    ours("CONFIG", "SET", "notify-keyspace-events", "Et")
    p = subprocess.Popen(["redis-cli", "-p", str(pair.broker.redis_port), "--csv", "SUBSCRIBE",
                          "__keyevent@0__:xadd", "__keyevent@0__:xtrim"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        lines = read_lines(p.stdout, 2)
        assert lines == [b'"subscribe","__keyevent@0__:xadd",1',
                         b'"subscribe","__keyevent@0__:xtrim",2']
        ours("XADD", "clik", "*", "a", "1")
        ours("XADD", "clik", "MAXLEN", "0", "*", "a", "2")
        lines = read_lines(p.stdout, 3)
        assert lines == [b'"message","__keyevent@0__:xadd","clik"'] * 2 + \
            [b'"message","__keyevent@0__:xtrim","clik"']
    finally:
        p.kill()
        p.wait(timeout=10)
