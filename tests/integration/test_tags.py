"""Event tags over HTTP (docs/event-sourcing.md#tags): events with "tags" (stored as tidings-tag
headers), a condition over tags ({"condition": {"tags": [...], "after": P}}, alone or with keys),
the 409 naming the tag and its version, nothing of a refused request written, the limits, and
the tags' index after a restart; concurrent writers over overlapping tag boundaries (threads):
no lost update, checked from the log."""
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


def create(b, name, partitions=1):
    r = requests.post(url(b, "/v1/topics"),
                      json={"name": name, "partitions": partitions,
                            "config": {"fsync": "none", "key.index": "true",
                                       "segment.bytes": "4096"}}, timeout=10)
    assert r.status_code == 201, r.text


def produce(b, topic, body, s=None):
    return (s or requests).post(url(b, f"/v1/topics/{topic}/events"), json=body, timeout=30)


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


def tags_of(ev):
    hs = ev.get("headers") or {}
    if isinstance(hs, dict):
        return [v for k, v in hs.items() if k == "tidings-tag"]
    return [h["value"] for h in hs if h["key"] == "tidings-tag"]


def test_condition_over_tags(hb):
    create(hb, "courses")
    pad = "p" * 300  # several segments: the sealed ones' index files answer too
    evs = [{"key": f"e-{i}", "value": {"pad": pad},
            "tags": ["course:c1"] if i % 2 else ["student:s1"]} for i in range(30)]
    r = produce(hb, "courses", evs)
    assert r.status_code == 200, r.text
    sub = [{"key": "sub-1", "value": {"type": "Subscribed"},
            "tags": ["course:c1", "student:s1"]}]
    # c1's version is 29, s1's 28: after 28, c1 changed.
    r = produce(hb, "courses", {"events": sub,
                                "condition": {"tags": ["student:s1", "course:c1"], "after": 28}})
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "wrong_expected_version"
    assert err["condition_tag"] == 1 and err["tag"] == "course:c1"
    assert err["current_version"] == 29 and err["after"] == 28 and err["partition"] == 0
    assert "condition tag 1 'course:c1'" in err["message"]
    assert len(log(hb, "courses")) == 30  # nothing written
    r = produce(hb, "courses", {"events": sub,
                                "condition": {"tags": ["student:s1", "course:c1"], "after": 29}})
    assert r.status_code == 200, r.text
    assert r.json()["offsets"] == [{"partition": 0, "offset": 30}]
    last = log(hb, "courses")[-1]
    assert sorted(tags_of(last)) == ["course:c1", "student:s1"]
    # The tag's events through the index: every odd one, then the subscription; paged.
    r = requests.get(url(hb, "/v1/topics/courses/tags/course:c1/events"),
                     params={"limit": 10}, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == 30 and body["partition"] == 0
    assert [e["offset"] for e in body["events"]] == list(range(1, 20, 2))
    r = requests.get(url(hb, "/v1/topics/courses/tags/course:c1/events"),
                     params={"from_version": body["next_version"], "limit": 100}, timeout=10)
    assert [e["offset"] for e in r.json()["events"]] == list(range(21, 30, 2)) + [30]
    r = requests.get(url(hb, "/v1/topics/courses/tags/nobody/events"), timeout=10)
    assert r.status_code == 200 and r.json()["events"] == [] and r.json()["version"] == "no_stream"
    r = requests.get(url(hb, "/v1/topics/courses/tags/e-1/events"), timeout=10)  # a key, not a tag
    assert r.json()["events"] == []
    # A key of a tag's bytes is another thing: no event has the key course:c1.
    r = produce(hb, "courses", {"events": [{"key": "x", "value": 1}],
                                "condition": {"keys": ["course:c1"], "after": "no_stream"}})
    assert r.status_code == 200, r.text
    # Keys and tags together: the key's version (sub-1 at 30) after 29 comes first.
    r = produce(hb, "courses", {"events": [{"key": "y", "value": 2}],
                                "condition": {"keys": ["sub-1"], "tags": ["course:c1"],
                                              "after": 29}})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["condition_key"] == 0 and "tag" not in r.json()["error"]
    # Restart: the same answers from the index files and the rebuilt active segment.
    hb.stop()
    hb.start()
    r = produce(hb, "courses", {"events": sub,
                                "condition": {"tags": ["course:c1"], "after": 29}})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["current_version"] == 30
    r = produce(hb, "courses", {"events": sub,
                                "condition": {"tags": ["course:c1", "course:c9"], "after": 31}})
    assert r.status_code == 200, r.text


def test_malformed_tags(hb):
    create(hb, "t")
    bad_events = [
        [{"value": 1, "tags": "a"}],
        [{"value": 1, "tags": [""]}],
        [{"value": 1, "tags": [1]}],
        [{"value": 1, "tags": ["x" * 257]}],
        [{"value": 1, "tags": [f"t{i}" for i in range(17)]}],
        [{"value": 1, "headers": {"tidings-tag": ""}}],
    ]
    for evs in bad_events:
        r = produce(hb, "t", evs)
        assert r.status_code == 400, (evs, r.text)
    r = produce(hb, "t", [{"value": 1, "tags": [f"t{i}" for i in range(16)]}])
    assert r.status_code == 200, r.text
    bad_conds = [{"tags": [], "after": 0}, {"tags": "a", "after": 0}, {"tags": [""], "after": 0},
                 {"keys": ["k"] * 60, "tags": ["t"] * 5, "after": 0}, {"after": 0},
                 {"tags": [2], "after": 0}]
    for c in bad_conds:
        r = produce(hb, "t", {"events": [{"value": 1}], "condition": c})
        assert r.status_code == 400, (c, r.text)
    assert len(log(hb, "t")) == 1
    r = requests.get(url(hb, "/v1/topics/t/tags/" + "x" * 257 + "/events"), timeout=10)
    assert r.status_code == 400, r.text
    r = requests.get(url(hb, "/v1/topics/t/tags/t3/events"), params={"partition": 0}, timeout=10)
    assert r.status_code == 200 and [e["offset"] for e in r.json()["events"]] == [0]


def test_concurrent_tag_boundaries_lose_no_update(hb):
    """Four writers, each command one keyless event tagged with 2 or 3 of four accounts, on the
    condition that none of its tags changed after the position it read (from the log)."""
    create(hb, "bank")
    accounts = [f"acct-{i}" for i in range(4)]
    writers, commands = 4, 15
    bad = []

    def boundary(w, c):
        n = 3 if (w + c) % 3 == 0 else 2
        return [accounts[(w + c + i) % 4] for i in range(n)]

    def version(s, tags):
        evs = log(hb, "bank")
        pos = -1
        for ev in evs:
            if set(tags_of(ev)) & set(tags):
                pos = ev["offset"]
        return pos

    def run(w):
        s = requests.Session()
        done = 0
        for _ in range(400):
            if done == commands:
                return
            tags = boundary(w, done)
            pos = version(s, tags)
            body = {"events": [{"value": {"w": w, "c": done, "pos": pos}, "tags": tags}],
                    "condition": {"tags": tags, "after": pos if pos >= 0 else "no_stream",
                                  "partition": 0}}
            r = produce(hb, "bank", body, s)
            if r.status_code == 200:
                done += 1
            elif r.status_code != 409 or r.json()["error"]["current_version"] <= pos:
                bad.append(r.text)
                return
        bad.append(f"writer {w} did not finish")

    th = [threading.Thread(target=run, args=(w,)) for w in range(writers)]
    for t in th:
        t.start()
    for t in th:
        t.join(timeout=300)
    assert not bad, bad[:3]
    last, per = {}, [0] * writers
    for ev in log(hb, "bank"):
        v = ev["value"]
        assert v["c"] == per[v["w"]]
        per[v["w"]] += 1
        tags = tags_of(ev)
        assert sorted(tags) == sorted(boundary(v["w"], v["c"]))
        for t in tags:
            assert last.get(t, -1) <= v["pos"]  # no event of the boundary after the position read
            last[t] = ev["offset"]
    assert per == [commands] * writers
