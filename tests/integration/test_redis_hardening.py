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
