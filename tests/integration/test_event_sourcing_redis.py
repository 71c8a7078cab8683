"""Entity streams through Redis (docs/event-sourcing.md#redis): XADD with the fields tidings-key
and tidings-expected-version (a conditional append: -WRONGVERSION with the key and the current
version), XKEYVERSION and XKEYRANGE through the key index, with redis-py; concurrent writers on
one entity (one winner per round, no lost update), MULTI/EXEC, the refusals, the bare key of a
topic of several partitions placed as HTTP places it, and authorization."""
import os
import subprocess
import threading
import time

import pytest
import redis
import requests

from conftest import BIN, Broker

EK, EV = "tidings-key", "tidings-expected-version"


@pytest.fixture
def rb(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True, redis=True).start()
    yield b
    if b.proc:
        b.stop()


def create(b, name, partitions=1, **config):
    cfg = {"key.index": "true", **config}
    r = requests.post(f"http://127.0.0.1:{b.http_port}/v1/topics",
                      json={"name": name, "partitions": partitions, "config": cfg}, timeout=10)
    assert r.status_code == 201, r.text


def http_stream(b, topic, key):
    r = requests.get(f"http://127.0.0.1:{b.http_port}/v1/topics/{topic}/keys/{key}/events",
                     timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def version(r, key, entity):
    return r.execute_command("XKEYVERSION", key, entity)


def keyrange(r, key, entity, start="-", end="+", *more):
    return r.execute_command("XKEYRANGE", key, entity, start, end, *more)


def test_conditional_xadd_and_reads(rb):
    create(rb, "accounts")
    r = redis.Redis(port=rb.redis_port)
    assert version(r, "accounts", "acct-42") is None  # no stream yet
    # Opening: the stream must not exist.
    v0 = r.xadd("accounts", {EK: "acct-42", EV: "no_stream", "type": "Opened", "owner": "ada"})
    assert version(r, "accounts", "acct-42") == v0
    with pytest.raises(redis.ResponseError) as e:
        r.xadd("accounts", {EK: "acct-42", EV: "no_stream", "type": "Opened"})
    msg = str(e.value)
    assert msg.startswith("WRONGVERSION key 'acct-42': expected version no_stream, but the "
                          "stream's version is 0 (ID " + v0.decode() + ")"), msg
    # Other entities in between; the version is the ID of the key's latest event.
    r.xadd("accounts", {EK: "acct-7", "type": "Opened"})
    r.xadd("accounts", {"plain": "entry"})
    v1 = r.xadd("accounts", {EK: "acct-42", EV: v0, "type": "Deposited", "amount": "100"})
    assert version(r, "accounts", "acct-42") == v1
    # Two withdrawals decided on v1: the first wins, the second is told what it missed.
    v2 = r.xadd("accounts", {EK: "acct-42", EV: v1, "type": "Withdrawn", "amount": "80"})
    with pytest.raises(redis.ResponseError) as e:
        r.xadd("accounts", {EK: "acct-42", EV: v1, "type": "Withdrawn", "amount": "80"})
    assert str(e.value) == (f"WRONGVERSION key 'acct-42': expected version {v1.decode()}, but "
                            f"the stream's version is 4 (ID {v2.decode()})")
    # The offset form (HTTP's and Kafka's version) and exists / any.
    with pytest.raises(redis.ResponseError, match="WRONGVERSION .*expected version 3, but"):
        r.xadd("accounts", {EK: "acct-42", EV: "3", "type": "X"})
    v3 = r.xadd("accounts", {EK: "acct-42", EV: "4", "type": "Noted"})
    v4 = r.xadd("accounts", {EK: "acct-42", EV: "exists", "type": "Noted"})
    with pytest.raises(redis.ResponseError, match="expected version exists, but the stream's "
                                                  "version is no_stream"):
        r.xadd("accounts", {EK: "nobody", EV: "exists", "type": "X"})
    v5 = r.xadd("accounts", {EK: "acct-42", EV: "any", "type": "Noted"})
    # An ID no event has is no version.
    with pytest.raises(redis.ResponseError, match="WRONGVERSION"):
        r.xadd("accounts", {EK: "acct-42", EV: "1-1", "type": "X"})
    # Nothing refused was appended: the stream is exactly the accepted events.
    mine = [v0, v1, v2, v3, v4, v5]
    got = keyrange(r, "accounts", "acct-42")
    assert [e[0] for e in got] == mine
    assert got[0][1] == [b"key", b"acct-42", b"type", b"Opened", b"owner", b"ada"]
    assert got[1][1] == [b"key", b"acct-42", b"type", b"Deposited", b"amount", b"100"]
    # XRANGE-shaped: redis-py's parser of XRANGE reads it.
    from redis.client import parse_stream_list
    parsed = parse_stream_list(got)
    assert parsed[2] == (v2, {b"key": b"acct-42", b"type": b"Withdrawn", b"amount": b"80"})
    # From a version (exclusive: what came after it), COUNT, an end bound.
    assert [e[0] for e in keyrange(r, "accounts", "acct-42", "(" + v1.decode())] == mine[2:]
    assert [e[0] for e in keyrange(r, "accounts", "acct-42", v1, "+", "COUNT", 2)] == mine[1:3]
    assert [e[0] for e in keyrange(r, "accounts", "acct-42", "-", v2)] == mine[:3]
    assert keyrange(r, "accounts", "acct-42", "+", "-") == []
    assert keyrange(r, "accounts", "nobody") == []
    assert keyrange(r, "nosuchtopic", "acct-42") == []
    # The same stream over HTTP: the events' keys and values, versions as offsets.
    h = http_stream(rb, "accounts", "acct-42")
    assert [e["offset"] for e in h["events"]] == [0, 3, 4, 5, 6, 7]
    assert h["events"][1]["value"] == {"type": "Deposited", "amount": "100"}
    assert all(e["key"] == "acct-42" for e in h["events"])
    # XRANGE of the stream shows every entity's events and the plain entry, keys as `key`.
    all_ = r.xrange("accounts")
    assert len(all_) == 8 and all_[1][1] == {b"key": b"acct-7", b"type": b"Opened"}
    assert all_[2][1] == {b"plain": b"entry"}
    # A retry of an applied conditional append is refused naming its own event's version.
    cmd = {EK: "acct-42", EV: v5, "type": "Once"}
    v6 = r.xadd("accounts", cmd)
    with pytest.raises(redis.ResponseError, match=f"version is 8 \\(ID {v6.decode()}\\)"):
        r.xadd("accounts", cmd)
    r.close()


def test_keyed_entries_round_trip(rb):
    create(rb, "ents")
    r = redis.Redis(port=rb.redis_port)
    # A key alone is no condition; the binary-safe form (repeated names, bytes) keeps its key.
    i1 = r.execute_command("XADD", "ents", "*", "a", "1", EK, b"k\xff", "a", b"\x00\xfe")
    i2 = r.execute_command("XADD", "ents", "*", EK, "", EV, "no_stream", "x", "y",
                           "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    got = keyrange(r, "ents", b"k\xff")
    assert got == [[i1, [b"key", b"k\xff", b"a", b"1", b"a", b"\x00\xfe"]]]
    got = keyrange(r, "ents", "")  # the empty key is a key
    assert got[0][0] == i2
    assert got[0][1] == [b"key", b"", b"x", b"y", b"traceparent",
                         b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]
    # A field named `key` is an ordinary field (plain XADD is Redis's).
    i3 = r.xadd("ents", {"key": "k", "v": "1"})
    assert r.xrange("ents", i3, i3) == [(i3, {b"key": b"k", b"v": b"1"})]
    assert keyrange(r, "ents", "k") == []
    r.close()


def test_refusals(rb):
    create(rb, "ents")
    r = redis.Redis(port=rb.redis_port)
    r.xadd("plain", {"a": "b"})  # made by XADD: no key index
    cases = [
        (("plain", "*", EK, "k", EV, "exists", "a", "b"),
         "ERR tidings-expected-version needs a topic with key.index=true: topic 'plain' has none"),
        (("missing", "*", EK, "k", EV, "no_stream", "a", "b"),
         "ERR tidings-expected-version needs a topic with key.index=true: the key names none"),
        (("ents", "*", EK, "k", EV, "7x", "a", "b"),
         "ERR tidings-expected-version must be any, no_stream, exists, an offset or a stream ID"),
        (("ents", "*", EV, "exists", "a", "b"), "ERR tidings-expected-version needs the field "
                                                "tidings-key"),
        (("ents", "*", EK, "k", EK, "j", "a", "b"), "ERR the field tidings-key is given twice"),
        (("ents", "5-5", EK, "k", "a", "b"), "ERR tidings-key and tidings-expected-version need "
                                             "the ID *"),
        (("ents", "MAXLEN", "10", "*", EK, "k", "a", "b"), "ERR tidings-key and "
                                                           "tidings-expected-version need the ID *"),
    ]
    for args, want in cases:
        with pytest.raises(redis.ResponseError) as e:
            r.execute_command("XADD", *args)
        # redis-py drops the "ERR " of an error reply
        assert str(e.value).startswith(want[4:]), (args, str(e.value))
    assert r.xlen("ents") == 0 and r.xlen("plain") == 1
    assert not r.exists("missing")
    # Reads by key need the index too.
    for c in (("XKEYRANGE", "plain", "k", "-", "+"), ("XKEYVERSION", "plain", "k")):
        with pytest.raises(redis.ResponseError, match="needs a topic with key.index=true"):
            r.execute_command(*c)
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("XKEYVERSION", "ents")
    with pytest.raises(redis.ResponseError, match="Invalid stream ID"):
        r.execute_command("XKEYRANGE", "ents", "k", "x", "+")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("XKEYRANGE", "ents", "k", "-", "+", "LIMIT", "2")
    # A topic that validates keys takes only keys in the wire format, as from Kafka or HTTP.
    create(rb, "vkeys", **{"key.schema.validation": "true"})
    with pytest.raises(redis.ResponseError, match="schema violation of the key"):
        r.xadd("vkeys", {EK: "plain-key", EV: "no_stream", "a": "b"})
    assert r.xlen("vkeys") == 0
    # NOMKSTREAM of a missing key: nil, as XADD; a key alone creates the stream as XADD does.
    assert r.execute_command("XADD", "missing", "NOMKSTREAM", "*", EK, "k", "a", "b") is None
    assert r.xadd("made", {EK: "k", "a": "b"})
    assert r.xrange("made")[0][1] == {b"key": b"k", b"a": b"b"}
    r.close()


def test_several_partitions_place_keys_as_http(rb):
    create(rb, "orders", partitions=4)
    r = redis.Redis(port=rb.redis_port)
    placed = {}
    for i in range(12):
        key = f"order-{i}"
        r.xadd("orders", {EK: key, EV: "no_stream", "n": str(i)})
        res = requests.post(f"http://127.0.0.1:{rb.http_port}/v1/topics/orders/events",
                            json=[{"key": key, "value": {"n": "http"}}], timeout=10)
        placed[key] = res.json()["offsets"][0]["partition"]
    assert len(set(placed.values())) > 1
    for key, p in placed.items():
        h = http_stream(rb, "orders", key)
        assert h["partition"] == p and len(h["events"]) == 2  # both in the key's partition
        got = keyrange(r, "orders", key)
        assert [f[1][3] for f in got] == [key.split("-")[1].encode(), b"http"]
        assert keyrange(r, f"orders/{p}", key) == got  # the partition named outright
        assert version(r, "orders", key) == got[-1][0]
    # Other stream commands still want the partition named.
    with pytest.raises(redis.ResponseError, match="has 4 partitions"):
        r.xadd("orders", {"a": "b"})
    r.close()


def test_concurrent_writers_one_winner_per_round(rb):
    create(rb, "counters")
    r = redis.Redis(port=rb.redis_port)
    r.xadd("counters", {EK: "c", EV: "no_stream", "n": "0"})
    writers, rounds = 6, 25
    wins = [0] * rounds
    lock = threading.Lock()
    barrier = threading.Barrier(writers, timeout=30)
    errors = []

    def writer(w):
        c = redis.Redis(port=rb.redis_port, socket_timeout=30)
        try:
            for rnd in range(rounds):
                v = version(c, "counters", "c")
                n = int(keyrange(c, "counters", "c", v, v)[0][1][3])
                barrier.wait()  # every writer has read the same version
                try:
                    c.xadd("counters", {EK: "c", EV: v, "n": str(n + 1), "by": str(w)})
                    with lock:
                        wins[rnd] += 1
                except redis.ResponseError as e:
                    assert str(e).startswith("WRONGVERSION key 'c'"), str(e)
                barrier.wait()  # the round is over before anyone reads again
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(repr(e))
            barrier.abort()
        finally:
            c.close()

    ts = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors
    assert wins == [1] * rounds
    # No lost update: every accepted event counted one more.
    ns = [int(e[1][3]) for e in keyrange(r, "counters", "c")]
    assert ns == list(range(rounds + 1))
    r.close()


def test_multi_exec(rb):
    create(rb, "ents")
    r = redis.Redis(port=rb.redis_port)
    v = r.xadd("ents", {EK: "k", EV: "no_stream", "n": "0"})
    p = r.pipeline(transaction=True)
    p.xadd("ents", {EK: "k", EV: v, "n": "1"})
    p.xadd("ents", {EK: "k", EV: v, "n": "2"})  # checked after the first: refused
    p.execute_command("XKEYVERSION", "ents", "k")
    res = p.execute(raise_on_error=False)
    assert isinstance(res[0], bytes) and isinstance(res[1], redis.ResponseError)
    assert str(res[1]).startswith("WRONGVERSION key 'k'") and res[2] == res[0]
    assert [e[1][3] for e in keyrange(r, "ents", "k")] == [b"0", b"1"]
    r.close()


def test_authorization(tmp_path):
    data = str(tmp_path / "b" / "data")
    os.makedirs(os.path.dirname(data), exist_ok=True)
    for name in ("admin", "alice"):
        subprocess.run([BIN, "user", "add", name, "--data", data, "--password-stdin"],
                       input=b"pw-" + name.encode() + b"\n", check=True, capture_output=True,
                       timeout=60)
    b = Broker(data, extra=["--set", "super.users=admin", "--set", "redis.auth=required"],
               http=True, redis=True).start()
    try:
        create(b, "acc")
        admin = redis.Redis(port=b.redis_port, username="admin", password="pw-admin")
        v = admin.xadd("acc", {EK: "k", EV: "no_stream", "a": "1"})
        alice = redis.Redis(port=b.redis_port, username="alice", password="pw-alice")
        for c in (("XKEYRANGE", "acc", "k", "-", "+"), ("XKEYVERSION", "acc", "k"),
                  ("XADD", "acc", "*", EK, "k", EV, v, "a", "2")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                alice.execute_command(*c)
        admin.execute_command("ACL", "SETUSER", "alice", "~acc", "+@read")
        assert alice.execute_command("XKEYVERSION", "acc", "k") == v
        assert len(alice.execute_command("XKEYRANGE", "acc", "k", "-", "+")) == 1
        with pytest.raises(redis.exceptions.NoPermissionError):
            alice.execute_command("XADD", "acc", "*", EK, "k", EV, v, "a", "2")
        assert admin.execute_command("XKEYVERSION", "acc", "k") == v  # nothing appended
        admin.close()
        alice.close()
    finally:
        b.stop()


def test_keyspace_notification(rb):
    create(rb, "orders", partitions=2)
    r = redis.Redis(port=rb.redis_port)
    r.config_set("notify-keyspace-events", "KEA")
    p = r.pubsub()
    p.psubscribe("__keyevent@0__:*")
    assert p.get_message(timeout=5)["type"] == "psubscribe"
    r.xadd("orders", {EK: "o-1", EV: "no_stream", "a": "1"})
    with pytest.raises(redis.ResponseError):
        r.xadd("orders", {EK: "o-1", EV: "no_stream", "a": "1"})  # refused: nothing to tell
    r.xadd("orders/0", {EK: "o-2", "a": "1"})
    got = []
    deadline = time.time() + 10
    while len(got) < 2 and time.time() < deadline:
        m = p.get_message(timeout=1)
        if m and m["type"] == "pmessage":
            got.append((m["channel"], m["data"]))
    # The key as the client wrote it, once per appended entry, as XADD's.
    assert got == [(b"__keyevent@0__:xadd", b"orders"), (b"__keyevent@0__:xadd", b"orders/0")]
    assert p.get_message(timeout=0.5) is None
    p.close()
    r.close()
