"""Trimming and stream nodes as Redis 7 (issue 23, items 4 and 5's radix-tree fields): the same
XADD / XDEL / XTRIM sequences sent to tidings and to a real redis-server, under several
stream-node-max-entries / stream-node-max-bytes settings, and every reply compared byte for byte,
with XLEN, XRANGE and XINFO STREAM's radix-tree-keys and radix-tree-nodes after each step.

Explicit IDs throughout, so that both servers hold the same IDs (the rax keys) and entries."""
import glob
import http.client
import os
import random
import re
import signal
import zlib

import pytest

from conftest import Broker
from redis_peer import Conn, pair, peer  # noqa: F401 (fixtures)

RADIX_RE = re.compile(rb"radix-tree-(keys|nodes)\r\n:(\d+)\r\n")


def radix(reply):
    return dict(RADIX_RE.findall(reply))


def check(pair, key="s"):
    """The stream's length, entries and radix figures are Redis's."""
    pair.same("XLEN", key)
    pair.same("XRANGE", key, "-", "+")
    a, b = pair.both("XINFO", "STREAM", key)
    if b.startswith(b"-"):
        assert a == b
        return
    assert radix(b), b
    assert radix(a) == radix(b), f"tidings {radix(a)} redis {radix(b)}"


def value(rng, big):
    """A value: short strings, numbers (listpack stores canonical integers as integers, which
    changes the node sizes), or long strings that reach stream-node-max-bytes."""
    k = rng.random()
    if k < 0.25:
        return str(rng.choice([0, 7, 127, 128, 4095, 4096, -1, -4096, -4097, 32767, 32768,
                               8388608, 2**31, -(2**31) - 1, 2**63 - 1, -(2**63)]))
    if k < 0.35:
        return rng.choice(["01", "-0", "+1", "1.5", " 1", "-", "9223372036854775808"])
    n = rng.choice([1, 5, 20, 63, 64, 100]) if not big or k < 0.7 else rng.choice(
        [500, 1000, 2000, 4095, 4096, 5000])
    return "".join(rng.choice("abcxyz") for _ in range(n))


def fields(rng, big):
    shapes = [("a",), ("a", "b"), ("a", "b", "c"), ("x",), ("12",), ("a", "a")]
    names = rng.choice(shapes) if rng.random() < 0.9 else tuple(
        "f%d" % i for i in range(rng.randint(1, 6)))
    out = []
    for n in names:
        out += [n, value(rng, big)]
    return out


class Ids:
    """Increasing explicit IDs with steps of various sizes, so that the rax keys share prefixes
    of every length."""

    def __init__(self, rng):
        self.rng = rng
        self.ms, self.seq = 1, 0

    def next(self):
        k = self.rng.random()
        if k < 0.6:
            self.seq += 1
        elif k < 0.8:
            self.ms += self.rng.choice([1, 2, 255, 256, 65536])
            self.seq = self.rng.choice([0, 5])
        else:
            self.seq += self.rng.choice([100, 300, 70000])
        return "%d-%d" % (self.ms, self.seq)


def trim_args(rng, length, ids):
    kind = rng.choice(["MAXLEN", "MINID"])
    op = rng.choice(["", "=", "~", "~"])
    out = [kind] + ([op] if op else [])
    if kind == "MAXLEN":
        out.append(str(rng.choice([0, 1, max(0, length - rng.randint(0, 250)), length // 2,
                                   length + 3])))
    else:
        out.append(rng.choice(ids) if ids and rng.random() < 0.8 else "0-1")
    if op == "~" and rng.random() < 0.4:
        out += ["LIMIT", str(rng.choice([0, 1, 50, 100, 150, 1000]))]
    return out


def run_sequence(pair, seed, steps, big=False, p_trim=0.03, every=100, on_check=None):
    """steps random XADDs (some trimming), XDELs and XTRIMs, checked every `every` steps (and
    on_check(i) called after each check)."""
    rng = random.Random(seed)
    ids, live = Ids(rng), []
    for i in range(steps):
        k = rng.random()
        if k < 1 - 2 * p_trim:
            cmd = ["XADD", "s"]
            if rng.random() < p_trim:
                cmd += trim_args(rng, len(live), live)
            i_d = ids.next()
            pair.same(*cmd, i_d, *fields(rng, big))
            live.append(i_d)
        elif k < 1 - p_trim and live:
            victims = [rng.choice(live) for _ in range(rng.randint(1, 4))]
            pair.same("XDEL", "s", *victims)
            live = [x for x in live if x not in victims]
        else:
            pair.same("XTRIM", "s", *trim_args(rng, len(live), live))
            a, b = pair.both("XRANGE", "s", "-", "+")
            assert a == b
            live = re.findall(rb"\b\d+-\d+\b", a.split(b"\r\n", 1)[1]) if a != b"*0\r\n" else []
            live = [x.decode() for x in live]
        if i % every == 0:
            check(pair)
            if on_check:
                on_check(i)
                check(pair)
    check(pair)


SETTINGS = [
    ("100", "4096"),
    ("10", "4096"),
    ("1", "4096"),
    ("7", "0"),
    ("0", "300"),
    ("200", "2kb"),
]


@pytest.mark.parametrize("entries,bytes_", SETTINGS)
@pytest.mark.parametrize("big", [False, True])
def test_sequences_match_redis(pair, entries, bytes_, big):
    pair.same("CONFIG", "SET", "stream-node-max-entries", entries)
    pair.same("CONFIG", "SET", "stream-node-max-bytes", bytes_)
    run_sequence(pair, zlib.crc32(f"{entries}/{bytes_}/{big}".encode()), 900 if not big else 300, big)


def pipe(pair, cmds):
    """Sends cmds to both servers pipelined and asserts the replies are the same."""
    for c in pair:
        for cmd in cmds:
            c.send(*cmd)
    for cmd in cmds:
        a, b = pair.ours.reply(), pair.theirs.reply()
        assert a == b, f"{cmd}:\n tidings: {a!r}\n redis:   {b!r}"


def xadds(key, start, n, fields=("a", "1", "b", "hello")):
    return [("XADD", key, "%d-1" % (start + i), *fields) for i in range(n)]


def test_maxlen_zero_leaves_an_empty_stream(pair):
    pair.same("XADD", "s", "MAXLEN", "0", "1-1", "a", "b")
    check(pair)
    pair.same("XADD", "s", "MAXLEN", "~", "0", "2-1", "a", "b")
    check(pair)
    pipe(pair, xadds("s", 10, 250))
    pair.same("XTRIM", "s", "MAXLEN", "0")
    check(pair)
    pipe(pair, xadds("s", 1000, 30))
    pair.same("XTRIM", "s", "MAXLEN", "~", "0")
    check(pair)
    # With a generated ID too (the reply is the new ID: compared without it).
    a, b = pair.both("XADD", "t", "MAXLEN", "0", "*", "a", "b")
    assert a.startswith(b"$") and b.startswith(b"$")
    pair.same("XLEN", "t")
    a, b = pair.both("XINFO", "STREAM", "t")
    assert radix(a) == radix(b) == {b"keys": b"0", b"nodes": b"1"}


def test_approximate_trims_whole_nodes(pair):
    pipe(pair, xadds("s", 1, 1000))
    for maxlen in ("999", "901", "900", "444", "100", "99", "1"):
        pair.same("XTRIM", "s", "MAXLEN", "~", maxlen)
        check(pair)
    pipe(pair, xadds("s", 5000, 1000))
    pair.same("XTRIM", "s", "MINID", "~", "5455-1")
    pair.same("XTRIM", "s", "MINID", "~", "5455-1", "LIMIT", "100")
    pair.same("XTRIM", "s", "MINID", "~", "5655-1", "LIMIT", "99")
    pair.same("XTRIM", "s", "MINID", "5701-0")
    check(pair)
    pair.same("XADD", "s", "MAXLEN", "~", "150", "9000-1", "a", "b")
    check(pair)


def test_default_limit_follows_node_size(pair):
    # `~` without LIMIT does at most 100 nodes' worth of entries (100 * stream-node-max-entries).
    pair.same("CONFIG", "SET", "stream-node-max-entries", "2")
    pipe(pair, xadds("s", 1, 500))
    pair.same("XTRIM", "s", "MAXLEN", "~", "0")
    check(pair)
    pair.same("XTRIM", "s", "MAXLEN", "~", "0", "LIMIT", "0")  # 0: no limit
    check(pair)
    pair.same("CONFIG", "SET", "stream-node-max-entries", "0")  # 10000 then
    pipe(pair, xadds("s", 1000, 300))
    pair.same("XTRIM", "s", "MAXLEN", "~", "0")
    check(pair)


def test_byte_limit_and_emptied_tail(pair):
    # Nodes closed by their bytes; a tail node emptied by XDEL goes, and the next entry fits
    # in the node before it when it is small enough.
    pair.same("CONFIG", "SET", "stream-node-max-entries", "0")
    pair.same("CONFIG", "SET", "stream-node-max-bytes", "300")
    big = "x" * 60
    pipe(pair, [("XADD", "s", "%d-0" % i, "f", big) for i in range(1, 6)])
    check(pair)
    pair.same("XDEL", "s", "5-0")
    pair.same("XDEL", "s", "4-0")
    check(pair)
    pipe(pair, [("XADD", "s", "%d-0" % i, "f", "1") for i in range(6, 12)])
    check(pair)
    pair.same("XTRIM", "s", "MAXLEN", "~", "3")
    check(pair)


def test_exact_trim_marks_entries_of_the_first_node(pair):
    # Marked entries still fill the node: the next node starts where Redis's does, and counts
    # above 127 change the size of the master entry's counters.
    pair.same("CONFIG", "SET", "stream-node-max-entries", "300")
    pair.same("CONFIG", "SET", "stream-node-max-bytes", "0")
    pipe(pair, xadds("s", 1, 150))
    pair.same("XTRIM", "s", "MAXLEN", "100")
    pair.same("XTRIM", "s", "MINID", "70-1")
    check(pair)
    pipe(pair, xadds("s", 200, 200))
    check(pair)
    pair.same("XTRIM", "s", "MAXLEN", "~", "150")
    check(pair)


@pytest.mark.parametrize("args", [
    ("MAXLEN", "10", "LIMIT", "5"),
    ("LIMIT", "5"),
    ("LIMIT", "0", "MAXLEN", "1"),
    ("LIMIT", "10", "MAXLEN", "~", "5"),
    ("MAXLEN", "1", "MINID", "0"),
    ("MINID", "0", "MAXLEN", "1"),
    ("MAXLEN", "-1"),
    ("MAXLEN", "abc"),
    ("MAXLEN", "~", "abc"),
    ("MAXLEN", "="),
    ("MAXLEN", "~", "1", "LIMIT", "-1"),
    ("MAXLEN", "~", "1", "LIMIT", "x"),
    ("MINID", "abc"),
    ("MINID", "-"),
    ("MINID", "+"),
    ("MINID", "=", "5"),
    ("MINID", "~", "5-1", "LIMIT"),
    ("FOO", "1"),
    ("MAXLEN", "1", "BAR"),
    ("MAXLEN",),
    ("maxlen", "~", "2"),
    ("MAXLEN", "=", "2", "LIMIT", "0"),
])
def test_xtrim_arguments(pair, args):
    for stream in ("none", "s"):
        pipe(pair, xadds("s", 1, 3))
        pair.same("XTRIM", stream, *args)
    pair.same("XRANGE", "s", "-", "+")


@pytest.mark.parametrize("args", [
    ("MAXLEN", "5", "LIMIT", "2", "9-1"),
    ("LIMIT", "2", "9-1"),
    ("LIMIT", "0", "9-1"),
    ("MAXLEN", "*"),
    ("MAXLEN", "1", "MINID", "1", "9-1"),
    ("NOMKSTREAM", "MAXLEN", "~", "1", "LIMIT", "1", "9-1"),
    ("MAXLEN", "~", "1", "NOMKSTREAM", "9-1"),
    ("MINID", "5-0", "9-1"),
    ("MAXLEN", "-2", "9-1"),
])
def test_xadd_trim_arguments(pair, args):
    pipe(pair, xadds("s", 1, 3))
    pair.same("XADD", "s", *args, "f", "v")
    pair.same("XADD", "other", *args, "f", "v")
    pair.same("XRANGE", "s", "-", "+")
    pair.same("XRANGE", "other", "-", "+")


def test_config_stream_node_settings(pair):
    for name in ("stream-node-max-entries", "stream-node-max-bytes"):
        pair.same("CONFIG", "GET", name)
        for v in ("-1", "abc", "1.5", "", "99999999999999999999", "9223372036854775807",
                  "9223372036854775808", "0", "7", "1k", "1kb", "2MB", "3g", "1gb", "5b", "k",
                  " 1", "+1", "012", "18446744073709551615", "10000000000gb"):
            pair.same("CONFIG", "SET", name, v)
            pair.same("CONFIG", "GET", name)
    pair.same("CONFIG", "SET", "stream-node-max-entries", "100", "stream-node-max-bytes", "x")
    pair.same("CONFIG", "GET", "stream-node-max-entries")
    pair.same("CONFIG", "SET", "stream-node-max-entries", "5", "stream-node-max-bytes", "2048")
    pair.same("CONFIG", "GET", "stream-node-max-entries")
    pair.same("CONFIG", "GET", "stream-node-max-bytes")
    a, b = pair.both("CONFIG", "GET", "stream-node-*")
    assert sorted(a.split(b"\r\n")) == sorted(b.split(b"\r\n"))


def test_entries_produced_through_kafka(pair):
    """Entries a Kafka producer appended are packed as Redis would pack the fields XRANGE shows
    for them (tidings only: the peer gets them as XADDs of those fields and IDs)."""
    from confluent_kafka import Producer

    pair.ours("XADD", "s", "1-1", "a", "b")  # makes the topic (a stream: one partition)
    pair.theirs("XADD", "s", "1-1", "a", "b")
    p = Producer({"bootstrap.servers": pair.broker.bootstrap, "linger.ms": 5})
    rng = random.Random(5)
    for i in range(400):
        key = None if i % 3 else ("k%d" % i).encode()
        headers = [("h", b"%d" % i)] if i % 5 == 0 else None
        val = "".join(rng.choice("ab") for _ in range(rng.choice([1, 10, 70, 300])))
        if i % 7 == 0:
            val = str(i)
        p.produce("s", value=val.encode(), key=key, headers=headers)
    assert p.flush(30) == 0
    # What tidings shows, given to Redis entry by entry with the same IDs.
    seen = pair.ours("XRANGE", "s", "(1-1", "+")
    entries = parse(seen)
    assert len(entries) == 400
    pipe_one = [("XADD", "s", eid, *flds) for eid, flds in entries]
    for cmd in pipe_one:
        pair.theirs.send(*cmd)
    for cmd in pipe_one:
        r = pair.theirs.reply()
        assert r.startswith(b"$"), r
    check(pair)
    for args in (("MAXLEN", "~", "350"), ("MAXLEN", "~", "200"), ("MINID", "~", entries[300][0]),
                 ("MAXLEN", "=", "50")):
        pair.same("XTRIM", "s", *args)
        check(pair)


def parse(reply):
    """[(id, [field, value, ...]), ...] of an XRANGE reply (RESP2)."""
    lines = reply.split(b"\r\n")
    out, i = [], 1
    n = int(lines[0][1:])
    for _ in range(n):
        eid = lines[i + 2].decode()
        nf = int(lines[i + 3][1:])
        vals = [lines[i + 5 + 2 * k] for k in range(nf)]
        out.append((eid, vals))
        i += 4 + 2 * nf
    return out


def test_restart_rebuilds_the_nodes(pair):
    """After a restart the model is rebuilt from the log: the same nodes, the same trims."""
    rng = random.Random(11)
    ids = Ids(rng)
    cmds = [("XADD", "s", ids.next(), *fields(rng, rng.random() < 0.2)) for _ in range(700)]
    pipe(pair, cmds)
    pair.same("XTRIM", "s", "MAXLEN", "~", "650")
    check(pair)
    pair.broker.stop()
    pair.broker.start()
    pair.ours.close()
    pair.ours = Conn(pair.broker.redis_port)
    check(pair)
    pair.same("XTRIM", "s", "MAXLEN", "~", "400")
    check(pair)
    pipe(pair, [("XADD", "s", ids.next(), *fields(rng, False)) for _ in range(150)])
    pair.same("XTRIM", "s", "MAXLEN", "~", "300")
    check(pair)


def test_broker_settings_set_the_initial_values(tmp_path, peer):
    """redis.stream.node.max.entries / .bytes are the values CONFIG GET shows at start."""
    b = Broker(str(tmp_path / "data"), redis=True,
               extra=["--set", "redis.stream.node.max.entries=3",
                      "--set", "redis.stream.node.max.bytes=1000"]).start()
    ours, theirs = Conn(b.redis_port), Conn(peer)
    try:
        assert ours("CONFIG", "GET", "stream-node-max-entries") == \
            b"*2\r\n$23\r\nstream-node-max-entries\r\n$1\r\n3\r\n"
        assert ours("CONFIG", "GET", "stream-node-max-bytes") == \
            b"*2\r\n$21\r\nstream-node-max-bytes\r\n$4\r\n1000\r\n"
        theirs("FLUSHALL")
        theirs("CONFIG", "SET", "stream-node-max-entries", "3")
        theirs("CONFIG", "SET", "stream-node-max-bytes", "1000")
        for i in range(1, 40):
            cmd = ("XADD", "s", "%d-1" % i, "f", "v" * (i * 13 % 300))
            assert ours(*cmd) == theirs(*cmd)
        a, b2 = ours("XINFO", "STREAM", "s"), theirs("XINFO", "STREAM", "s")
        assert radix(a) == radix(b2) and int(radix(a)[b"keys"]) > 12
        assert ours("XTRIM", "s", "MAXLEN", "~", "20") == theirs("XTRIM", "s", "MAXLEN", "~", "20")
    finally:
        ours.close()
        theirs("CONFIG", "SET", "stream-node-max-entries", "100")
        theirs("CONFIG", "SET", "stream-node-max-bytes", "4096")
        theirs.close()
        b.stop()


def test_concurrent_writers_and_trims_keep_the_model_whole(pair):
    """XADDs from two connections (some trimming), a Kafka producer, XTRIM ~ and XINFO at
    once; then the model must be the one a rebuild from the log gives (after a restart), and
    the stream's length what XRANGE reads."""
    import threading

    from confluent_kafka import Producer

    pair.ours("XADD", "s", "*", "a", "0")
    stop = threading.Event()
    errors = []

    def xadds(seed):
        c = Conn(pair.broker.redis_port)
        rng = random.Random(seed)
        try:
            for i in range(300):
                extra = ["MAXLEN", "~", "250"] if i % 20 == 0 else []
                r = c("XADD", "s", *extra, "*", "f", "x" * rng.choice([1, 50, 900]))
                if not r.startswith(b"$"):
                    errors.append(r)
        finally:
            c.close()

    def trims():
        c = Conn(pair.broker.redis_port)
        try:
            while not stop.is_set():
                for cmd in (("XTRIM", "s", "MAXLEN", "~", "300"), ("XINFO", "STREAM", "s")):
                    r = c(*cmd)
                    if r.startswith(b"-"):
                        errors.append(r)
        finally:
            c.close()

    threads = [threading.Thread(target=xadds, args=(k,)) for k in (1, 2)]
    t = threading.Thread(target=trims)
    for th in threads + [t]:
        th.start()
    p = Producer({"bootstrap.servers": pair.broker.bootstrap, "linger.ms": 2})
    for i in range(300):
        p.produce("s", value=b"v" * (i % 7 * 100))
        if i % 50 == 0:
            p.poll(0)
    assert p.flush(30) == 0
    for th in threads:
        th.join(60)
    stop.set()
    t.join(60)
    assert not errors, errors[:3]
    c = pair.ours
    c("XTRIM", "s", "MAXLEN", "~", "300")
    n = int(c("XLEN", "s")[1:-2])
    assert 250 <= n < 400  # XADD MAXLEN ~ 250 may have gone below 300
    entries = c("XRANGE", "s", "-", "+")
    assert entries.startswith(b"*%d\r\n" % n)
    before = radix(c("XINFO", "STREAM", "s"))
    pair.broker.stop()
    pair.broker.start()
    pair.ours.close()
    pair.ours = Conn(pair.broker.redis_port)
    assert radix(pair.ours("XINFO", "STREAM", "s")) == before
    assert int(pair.ours("XLEN", "s")[1:-2]) == n


def test_pipelined_xadds_with_trims(pair):
    """Each XADD's trim counts the entries up to its own, not those pipelined after it."""
    cmds = []
    for i in range(1, 400):
        extra = []
        if i % 37 == 0:
            extra = ["MAXLEN", "0"]
        elif i % 41 == 0:
            extra = ["MAXLEN", "~", "50"]
        elif i % 43 == 0:
            extra = ["MINID", "=", "%d-0" % (i - 20)]
        cmds.append(("XADD", "s", *extra, "%d-0" % i, "f", "v" * (i % 9)))
        if i % 50 == 0:
            cmds.append(("XLEN", "s"))
    pipe(pair, cmds + [("XLEN", "s"), ("XRANGE", "s", "-", "+")])
    check(pair)


def test_config_set_applies_to_later_entries(pair):
    """Entries appended before a CONFIG SET keep the nodes they were packed in."""
    pair.same("CONFIG", "SET", "stream-node-max-entries", "10")
    pipe(pair, xadds("s", 1, 5))
    check(pair)  # the stream's model is held from here
    pipe(pair, xadds("s", 100, 25))
    pair.same("CONFIG", "SET", "stream-node-max-entries", "3")
    pipe(pair, xadds("s", 200, 10))
    check(pair)
    pair.same("CONFIG", "SET", "stream-node-max-entries", "100", "stream-node-max-bytes", "100")
    pipe(pair, xadds("s", 300, 10))
    check(pair)
    pair.same("XTRIM", "s", "MAXLEN", "~", "12")
    check(pair)


def test_radix_tree_of_wide_ids(pair):
    """Node keys differing in every byte of the 128-bit key: the radix tree's node count as
    Redis's after appends, XDELs of whole nodes in the middle, and trims."""
    pair.same("CONFIG", "SET", "stream-node-max-entries", "2")
    rng = random.Random(3)
    ms, seq, ids = 1, 0, []
    cmds = []
    for i in range(600):
        k = rng.random()
        if k < 0.3:
            seq += 1
        elif k < 0.5:
            ms += rng.choice([1, 1000, 1 << 20, 1 << 33, 1 << 47])
            seq = 0
        elif k < 0.6:
            seq += rng.choice([1 << 24, 1 << 40, 1 << 56])
        else:
            ms += rng.randint(1, 300)
            seq = rng.randint(0, 3)
        ids.append("%d-%d" % (ms, seq))
        cmds.append(("XADD", "s", ids[-1], "f", "v"))
    pipe(pair, cmds)
    check(pair)
    pipe(pair, [("XDEL", "s", x) for x in rng.sample(ids, 250)])
    check(pair)
    pair.same("XTRIM", "s", "MAXLEN", "~", "200")
    check(pair)
    pair.same("XTRIM", "s", "MINID", ids[450])
    check(pair)


def test_trims_inside_a_transaction(pair):
    pair.same("MULTI")
    for i in range(1, 6):
        pair.same("XADD", "s", "MAXLEN", "2", "%d-1" % i, "a", "b")
    pair.same("XLEN", "s")
    pair.same("XTRIM", "s", "MAXLEN", "~", "0")
    pair.same("XADD", "s", "MAXLEN", "0", "9-1", "a", "b")
    pair.same("EXEC")
    check(pair)


# ------------------------------------------------------------------------------------------------
# The node model kept across restarts (the partition's stream-nodes file): the same commands on
# redis-server without a restart, and the replies after tidings' restarts must equal its own.

def start_again(pair):
    pair.broker.start()
    pair.ours.close()
    pair.ours = Conn(pair.broker.redis_port)


def restart(pair, sig=signal.SIGTERM, settings=None):
    """Stops the broker (SIGKILL: a crash) and starts it again on the same data."""
    if settings is not None:
        pair.broker.extra = [a for a in pair.broker.extra if "stream.node" not in a]
        for k, v in settings.items():
            pair.broker.extra += ["--set", "redis.stream.node.max.%s=%s" % (k, v)]
    pair.broker.stop(sig)
    start_again(pair)


def node_settings(pair, entries, bytes_):
    """The node settings on both servers, for tidings as broker settings (CONFIG SET does not
    outlive a restart)."""
    restart(pair, settings={"entries": entries, "bytes": bytes_})
    pair.theirs("CONFIG", "SET", "stream-node-max-entries", entries)
    pair.theirs("CONFIG", "SET", "stream-node-max-bytes", bytes_)
    pair.same("CONFIG", "GET", "stream-node-max-entries")
    pair.same("CONFIG", "GET", "stream-node-max-bytes")


def entries_read(pair):
    """The broker's count of entries read to build or catch up node models."""
    conn = http.client.HTTPConnection("127.0.0.1", pair.broker.http_port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    m = re.search(r"^tidings_redis_stream_node_entries_read_total (\d+)$", text, re.M)
    assert m, "no tidings_redis_stream_node_entries_read_total in /metrics"
    return int(m.group(1))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_restart_keeps_exact_trims_and_xdels(pair, sig):
    """Exact trims mark entries of the first node deleted, and XDEL of a whole last node makes
    the next entries start a new node: a restart keeps both (a rebuild from the log cannot)."""
    node_settings(pair, 10, 4096)
    pipe(pair, xadds("s", 1, 145))          # 15 nodes, the last one of 5 entries
    pair.same("XTRIM", "s", "MAXLEN", "=", "137")  # marks 8 entries of the first node
    check(pair)
    pair.same("XDEL", "s", *("%d-1" % i for i in range(141, 146)))  # the whole last node
    pair.same("XDEL", "s", "50-1", "51-1")
    pipe(pair, xadds("s", 200, 12))         # a new node, not the removed one's
    check(pair)
    restart(pair, sig)
    check(pair)
    pair.same("XTRIM", "s", "MINID", "=", "13-1")
    pair.same("XDEL", "s", "211-1", "210-1")
    restart(pair, sig)
    check(pair)
    pipe(pair, xadds("s", 300, 30))
    pair.same("XTRIM", "s", "MAXLEN", "~", "100")
    check(pair)
    pair.same("XTRIM", "s", "MAXLEN", "~", "40", "LIMIT", "20")
    check(pair)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_random_sequences_across_restarts(pair, sig):
    """Random XADDs (some trimming), XDELs and XTRIMs (`=`, `~`, LIMIT), with a restart at
    every check: every reply and the radix figures are Redis's, which never restarted."""
    node_settings(pair, 7, 300)

    def again(_i):
        restart(pair, sig)

    run_sequence(pair, 23 + sig, 600, big=False, p_trim=0.05, every=150, on_check=again)


def test_restart_reads_only_the_last_node(pair):
    """A restart reads the entries of the last node and what came after the last save, not the
    stream: counted by tidings_redis_stream_node_entries_read_total."""
    pipe(pair, xadds("s", 1, 3000))
    check(pair)
    assert entries_read(pair) >= 3000
    restart(pair)
    check(pair)
    # 3000 entries of this size fill nodes of 100: the last is whole, so at most 100 are read.
    assert entries_read(pair) <= 100
    pipe(pair, xadds("s", 5000, 250))
    pair.same("XTRIM", "s", "MAXLEN", "~", "2000")
    check(pair)
    assert entries_read(pair) <= 100 + 250
    restart(pair, signal.SIGKILL)
    check(pair)
    assert entries_read(pair) <= 100
    # A stream whose model was never saved is read once, whole (and then saved).
    pair.broker.stop()
    saved = glob.glob(os.path.join(pair.broker.data, "**", "stream-nodes"), recursive=True)
    assert len(saved) == 1
    os.unlink(saved[0])
    start_again(pair)
    check(pair)
    assert entries_read(pair) >= 2000
    assert "no saved stream nodes" in pair.broker.stderr()


def test_damaged_saved_nodes_are_rebuilt(pair):
    """A torn, damaged or foreign stream-nodes file is not trusted: the model is rebuilt from
    the log (exact for a stream trimmed with `~` only), and the broker says so."""
    rng = random.Random(5)
    ids = Ids(rng)
    pipe(pair, [("XADD", "s", ids.next(), *fields(rng, rng.random() < 0.2)) for _ in range(400)])
    pair.same("XTRIM", "s", "MAXLEN", "~", "300")
    check(pair)
    pair.broker.stop()
    [path] = glob.glob(os.path.join(pair.broker.data, "**", "stream-nodes"), recursive=True)
    data = open(path, "rb").read()
    for damaged in (data[:50], b"x" * len(data), data[:96] + bytes(len(data) - 96)):
        with open(path, "wb") as f:
            f.write(damaged)
        start_again(pair)
        check(pair)
        pair.broker.stop()
        assert "saved stream nodes not used" in pair.broker.stderr()
    start_again(pair)
    pipe(pair, [("XADD", "s", ids.next(), *fields(rng, False)) for _ in range(100)])
    pair.same("XTRIM", "s", "MAXLEN", "~", "250")
    check(pair)


def test_delete_records_before_a_restart(pair):
    """Kafka's DeleteRecords moves the log start as an exact trim does (the node it cuts keeps
    its entries below as deleted): after a restart, as Redis after XTRIM MINID = ."""
    from kafkawire import Conn as KConn
    from test_kafka_admin import delete_records_raw

    pipe(pair, xadds("s", 1, 350))
    check(pair)
    k = KConn(pair.broker.port)
    [(part, low, err)] = delete_records_raw(k, 1, "s", [(0, 130)])
    k.close()
    assert (part, low, err) == (0, 130, 0)
    pair.theirs("XTRIM", "s", "MINID", "=", "131-1")
    restart(pair, signal.SIGKILL)
    check(pair)
    pair.same("XTRIM", "s", "MAXLEN", "~", "150")
    check(pair)


def test_kill_during_trims_and_xdels(pair):
    """A crash test: one client sends XADDs, XDELs and trims while the broker is killed; after
    the restart the stream equals Redis's after the acknowledged commands (and the one in flight
    if it was done), nodes and radix figures included."""
    import threading
    import time

    node_settings(pair, 10, 500)
    rng = random.Random(77)
    ids = Ids(rng)
    cmds, live = [], []
    for i in range(3000):
        k = rng.random()
        if k < 0.8 or not live:
            i_d = ids.next()
            cmds.append(("XADD", "s", *(["MAXLEN", "~", "300"] if i % 9 == 0 else []), i_d,
                         *fields(rng, False)))
            live.append(i_d)
        elif k < 0.9:
            victims = live[-rng.randint(1, 6):] if rng.random() < 0.5 else rng.sample(live, 2)
            cmds.append(("XDEL", "s", *victims))
            live = [x for x in live if x not in victims]
        else:
            cmds.append(("XTRIM", "s", *trim_args(rng, len(live), live)))
    done, errors = [], []

    def run():
        c = Conn(pair.broker.redis_port)
        try:
            for cmd in cmds:
                r = c(*cmd)
                if r.startswith(b"-"):
                    errors.append((cmd, r))
                    break
                done.append(r)
        except (EOFError, OSError):
            pass
        finally:
            c.close()

    t = threading.Thread(target=run)
    t.start()
    deadline = time.time() + 20
    while len(done) < 400 + rng.randint(0, 600) and t.is_alive() and time.time() < deadline:
        time.sleep(0.005)
    pair.broker.stop(signal.SIGKILL)
    t.join(30)
    assert not errors, errors
    acked = len(done)
    assert 0 < acked < len(cmds)
    start_again(pair)
    theirs = pair.theirs
    for cmd in cmds[:acked]:
        theirs.send(*cmd)
    for _ in cmds[:acked]:
        theirs.reply()
    if acked < len(cmds) and pair.ours("XRANGE", "s", "-", "+") != theirs("XRANGE", "s", "-", "+"):
        theirs(*cmds[acked])  # the one in flight was done
    check(pair)
    for cmd in cmds[acked + 1:acked + 301]:
        pair.same(*cmd)
    check(pair)
    err = pair.broker.stderr()
    assert "not used" not in err and "disagree" not in err, err[-2000:]


def test_changes_lost_with_the_file_are_redone(pair):
    """What a crash can lose is the file's records of a trim or XDEL (its state before them is
    made durable first): the file as it was before them, put back, gives Redis's nodes, the
    changes being redone from the log's start and the XDELs kept elsewhere."""
    node_settings(pair, 10, 4096)
    pipe(pair, xadds("s", 1, 147))
    pair.same("XTRIM", "s", "MAXLEN", "=", "140")  # makes the state at the stream's end durable
    check(pair)
    pair.broker.stop()
    [path] = glob.glob(os.path.join(pair.broker.data, "**", "stream-nodes"), recursive=True)
    before = open(path, "rb").read()
    start_again(pair)
    pair.same("XDEL", "s", *("%d-1" % i for i in range(141, 148)))  # the whole last node
    pair.same("XDEL", "s", "60-1", "61-1", "62-1")
    pair.same("XTRIM", "s", "MAXLEN", "=", "125")  # two more marked in the first node
    check(pair)
    pair.broker.stop()
    with open(path, "wb") as f:
        f.write(before)
    start_again(pair)
    pipe(pair, xadds("s", 300, 15))  # after the removed last node: a new node
    check(pair)
    assert "not used" not in pair.broker.stderr()


def test_deleted_and_made_again_after_a_restart(pair):
    """DEL deletes the saved nodes with the topic: the stream made again under the same key has
    its own nodes, also after a restart."""
    node_settings(pair, 10, 4096)
    pipe(pair, xadds("s", 1, 95))
    pair.same("XTRIM", "s", "MAXLEN", "=", "80")
    check(pair)
    pair.same("DEL", "s")
    pipe(pair, xadds("s", 500, 33))
    check(pair)
    restart(pair, signal.SIGKILL)
    check(pair)
    pair.same("XTRIM", "s", "MAXLEN", "~", "15")
    check(pair)
