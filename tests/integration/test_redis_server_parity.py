"""Connection and server commands as Redis 7.0 has them (issue 23, items 6 and 7): MULTI/EXEC's
refusals, CLIENT REPLY/LIST/INFO/KILL/NO-EVICT/NO-TOUCH, MONITOR, INFO commandstats/errorstats/
stats/replication, SLOWLOG, LATENCY, TIME, ROLE, WAIT and CONFIG GET/SET, compared with a real
redis-server (redis_peer.py) byte for byte where Redis is deterministic, and by field names,
order and shape where values differ; with redis-py and redis-cli.
"""
import os
import re
import socket
import subprocess
import time

import pytest
import redis

from conftest import Broker
from redis_peer import Conn, encode, pair, peer  # noqa: F401 (fixtures)

# The peer's settings these tests change, with Redis 7.0's defaults.
SERVER_DEFAULTS = {
    "slowlog-log-slower-than": "10000",
    "slowlog-max-len": "128",
    "latency-monitor-threshold": "0",
}


@pytest.fixture
def sp(pair):
    """pair, with the peer's slow log, latency and statistics reset before and after."""
    for conn in pair:
        conn("CONFIG", "RESETSTAT")
    pair.theirs("SLOWLOG", "RESET")
    pair.theirs("LATENCY", "RESET")
    yield pair
    c = Conn(pair.peer_port)
    for k, v in SERVER_DEFAULTS.items():
        c("CONFIG", "SET", k, v)
    c("SLOWLOG", "RESET")
    c("LATENCY", "RESET")
    c.close()


def exchange(conn, cmds, end=b"end"):
    """Sends the commands at once, then ECHO end, and returns every byte up to end's reply
    (the replies some commands did not get included, or not)."""
    conn.s.sendall(b"".join(encode(*c) for c in cmds) + encode("ECHO", end))
    marker = b"$%d\r\n%s\r\n" % (len(end), end)
    deadline = time.time() + 10
    while marker not in conn.buf:
        assert time.time() < deadline, conn.buf
        conn._fill()
    out, _, conn.buf = conn.buf.partition(marker)
    return out + marker


def same_exchange(pair, cmds):
    a, b = exchange(pair.ours, cmds), exchange(pair.theirs, cmds)
    assert a == b, f"{cmds}:\n tidings: {a!r}\n redis:   {b!r}"
    return a


def bulk_text(reply):
    """The text of a bulk or verbatim string reply."""
    head, _, body = reply.partition(b"\r\n")
    body = body[:-2]
    if head.startswith(b"="):
        body = body[4:]  # "txt:"
    return body.decode()


# ---------------------------------------------------------------------------------------------
# MULTI / EXEC / DISCARD


MULTI_CASES = [
    # An unknown command while queueing: EXEC answers EXECABORT and ends the transaction.
    [("MULTI",), ("NOSUCH", "a"), ("ECHO", "x"), ("EXEC",), ("EXEC",), ("ECHO", "after")],
    # Wrong arity, an unknown subcommand, a container without its subcommand.
    [("MULTI",), ("XADD", "s"), ("EXEC",), ("ECHO", "after")],
    [("MULTI",), ("CLIENT", "NOSUCH"), ("EXEC",)],
    [("MULTI",), ("CONFIG",), ("EXEC",)],
    # Nested MULTI and WATCH inside MULTI are errors that do not flag the transaction.
    [("MULTI",), ("MULTI",), ("ECHO", "a"), ("EXEC",)],
    [("MULTI",), ("WATCH", "k"), ("ECHO", "a"), ("EXEC",)],
    # Without MULTI.
    [("EXEC",), ("DISCARD",), ("ECHO", "b")],
    # DISCARD ends it; a discarded flagged transaction too.
    [("MULTI",), ("NOSUCH",), ("DISCARD",), ("EXEC",)],
    [("MULTI",), ("ECHO", "a"), ("DISCARD",), ("ECHO", "b")],
    # Errors when the commands run are replies inside EXEC's array.
    [("MULTI",), ("SELECT", "99"), ("ECHO", "ok"), ("XLEN", "nosuchkey"), ("EXEC",)],
    # An empty transaction.
    [("MULTI",), ("EXEC",)],
    # EXEC, DISCARD and MULTI with arguments: refused; a refused EXEC ends the transaction
    # ("EXECABORT Transaction discarded because of: ..."), the others flag it.
    [("MULTI",), ("ECHO", "a"), ("EXEC", "x"), ("EXEC",), ("ECHO", "b")],
    [("MULTI",), ("DISCARD", "x"), ("MULTI", "x"), ("ECHO", "a"), ("EXEC",)],
]


@pytest.mark.parametrize("cmds", MULTI_CASES, ids=[" ".join(c[1][0:1]) + str(i)
                                                    for i, c in enumerate(MULTI_CASES)])
def test_multi_exec_as_redis(sp, cmds):
    same_exchange(sp, cmds)
    # RESP3 too.
    for conn in sp:
        conn("HELLO", "3")
    same_exchange(sp, cmds)


def test_multi_refused_while_subscribed(sp):
    """A RESP2 subscriber may not start a transaction; that refusal is Redis's text."""
    same_exchange(sp, [("SUBSCRIBE", "ch"), ("MULTI",), ("PING",), ("UNSUBSCRIBE",)])


def test_redis_py_transaction_with_error(sp):
    r = redis.Redis(port=sp.broker.redis_port)
    p = r.pipeline(transaction=True)
    p.echo("a")
    p.execute_command("NOSUCHCOMMAND")
    with pytest.raises(redis.exceptions.ResponseError):
        p.execute()
    # The connection is usable, outside MULTI.
    assert r.echo("b") == b"b"
    with pytest.raises(redis.exceptions.ResponseError, match="EXEC without MULTI"):
        r.execute_command("EXEC")
    r.close()


def test_execabort_counted_in_errorstats(sp):
    for conn in sp:
        exchange(conn, [("MULTI",), ("NOSUCH",), ("EXEC",)])
    a, b = sp.both("INFO", "errorstats")
    assert a == b
    assert b"errorstat_EXECABORT:count=1" in a and b"errorstat_ERR:count=1" in a


# ---------------------------------------------------------------------------------------------
# CLIENT REPLY


REPLY_CASES = [
    [("CLIENT", "REPLY", "OFF"), ("ECHO", "a"), ("NOSUCH",), ("CLIENT", "REPLY", "ON"),
     ("ECHO", "b")],
    [("CLIENT", "REPLY", "SKIP"), ("ECHO", "a"), ("ECHO", "b")],
    [("CLIENT", "REPLY", "SKIP"), ("CLIENT", "REPLY", "SKIP"), ("ECHO", "a"), ("ECHO", "b")],
    [("CLIENT", "REPLY", "OFF"), ("CLIENT", "REPLY", "SKIP"), ("ECHO", "a"),
     ("CLIENT", "REPLY", "ON")],
    [("CLIENT", "REPLY", "MAYBE"), ("CLIENT", "REPLY")],
    # Replies of a transaction, all dropped.
    [("CLIENT", "REPLY", "OFF"), ("MULTI",), ("ECHO", "a"), ("EXEC",), ("CLIENT", "REPLY", "ON")],
    # RESET turns replies on again, but is itself skipped after SKIP.
    [("CLIENT", "REPLY", "OFF"), ("RESET",), ("ECHO", "a")],
    [("CLIENT", "REPLY", "SKIP"), ("RESET",), ("ECHO", "a")],
    [("CLIENT", "REPLY", "SKIP"), ("CLIENT", "REPLY", "ON"), ("ECHO", "a")],
    [("CLIENT", "REPLY", "SKIP"), ("SUBSCRIBE", "c"), ("PING",), ("UNSUBSCRIBE",)],
    # (UNSUBSCRIBE of every channel confirms them in the order of Redis's dict, whose hash is
    # seeded at random per process: the channels are left one by one, in an order given.)
    [("CLIENT", "REPLY", "OFF"), ("SUBSCRIBE", "c", "d"), ("PING",), ("SUBSCRIBE",),
     ("UNSUBSCRIBE", "d"), ("UNSUBSCRIBE",), ("RESET",)],
]


@pytest.mark.parametrize("cmds", REPLY_CASES)
def test_client_reply_as_redis(sp, cmds):
    same_exchange(sp, cmds)


def test_client_reply_off_with_xadd(sp):
    """Appends still happen with replies off (XADDs are batched: their replies are dropped
    too)."""
    cmds = [("CLIENT", "REPLY", "OFF")] + [("XADD", "rs", f"{i}-1", "f", "v")
                                            for i in range(1, 6)]
    cmds += [("CLIENT", "REPLY", "SKIP"), ("XADD", "rs", "9-1", "f", "v"),
             ("CLIENT", "REPLY", "ON"), ("XLEN", "rs"), ("XADD", "rs", "10-1", "f", "v")]
    got = same_exchange(sp, cmds)
    assert got.startswith(b"+OK\r\n:6\r\n$4\r\n10-1\r\n")


# ---------------------------------------------------------------------------------------------
# CLIENT LIST / INFO / KILL / NO-EVICT / NO-TOUCH

FIELDS_70 = ["id", "addr", "laddr", "fd", "name", "age", "idle", "flags", "db", "sub", "psub",
             "ssub", "multi", "qbuf", "qbuf-free", "argv-mem", "multi-mem", "rbs", "rbp", "obl",
             "oll", "omem", "tot-mem", "events", "cmd", "user", "redir", "resp"]
# Fields whose values are the same on both servers for the same client state.
SAME_VALUES = ["name", "db", "sub", "psub", "ssub", "multi", "qbuf", "argv-mem", "multi-mem",
               "obl", "oll", "omem", "flags", "events", "cmd", "user", "redir", "resp"]


def parse_line(line):
    out = {}
    for kv in line.strip().split(" "):
        k, _, v = kv.partition("=")
        out[k] = v
    return out


def client_info(conn):
    return parse_line(bulk_text(conn("CLIENT", "INFO")))


def test_client_info_fields_as_redis(sp):
    for conn in sp:
        conn("CLIENT", "SETNAME", "parity")
    ours, theirs = (client_info(c) for c in sp)
    # Redis 7.0's fields in its order; tidings adds 7.2's lib-name and lib-ver at the end.
    assert list(theirs) == FIELDS_70
    assert list(ours)[:len(FIELDS_70)] == FIELDS_70
    assert list(ours)[len(FIELDS_70):] == ["lib-name", "lib-ver"]
    for k in SAME_VALUES:
        assert ours[k] == theirs[k], k
    # Real values: the connection's id, address, descriptor, local address.
    o = sp.ours
    assert int(ours["id"]) == int(o("CLIENT", "ID")[1:-2])
    assert ours["addr"] == "%s:%d" % o.s.getsockname()
    assert ours["laddr"] == "%s:%d" % o.s.getpeername()
    assert int(ours["fd"]) > 2
    assert int(ours["tot-mem"]) > 0 and int(ours["age"]) >= 0 and int(ours["idle"]) >= 0
    # Inside MULTI: flags x, the queued count and bytes as Redis counts them (CLIENT INFO is
    # queued too: another connection lists this one).
    lists = []
    lo, lt = sp.connect()
    for conn, lister in ((sp.ours, lo), (sp.theirs, lt)):
        me = conn("CLIENT", "ID")[1:-2].decode()
        for c in (("MULTI",), ("ECHO", "hello"), ("XLEN", "k")):
            conn(*c)
        lists.append(parse_line(bulk_text(lister("CLIENT", "LIST", "ID", me))))
        conn("DISCARD")
    ours, theirs = lists
    assert ours["flags"] == theirs["flags"] == "x"
    for k in ("multi", "multi-mem", "sub", "name", "qbuf", "argv-mem", "omem"):
        assert ours[k] == theirs[k], k
    lo.close()
    lt.close()


def test_client_info_pubsub_and_idle(sp):
    o, t = sp.connect()
    for c in (o, t):
        c("SUBSCRIBE", "a", "b")
        c.reply()
        c("PSUBSCRIBE", "p*")
    time.sleep(1.1)
    for conn in sp:
        conn("CLIENT", "SETNAME", "watcher")
    lines = [bulk_text(c("CLIENT", "LIST", "TYPE", "pubsub")) for c in sp]
    ours, theirs = (parse_line(x) for x in lines)
    assert len(lines[0].strip().split("\n")) == 1 == len(lines[1].strip().split("\n"))
    for k in ("flags", "sub", "psub", "ssub", "multi", "qbuf", "argv-mem", "cmd"):
        assert ours[k] == theirs[k], k
    assert int(ours["idle"]) >= 1 and int(ours["age"]) >= 1
    # The peer serves other tests' connections too: only ours is counted exactly.
    a, b = sp.both("CLIENT", "LIST", "TYPE", "normal")
    assert len(bulk_text(a).strip().split("\n")) == 1 and "name=watcher" in bulk_text(a)
    assert "name=watcher" in bulk_text(b)
    o.close()
    t.close()


@pytest.mark.parametrize("args", [
    ("TYPE", "bogus"), ("ID", "abc"), ("ID",), ("FOO",), ("TYPE", "master"),
    ("TYPE", "replica"), ("ID", "999999"),
])
def test_client_list_args_as_redis(sp, args):
    sp.same("CLIENT", "LIST", *args)


@pytest.mark.parametrize("args", [
    ("ID", "0"), ("ID", "x"), ("TYPE", "bogus"), ("USER", "nosuchuser"), ("SKIPME", "maybe"),
    ("FOO", "bar"), ("ID",), ("127.0.0.1:1",), ("ADDR", "127.0.0.1:1"),
    ("LADDR", "127.0.0.1:1"), ("TYPE", "master"), ("ID", "99999", "SKIPME"),
])
def test_client_kill_errors_as_redis(sp, args):
    sp.same("CLIENT", "KILL", *args)


def test_client_kill_filters(sp):
    port = sp.broker.redis_port
    victims = [Conn(port) for _ in range(3)]
    for v in victims:
        assert v("PING") == b"+PONG\r\n"  # accepted and registered
    vid = int(victims[0]("CLIENT", "ID")[1:-2])
    assert sp.ours("CLIENT", "KILL", "ID", str(vid)) == b":1\r\n"
    with pytest.raises((EOFError, ConnectionError)):
        victims[0]("PING")
    # By address (old and new forms), by local address, by type.
    addr = "%s:%d" % victims[1].s.getsockname()
    assert sp.ours("CLIENT", "KILL", addr) == b"+OK\r\n"
    with pytest.raises((EOFError, ConnectionError)):
        victims[1]("PING")
    victims[2]("SUBSCRIBE", "x")
    listed = sp.ours("CLIENT", "LIST")
    assert sp.ours("CLIENT", "KILL", "TYPE", "pubsub") == b":1\r\n", listed
    with pytest.raises((EOFError, ConnectionError)):
        victims[2]("PING")
    laddr = "127.0.0.1:%d" % port
    other = Conn(port)
    assert other("PING") == b"+PONG\r\n"
    assert sp.ours("CLIENT", "KILL", "LADDR", laddr, "SKIPME", "yes") == b":1\r\n"
    with pytest.raises((EOFError, ConnectionError)):
        other("PING")
    assert sp.ours("PING") == b"+PONG\r\n"
    # SKIPME no kills the caller itself, after its reply.
    me = sp.ours("CLIENT", "ID")[1:-2].decode()
    assert sp.ours("CLIENT", "KILL", "ID", me, "SKIPME", "no") == b":1\r\n"
    with pytest.raises((EOFError, ConnectionError)):
        sp.ours("PING")


def test_client_unblock_as_redis(sp):
    blocked = sp.connect()
    for conn, b in zip(sp, blocked):
        conn("XADD", "ub", "1-1", "f", "v")
    for reason in ((), ("TIMEOUT",), ("ERROR",)):
        ids = []
        for b in blocked:
            ids.append(b("CLIENT", "ID")[1:-2].decode())
            b.send("XREAD", "BLOCK", "0", "STREAMS", "ub", "$")
        # Blocked once CLIENT LIST shows flag b.
        for conn, i in zip(sp, ids):
            deadline = time.time() + 10
            while "b" not in parse_line(bulk_text(conn("CLIENT", "LIST", "ID", i)))["flags"]:
                assert time.time() < deadline
                time.sleep(0.02)
        a, b_ = (conn("CLIENT", "UNBLOCK", i, *reason) for conn, i in zip(sp, ids))
        assert a == b_ == b":1\r\n"
        got = [b.reply() for b in blocked]
        assert got[0] == got[1], got
        assert "b" not in parse_line(bulk_text(sp.ours("CLIENT", "LIST", "ID", ids[0])))["flags"]
    # Not blocked, unknown, errors.
    for args in ((ids[0],), ("999999",), ("x",), (ids[0], "MAYBE"), (ids[0], "ERROR", "x")):
        sp.same("CLIENT", "UNBLOCK", *args)
    for b in blocked:
        b.close()


def test_client_no_evict_no_touch(sp):
    for args in (("NO-EVICT", "on"), ("NO-EVICT", "off"), ("NO-EVICT", "maybe"),
                 ("NO-EVICT",)):
        sp.same("CLIENT", *args)
    sp.same("CLIENT", "NO-EVICT", "on")
    assert "e" in client_info(sp.ours)["flags"] and "e" in client_info(sp.theirs)["flags"]
    # NO-TOUCH is Redis 7.2's: accepted here.
    assert sp.ours("CLIENT", "NO-TOUCH", "on") == b"+OK\r\n"
    assert sp.ours("CLIENT", "NO-TOUCH", "x") == b"-ERR syntax error\r\n"


def test_redis_py_client_commands(sp):
    r = redis.Redis(port=sp.broker.redis_port)
    r.client_setname("py")
    me = r.client_info()
    assert me["name"] == "py" and me["cmd"] == "client|info" and me["flags"] == "N"
    assert any(c["name"] == "py" for c in r.client_list())
    assert str(r.client_list(client_id=[str(me["id"])])[0]["id"]) == str(me["id"])
    other = redis.Redis(port=sp.broker.redis_port)
    other.ping()
    oid = other.client_id()
    assert r.client_kill_filter(_id=str(oid)) == 1
    r.close()


# ---------------------------------------------------------------------------------------------
# INFO


def info_fields(reply, section):
    text = bulk_text(reply)
    assert text.startswith("# " + section), text
    return [line.split(":", 1)[0] for line in text.strip().split("\r\n")[1:]]


def test_info_stats_and_replication_fields_as_redis(sp):
    a, b = sp.both("INFO", "stats")
    assert info_fields(a, "Stats") == info_fields(b, "Stats")
    a, b = sp.both("INFO", "clients")
    assert info_fields(a, "Clients") == info_fields(b, "Clients")
    a, b = sp.both("INFO", "replication")
    assert info_fields(a, "Replication") == info_fields(b, "Replication")
    text = bulk_text(a)
    assert "role:master\r\n" in text and "connected_slaves:0\r\n" in text
    replid = re.search(r"master_replid:([0-9a-f]+)\r\n", text).group(1)
    assert len(replid) == 40
    # The default sections include errorstats, not commandstats; "all" has both.
    a, b = sp.both("INFO")
    assert (b"# Errorstats" in a) == (b"# Errorstats" in b) == True  # noqa: E712
    assert b"# Commandstats" not in a and b"# Commandstats" not in b
    a, b = sp.both("INFO", "all")
    assert b"# Commandstats" in a and b"# Commandstats" in b


def cmdstats(conn):
    out = {}
    for line in bulk_text(conn("INFO", "commandstats")).strip().split("\r\n")[1:]:
        name, _, v = line.partition(":")
        kv = dict(x.split("=") for x in v.split(","))
        assert set(kv) == {"calls", "usec", "usec_per_call", "rejected_calls", "failed_calls"}
        out[name] = (int(kv["calls"]), int(kv["rejected_calls"]), int(kv["failed_calls"]))
    return out


def test_commandstats_and_errorstats_as_redis(sp):
    cmds = [("PING",), ("PING",), ("ECHO", "x"), ("XADD", "s"), ("NOSUCH",), ("SELECT", "99"),
            ("XLEN", "nokey"), ("CLIENT", "ID"), ("CLIENT", "NOSUCH"), ("CLIENT", "KILL", "ID",
                                                                       "0"),
            ("CONFIG", "GET", "maxmemory"), ("MULTI",), ("ECHO", "y"), ("EXEC",),
            ("MULTI",), ("XADD", "q"), ("EXEC",), ("WAIT", "0", "0"), ("TIME",),
            ("HELLO", "4"), ("AUTH", "nosuchuser", "pw")]
    for conn in sp:
        conn("CONFIG", "RESETSTAT")
        exchange(conn, cmds)
    ours, theirs = cmdstats(sp.ours), cmdstats(sp.theirs)
    theirs.pop("cmdstat_echo")  # the marker ECHO of exchange() is counted on both
    ours.pop("cmdstat_echo")
    assert ours == theirs
    assert theirs["cmdstat_xadd"] == (0, 2, 0) and theirs["cmdstat_select"] == (1, 0, 1)
    a, b = sp.both("INFO", "errorstats")
    assert a == b
    assert b"errorstat_NOPROTO:count=1" in a and b"errorstat_WRONGPASS:count=1" in a
    ta = re.search(rb"total_error_replies:(\d+)", sp.ours("INFO", "stats")).group(1)
    tb = re.search(rb"total_error_replies:(\d+)", sp.theirs("INFO", "stats")).group(1)
    assert ta == tb and int(ta) > 0
    # CONFIG RESETSTAT zeroes them.
    for conn in sp:
        conn("CONFIG", "RESETSTAT")
    sp.same("INFO", "errorstats")
    ours, theirs = cmdstats(sp.ours), cmdstats(sp.theirs)
    assert ours == theirs
    assert sorted(ours) == ["cmdstat_config|resetstat", "cmdstat_info"]


# ---------------------------------------------------------------------------------------------
# SLOWLOG and LATENCY


def test_slowlog_as_redis(sp):
    sp.same("CONFIG", "SET", "slowlog-log-slower-than", "0")
    for conn in sp:
        conn("CLIENT", "SETNAME", "slowpoke")
    long_arg = "x" * 300
    many = [str(i) for i in range(40)]
    sp.same("ECHO", long_arg)
    sp.same("XLEN", *many[:1])
    a, b = sp.both("PING", *many)  # arity error: refused commands are not logged
    assert a == b
    a, b = sp.both("SLOWLOG", "GET", "3")
    assert a.startswith(b"*3\r\n") and b.startswith(b"*3\r\n")
    r_ours = redis.Redis(port=sp.broker.redis_port)
    r_theirs = redis.Redis(port=sp.peer_port)
    for r in (r_ours, r_theirs):
        r.client_setname("slowpoke")
        r.echo(long_arg)
        r.execute_command("XLEN", "k" * 200)
        r.execute_command("TIME")
    got = [r.execute_command("SLOWLOG", "GET", "3") for r in (r_ours, r_theirs)]
    for e in got[0] + got[1]:
        assert len(e) == 6 and isinstance(e[0], int) and abs(e[1] - time.time()) < 60
        assert isinstance(e[2], int) and e[4].startswith(b"127.0.0.1:")
    shown = [[(e[3], e[5]) for e in g] for g in got]
    assert shown[0] == shown[1]
    assert shown[0][1][0] == [b"XLEN", b"k" * 128 + b"... (72 more bytes)"]
    assert shown[0][1][1] == b"slowpoke"
    # More than 32 arguments: the 32nd says how many more there were.
    for r in (r_ours, r_theirs):
        r.execute_command("XDEL", "nokey", *[f"{i}-1" for i in range(40)])
    last = [r.execute_command("SLOWLOG", "GET", "1")[0][3] for r in (r_ours, r_theirs)]
    assert last[0] == last[1] and last[0][-1] == b"... (11 more arguments)"
    # LEN, the length bound, RESET.
    sp.same("CONFIG", "SET", "slowlog-max-len", "3")
    for _ in range(5):
        sp.same("PING")
    sp.same("SLOWLOG", "LEN")
    assert sp.ours("SLOWLOG", "LEN") == b":3\r\n"
    sp.same("SLOWLOG", "RESET")
    a, b = sp.both("SLOWLOG", "LEN")
    assert a == b == b":1\r\n"  # SLOWLOG RESET itself, logged after it ran
    # Entry ids go on after RESET (the peer's are other tests' too): the rest is compared.
    got = [r.execute_command("SLOWLOG", "GET", "-1") for r in (r_ours, r_theirs)]
    assert [(e[3], e[5]) for e in got[0]] == [(e[3], e[5]) for e in got[1]]
    assert got[0][0][3] == [b"SLOWLOG", b"LEN"] and len(got[0]) == 2
    for args in (("GET", "-2"), ("GET", "x"), ("HELP",), ("NOSUCH",), ("LEN", "x"),
                 ("GET", "1", "2")):
        sp.same("SLOWLOG", *args)
    r_ours.close()
    r_theirs.close()


def test_slowlog_redacts_passwords(sp):
    sp.same("CONFIG", "SET", "slowlog-log-slower-than", "0")
    for conn in sp:
        conn("AUTH", "nosuchuser", "secret")
        conn("HELLO", "2", "AUTH", "u", "secret2")
        conn("ACL", "SETUSER", "someone", "on", ">secret3")
        conn("CONFIG", "SET", "requirepass", "")
    got = [redis.Redis(port=p).execute_command("SLOWLOG", "GET", "4")
           for p in (sp.broker.redis_port, sp.peer_port)]
    shown = [[e[3] for e in g] for g in got]
    assert shown[0] == shown[1]
    assert shown[0] == [[b"CONFIG", b"SET", b"requirepass", b"(redacted)"],
                        [b"ACL", b"SETUSER", b"(redacted)", b"(redacted)", b"(redacted)"],
                        [b"HELLO", b"2", b"AUTH", b"(redacted)", b"(redacted)"],
                        [b"AUTH", b"(redacted)", b"(redacted)"]]
    sp.theirs("ACL", "DELUSER", "someone")


def test_latency_as_redis(sp):
    for args in (("LATEST",), ("HISTORY", "command"), ("RESET",), ("RESET", "command", "x"),
                 ("HELP",), ("NOSUCH",), ("GRAPH", "command"), ("HISTORY",)):
        sp.same("LATENCY", *args)
    sp.same("CONFIG", "SET", "latency-monitor-threshold", "1")
    sp.same("CONFIG", "GET", "latency-monitor-threshold")
    # A command slow enough makes a sample: XRANGE of 4 MiB of entries, a few ms even in a
    # release build (tried a bounded number of times, on a machine shared with other work).
    exchange(sp.ours, [("XADD", "lat", "*", "f", "v" * 1000) for _ in range(4000)])
    r = redis.Redis(port=sp.broker.redis_port)
    for _ in range(20):
        assert len(r.xrange("lat")) == 4000
        latest = {e[0]: e[1:] for e in r.execute_command("LATENCY", "LATEST")}
        if b"command" in latest:
            break
    assert set(latest) <= {b"command", b"fast-command"}  # the XADDs may make samples too
    when, last, worst = latest[b"command"]
    assert abs(when - time.time()) < 60 and 1 <= last <= worst
    hist = r.execute_command("LATENCY", "HISTORY", "command")
    assert hist and hist[-1][1] == last and all(ms >= 1 for _, ms in hist)
    r.close()
    assert sp.ours("LATENCY", "RESET") == b":%d\r\n" % len(latest)
    assert sp.ours("LATENCY", "LATEST") == b"*0\r\n"


def test_redis_cli_latency(sp):
    """redis-cli --latency (PINGs for a second) works against the broker."""
    p = subprocess.run(["redis-cli", "-p", str(sp.broker.redis_port), "--latency", "--raw"],
                       capture_output=True, timeout=20)
    assert p.returncode == 0, p.stderr
    lo, hi, avg, n = p.stdout.split()
    assert int(n) > 0 and float(avg) >= 0 and int(hi) >= int(lo)


# ---------------------------------------------------------------------------------------------
# TIME, ROLE, WAIT


def test_time_role_wait(sp):
    a, b = sp.both("TIME")
    parts = [x for x in a.split(b"\r\n") if x and x[:1] not in b"*$"]
    assert len(parts) == 2 and abs(int(parts[0]) - time.time()) < 60 and int(parts[1]) < 10**6
    assert a.startswith(b"*2\r\n$") and b.startswith(b"*2\r\n$")
    sp.same("ROLE")
    sp.same("WAIT", "0", "0")
    sp.same("WAIT", "1", "50")
    for args in (("x", "0"), ("0", "x"), ("0", "-1"), ("0",)):
        sp.same("WAIT", *args)
    for conn in sp:
        conn("HELLO", "3")
    sp.same("ROLE")
    r = redis.Redis(port=sp.broker.redis_port)
    assert r.execute_command("ROLE") == [b"master", 0, []]
    assert r.wait(0, 0) == 0
    assert abs(r.time()[0] - time.time()) < 60


# ---------------------------------------------------------------------------------------------
# CONFIG GET / SET


@pytest.mark.parametrize("args", [
    ("SET", "nosuchparam", "1"),
    ("SET", "databases", "2"),
    ("SET", "slowlog-max-len", "-1"),
    ("SET", "slowlog-max-len", "abc"),
    ("SET", "slowlog-log-slower-than", "-2"),
    ("SET", "latency-monitor-threshold", "-1"),
    ("SET", "slowlog-max-len", "5", "slowlog-max-len", "6"),
    ("SET", "slowlog-max-len", "5", "nosuch", "6"),
    ("SET", "databases", "2", "nosuch", "6"),
    ("SET", "nosuch", "6", "databases", "2"),
    ("SET", "slowlog-max-len", "5", "a", "b", "c"),
    ("SET", "slowlog-max-len", "x", "latency-monitor-threshold", "y"),
    ("SET", "latency-monitor-threshold", "y", "slowlog-max-len", "x"),
    ("SET", *["slowlog-max-len", "1"] * 40),
    ("SET", "slowlog-max-len"),
    ("GET",),
    ("GET", "MAXMEMORY"),
    ("GET", "slowlog-max-len", "SLOWLOG-MAX-LEN"),
    ("GET", "latency-monitor-threshold"),
    ("GET", "nosuch*"),
    ("NOSUCH",),
])
def test_config_as_redis(sp, args):
    sp.same("CONFIG", *args)


def test_config_set_several(sp):
    sp.same("CONFIG", "SET", "slowlog-max-len", "7", "slowlog-log-slower-than", "12345",
            "latency-monitor-threshold", "3")
    for p in ("slowlog-max-len", "slowlog-log-slower-than", "latency-monitor-threshold"):
        sp.same("CONFIG", "GET", p)
    # All or none: a bad value leaves the others unchanged.
    sp.same("CONFIG", "SET", "slowlog-max-len", "9", "slowlog-log-slower-than", "x")
    sp.same("CONFIG", "GET", "slowlog-max-len")
    r = redis.Redis(port=sp.broker.redis_port)
    assert r.config_set("slowlog-max-len", 11) is True
    assert r.config_get("slowlog-*") == {"slowlog-max-len": "11",
                                         "slowlog-log-slower-than": "12345"}


# ---------------------------------------------------------------------------------------------
# MONITOR


MON_LINE = re.compile(rb'^\+(\d+)\.(\d{6}) \[0 127\.0\.0\.1:(\d+)\] (.*)$')


def monitor_lines(conn, n, timeout=10):
    lines = []
    deadline = time.time() + timeout
    while len(lines) < n:
        assert time.time() < deadline, lines
        lines.append(conn._line()[:-2])
    return lines


def test_monitor_as_redis(sp):
    mons = sp.connect()
    for m in mons:
        assert m("MONITOR") == b"+OK\r\n"
    cmds = [("ECHO", "a b"), ("XLEN", 'q"uo\te\x01\xff'), ("AUTH", "x", "y"),
            ("MULTI",), ("ECHO", "in"), ("EXEC",), ("CLIENT", "LIST"), ("NOSUCH",),
            ("HELLO", "2", "AUTH", "u", "p"), ("PING",)]
    for conn in sp:
        exchange(conn, cmds)
    # Administrative and refused commands are not shown; AUTH's arguments are redacted; the
    # commands of a transaction come at EXEC, before it.
    want = 9  # every command above but CLIENT LIST and NOSUCH, and the marker ECHO
    got = [monitor_lines(m, want) for m in mons]
    for lines in got:
        for line in lines:
            assert MON_LINE.match(line), line
    tails = [[MON_LINE.match(x).group(4) for x in lines] for lines in got]
    assert tails[0] == tails[1]
    assert tails[0][2] == b'"AUTH" "(redacted)" "(redacted)"'
    assert tails[0][1] == b'"XLEN" "q\\"uo\\te\\x01\\xc3\\xbf"'
    # A command of another connection, on another loop, is seen too.
    other = Conn(sp.broker.redis_port)
    other("ECHO", "from-other")
    line = monitor_lines(mons[0], 1)[0]
    assert line.endswith(b'"ECHO" "from-other"')
    assert MON_LINE.match(line).group(3) == str(other.s.getsockname()[1]).encode()
    # CLIENT LIST shows the monitor with flags O, as Redis does.
    lines = [bulk_text(c("CLIENT", "LIST")) for c in sp]
    for text in lines:
        flags = [parse_line(x)["flags"] for x in text.strip().split("\n")]
        assert "O" in flags
    for m in mons:
        m.close()
    other.close()


def test_redis_cli_monitor(sp):
    p = subprocess.Popen(["redis-cli", "-p", str(sp.broker.redis_port), "monitor"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 10
        seen = b""
        r = redis.Redis(port=sp.broker.redis_port)
        while b"monitored-by-cli" not in seen:
            assert time.time() < deadline, seen
            r.echo("monitored-by-cli")
            os.set_blocking(p.stdout.fileno(), False)
            time.sleep(0.1)
            chunk = p.stdout.read()
            if chunk:
                seen += chunk
        assert re.search(rb'\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "ECHO" "monitored-by-cli"', seen)
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_monitor_output_is_bounded(tmp_path):
    """A monitor that reads nothing is closed once redis.monitor.buffer.bytes of lines wait for
    it; the broker goes on serving everyone else."""
    b = Broker(str(tmp_path / "data"), redis=True,
               extra=["--set", "redis.monitor.buffer.bytes=65536"]).start()
    try:
        m = socket.socket()
        m.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        m.connect(("127.0.0.1", b.redis_port))
        m.sendall(encode("MONITOR"))
        time.sleep(0.2)
        c = Conn(b.redis_port)
        arg = "z" * 1000
        deadline = time.time() + 30
        closed = False
        while not closed:
            assert time.time() < deadline, "the monitor was never closed"
            c.send(*(["ECHO", arg]))
            for _ in range(199):
                c.send("ECHO", arg)
            for _ in range(200):
                c.reply()
            closed = "closing monitor" in b.stderr()
        assert c("PING") == b"+PONG\r\n"
        # What the monitor gets is a prefix of lines, then the end of the connection.
        m.settimeout(10)
        data = b""
        while True:
            chunk = m.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"+OK\r\n")
        assert len(data) < 16 << 20
        c.close()
    finally:
        b.stop()
