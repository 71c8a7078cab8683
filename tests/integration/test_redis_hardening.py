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
        assert "has no partition 1" in err(r.xread, {"rz/1": "0"})
        assert "has no partition 7" in err(r.xread, {"orders/7": "0"}, block=0)
        # A key that is fine first, then one that is not: the first's reference goes once.
        assert "has 3 partitions" in err(r.xread, {"rz": "0", "orders": "0"})
        assert "has no partition 1" in err(r.xread, {"rz": "0", "rz/1": "$"}, block=0)
        assert "has 3 partitions" in err(r.xreadgroup, "g", "c", {"orders": ">"})
        assert "has no partition 1" in err(r.xreadgroup, "g", "c", {"rz": ">", "rz/1": ">"},
                                           block=0)
        assert "invalid stream key" in err(r.xread, {"rz": "0", "user:1": "0"})
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
        got = send_and_drain(b, b"POST / HTTP/1.1\r\nHost: x\r\n\r\nAUTH s3cret\r\n"
                                b"XADD xproto * a 1\r\n")
        assert got == b""
        for _ in range(200):
            assert send_and_drain(b, b"POST /x HTTP/1.1\r\n") == b""
        r = client(b, password="s3cret")
        assert r.exists("xproto") == 0 and r.ping() is True
        assert b.stderr().count("Possible SECURITY ATTACK detected") == 1
    finally:
        b.stop()
