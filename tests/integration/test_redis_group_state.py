"""Redis consumer-group state in the internal state topic __xgroup_state (docs/redis.md,
"Durability of group changes"; docs/storage.md, "State topics"), with redis-py: XINFO and
XPENDING the same after a graceful restart, nothing answered lost by kill -9 under an
XREADGROUP/XACK load, and a data directory written by the broker from before the state topic
(main's binary, TIDINGS_OLD_BIN) migrated at first start."""
import os
import signal
import sqlite3
import threading
import time

import pytest
import redis

import conftest
from conftest import Broker
from test_redis import client, rb  # noqa: F401 (rb is the broker fixture)

OLD_BIN = os.environ.get("TIDINGS_OLD_BIN", "/work/main/build/debug/tidings")
MIGRATED = "migrated the Redis consumer groups"


def ids_of(entries):
    return [i for i, _ in entries]


def group_state(r, key):
    """What clients see of a stream's groups, without the fields that change with the clock
    (idle times), which are checked apart: never smaller after a restart."""
    groups, idle = [], {}
    for g in r.xinfo_groups(key):
        name = g["name"]
        groups.append(sorted((k, v) for k, v in g.items()))
        cons = []
        for c in r.xinfo_consumers(key, name):
            idle[(name, c["name"])] = c["idle"]
            cons.append((c["name"], c["pending"]))
        groups.append(cons)
        summary = r.xpending(key, name)
        groups.append(sorted((k, str(v)) for k, v in summary.items()))
        rows = r.xpending_range(key, name, "-", "+", 100000)
        groups.append([(x["message_id"], x["consumer"], x["times_delivered"]) for x in rows])
        for x in rows:
            idle[(name, x["message_id"])] = x["time_since_delivered"]
    return groups, idle


def make_groups(r):
    """Groups in every shape: deliveries, acks, claims, a deleted consumer, one created
    without reading, a SETID, a queue policy and a group that never read."""
    ids = [r.xadd("s", {"n": str(i)}) for i in range(40)]
    r.xgroup_create("s", "g", "0")
    r.xgroup_create("s", "h", ids[9])
    r.xgroup_create("s", "third", "$")
    r.xreadgroup("g", "alice", {"s": ">"}, count=15)
    r.xreadgroup("g", "bob", {"s": ">"}, count=10)
    r.xreadgroup("h", "carol", {"s": ">"}, count=3)
    r.xack("s", "g", ids[0], ids[3], ids[17])
    r.xclaim("s", "g", "bob", 0, [ids[5], ids[6]])
    r.xreadgroup("g", "dave", {"s": ">"}, count=2)
    r.xgroup_delconsumer("s", "g", "dave")
    r.xgroup_createconsumer("s", "h", "idle-one")
    r.xgroup_setid("s", "h", ids[20])
    r.execute_command("XGROUP", "POLICY", "s", "h", "ack.timeout.ms", "600000")
    r.xreadgroup("g", "alice", {"s": "0"}, count=2)  # history: delivered once more
    return ids


def test_restart_replays_what_clients_saw(rb):
    r = client(rb)
    ids = make_groups(r)
    # Redis's entries-read counters (docs/redis.md, "Entries read and lag"): set by ENTRIESREAD,
    # counted by reads, unknown (nil) after SETID without it, and lags estimated or nil once an
    # entry ahead is deleted.
    r.xgroup_create("s", "counted", ids[4], entries_read=5)
    r.xreadgroup("counted", "erin", {"s": ">"}, count=3)
    r.xgroup_create("s", "unknown", "0")
    r.xdel("s", ids[35])
    reads = {g["name"]: (g["entries-read"], g["lag"]) for g in r.xinfo_groups("s")}
    assert reads[b"counted"] == (8, None) and reads[b"unknown"] == (None, None)
    assert reads[b"g"][0] == 27 and reads[b"h"][0] is None
    before, idle_before = group_state(r, "s")
    policy = r.execute_command("XGROUP", "POLICY", "s", "h")
    assert len(before) == 20 and policy
    for sig in (signal.SIGTERM, signal.SIGKILL):
        rb.stop(sig)
        rb.start()
        r = client(rb)
        after, idle_after = group_state(r, "s")
        assert after == before
        assert idle_after.keys() == idle_before.keys()
        assert all(idle_after[k] >= idle_before[k] for k in idle_before)
        assert r.execute_command("XGROUP", "POLICY", "s", "h") == policy
    # The state topic is internal: hidden from SCAN-like listings, refused to clients.
    assert b"__xgroup_state" not in r.keys("*")
    with pytest.raises(redis.ResponseError):
        r.xadd("__xgroup_state", {"x": "1"})


def test_kill9_under_xreadgroup_and_xack_loses_nothing_answered(rb):
    r = client(rb)
    total = 3000
    pipe = r.pipeline(transaction=False)
    for i in range(total):
        pipe.xadd("load", {"n": str(i)})
    pipe.execute()
    r.xgroup_create("load", "g", "0")
    delivered, acked, tried = set(), set(), set()  # tried: acks sent, answered or not
    lock = threading.Lock()
    stop = threading.Event()

    def worker(name):
        c = client(rb)
        try:
            while not stop.is_set():
                got = c.xreadgroup("g", name, {"load": ">"}, count=20)
                if not got or not got[0][1]:
                    return
                ids = ids_of(got[0][1])
                with lock:
                    delivered.update(ids)
                half = ids[: len(ids) // 2]  # the rest stays pending
                with lock:
                    tried.update(half)
                if half and c.xack("load", "g", *half) == len(half):
                    with lock:
                        acked.update(half)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    deadline = time.time() + 20
    while time.time() < deadline:
        with lock:
            if len(delivered) >= total // 3:
                break
        time.sleep(0.01)
    rb.stop(signal.SIGKILL)  # mid-load: replies in flight are not answered
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(delivered) >= total // 3 and acked
    rb.start()
    r = client(rb)
    pending = {x["message_id"] for x in r.xpending_range("load", "g", "-", "+", total)}
    # Every acknowledgement answered stands; every delivery answered is pending unless an
    # acknowledgement of it was sent (one in flight at the kill may or may not stand).
    assert not (pending & acked)
    assert delivered - tried <= pending
    assert len(delivered - tried) > 0
    # Nothing delivered before is delivered again as new.
    rest = r.xreadgroup("g", "after", {"load": ">"})
    again = set(ids_of(rest[0][1])) if rest else set()
    assert not (again & delivered)
    assert len(again | delivered | pending) == total


@pytest.mark.skipif(not os.access(OLD_BIN, os.X_OK), reason="no binary from before the change")
def test_old_data_directory_is_migrated(tmp_path, monkeypatch):
    data = str(tmp_path / "data")
    monkeypatch.setattr(conftest, "BIN", OLD_BIN)
    old = Broker(data, redis=True).start()
    r = client(old)
    make_groups(r)
    r.xdel("s", r.xrange("s", count=40)[30][0])  # XDEL's rows stay in the catalog
    before, _ = group_state(r, "s")
    xinfo = r.xinfo_stream("s")
    old.stop()
    monkeypatch.undo()  # the binary under test from here on
    if os.path.exists(os.path.join(data, "topics", "__xgroup_state")):
        pytest.skip(f"{OLD_BIN} already keeps the groups in __xgroup_state")
    for _ in range(2):
        b = Broker(data, redis=True).start()
        r = client(b)
        after, _ = group_state(r, "s")
        assert after == before
        x = r.xinfo_stream("s")
        assert x["length"] == xinfo["length"] and x["max-deleted-entry-id"] == xinfo[
            "max-deleted-entry-id"]
        b.stop()
        # Migrated at the first start only: the second found no rows (one log, appended to).
        assert b.stderr().count(MIGRATED) == 1


def test_old_catalog_rows_written_by_sqlite_are_migrated(tmp_path):
    """The same without an old binary: the rows the old broker wrote (catalog.md's xgroups,
    xconsumers, xpending) put into the catalog with Python's sqlite3 while the broker is
    stopped."""
    data = str(tmp_path / "data")
    b = Broker(data, redis=True).start()
    r = client(b)
    ids = [r.xadd("s", {"n": str(i)}) for i in range(6)]
    b.stop()
    db = sqlite3.connect(os.path.join(data, "catalog.db"))
    (tid,) = db.execute("SELECT id FROM topics WHERE name='s'").fetchone()
    now = int(time.time() * 1000)

    def sid(i):
        ms, seq = ids[i].split(b"-")
        return int(ms), int(seq)

    db.execute("INSERT INTO xgroups VALUES(?,0,?,?,?,?,?)", (tid, b"g", *sid(4), now - 5000,
                                                             ""))
    db.execute("INSERT INTO xconsumers VALUES(?,0,?,?,?)", (tid, b"g", b"ann", now - 1000))
    db.execute("INSERT INTO xconsumers VALUES(?,0,?,?,?)", (tid, b"g", b"ben", now - 2000))
    for i, who, n in ((1, b"ann", 1), (3, b"ben", 4), (4, b"ann", 2)):
        db.execute("INSERT INTO xpending VALUES(?,0,?,?,?,?,?,?)",
                   (tid, b"g", *sid(i), who, now - 3000, n))
    db.commit()
    db.close()
    for start in range(2):
        b.start()
        r = client(b)
        g = r.xinfo_groups("s")
        assert [(x["name"], x["consumers"], x["pending"], x["last-delivered-id"]) for x in g] == [
            (b"g", 2, 3, ids[4])]
        assert [(c["name"], c["pending"]) for c in r.xinfo_consumers("s", "g")] == [
            (b"ann", 2), (b"ben", 1)]
        rows = r.xpending_range("s", "g", "-", "+", 10)
        assert [(x["message_id"], x["consumer"], x["times_delivered"]) for x in rows] == [
            (ids[1], b"ann", 1), (ids[3], b"ben", 4), (ids[4], b"ann", 2)]
        assert all(x["time_since_delivered"] >= 3000 for x in rows)
        b.stop()
        assert b.stderr().count(MIGRATED) == 1
        db = sqlite3.connect(os.path.join(data, "catalog.db"))
        assert db.execute("SELECT count(*) FROM xgroups").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM xpending").fetchone() == (0,)
        db.close()
    # The group goes on from its migrated last delivered ID.
    b.start()
    assert ids_of(client(b).xreadgroup("g", "ann", {"s": ">"})[0][1]) == [ids[5]]
    b.stop()


def fsyncs(b):
    """The broker's group commits so far (tidings_fsync_duration_seconds_count)."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=10)
    c.request("GET", "/metrics", headers={"Host": "localhost"})
    text = c.getresponse().read().decode()
    c.close()
    for line in text.splitlines():
        if line.startswith("tidings_fsync_duration_seconds_count"):
            return float(line.split()[-1])
    raise AssertionError("no fsync count in /metrics")


def test_pipelined_and_exec_acks_are_durable_when_answered(rb):
    """XACKs sent together (a pipeline, or one MULTI/EXEC) go on running while the saves of
    earlier ones wait, and are answered once their saves are durable: at least one group commit
    ran before the answers, and nothing acked is pending after kill -9 (docs/redis.md,
    "Durability of group changes"). How many fsyncs they share depends on the machine's speed:
    bench/queue.sh measures it (the Redis path over 16 streams, XACKs pipelined)."""
    r = client(rb)
    ids = [r.xadd("s", {"n": str(i)}) for i in range(400)]
    r.xgroup_create("s", "g", "0")
    assert len(r.xreadgroup("g", "c", {"s": ">"}, count=400)[0][1]) == 400
    before = fsyncs(rb)
    p = r.pipeline(transaction=False)
    for i in ids[:200]:
        p.xack("s", "g", i)
    assert p.execute() == [1] * 200
    assert fsyncs(rb) - before >= 1
    before = fsyncs(rb)
    p = r.pipeline(transaction=True)
    for i in ids[200:]:
        p.xack("s", "g", i)
    assert p.execute() == [1] * 200
    assert fsyncs(rb) - before >= 1
    assert r.xpending("s", "g")["pending"] == 0
    # Durable when answered: after kill -9 nothing acked is pending again.
    rb.stop(signal.SIGKILL)
    rb.start()
    assert client(rb).xpending("s", "g")["pending"] == 0
