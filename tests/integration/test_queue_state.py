"""Queue-group state in the internal topic __queue_state on a real broker: SIGKILL while
consumers ack concurrently (no answered ack is lost, nothing acked comes back, nothing is
lost but events whose ack was sent and not answered, which either outcome may have), the state replayed after a graceful restart, and an older data directory's catalog
rows migrated at the first start."""
import signal
import sqlite3
import struct
import threading
import time

from conftest import Broker
from test_http import call
from test_queues import describe, outcome, put, receive


def start(tmp_path):
    return Broker(str(tmp_path / "data"), http=True).start()


def restart(b, port):
    b.extra = ["--http", f"127.0.0.1:{port}"]
    b.start()


def drain(b, group, acked, deadline_s=60):
    """Receives and acks until the group is empty; fails on an event of `acked`."""
    got = set()
    end = time.time() + deadline_s
    while time.time() < end:
        evs = receive(b, group, max=100, wait_ms=500)
        if not evs and describe(b, group)["depth"] == 0:
            break
        for e in evs:
            assert e["value"] not in acked, f"acked event {e['value']} came back"
        if evs:
            assert outcome(b, group, "ack", [e["id"] for e in evs]) == ["ok"] * len(evs)
        got |= {e["value"] for e in evs}
    return got


def test_sigkill_under_concurrent_acks(tmp_path):
    b = start(tmp_path)
    try:
        port = b.http_port
        call(b, "POST", "/v1/topics", {"name": "load", "partitions": 4})
        n = 2000
        for i in range(0, n, 500):
            st, _, _ = call(b, "POST", "/v1/topics/load/events",
                            [{"value": v} for v in range(i, i + 500)])
            assert st in (200, 201)
        put(b, "lq", {"topic": "load", "ack_timeout_ms": 1000, "backoff": {"initial_ms": 0},
                      "max_in_flight": 2000})
        acked, lock, stop = set(), threading.Lock(), threading.Event()
        unanswered = set()  # acks sent and not answered: either outcome is right

        def consumer(name):
            while not stop.is_set():
                try:
                    evs = receive(b, "lq", max=20, consumer=name)
                    with lock:
                        unanswered.update(e["value"] for e in evs)
                    res = outcome(b, "lq", "ack", [e["id"] for e in evs]) if evs else []
                except Exception:  # the broker is gone
                    return
                with lock:
                    acked.update(e["value"] for e, r in zip(evs, res) if r == "ok")
                    unanswered.difference_update(e["value"] for e in evs)

        threads = [threading.Thread(target=consumer, args=(f"c{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        end = time.time() + 60
        while time.time() < end:
            with lock:
                if len(acked) >= 600:
                    break
            time.sleep(0.01)
        b.stop(signal.SIGKILL)  # acks and receives in flight
        stop.set()
        for t in threads:
            t.join(30)
        assert len(acked) >= 600
        restart(b, port)
        after = drain(b, "lq", acked)
        assert after <= set(range(n))
        missing = set(range(n)) - acked - after
        assert missing <= unanswered, f"lost: {sorted(missing - unanswered)[:20]}"
    finally:
        stop.set()
        if b.proc:
            b.stop()


def test_state_replayed_after_restart(tmp_path):
    b = start(tmp_path)
    try:
        port = b.http_port
        call(b, "POST", "/v1/topics", {"name": "r"})
        call(b, "POST", "/v1/topics/r/events", [{"value": i} for i in range(10)])
        put(b, "rq", {"topic": "r", "ack_timeout_ms": 60000, "max_deliveries": 9})
        evs = receive(b, "rq", max=6)
        assert outcome(b, "rq", "ack", [e["id"] for e in evs[:3]]) == ["ok"] * 3
        assert outcome(b, "rq", "nack", [evs[3]["id"]], delay_ms=0,
                       error="kept") == ["ok"]
        before = describe(b, "rq")
        b.stop()
        restart(b, port)
        now = describe(b, "rq")
        for k in ("depth", "in_flight", "waiting", "policy", "created_ms"):
            assert now[k] == before[k], k
        # The nacked one first, with its count; the two in flight stay in flight (60 s).
        evs2 = receive(b, "rq", max=10)
        assert evs2[0]["value"] == evs[3]["value"] and evs2[0]["deliveries"] == 2
        assert sorted(e["value"] for e in evs2[1:]) == [6, 7, 8, 9]
    finally:
        if b.proc:
            b.stop()


def legacy_entry(offset, at, deliveries, state, error=b""):
    return struct.pack("<qqqqqQiBBH", offset, at, 0, 0, 0, 0, deliveries, state, 0,
                       len(error)) + error


def test_old_catalog_rows_are_migrated(tmp_path):
    """Rows as versions before __queue_state wrote them, migrated at the first start and gone
    from the catalog; the group goes on from its saved state."""
    b = start(tmp_path)
    try:
        port = b.http_port
        call(b, "POST", "/v1/topics", {"name": "old"})
        call(b, "POST", "/v1/topics/old/events", [{"value": i} for i in range(6)])
        b.stop()
        db = sqlite3.connect(str(tmp_path / "data" / "catalog.db"))
        tid = db.execute("SELECT id FROM topics WHERE name='old'").fetchone()[0]
        now = int(time.time() * 1000)
        blob = legacy_entry(1, now, 1, 2, b"it failed") + legacy_entry(3, now + 3600000, 1, 1)
        db.execute("INSERT INTO queues VALUES('oq', 'old', 'ack.timeout.ms=60000\n', 77)")
        db.execute("INSERT INTO queue_parts VALUES('oq', 'old', 0, ?, 1, 4, ?)", (tid, blob))
        db.commit()
        db.close()
        restart(b, port)
        d = describe(b, "oq")
        assert d["created_ms"] == 77 and d["depth"] == 4  # 1 waiting, 3 in flight, 4 and 5
        evs = receive(b, "oq", max=10)
        assert [(e["value"], e["deliveries"]) for e in evs] == [(1, 2), (4, 1), (5, 1)]
        db = sqlite3.connect(str(tmp_path / "data" / "catalog.db"))
        assert db.execute("SELECT count(*) FROM queues").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM queue_parts").fetchone()[0] == 0
        db.close()
    finally:
        if b.proc:
            b.stop()
