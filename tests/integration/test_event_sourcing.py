"""Entity streams over HTTP (docs/event-sourcing.md): reads of one key's events,
GET /v1/topics/{t}/keys/{key}/events, and conditional appends, POST /v1/topics/{t}/events with
"expected_version" per event (409 wrong_expected_version with the current version), including
concurrent writers on one entity (requests, threads): one winner per round, no lost update."""
import json
import subprocess
import threading

import pytest
import requests

from conftest import Broker


@pytest.fixture
def hb(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True).start()
    yield b
    if b.proc:
        b.stop()


def url(b, path):
    return f"http://127.0.0.1:{b.http_port}{path}"


def create(b, name, partitions=3, **config):
    cfg = {"key.index": "true", "fsync": "none", **config}
    r = requests.post(url(b, "/v1/topics"),
                      json={"name": name, "partitions": partitions, "config": cfg}, timeout=10)
    assert r.status_code == 201, r.text


def produce(b, topic, events, s=None):
    return (s or requests).post(url(b, f"/v1/topics/{topic}/events"), json=events, timeout=30)


def read_key(b, topic, key, **params):
    return requests.get(url(b, f"/v1/topics/{topic}/keys/{key}/events"), params=params,
                        timeout=10)


def test_read_one_entity(hb):
    create(hb, "orders", **{"segment.bytes": "4096"})
    mine = []
    for i in range(60):
        r = produce(hb, "orders", [{"key": f"other-{i % 7}", "value": {"i": i}},
                                   {"key": "order-1", "value": {"step": i}}])
        assert r.status_code == 200, r.text
        mine.append(r.json()["offsets"][1])
    part = mine[0]["partition"]
    assert all(m["partition"] == part for m in mine)  # one key, one partition (murmur2)
    r = read_key(hb, "orders", "order-1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["partition"] == part
    assert body["version"] == mine[-1]["offset"]
    evs = body["events"]
    assert [e["offset"] for e in evs] == [m["offset"] for m in mine]
    assert [e["value"] for e in evs] == [{"step": i} for i in range(60)]
    assert all(e["key"] == "order-1" and e["partition"] == part for e in evs)
    assert body["next_version"] == mine[-1]["offset"] + 1
    # Pages: from_version and limit.
    got, frm = [], 0
    for _ in range(20):
        page = read_key(hb, "orders", "order-1", from_version=frm, limit=7).json()
        got += page["events"]
        if not page["events"]:
            break
        frm = page["next_version"]
    assert [e["offset"] for e in got] == [m["offset"] for m in mine]
    page = read_key(hb, "orders", "order-1", from_version=mine[30]["offset"], limit=1).json()
    assert [e["offset"] for e in page["events"]] == [mine[30]["offset"]]
    # With curl too, and an unknown key: an empty stream.
    out = subprocess.run(["curl", "-s", url(hb, "/v1/topics/orders/keys/nobody/events")],
                         capture_output=True, timeout=10, check=True).stdout
    empty = json.loads(out)
    assert empty["events"] == [] and empty["version"] == "no_stream"
    # The table read of the same route family: the latest event, from the same index.
    latest = requests.get(url(hb, "/v1/topics/orders/keys/order-1"), timeout=10).json()
    assert latest["offset"] == mine[-1]["offset"] and latest["value"] == {"step": 59}
    # Another partition holds none of it.
    other = (part + 1) % 3
    assert read_key(hb, "orders", "order-1", partition=other).json()["events"] == []
    # Bad parameters.
    for q in ({"from_version": -1}, {"limit": 0}, {"partition": "x"}):
        r = read_key(hb, "orders", "order-1", **q)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_argument", q
    # A topic without key.index.
    r = requests.post(url(hb, "/v1/topics"), json={"name": "plain", "partitions": 1}, timeout=10)
    assert r.status_code == 201
    r = read_key(hb, "plain", "k")
    assert r.status_code == 400 and r.json()["error"]["code"] == "no_key_index"
    assert "key.index" in r.json()["error"]["message"]
    r = produce(hb, "plain", [{"key": "k", "value": 1, "expected_version": "no_stream"}])
    assert r.status_code == 400 and "key.index" in r.text
    # The stream survives a restart.
    hb.stop()
    hb.start()
    body2 = read_key(hb, "orders", "order-1").json()
    assert body2["version"] == body["version"] and body2["events"] == evs


def test_expected_versions(hb):
    create(hb, "acct", partitions=2)
    r = produce(hb, "acct", {"key": "a", "value": 1, "expected_version": "no_stream"})
    assert r.status_code == 200, r.text
    v = r.json()["offsets"][0]["offset"]
    p = r.json()["offsets"][0]["partition"]
    r = produce(hb, "acct", {"key": "a", "value": 2, "expected_version": "no_stream"})
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "wrong_expected_version" and err["status"] == 409
    assert err["key"] == "a" and err["current_version"] == v and err["index"] == 0
    assert err["expected_version"] == "no_stream" and err["partition"] == p
    assert "a" in err["message"] and str(v) in err["message"]
    r = produce(hb, "acct", {"key": "a", "value": 2, "expected_version": v + 5})
    assert r.status_code == 409 and r.json()["error"]["current_version"] == v
    r = produce(hb, "acct", {"key": "a", "value": 2, "expected_version": v})
    assert r.status_code == 200
    v2 = r.json()["offsets"][0]["offset"]
    for x in ("exists", "any"):
        r = produce(hb, "acct", {"key": "a", "value": x, "expected_version": x})
        assert r.status_code == 200, r.text
    r = produce(hb, "acct", {"key": "zz", "value": 1, "expected_version": "exists"})
    assert r.status_code == 409 and r.json()["error"]["current_version"] == "no_stream"
    # All or nothing in a partition: two events of a, the second's condition fails.
    before = read_key(hb, "acct", "a").json()["version"]
    r = produce(hb, "acct", [{"key": "a", "value": "x", "expected_version": before},
                             {"key": "a", "value": "y", "expected_version": v2}])
    assert r.status_code == 409 and r.json()["error"]["index"] == 1
    assert "offsets" not in r.json()
    assert read_key(hb, "acct", "a").json()["version"] == before
    # Bad values.
    for bad in (-1, "latest", 1.5, None, [1]):
        r = produce(hb, "acct", {"key": "a", "value": 1, "expected_version": bad})
        assert r.status_code == 400 and "expected_version" in r.text, bad
    r = produce(hb, "acct", {"value": 1, "expected_version": "no_stream"})
    assert r.status_code == 400 and "key" in r.json()["error"]["message"]


def test_batch_across_partitions_says_what_was_written(hb):
    create(hb, "multi", partitions=2)
    r = produce(hb, "multi", [{"key": "x", "value": 1, "partition": 0,
                               "expected_version": "no_stream"},
                              {"key": "y", "value": 1, "partition": 1,
                               "expected_version": "exists"}])
    assert r.status_code == 409
    body = r.json()
    assert body["error"]["index"] == 1 and body["error"]["partition"] == 1
    # Partition 0 was appended before partition 1 was refused: the answer says so.
    assert body["offsets"][0] == {"partition": 0, "offset": 0}
    assert body["offsets"][1] == {"partition": -1, "offset": -1}
    assert read_key(hb, "multi", "x", partition=0).json()["version"] == 0
    assert read_key(hb, "multi", "y", partition=1).json()["version"] == "no_stream"


WRITERS = 4


def test_concurrent_writers_rounds(hb):
    """Each round every writer reads the version, then all append expecting it: exactly one
    wins, the others get 409 with the winner's version."""
    create(hb, "bank", partitions=2)
    rounds = 60
    bar = threading.Barrier(WRITERS)
    wins = [[] for _ in range(rounds)]
    losers = [[] for _ in range(rounds)]
    errors = []

    def writer(wid):
        s = requests.Session()
        try:
            for rnd in range(rounds):
                bar.wait(timeout=30)
                v = read_key(hb, "bank", "acct-1", limit=1).json()["version"]
                bar.wait(timeout=30)
                r = produce(hb, "bank", {"key": "acct-1", "value": {"w": wid, "r": rnd},
                                         "expected_version": v}, s)
                if r.status_code == 200:
                    wins[rnd].append((wid, r.json()["offsets"][0]["offset"]))
                elif r.status_code == 409:
                    losers[rnd].append(r.json()["error"]["current_version"])
                else:
                    errors.append(r.text)
                bar.wait(timeout=30)
        except Exception as e:  # reported below, with the barrier broken for the others
            errors.append(repr(e))
            bar.abort()

    ts = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=300)
    assert not errors, errors[:3]
    for rnd in range(rounds):
        assert len(wins[rnd]) == 1, (rnd, wins[rnd])
        assert losers[rnd] == [wins[rnd][0][1]] * (WRITERS - 1)  # told the winner's version


def test_concurrent_commands_lose_no_update(hb):
    """1,000 commands from concurrent writers, each retrying on 409 from the version it is
    given; every event records the version it expected: the chain has no gap."""
    create(hb, "ledger", partitions=2)
    per = 250
    errors, conflicts = [], [0] * WRITERS

    def writer(wid):
        s = requests.Session()
        v = "no_stream"
        try:
            for cmd in range(per):
                for _ in range(10000):
                    r = produce(hb, "ledger", {"key": "acct-1",
                                               "value": {"w": wid, "c": cmd, "saw": v},
                                               "expected_version": v}, s)
                    if r.status_code == 200:
                        v = r.json()["offsets"][0]["offset"]
                        break
                    assert r.status_code == 409, r.text
                    conflicts[wid] += 1
                    v = r.json()["error"]["current_version"]
                else:
                    raise AssertionError("no progress")
        except Exception as e:
            errors.append(repr(e))

    ts = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=600)
    assert not errors, errors[:3]
    evs, frm = [], 0
    for _ in range(100):
        page = read_key(hb, "ledger", "acct-1", from_version=frm, limit=1000).json()
        if not page["events"]:
            break
        evs += page["events"]
        frm = page["next_version"]
    assert len(evs) == WRITERS * per
    prev, seen = "no_stream", [0] * WRITERS
    for e in evs:
        assert e["value"]["saw"] == prev, e  # it saw the event before it: nothing lost
        assert e["value"]["c"] == seen[e["value"]["w"]]
        seen[e["value"]["w"]] += 1
        prev = e["offset"]
    assert sum(conflicts) > 0


def test_kafka_events_are_indexed(tmp_path):
    """Events from any protocol are indexed: a Kafka producer's keyed records read by key."""
    from confluent_kafka import Producer
    b = Broker(str(tmp_path / "data"), http=True).start()
    try:
        create(b, "ks", partitions=3)
        p = Producer({"bootstrap.servers": b.bootstrap, "partitioner": "murmur2_random",
                      "linger.ms": 5})
        for i in range(30):
            p.produce("ks", key=f"cust-{i % 3}", value=f"v{i}")
        assert p.flush(30) == 0
        body = read_key(b, "ks", "cust-1").json()
        assert [e["value_text"] if "value_text" in e else str(e["value"]) for e in body["events"]] \
            == [f"v{i}" for i in range(1, 30, 3)]
        # and the HTTP conditional append sees the Kafka events' version
        r = produce(b, "ks", {"key": "cust-1", "value": 1, "expected_version": body["version"]})
        assert r.status_code == 200, r.text
        r = produce(b, "ks", {"key": "cust-1", "value": 1, "expected_version": body["version"]})
        assert r.status_code == 409
    finally:
        b.stop()
