"""Trimming and stream nodes as Redis 7 (issue 23, items 4 and 5's radix-tree fields): the same
XADD / XDEL / XTRIM sequences sent to tidings and to a real redis-server, under several
stream-node-max-entries / stream-node-max-bytes settings, and every reply compared byte for byte,
with XLEN, XRANGE and XINFO STREAM's radix-tree-keys and radix-tree-nodes after each step.

Explicit IDs throughout, so that both servers hold the same IDs (the rax keys) and entries."""
import random
import re
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


def run_sequence(pair, seed, steps, big=False, p_trim=0.03, every=100):
    """steps random XADDs (some trimming), XDELs and XTRIMs, checked every `every` steps."""
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
    run_sequence(pair, zlib.crc32(f"{entries}/{bytes_}/{big}".encode()), 1200 if not big else 400, big)
