"""Conditional appends over a set of keys over HTTP (docs/event-sourcing.md, "Consistency
boundaries"): POST /v1/topics/{t}/events with {"events": [...], "condition": {"keys": [...],
"after": P}}, a 409 naming the key that changed and its version, nothing of a refused batch
written, the one-partition rule, malformed conditions; and concurrent writers over overlapping
boundaries of 2-3 keys (requests, threads): no lost update, checked from the log."""
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


def create(b, name, partitions=1, keyed=True, s=None):
    cfg = {"fsync": "none"}
    if keyed:
        cfg["key.index"] = "true"
    r = requests.post(url(b, "/v1/topics"),
                      json={"name": name, "partitions": partitions, "config": cfg}, timeout=10)
    assert r.status_code == 201, r.text


def produce(b, topic, body, s=None):
    return (s or requests).post(url(b, f"/v1/topics/{topic}/events"), json=body, timeout=30)


def cond_body(events, keys, after, **extra):
    return {"events": events, "condition": {"keys": keys, "after": after, **extra}}


def log(b, topic, partition=0):
    out, off = [], 0
    for _ in range(1000):
        r = requests.get(url(b, f"/v1/topics/{topic}/events"),
                         params={"partition": partition, "offset": off, "limit": 1000}, timeout=30)
        assert r.status_code == 200, r.text
        evs = r.json()["events"]
        if not evs:
            return out
        out += evs
        off = evs[-1]["offset"] + 1
    raise AssertionError("log too long")


def end(b, topic, partition=0):
    evs = log(b, topic, partition)
    return evs[-1]["offset"] + 1 if evs else 0


def test_condition_over_keys(hb):
    create(hb, "courses")
    # A course and a student, written by other commands.
    r = produce(hb, "courses", [{"key": "course-c1", "value": {"type": "CourseDefined",
                                                               "capacity": 2}},
                                {"key": "student-s1", "value": {"type": "StudentRegistered"}}])
    assert r.status_code == 200, r.text
    pos = max(o["offset"] for o in r.json()["offsets"])  # 1: the boundary read
    sub = [{"key": "course-c1", "value": {"type": "Subscribed", "student": "s1"}},
           {"key": "student-s1", "value": {"type": "Subscribed", "course": "c1"}}]
    r = produce(hb, "courses", cond_body(sub, ["course-c1", "student-s1"], pos))
    assert r.status_code == 200, r.text
    assert [o["offset"] for o in r.json()["offsets"]] == [2, 3]
    # The same decision again, on the boundary as read before: refused, naming the first key
    # that changed and its version; nothing of the two events written.
    r = produce(hb, "courses", cond_body(sub, ["course-c1", "student-s1"], pos))
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "wrong_expected_version"
    assert err["condition_key"] == 0 and err["key"] == "course-c1"
    assert err["current_version"] == 2 and err["after"] == pos and err["partition"] == 0
    assert "condition key 0 'course-c1'" in err["message"]
    assert "offsets" not in r.json()
    r = produce(hb, "courses", cond_body(sub, ["student-s9", "student-s1"], 2))
    assert r.status_code == 409
    assert r.json()["error"]["condition_key"] == 1
    assert r.json()["error"]["current_version"] == 3
    assert end(hb, "courses") == 4
    # New entities: "no_stream", none of the keys has an event.
    r = produce(hb, "courses", cond_body([{"key": "course-c2", "value": 1}],
                                         ["course-c2", "student-s2"], "no_stream"))
    assert r.status_code == 200, r.text
    r = produce(hb, "courses", cond_body([{"key": "student-s2", "value": 1}],
                                         ["course-c2", "student-s2"], "no_stream"))
    assert r.status_code == 409
    assert r.json()["error"]["after"] == "no_stream"
    # With per-event expected versions: checked first, the 409 names the event.
    r = produce(hb, "courses", cond_body([{"key": "course-c1", "value": 1,
                                           "expected_version": 0}], ["course-c1"], 1000))
    assert r.status_code == 409
    assert r.json()["error"]["index"] == 0 and "condition_key" not in r.json()["error"]
    r = produce(hb, "courses", cond_body([{"key": "course-c1", "value": 1,
                                           "expected_version": 2}], ["course-c1"], 2))
    assert r.status_code == 200, r.text
    # A body with events and no condition: a plain produce; and the old shapes still work.
    r = produce(hb, "courses", {"events": [{"key": "x", "value": 1}]})
    assert r.status_code == 200, r.text
    assert produce(hb, "courses", {"key": "x", "value": 2}).status_code == 200
    assert produce(hb, "courses", [{"key": "x", "value": 3}]).status_code == 200


def test_one_partition_and_refusals(hb):
    create(hb, "multi", partitions=4)
    # Keys of several partitions (murmur2 of 4): refused, nothing written.
    keys = [f"k-{i}" for i in range(8)]
    r = produce(hb, "multi", cond_body([{"key": "k-0", "value": 1}], keys, "no_stream"))
    assert r.status_code == 400, r.text
    assert "one partition until transactions exist" in r.json()["error"]["message"]
    r = produce(hb, "multi", cond_body([{"key": "k-0", "value": 1}, {"key": "k-1", "value": 1},
                                        {"key": "k-2", "value": 1}], ["k-0"], "no_stream"))
    # k-0..k-2 do not all hash to k-0's partition (else the test's keys need changing)
    assert r.status_code == 400, r.text
    assert "the condition's partition is" in r.json()["error"]["message"]
    assert sum(end(hb, "multi", p) for p in range(4)) == 0
    # A named partition: the keys' streams there; events without a key go there too.
    r = produce(hb, "multi", cond_body([{"value": 1}, {"value": 2}], keys, "no_stream",
                                       partition=2))
    assert r.status_code == 200, r.text
    assert [o["partition"] for o in r.json()["offsets"]] == [2, 2]
    # Without key.index: refused, never ignored.
    create(hb, "plain", keyed=False)
    r = produce(hb, "plain", cond_body([{"key": "a", "value": 1}], ["a"], 0))
    assert r.status_code == 400 and r.json()["error"]["code"] == "no_key_index", r.text
    # Malformed.
    bad = [
        {"events": [{"key": "a"}], "condition": {"keys": [], "after": 0}},
        {"events": [{"key": "a"}], "condition": {"keys": ["a"] * 65, "after": 0}},
        {"events": [{"key": "a"}], "condition": {"keys": ["a", 3], "after": 0}},
        {"events": [{"key": "a"}], "condition": {"keys": ["a"]}},
        {"events": [{"key": "a"}], "condition": {"keys": ["a"], "after": -1}},
        {"events": [{"key": "a"}], "condition": {"keys": ["a"], "after": "any"}},
        {"events": [{"key": "a"}], "condition": {"keys": ["a"], "after": 0, "partition": -1}},
        {"events": [{"key": "a"}], "condition": {"keys": ["a"], "after": 0, "tags": "a"}},
        {"events": [{"key": "a"}], "condition": {"keys": ["a"], "after": 0, "tagz": []}},
        {"events": [{"key": "a"}], "condition": ["a"]},
        {"events": [{"key": "a"}], "condition": {"keys": ["a"], "after": 0}, "extra": 1},
        {"events": [], "condition": {"keys": ["a"], "after": 0}},
        {"events": {"key": "a"}, "condition": {"keys": ["a"], "after": 0}},
    ]
    for body in bad:
        r = produce(hb, "multi", body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["code"] == "invalid_argument", r.text
    r = produce(hb, "multi", cond_body([{"key": "a"}], ["a"] * 64, 1000, partition=9))
    assert r.status_code == 404, r.text


WRITERS = 4


def test_concurrent_boundaries_lose_no_update(hb):
    """Writers each decide on a boundary of 2-3 of four accounts: read the boundary's position
    (the highest version of its keys), append one event per key on "none changed after it",
    and on a 409 read again and retry. From the log: every command once and whole, and no event
    of a boundary's keys between the position its command read and its own offset."""
    create(hb, "bank")
    accounts = [f"acct-{i}" for i in range(4)]
    per = 40
    errors, conflicts = [], [0] * WRITERS

    def version(s, key):
        r = s.get(url(hb, f"/v1/topics/bank/keys/{key}/events"), params={"limit": 1},
                  timeout=30)
        assert r.status_code == 200, r.text
        v = r.json()["version"]
        return -1 if v == "no_stream" else v

    def writer(wid):
        s = requests.Session()
        try:
            for cmd in range(per):
                n = 3 if (wid + cmd) % 3 == 0 else 2
                keys = [accounts[(wid + cmd + i) % 4] for i in range(n)]
                for _ in range(1000):
                    pos = max(version(s, k) for k in keys)
                    evs = [{"key": k, "value": {"w": wid, "c": cmd, "i": i, "pos": pos,
                                                "keys": keys}} for i, k in enumerate(keys)]
                    r = produce(hb, "bank", cond_body(evs, keys,
                                                      pos if pos >= 0 else "no_stream"), s)
                    if r.status_code == 200:
                        break
                    assert r.status_code == 409, r.text
                    assert r.json()["error"]["current_version"] > pos
                    conflicts[wid] += 1
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
    evs = log(hb, "bank")
    last = {}
    seen, i = [0] * WRITERS, 0
    while i < len(evs):
        v = evs[i]["value"]
        keys = v["keys"]
        assert v["c"] == seen[v["w"]] and v["i"] == 0  # each command once, in order
        for k in keys:  # no lost update
            assert last.get(k, -1) <= v["pos"], (k, last.get(k), v)
        for j, k in enumerate(keys):  # whole: its events consecutive
            e = evs[i + j]
            assert e["key"] == k and e["value"]["w"] == v["w"] and e["value"]["c"] == v["c"]
            assert e["value"]["i"] == j
            last[k] = e["offset"]
        seen[v["w"]] += 1
        i += len(keys)
    assert seen == [per] * WRITERS
    assert sum(conflicts) > 0
