"""COMMAND parity with Redis 7.0 (issue 23, item 9): COMMAND INFO, COMMAND DOCS, COMMAND LIST
(FILTERBY), COUNT, GETKEYS, GETKEYSANDFLAGS and HELP, and FUNCTION HELP, for every command and
subcommand tidings serves, compared with Debian's redis-server byte for byte in RESP2 and RESP3;
redis-py's command() and redis-cli's COMMAND DOCS rendering.

Deliberate exceptions (docs/redis.md, "COMMAND"):
- TIDINGS_ONLY: commands Redis 7.0 has not (XGROUP POLICY, XKEYRANGE and XKEYVERSION are
  tidings extensions; CLIENT
  SETINFO and CLIENT NO-TOUCH are Redis 7.2 commands that clients send on connect). They have
  tidings' own entries, checked here for their shape.
- A container (CLIENT, CONFIG, XINFO, ...) lists only the subcommands tidings serves, and Redis
  lists commands and subcommands in its hash tables' order, random per process: so a container's
  reply is compared with its subcommands sorted and Redis's unserved ones dropped, and COMMAND,
  COMMAND LIST and COMMAND COUNT as sets of the commands tidings serves.
"""
import shutil
import subprocess

import pytest
import redis

from redis_peer import Conn, pair, peer  # noqa: F401 (fixtures)

TIDINGS_ONLY = {"xgroup|policy", "xkeyrange", "xkeyversion", "client|setinfo",
                "client|no-touch"}


def parse(b, i=0):
    """A RESP reply as (type, value) trees: aggregates hold lists, maps lists of pairs."""
    j = b.index(b"\r\n", i)
    t, line = b[i:i + 1], b[i + 1:j]
    i = j + 2
    if t in b"$=!":
        n = int(line)
        if n < 0:
            return (t, None), i
        return (t, b[i:i + n]), i + n + 2
    if t in b"*~>%":
        n = int(line)
        if n < 0:
            return (t, None), i
        items = []
        for _ in range(n * (2 if t == b"%" else 1)):
            v, i = parse(b, i)
            items.append(v)
        return (t, items), i
    return (t, line), i


def dump(v):
    t, x = v
    if x is None:
        return t + b"-1\r\n"
    if t in b"$=!":
        return t + b"%d\r\n" % len(x) + x + b"\r\n"
    if t in b"*~>%":
        n = len(x) // (2 if t == b"%" else 1)
        return t + b"%d\r\n" % n + b"".join(dump(e) for e in x)
    return t + x + b"\r\n"


def one(b):
    v, i = parse(b)
    assert i == len(b), b
    return v


def served(conn):
    """Every full name tidings serves (COMMAND LIST), and the containers among them."""
    names = [v[1].decode() for v in one(conn("COMMAND", "LIST"))[1]]
    return names, {n.split("|")[0] for n in names if "|" in n}


def canon_info(v, keep):
    """A COMMAND INFO entry with its subcommands sorted by name and limited to keep."""
    t, items = v
    if items is None:
        return v
    subs = items[9]
    if subs[0] == b"*":
        entries = [canon_info(e, keep) for e in subs[1] if e[1][0][1].decode() in keep]
        subs = (b"*", sorted(entries, key=lambda e: e[1][0][1]))
    return (t, items[:9] + [subs])


def canon_docs(v, keep):
    """A COMMAND DOCS map with the subcommands map sorted by name and limited to keep."""
    t, kv = v
    out = []
    for k in range(0, len(kv), 2):
        key, val = kv[k], kv[k + 1]
        if key[1] == b"subcommands":
            pairs = [(kv2, canon_docs(vv, keep)) for kv2, vv in zip(val[1][::2], val[1][1::2])
                     if kv2[1].decode() in keep]
            pairs.sort(key=lambda p: p[0][1])
            flat = [x for p in pairs for x in p]
            val = (val[0], flat)
        out += [key, val]
    return (t, out)


@pytest.mark.parametrize("proto", [2, 3])
def test_info_and_docs_of_every_served_command(pair, proto):
    ours, theirs = pair
    if proto == 3:
        for c in (ours, theirs):
            assert c("HELLO", "3")[:1] == b"%"
    names, containers = served(ours)
    assert len(names) > 100
    keep = set(names) - TIDINGS_ONLY
    compared = 0
    for name in names:
        if name in TIDINGS_ONLY:
            continue
        for sub in ("INFO", "DOCS"):
            a, b = ours("COMMAND", sub, name), theirs("COMMAND", sub, name)
            if name in containers:
                canon = canon_info if sub == "INFO" else canon_docs
                va, vb = one(a), one(b)
                if sub == "INFO":
                    va = (va[0], [canon(va[1][0], keep)])
                    vb = (vb[0], [canon(vb[1][0], keep)])
                else:
                    va = (va[0], [va[1][0], canon(va[1][1], keep)])
                    vb = (vb[0], [vb[1][0], canon(vb[1][1], keep)])
                a, b = dump(va), dump(vb)
            assert a == b, f"COMMAND {sub} {name} (RESP{proto}):\n tidings: {a!r}\n redis:   {b!r}"
            compared += 1
    assert compared >= 2 * (len(names) - len(TIDINGS_ONLY))


def test_unknown_and_several_names(pair):
    pair.same("COMMAND", "INFO", "nosuchcommand", "xadd", "CLIENT|LIST", "client|nosuch")
    pair.same("COMMAND", "DOCS", "nosuchcommand", "XLEN", "config|get")
    pair.same("COMMAND", "INFO", "client|list|extra", "xadd|x", "client|", "|", "")
    pair.same("COMMAND", "DOCS", "xadd|x", "client|", "XGROUP|CREATE")
    pair.same("COMMAND", "HELP")
    pair.same("FUNCTION", "HELP")
    ours, theirs = pair
    assert ours("HELLO", "3")[:1] == theirs("HELLO", "3")[:1] == b"%"
    pair.same("COMMAND", "INFO", "nosuchcommand", "xack")
    pair.same("COMMAND", "DOCS", "nosuchcommand", "xack")


def test_tidings_only_entries(pair):
    ours, _ = pair
    info = one(ours("COMMAND", "INFO", "xgroup|policy"))[1][0][1]
    assert info[0][1] == b"xgroup|policy" and info[1][1] == b"-4"
    assert [f[1] for f in info[2][1]] == [b"write"]
    assert (info[3][1], info[4][1], info[5][1]) == (b"2", b"2", b"1")
    assert [c[1] for c in info[6][1]] == [b"@write", b"@stream", b"@slow"]
    for name, arity, flags, cats in (
            ("xkeyrange", b"-5", [b"readonly"], [b"@read", b"@stream", b"@slow"]),
            ("xkeyversion", b"3", [b"readonly", b"fast"], [b"@read", b"@stream", b"@fast"])):
        info = one(ours("COMMAND", "INFO", name))[1][0][1]
        assert info[0][1] == name.encode() and info[1][1] == arity
        assert [f[1] for f in info[2][1]] == flags
        assert (info[3][1], info[4][1], info[5][1]) == (b"1", b"1", b"1")
        assert [c[1] for c in info[6][1]] == cats
        doc = one(ours("COMMAND", "DOCS", name))[1]
        assert doc[0][1] == name.encode() and b"tidings extension" in dump(doc[1])
    assert one(ours("COMMAND", "GETKEYS", "XKEYRANGE", "acc", "acct-42", "-", "+"))[1][0][1] == \
        b"acc"
    docs = one(ours("COMMAND", "DOCS", "client|setinfo"))[1]
    assert docs[0][1] == b"client|setinfo"
    fields = dict((k[1], v) for k, v in zip(docs[1][1][::2], docs[1][1][1::2]))
    assert fields[b"since"][1] == b"7.2.0" and fields[b"group"][1] == b"connection"


def test_command_list_filters_and_count(pair):
    ours, theirs = pair
    names, _ = served(ours)
    keep = set(names)
    top = [n for n in names if "|" not in n]
    assert one(ours("COMMAND", "COUNT")) == (b":", str(len(top)).encode())
    whole = one(ours("COMMAND"))[1]
    assert sorted(e[1][0][1].decode() for e in whole) == sorted(top)
    # COMMAND INFO and DOCS without names: every command, each as when named.
    assert dump(one(ours("COMMAND", "INFO"))) == dump(one(ours("COMMAND")))
    docs = one(ours("COMMAND", "DOCS"))[1]
    assert sorted(k[1].decode() for k in docs[::2]) == sorted(top)
    for k, v in zip(docs[::2], docs[1::2]):
        assert dump(v) == dump(one(ours("COMMAND", "DOCS", k[1]))[1][1]), k
    for flt in (("ACLCAT", "stream"), ("ACLCAT", "DANGEROUS"), ("ACLCAT", "fast"),
                ("PATTERN", "x*"), ("PATTERN", "CLIENT|*"), ("PATTERN", "*|help"),
                ("ACLCAT", "nosuchcat"), ("MODULE", "nosuchmodule")):
        a = {v[1].decode() for v in one(ours("COMMAND", "LIST", "FILTERBY", *flt))[1]}
        b = {v[1].decode() for v in one(theirs("COMMAND", "LIST", "FILTERBY", *flt))[1]}
        assert a == (b & keep) - TIDINGS_ONLY | (a & TIDINGS_ONLY), flt
        if flt == ("ACLCAT", "stream"):
            assert "xadd" in a and "xgroup|create" in a
    for bad in (("FILTERBY",), ("FILTERBY", "PATTERN"), ("FILTERBY", "NOPE", "x"), ("x",),
                ("FILTERBY", "PATTERN", "x", "y")):
        pair.same("COMMAND", "LIST", *bad)
    # ACL CAT answers from the same categories.
    a = {v[1].decode() for v in one(ours("ACL", "CAT", "stream"))[1]}
    b = {v[1].decode() for v in one(theirs("ACL", "CAT", "stream"))[1]}
    assert a == (b & keep) | (a & TIDINGS_ONLY)


GETKEYS = [
    ("XADD", "s", "*", "f", "v"),
    ("XREAD", "COUNT", "2", "STREAMS", "a", "b", "0", "0"),
    ("XREAD", "STREAMS", "a", "0", "b"),
    ("XREAD", "BLOCK", "0", "STREAMS"),
    ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", ">"),
    ("XREADGROUP", "GROUP", "g", "c", "NOACK", "STREAMS", "s1", "s2", ">", ">"),
    ("DEL", "a", "b", "c"),
    ("EXISTS", "a"),
    ("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"),
    ("XINFO", "STREAM", "s", "FULL"),
    ("XGROUP", "HELP"),
    ("XTRIM", "s", "MAXLEN", "10"),
    ("WATCH", "k1", "k2"),
    ("SPUBLISH", "ch", "m"),
    ("SSUBSCRIBE", "a", "b"),
    ("TYPE", "k"),
    ("PING",),
    ("GET", "k"),
    ("NOSUCH", "k"),
    ("CLIENT", "NOSUCH"),
    ("XLEN",),
    ("XLEN", "a", "b"),
    ("XADD", "s"),
    ("XSETID", "s", "1-1"),
    ("XCLAIM", "s", "g", "c", "0", "1-1"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_getkeys(pair, proto):
    ours, theirs = pair
    if proto == 3:
        for c in (ours, theirs):
            c("HELLO", "3")
    for cmd in GETKEYS:
        if cmd[0] == "GET":  # a string command: not served, so not a command here
            assert ours("COMMAND", "GETKEYS", *cmd) == b"-ERR Invalid command specified\r\n"
            continue
        pair.same("COMMAND", "GETKEYS", *cmd)
        pair.same("COMMAND", "GETKEYSANDFLAGS", *cmd)
    pair.same("COMMAND", "GETKEYS")
    pair.same("COMMAND", "GETKEYSANDFLAGS")
    many = [f"k{i}" for i in range(300)]  # more keys than the reply's first buffer holds
    pair.same("COMMAND", "GETKEYSANDFLAGS", "DEL", *many)
    pair.same("COMMAND", "GETKEYS", "XREAD", "COUNT", "1", "STREAMS", *many)


def test_redis_py_command(pair):
    r = redis.Redis(port=pair.broker.redis_port, decode_responses=True)
    peer_r = redis.Redis(port=pair.peer_port, decode_responses=True)
    ours, theirs = r.command(), peer_r.command()
    assert "xadd" in ours and "client" in ours
    for name, info in ours.items():
        if name in TIDINGS_ONLY:
            continue
        want = dict(theirs[name])
        got = dict(info)
        got.pop("subcommands", None)
        want.pop("subcommands", None)
        assert got == want, name
    assert r.command_getkeys("XREAD", "STREAMS", "a", "b", "0", "0") == ["a", "b"]
    assert r.command_count() == len(ours)
    r.close()
    peer_r.close()


def test_redis_cli_command_docs(pair):
    exe = shutil.which("redis-cli")
    assert exe, "redis-cli is missing: scripts/install-deps.sh --test installs it"

    def cli(port, *args):
        return subprocess.run([exe, "-p", str(port), *args], capture_output=True, timeout=30,
                              check=True).stdout

    for name in ("xadd", "xreadgroup", "xautoclaim", "client|kill", "xinfo|stream", "subscribe"):
        a = cli(pair.broker.redis_port, "COMMAND", "DOCS", name)
        b = cli(pair.peer_port, "COMMAND", "DOCS", name)
        assert a == b and b"summary" in a, name
    # redis-cli's hints come from COMMAND DOCS: a connection's first command works either way.
    assert cli(pair.broker.redis_port, "--no-raw", "XLEN", "nokey") == b"(integer) 0\n"
