"""Following one entity with Server-Sent Events (docs/http-api.md#follow-a-keys-events):
GET /v1/topics/{t}/keys/{key}/events with Accept: text/event-stream sends the key's events from
from_version, then its new ones as they are appended (by HTTP and Redis), never another key's
(also one of the same partition), resumes after Last-Event-ID, and is refused without a key
index; curl as an EventSource-like client, and http.client."""
import http.client
import json
import subprocess
import time

import pytest
import redis
import requests

from conftest import Broker


@pytest.fixture
def hb(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True, redis=True,
               extra=["--set", "http.sse.heartbeat.ms=300"]).start()
    yield b
    if b.proc:
        b.stop()


def url(b, path):
    return f"http://127.0.0.1:{b.http_port}{path}"


def produce(b, topic, key, value):
    r = requests.post(url(b, f"/v1/topics/{topic}/events"), json=[{"key": key, "value": value}],
                      timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["offsets"][0]


class Sse:
    """An SSE stream read with http.client: events as dicts of their fields."""

    def __init__(self, b, path, headers=None):
        self.c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=10)
        self.c.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        self.r = self.c.getresponse()

    def next(self, deadline=10):
        end = time.time() + deadline
        ev = {}
        while time.time() < end:
            line = self.r.readline()
            assert line, "the stream ended"
            line = line.decode().rstrip("\r\n")
            if line.startswith(":"):
                continue
            if not line:
                if ev:
                    return ev
                continue
            k, _, v = line.partition(": ")
            ev[k] = v
        raise AssertionError("no event in time")

    def close(self):
        self.c.close()


def two_keys_of_one_partition(b, topic):
    """Two keys the murmur2 partitioner puts in one partition (as HTTP produce shows)."""
    seen = {}
    for i in range(64):
        key = f"k{i}"
        p = produce(b, "probe", key, {})["partition"]
        if p in seen:
            return seen[p], key, p
        seen[p] = key
    raise AssertionError("no two keys in one partition")


def test_follow_one_key(hb):
    for name in ("acc", "probe"):
        r = requests.post(url(hb, "/v1/topics"), json={"name": name, "partitions": 3,
                                                       "config": {"key.index": "true"}},
                          timeout=10)
        assert r.status_code == 201, r.text
    mine, other, part = two_keys_of_one_partition(hb, "probe")
    offs = []
    for i in range(4):
        offs.append(produce(hb, "acc", mine, {"i": i})["offset"])
        produce(hb, "acc", other, {"o": i})
    s = Sse(hb, f"/v1/topics/acc/keys/{mine}/events?from_version={offs[1]}")
    assert s.r.status == 200 and s.r.getheader("Content-Type") == "text/event-stream"
    hello = s.next()
    assert hello["event"] == "subscribed"
    h = json.loads(hello["data"])
    assert h == {"topic": "acc", "partition": part, "version": offs[-1], "resumed": False,
                 "key": mine}
    # The existing events from the version, then a live one; the other key's never.
    got = [json.loads(s.next()["data"]) for _ in range(3)]
    assert [e["offset"] for e in got] == offs[1:]
    assert all(e["key"] == mine for e in got)
    produce(hb, "acc", other, {"o": "live"})
    live = produce(hb, "acc", mine, {"i": "live"})
    ev = s.next()
    e = json.loads(ev["data"])
    assert e["offset"] == live["offset"] and e["value"] == {"i": "live"} and e["key"] == mine
    assert ev["id"] == f"acc/{part}/{e['offset']};acc:{part}={e['offset'] + 1}"
    # Appended through Redis, with a condition: delivered too.
    rc = redis.Redis(port=hb.redis_port)
    rc.xadd(f"acc/{part}", {"tidings-key": mine, "tidings-expected-version": str(e["offset"]),
                            "via": "redis"})
    e2 = json.loads(s.next()["data"])
    assert e2["key"] == mine and e2["value"] == {"via": "redis"}
    last_id = ev["id"]
    # Idle (the other key's events are not ours): heartbeat comments keep the connection.
    produce(hb, "acc", other, {"o": "idle"})
    assert s.r.readline() == b": heartbeat\n"
    s.close()
    # Resume after the live event: the Redis one and what came since, nothing twice.
    produce(hb, "acc", mine, {"i": "after"})
    s2 = Sse(hb, f"/v1/topics/acc/keys/{mine}/events", headers={"Last-Event-ID": last_id})
    h2 = json.loads(s2.next()["data"])
    assert h2["resumed"] is True
    back = [json.loads(s2.next()["data"]) for _ in range(2)]
    assert [b["value"] for b in back] == [{"via": "redis"}, {"i": "after"}]
    s2.close()
    rc.close()


def test_follow_with_curl_and_refusals(hb):
    r = requests.post(url(hb, "/v1/topics"), json={"name": "plain", "partitions": 1}, timeout=10)
    assert r.status_code == 201
    r = requests.get(url(hb, "/v1/topics/plain/keys/k/events"),
                     headers={"Accept": "text/event-stream"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "no_key_index"
    r = requests.get(url(hb, "/v1/topics/nope/keys/k/events"),
                     headers={"Accept": "text/event-stream"}, timeout=10)
    assert r.status_code == 404
    r = requests.post(url(hb, "/v1/topics"), json={"name": "ks", "partitions": 1,
                                                   "config": {"key.index": "true"}}, timeout=10)
    assert r.status_code == 201
    r = requests.get(url(hb, "/v1/topics/ks/keys/k/events"),
                     headers={"Accept": "text/event-stream", "Last-Event-ID": "garbage;;"},
                     timeout=10)
    assert r.status_code == 400
    produce(hb, "ks", "k", {"n": 1})
    produce(hb, "ks", "j", {"n": 2})
    p = subprocess.Popen(["curl", "-sN", "--max-time", "20", "-H", "Accept: text/event-stream",
                          url(hb, "/v1/topics/ks/keys/k/events")], stdout=subprocess.PIPE)
    try:
        lines = []
        deadline = time.time() + 15
        sent = False
        while time.time() < deadline:
            line = p.stdout.readline().decode()
            assert line, "curl's stream ended"
            lines.append(line)
            if line.startswith("data: ") and '"offset"' in line:
                if not sent:
                    produce(hb, "ks", "j", {"n": 3})
                    produce(hb, "ks", "k", {"n": 4})
                    sent = True
                elif '"n":4' in line:
                    break
        datas = [json.loads(x[6:]) for x in lines if x.startswith("data: ") and '"offset"' in x]
        assert [d["value"]["n"] for d in datas] == [1, 4]
    finally:
        p.kill()
        p.wait()
    # Without the Accept header, the same route is the JSON page.
    assert requests.get(url(hb, "/v1/topics/ks/keys/k/events"), timeout=10).json()["version"] == 3
