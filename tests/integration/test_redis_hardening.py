"""Hardening of the Redis listener (issue 19): stream keys that name no single partition, HTTP
requests sent to the Redis port (cross-protocol scripting), and blocked readers whose stream or
group goes away, whichever protocol removes it (docs/redis.md)."""
import socket
import threading
import time

import pytest
import redis

from test_http import call
from test_redis import Raw, client, rb  # noqa: F401 (rb is the broker fixture)


def err(fn, *args, **kw):
    with pytest.raises(redis.ResponseError) as e:
        fn(*args, **kw)
    return str(e.value)


def test_xread_on_a_key_that_names_no_partition(rb):
    """XREAD and XREADGROUP on the bare name of a topic with several partitions, or on a
    partition the topic does not have, answer an error: the topic reference taken for the key is
    released once (it was released twice, which crashed the broker)."""
    st, _, _ = call(rb, "POST", "/v1/topics", {"name": "orders", "partitions": 3})
    assert st in (200, 201)
    r = client(rb)
    r.xadd("rz", {"a": "1"})
    r.xgroup_create("rz", "g", "0")
    # The reproduction, inline as nc sends it.
    raw = Raw(rb)
    raw.send(b"XREAD STREAMS orders 0\r\n")
    assert raw.read_until(b"\r\n") == (
        b"-ERR topic 'orders' has 3 partitions: name one as the stream key orders/<partition> "
        b"(0 to 2)\r\n")
    raw.close()
    for _ in range(3):  # each time a reference would be released once too often
        assert "has 3 partitions" in err(r.xread, {"orders": "0"})
        assert "has 3 partitions" in err(r.xread, {"orders": "0"}, block=100)
        # A partition the topic does not have is a key of its own, which does not exist.
        assert r.xread({"rz/1": "0"}) == []
        long = "k" * 250  # its topic name would be too long: refused
        assert "invalid stream key" in err(r.xread, {long: "0"}, block=0)
        # A key that is fine first, then one that is not: the first's reference goes once.
        assert "has 3 partitions" in err(r.xread, {"rz": "0", "orders": "0"})
        assert "invalid stream key" in err(r.xread, {"rz": "0", long: "$"}, block=0)
        assert "has 3 partitions" in err(r.xreadgroup, "g", "c", {"orders": ">"})
        assert "invalid stream key" in err(r.xreadgroup, "g", "c", {"rz": ">", long: ">"},
                                           block=0)
        assert "invalid stream key" in err(r.xread, {"rz": "0", long: "0"})
    # The topics are intact and the broker serves on (the fixture's stop checks for a
    # sanitizer report).
    assert r.xlen("rz") == 1
    assert r.xread({"rz": "0"})[0][0] == b"rz"
    assert r.xadd("orders/2", {"b": "2"})
    assert len(r.xread({"orders/2": "0"})[0][1]) == 1
    st, _, _ = call(rb, "DELETE", "/v1/topics/orders")
    assert st in (200, 204)
    assert r.exists("orders") == 0


# ---------------------------------------------------------------------------------------------
# Cross-protocol requests

XPROTO_WARNING = ("Possible SECURITY ATTACK detected. It looks like somebody is sending POST or "
                  "Host: commands to Redis. This is likely due to an attacker attempting to use "
                  "Cross Protocol Scripting to compromise your Redis instance.")


def send_and_drain(b, data):
    """Sends data on a new connection; what came back before the broker closed it (None if it
    did not close it within 10 s)."""
    s = socket.create_connection(("127.0.0.1", b.redis_port), timeout=10)
    s.sendall(data)
    got = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return got
            got += chunk
    except socket.timeout:
        return None
    except ConnectionResetError:
        return got
    finally:
        s.close()


def test_http_request_to_the_redis_port_runs_nothing(rb):
    """An HTTP request's lines are not run as commands: the connection is closed at its first
    POST or Host: line, as Redis does."""
    r = client(rb)
    # The reproduction: a POST whose body is commands.
    body = b"XADD xproto * injected yes\r\nQUIT\r\n"
    got = send_and_drain(rb, b"POST / HTTP/1.1\r\nHost: 127.0.0.1:6379\r\nContent-Length: %d"
                             b"\r\n\r\n%s" % (len(body), body))
    assert got == b""  # closed, nothing answered
    # A GET has no POST line: it is an unknown command, and Host: closes before the body.
    got = send_and_drain(rb, b"GET / HTTP/1.1\r\nHost: 127.0.0.1:6379\r\n\r\n"
                             b"XADD xproto2 * injected yes\r\n")
    assert got is not None and b"injected" not in got and b"OK" not in got
    # Multibulk, any case, with arguments or none; inside MULTI; each closes at once.
    for req in (b"*3\r\n$4\r\npost\r\n$1\r\n/\r\n$8\r\nHTTP/1.1\r\n*4\r\n$4\r\nXADD\r\n"
                b"$7\r\nxproto3\r\n$1\r\n*\r\n$1\r\na\r\n",
                b"*1\r\n$5\r\nhOsT:\r\nXADD xproto3 * a 1\r\n",
                b"MULTI\r\nXADD xproto3 * a 1\r\nHOST: x\r\nEXEC\r\n",
                b"post\r\nXADD xproto3 * a 1\r\n"):
        got = send_and_drain(rb, req)
        assert got is not None and b"xproto3" not in got, req
    for key in ("xproto", "xproto2", "xproto3"):
        assert r.exists(key) == 0, key
    # A name that only looks like them is an unknown command, and the connection goes on.
    raw = Raw(rb)
    raw.send(b"HOST\r\nPOSTS x\r\nPING\r\n")
    assert raw.read_until(b"+PONG\r\n").count(b"-ERR unknown command") == 2
    assert r.echo("Host:") == b"Host:" and r.echo("POST") == b"POST"  # as arguments: fine
    raw.close()
    # Six attempts above, one warning (at most one a minute), with the peer's address.
    err_text = rb.stderr()
    assert err_text.count(XPROTO_WARNING) == 1, err_text[-3000:]
    assert "Connection from 127.0.0.1:" in err_text
    assert r.ping() is True


def test_http_request_before_auth_and_a_flood(tmp_path):
    """Before AUTH too (Redis checks before authentication); a flood of such connections is
    closed one by one, logs one line, and other clients go on."""
    from conftest import Broker
    b = Broker(str(tmp_path / "data"), http=True, redis=True,
               extra=["--set", "redis.password=s3cret"]).start()
    try:
        got = send_and_drain(b, b"POST / HTTP/1.1\r\nHost: localhost\r\n\r\nAUTH s3cret\r\n"
                                b"XADD xproto * a 1\r\n")
        assert got == b""
        for _ in range(200):
            assert send_and_drain(b, b"POST /x HTTP/1.1\r\n") == b""
        r = client(b, password="s3cret")
        assert r.exists("xproto") == 0 and r.ping() is True
        assert b.stderr().count("Possible SECURITY ATTACK detected") == 1
    finally:
        b.stop()


# ---------------------------------------------------------------------------------------------
# Blocked readers whose stream or group goes away

def blocked_count(r):
    return int(r.info("clients")["blocked_clients"])


def wait_blocked(r, n):
    deadline = time.time() + 10
    while blocked_count(r) != n:
        assert time.time() < deadline, f"blocked_clients is {blocked_count(r)}, not {n}"
        time.sleep(0.02)


class Blocked:
    """A command run on its own connection in a thread; .result or .error once answered."""

    def __init__(self, b, *args):
        self.result = self.error = None
        self.done = threading.Event()
        self.c = client(b)
        self.c.ping()
        self.th = threading.Thread(target=self.run, args=args, daemon=True)
        self.th.start()

    def run(self, *args):
        try:
            self.result = self.c.execute_command(*args)
        except redis.ResponseError as e:
            self.error = str(e)
        except redis.RedisError as e:  # a timeout: never answered
            self.error = "client: " + repr(e)
        self.done.set()

    def wait(self, timeout=5):
        """Answered within timeout (the socket's own timeout is 10 s)."""
        assert self.done.wait(timeout), "not answered"
        self.c.close()
        return self


def nogroup(key, group):
    return (f"NOGROUP No such key '{key}' or consumer group '{group}' in XREADGROUP with "
            f"GROUP option")


def kafka_delete(b, topic):
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    a.delete_topics([topic])[topic].result(10)


@pytest.mark.parametrize("how", ["del", "unlink", "http", "kafka", "destroy"])
def test_blocked_xreadgroup_answered_when_stream_or_group_goes(rb, how):
    """XREADGROUP BLOCK 0 is answered at once with Redis 7.2's NOGROUP when its stream is
    deleted (by any protocol) or its group destroyed; the broker wakes it, not the next
    entry."""
    r = client(rb)
    r.xgroup_create("jobs", "g", "$", mkstream=True)
    r.xadd("other", {"x": "1"})
    r.xgroup_create("other", "g", "$")
    bl = Blocked(rb, "XREADGROUP", "GROUP", "g", "alice", "BLOCK", "0", "STREAMS", "other",
                 "jobs", ">", ">")
    wait_blocked(r, 1)
    if how == "del":
        assert r.delete("jobs") == 1
    elif how == "unlink":
        assert r.unlink("jobs") == 1
    elif how == "http":
        assert call(rb, "DELETE", "/v1/topics/jobs")[0] in (200, 204)
    elif how == "kafka":
        kafka_delete(rb, "jobs")
    else:
        assert r.xgroup_destroy("jobs", "g") == 1
    bl.wait()
    assert bl.error == nogroup("jobs", "g"), bl.error
    assert blocked_count(r) == 0
    # The other stream's entry was not delivered in an error: nothing is pending there.
    assert r.xpending("other", "g")["pending"] == 0


def test_blocked_xreadgroup_answered_after_flushall(tmp_path):
    from conftest import Broker
    b = Broker(str(tmp_path / "data"), http=True, redis=True,
               extra=["--set", "redis.allow.flush=true"]).start()
    try:
        r = client(b)
        r.xgroup_create("s", "g", "$", mkstream=True)
        bl = Blocked(b, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
        wait_blocked(r, 1)
        assert r.flushall() is True
        assert bl.wait().error == nogroup("s", "g")
    finally:
        b.stop()


def test_blocked_xread_waits_for_the_recreated_stream(rb):
    """A blocked XREAD whose stream is deleted keeps waiting, and the next XADD to the key
    (a new topic) answers it, as in Redis."""
    r = client(rb)
    r.xadd("feed", {"old": "1"})
    last = r.xadd("feed2", {"old": "1"})
    dollar = Blocked(rb, "XREAD", "BLOCK", "0", "STREAMS", "feed", "$")
    explicit = Blocked(rb, "XREAD", "BLOCK", "0", "STREAMS", "feed2", last)
    wait_blocked(r, 2)
    assert r.delete("feed") == 1
    assert call(rb, "DELETE", "/v1/topics/feed2")[0] in (200, 204)
    time.sleep(0.3)
    assert not dollar.done.is_set() and not explicit.done.is_set()
    assert blocked_count(r) == 2
    new = r.xadd("feed", {"new": "2"})
    [[key, [(i, fields)]]] = dollar.wait().result
    assert (key, i, fields) == (b"feed", new, {b"new": b"2"})
    new2 = r.xadd("feed2", {"new": "3"})
    [[key, [(i, fields)]]] = explicit.wait().result
    assert (key, i, fields) == (b"feed2", new2, {b"new": b"3"})
    assert blocked_count(r) == 0


def test_blocked_xreadgroup_delivers_nothing_in_an_error(rb):
    """One transaction adds an entry to one stream of a blocked XREADGROUP and destroys the
    group of its other stream: the reader gets NOGROUP, and the entry is not delivered (pending)
    in a reply that the client never sees as entries."""
    r = client(rb)
    for key in ("a", "b"):
        r.xgroup_create(key, "g", "$", mkstream=True)
    bl = Blocked(rb, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "a", "b", ">",
                 ">")
    wait_blocked(r, 1)
    p = r.pipeline(transaction=True)
    p.xadd("a", {"x": "1"})
    p.xgroup_destroy("b", "g")
    p.execute()
    assert bl.wait().error == nogroup("b", "g")
    assert r.xpending("a", "g")["pending"] == 0
    assert len(r.xreadgroup("g", "c", {"a": ">"})[0][1]) == 1  # still there for the group


def test_block_with_the_largest_timeout(rb):
    """XREAD BLOCK with a timeout near 2^63 ms waits (as long as the client wants), and an append
    answers it: the timer's due time was the loop's clock plus the timeout, which overflowed
    (undefined behaviour; the sanitizer build stopped the broker)."""
    r = client(rb)
    r.xadd("big-block", {"a": "1"})
    raw = Raw(rb)
    raw.send(b"XREAD BLOCK 9223372036854775807 STREAMS big-block $\r\n")
    wait_blocked(r, 1)
    r.xadd("big-block", {"b": "2"})
    assert b"big-block" in raw.read_until(b"\r\n2\r\n")
    raw.close()
    assert r.ping()
    assert rb.alive()
