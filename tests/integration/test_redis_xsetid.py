"""XSETID's ENTRIESADDED and MAXDELETEDID kept as Redis 7.0 keeps them (issue 23, round 2;
docs/redis.md#stream-ids): XINFO STREAM's entries-added and max-deleted-entry-id, and the groups'
entries-read and lag, compared byte for byte with a real redis-server (redis_peer.py) after
XSETID and any mix of XADD, XDEL, XTRIM and XGROUP, also in seeded random sequences; kept across
a restart and a kill -9, counted on by appends from Kafka and HTTP, dropped with the stream.
Then appends through Kafka and HTTP to a stream at the largest ID get those protocols' errors."""
import os
import random
import signal

from redis_peer import Conn, pair, peer  # noqa: F401 (fixtures)

MAX = 18446744073709551615
I64 = 9223372036854775807


def info(pair, key="s"):
    """XINFO STREAM and XINFO GROUPS, each the same as Redis's; returns tidings' replies."""
    return pair.same("XINFO", "STREAM", key), pair.same("XINFO", "GROUPS", key)


def field(reply, name):
    """The value line after a field name in a RESP2 XINFO reply."""
    lines = reply.split(b"\r\n")
    i = lines.index(name.encode())
    return lines[i + 2] if lines[i + 1].startswith(b"$") else lines[i + 1]


def test_xsetid_sets_the_counters(pair):
    """ENTRIESADDED and MAXDELETEDID change XINFO STREAM and the groups' lag as in Redis, and the
    entries added go on counting every XADD after them."""
    for i in range(1, 6):
        pair.same("XADD", "s", f"{i}-1", "f", "v")
    pair.same("XGROUP", "CREATE", "s", "g", "0", "ENTRIESREAD", "0")
    pair.same("XGROUP", "CREATE", "s", "h", "0")
    pair.same("XREADGROUP", "GROUP", "g", "c", "COUNT", "2", "STREAMS", "s", ">")
    info(pair)
    pair.same("XSETID", "s", "9-0", "ENTRIESADDED", "100", "MAXDELETEDID", "3-0")
    st, _ = info(pair)
    assert field(st, "entries-added") == b":100" and field(st, "max-deleted-entry-id") == b"3-0"
    pair.same("XADD", "s", "10-1", "f", "v")
    st, _ = info(pair)
    assert field(st, "entries-added") == b":101"
    pair.same("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">")
    pair.same("XREADGROUP", "GROUP", "h", "c", "COUNT", "1", "STREAMS", "s", ">")
    info(pair)
    # MAXDELETEDID below what XDEL set lowers it; 0-0 leaves it; a later XDEL raises it again.
    pair.same("XDEL", "s", "4-1")
    info(pair)
    pair.same("XSETID", "s", "10-1", "MAXDELETEDID", "1-0")
    info(pair)
    pair.same("XSETID", "s", "10-1", "MAXDELETEDID", "0-0", "ENTRIESADDED", "6")
    info(pair)
    pair.same("XDEL", "s", "2-1")
    info(pair)
    pair.same("XSETID", "s", "10-1", "ENTRIESADDED", "3")  # below the length
    pair.same("XSETID", "s", "10-1", "ENTRIESADDED", "4")
    info(pair)
    # Near the top of the counter: Redis prints its unsigned count signed.
    pair.same("XSETID", "s", "10-1", "ENTRIESADDED", str(I64))
    pair.same("XADD", "s", "11-1", "f", "v")
    info(pair)
    pair.same("XGROUP", "SETID", "s", "h", "0", "ENTRIESREAD", "5")
    info(pair)


def test_empty_streams_and_trims(pair):
    """XSETID on an empty stream (no length check), ENTRIESADDED 0 (a stream never written to,
    for the lag), and XTRIM, which leaves both counters."""
    pair.same("XADD", "s", "1-1", "f", "v")
    pair.same("XADD", "s", "2-1", "f", "v")
    pair.same("XGROUP", "CREATE", "s", "g", "0")
    pair.same("XTRIM", "s", "MAXLEN", "0")
    info(pair)
    pair.same("XSETID", "s", "5-0", "ENTRIESADDED", "0", "MAXDELETEDID", "4-0")
    info(pair)
    pair.same("XADD", "s", "6-1", "f", "v")
    pair.same("XADD", "s", "7-1", "f", "v")
    info(pair)
    pair.same("XTRIM", "s", "MAXLEN", "1")
    info(pair)
    pair.same("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">")
    info(pair)
    # Errors in Redis's order: the options, the key, the top item, the length.
    pair.same("XSETID", "s", "8-0", "ENTRIESADDED", "-1")
    pair.same("XSETID", "s", "8-0", "MAXDELETEDID", "9-0")
    pair.same("XSETID", "s", "8-0", "ENTRIESADDED", "0")
    pair.same("XSETID", "nokey", "8-0", "ENTRIESADDED", "5")
    pair.same("XSETID", "s", "6-0", "ENTRIESADDED", "0")
    info(pair)


def test_random_sequences_as_redis(pair):
    """Seeded random XADD, XDEL, XTRIM (= and ~), XSETID with and without its options, XGROUP
    CREATE/SETID and XREADGROUP: every reply, and XINFO STREAM and XINFO GROUPS after each,
    byte for byte as Redis's."""
    rng = random.Random(int(os.environ.get("TIDINGS_XSETID_SEED", "23")))
    seen = {"set": 0, "refused": 0, "read": 0}
    for key in ("r1", "r2"):
        last, ids, groups = [0, 0], [], []
        pair.same("XADD", key, "1-1", "f", "v")
        last, ids = [1, 1], [(1, 1)]
        for step in range(90):
            op = rng.randrange(12)
            if op < 4:
                ms = last[0] + rng.choice([0, 1, 2])
                seq = last[1] + 1 if ms == last[0] else rng.choice([0, 1])
                r = pair.same("XADD", key, f"{ms}-{seq}", "f", str(step))
                if r.startswith(b"$"):
                    last, ids = [ms, seq], ids + [(ms, seq)]
            elif op == 4 and ids:
                victims = rng.sample(ids, min(len(ids), rng.randrange(1, 3)))
                pair.same("XDEL", key, *[f"{m}-{s}" for m, s in victims])
            elif op == 5:
                pair.same("XTRIM", key, "MAXLEN", rng.choice(["=", "~"]),
                          str(rng.randrange(0, 6)))
            elif op in (6, 7):
                length = int(pair.same("XLEN", key)[1:-2])
                ms = last[0] + rng.choice([0, 0, 1, 5])
                seq = last[1] + (rng.choice([0, 1, 3]) if ms == last[0] else rng.choice([0, 7]))
                args = ["XSETID", key, f"{ms}-{seq}"]
                if rng.random() < 0.7:
                    args += ["ENTRIESADDED", str(rng.choice(
                        [length, length + 1, length + 20, max(length - 1, 0), 0]))]
                if rng.random() < 0.6:
                    args += ["MAXDELETEDID", rng.choice(
                        [f"{ms}-{seq}", f"{max(ms - 1, 0)}-0", "0-0", f"{ms}-{seq + 1}"])]
                if pair.same(*args) == b"+OK\r\n":
                    last = [ms, seq]
                    seen["set"] += len(args) > 3
                else:
                    seen["refused"] += 1
            elif op == 8:
                name = f"g{rng.randrange(3)}"
                start = rng.choice(["0", "$", f"{last[0]}-0", "1-1"])
                extra = ["ENTRIESREAD", str(rng.randrange(0, 30))] if rng.random() < 0.5 else []
                if pair.same("XGROUP", "CREATE", key, name, start, *extra) == b"+OK\r\n":
                    groups.append(name)
            elif op == 9 and groups:
                extra = ["ENTRIESREAD", str(rng.randrange(0, 30))] if rng.random() < 0.5 else []
                pair.same("XGROUP", "SETID", key, rng.choice(groups),
                          rng.choice(["0", "$", f"{last[0]}-0"]), *extra)
            elif groups:
                r = pair.same("XREADGROUP", "GROUP", rng.choice(groups), "c", "COUNT",
                              str(rng.randrange(1, 4)), "STREAMS", key, ">")
                seen["read"] += r.startswith(b"*1")
            info(pair, key)
        pair.same("XRANGE", key, "-", "+")
    # The sequences must exercise what they test: XSETIDs with options taken and refused,
    # groups reading entries.
    assert seen["set"] >= 5 and seen["refused"] >= 2 and seen["read"] >= 5, seen


def test_kept_across_restart_and_kill(pair):
    """The counters XSETID set are the same after a graceful restart and a kill -9 (as Redis's
    after the same commands), and appends through Kafka, HTTP and XADD count on from them."""
    from confluent_kafka import Producer
    from test_http import call
    for i in range(1, 4):
        pair.same("XADD", "s", f"{i}-1", "f", "v")
    pair.same("XGROUP", "CREATE", "s", "g", "0", "ENTRIESREAD", "1")
    pair.same("XDEL", "s", "2-1")
    pair.same("XSETID", "s", "5-0", "ENTRIESADDED", "40", "MAXDELETEDID", "1-5")
    before = info(pair)
    b = pair.broker
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pair.ours.close()
        b.stop(sig)
        b.start()
        pair.ours = Conn(b.redis_port)
        assert info(pair) == before
    # One event from Kafka, one from HTTP, one XADD: 43 entries added, as three XADDs in Redis.
    p = Producer({"bootstrap.servers": b.bootstrap})
    p.produce("s", b"from-kafka")
    assert p.flush(30) == 0
    st, _, _ = call(b, "POST", "/v1/topics/s/events", {"value": "from-http"})
    assert st == 200
    pair.ours("XADD", "s", "*", "f", "v")
    for _ in range(3):
        pair.theirs("XADD", "s", "*", "f", "v")
    ours, theirs = pair.both("XINFO", "GROUPS", "s")
    assert ours == theirs, (ours, theirs)
    st = pair.ours("XINFO", "STREAM", "s")
    assert field(st, "entries-added") == b":43", st
    assert field(st, "max-deleted-entry-id") == b"1-5", st
    pair.ours.close()
    b.stop(signal.SIGKILL)
    b.start()
    pair.ours = Conn(b.redis_port)
    assert field(pair.ours("XINFO", "STREAM", "s"), "entries-added") == b":43"


def test_dropped_with_the_stream(pair):
    """DEL takes the counters with the stream: a new stream of the same key starts from one
    entry added and no deleted ID, also after a restart."""
    pair.same("XADD", "s", "1-1", "f", "v")
    pair.same("XSETID", "s", "5-0", "ENTRIESADDED", "77", "MAXDELETEDID", "3-3")
    pair.same("DEL", "s")
    pair.same("XADD", "s", "1-1", "f", "v")
    before = info(pair)
    b = pair.broker
    pair.ours.close()
    b.stop()
    b.start()
    pair.ours = Conn(b.redis_port)
    assert info(pair) == before


def test_kafka_and_http_appends_at_the_largest_id(pair):
    """After XSETID to the largest ID, a Kafka producer gets INVALID_RECORD (with the reason from
    produce v8) and
    HTTP a 409 stream_exhausted (not UNKNOWN_SERVER_ERROR / 500); nothing is appended and the
    counters stay."""
    from confluent_kafka import KafkaError, Producer
    from test_http import assert_error, call
    pair.same("XADD", "s", "1-1", "f", "v")
    pair.same("XSETID", "s", f"{MAX}-{MAX}", "ENTRIESADDED", "9")
    b = pair.broker
    errors = []
    p = Producer({"bootstrap.servers": b.bootstrap, "message.timeout.ms": 20000})
    p.produce("s", b"refused", on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(30) == 0
    assert len(errors) == 1 and errors[0] is not None, errors
    assert errors[0].code() == KafkaError.INVALID_RECORD, errors[0]
    # The reason on the wire, from Produce v8 (a raw request: librdkafka does not show it).
    import kafkawire as kw
    from test_kafka_idempotence import idem_batch, produce
    c = kw.Conn(b.port)
    err, base, msg = produce(c, "s", idem_batch([b"raw"], -1, -1, -1), version=9)
    assert (err, base) == (KafkaError.INVALID_RECORD, -1) and "exhausted" in msg, (err, msg)
    c.close()
    assert_error(call(b, "POST", "/v1/topics/s/events", {"value": "refused"}), 409,
                 "stream_exhausted", "exhausted the last possible ID")
    pair.same("XADD", "s", "*", "f", "v")
    info(pair)


def test_xsetid_leaves_watched_keys(pair):
    """Redis 7.0's XSETID does not touch watched keys: a transaction after another client's
    XSETID (with MAXDELETEDID) runs, while one after an XDEL is aborted."""
    pair.same("XADD", "s", "1-1", "f", "v")
    pair.same("XADD", "s", "2-1", "f", "v")
    a, b = pair.connect()
    try:
        for other in (("XSETID", "s", "5-0", "ENTRIESADDED", "9", "MAXDELETEDID", "4-0"),
                      ("XDEL", "s", "1-1")):
            pair.same("WATCH", "s")
            assert a(*other) == b(*other)
            pair.same("MULTI")
            pair.same("XLEN", "s")
            pair.same("EXEC")
    finally:
        a.close()
        b.close()
    info(pair)
