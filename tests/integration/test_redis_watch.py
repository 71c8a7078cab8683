"""WATCH and UNWATCH (docs/redis.md#transactions): optimistic locks on stream keys, compared
byte for byte with a real redis-server 7.0 for the same sequences of two connections, and
changes made through Kafka and HTTP, which abort a watching transaction as an XADD does."""
import redis

from redis_peer import Conn, pair, peer  # noqa: F401 (fixtures)
from test_http import call
from test_kafka_clients import kcat


def watched_exec(pair, setup, change, resp3=False):
    """Both servers: setup commands, WATCH s on one connection, `change` on another (or on the
    same when it starts with 'self:'), then MULTI / XLEN s / EXEC; every reply compared."""
    for cmd in setup:
        pair.same(*cmd)
    other = pair.connect()
    if resp3:
        pair.both("HELLO", "3")
    pair.same("WATCH", "s", "t")
    for cmd in change:
        if cmd[0] == "self":
            pair.same(*cmd[1:])
        else:
            a, b = other[0](*cmd), other[1](*cmd)
            assert a == b, (cmd, a, b)
    pair.same("MULTI")
    pair.same("XLEN", "s")
    out = pair.same("EXEC")
    other[0].close()
    other[1].close()
    return out


def test_unchanged_runs_changed_aborts(pair):
    assert watched_exec(pair, [("XADD", "s", "1-1", "a", "1")], []) == b"*1\r\n:1\r\n"
    assert watched_exec(pair, [], [("XADD", "s", "2-1", "a", "1")]) == b"*-1\r\n"
    assert watched_exec(pair, [], [("self", "XADD", "s", "3-1", "a", "1")]) == b"*-1\r\n"
    # A missing key created meanwhile.
    assert watched_exec(pair, [], [("XADD", "t", "1-1", "a", "1")]) == b"*-1\r\n"


def test_what_touches_a_key_in_redis_7_0(pair):
    setup = [("XADD", "s", "1-1", "a", "1"), ("XADD", "s", "2-1", "a", "1")]
    # Group commands, XACK and XSETID do not touch the key in 7.0; XTRIM and XDEL that remove
    # nothing do not either.
    assert watched_exec(pair, setup, [
        ("XGROUP", "CREATE", "s", "g", "0"), ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"),
        ("XACK", "s", "g", "1-1"), ("XSETID", "s", "5-5"), ("XTRIM", "s", "MAXLEN", "10"),
        ("XDEL", "s", "9-9")]) == b"*1\r\n:2\r\n"
    assert watched_exec(pair, [], [("XDEL", "s", "1-1")]) == b"*-1\r\n"
    assert watched_exec(pair, [], [("XTRIM", "s", "MAXLEN", "0")]) == b"*-1\r\n"
    assert watched_exec(pair, [("XADD", "s", "6-1", "a", "1")], [("DEL", "s")]) == b"*-1\r\n"


def test_resp3_null_and_unwatch_discard(pair):
    assert watched_exec(pair, [], [("XADD", "s", "1-1", "a", "1")], resp3=True) == b"_\r\n"
    # UNWATCH, DISCARD and EXEC forget the keys.
    pair.same("WATCH", "s")
    pair.same("UNWATCH")
    pair.same("XADD", "s", "2-1", "a", "1")
    pair.same("MULTI")
    pair.same("XLEN", "s")
    assert pair.same("EXEC") == b"*1\r\n:2\r\n"
    pair.same("WATCH", "s")
    pair.same("MULTI")
    pair.same("DISCARD")
    pair.same("XADD", "s", "3-1", "a", "1")
    pair.same("MULTI")
    assert pair.same("EXEC") == b"*0\r\n"
    # WATCH inside MULTI is refused and the transaction is aborted at EXEC.
    pair.same("MULTI")
    pair.same("WATCH", "s")
    pair.same("EXEC")
    pair.same("WATCH")


def test_kafka_and_http_writes_abort_a_watching_transaction(pair):
    b = pair.broker
    r = redis.Redis(host="127.0.0.1", port=b.redis_port, socket_timeout=10)
    r.xadd("s", {"a": "1"})
    def http_write():
        st, _, _ = call(b, "POST", "/v1/topics/s/events", {"value": "from-http"},
                        headers={"Host": "localhost"})
        assert st in (200, 201), st

    for write in (lambda: kcat(b, "-P", "-t", "s", input=b"from-kafka\n"), http_write):
        with r.pipeline(transaction=True) as p:
            p.watch("s")
            n = p.xlen("s")
            write()
            p.multi()
            p.xadd("s", {"n": str(n)})
            try:
                p.execute()
                raise AssertionError("the transaction ran after another protocol wrote s")
            except redis.WatchError:
                pass
    # Without a write in between the same transaction runs.
    with r.pipeline(transaction=True) as p:
        p.watch("s")
        p.multi()
        p.xlen("s")
        assert p.execute() == [3]
