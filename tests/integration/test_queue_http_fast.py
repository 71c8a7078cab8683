"""The fast shapes of queue receive and ack over HTTP (docs/http-api.md#queue-groups,
proto/http/queue_wire.c): receives with values in base64 and events equal to what a topic read
gives for every kind of key, value and header; acks, nacks and extends by ranges of offsets with
"results": "failed" and the counts; the plain shape and the slow shapes (escapes) answering
alike; bad ranges refused with the reason; the same bodies over one keep-alive connection;
authorization before any of it."""
import base64
import http.client
import json
import uuid

import pytest
from confluent_kafka import Producer

from conftest import Broker
from test_http import assert_error, call
from test_http_auth import ADMIN_PW, BOB_PW, ab, certs, curl  # noqa: F401 (fixtures)


@pytest.fixture
def qb(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True).start()
    yield b
    if b.proc:
        b.stop()


def make(b, topic, group, n, partitions=1, **policy):
    st, _, r = call(b, "POST", "/v1/topics", {"name": topic, "partitions": partitions})
    assert st == 201, r
    events = [{"value": "event-%d" % i, "partition": i % partitions} for i in range(n)]
    st, _, r = call(b, "POST", f"/v1/topics/{topic}/events", events)
    assert st == 200, r
    st, _, r = call(b, "PUT", f"/v1/queues/{group}", {"topic": topic, **policy})
    assert st == 201, r


def receive(b, group, **body):
    st, _, r = call(b, "POST", f"/v1/queues/{group}/receive", body)
    assert st == 200, r
    return r["events"]


def ranges_of(events):
    """The ids of events as ranges: runs of offsets of one partition and delivery count."""
    runs = []
    for ev in sorted(events, key=lambda e: (e["partition"], e["offset"])):
        t, p, o, d = (int(x) for x in ev["id"].split("."))
        if runs and runs[-1][:2] == [t, p] and runs[-1][4] == d and runs[-1][3] == o - 1:
            runs[-1][3] = o
        else:
            runs.append([t, p, o, o, d])
    return [f"{t}.{p}.{a}-{z}.{d}" if a != z else f"{t}.{p}.{a}.{d}" for t, p, a, z, d in runs]


def describe(b, group):
    st, _, r = call(b, "GET", f"/v1/queues/{group}")
    assert st == 200, r
    return r


def test_ack_by_ranges_with_failed_results_only(qb):
    make(qb, "jobs", "w", 300, partitions=3, max_in_flight_per_consumer=1000)
    evs = receive(qb, "w", max=300, values="string")
    assert len(evs) == 300 and {e["deliveries"] for e in evs} == {1}
    rs = ranges_of(evs)
    assert len(rs) == 3, rs  # one range per partition
    st, _, r = call(qb, "POST", "/v1/queues/w/ack", {"ids": rs, "results": "failed"})
    assert st == 200, r
    assert r == {"results": [], "ok": 300, "stale": 0, "unknown": 0}
    d = describe(qb, "w")
    assert d["in_flight"] == 0 and d["acked"] == 300 and d["depth"] == 0
    # Again: they are done, so no id is ok (stale: acked already), and each is listed.
    st, _, r = call(qb, "POST", "/v1/queues/w/ack", {"ids": rs[:1], "results": "failed"})
    assert st == 200 and r["ok"] == 0 and r["stale"] == 100 and len(r["results"]) == 100, r
    assert {x["result"] for x in r["results"]} == {"stale"}
    first = rs[0].split(".")
    assert r["results"][0]["id"] == f"{first[0]}.{first[1]}.{first[2].split('-')[0]}.1"


def test_ranges_and_ids_mixed_and_stale_counts(qb):
    make(qb, "jobs", "w", 20, ack_timeout_ms=60000, backoff={"initial_ms": 0, "jitter": 0})
    evs = receive(qb, "w", max=20)
    t, p = evs[0]["id"].split(".")[:2]
    # Nack offsets 0-4 by a range: they come back with delivery count 2.
    st, _, r = call(qb, "POST", "/v1/queues/w/nack",
                    {"ids": [f"{t}.{p}.0-4.1"], "delay_ms": 0, "error": "later"})
    assert st == 200 and r["ok"] == 5 and len(r["results"]) == 5, r
    again = receive(qb, "w", max=20)
    assert sorted(e["offset"] for e in again) == [0, 1, 2, 3, 4]
    assert {e["deliveries"] for e in again} == {2}
    # Acking them with the first delivery's count is stale; 5-9 by a range and 10 by its id
    # (the plain shape) are ok; the answer lists every id without "results": "failed".
    st, _, r = call(qb, "POST", "/v1/queues/w/ack",
                    {"ids": [f"{t}.{p}.0-4.1", f"{t}.{p}.5-9.1", f"{t}.{p}.10.1"]})
    assert st == 200, r
    assert (r["ok"], r["stale"], r["unknown"]) == (6, 5, 0)
    assert [x["result"] for x in r["results"]] == ["stale"] * 5 + ["ok"] * 6
    assert [x["id"] for x in r["results"]][:2] == [f"{t}.{p}.0.1", f"{t}.{p}.1.1"]
    assert r["results"][-1] == {"id": f"{t}.{p}.10.1", "result": "ok"}
    # Extend by range, then ack the rest: all done.
    st, _, r = call(qb, "POST", "/v1/queues/w/extend",
                    {"ids": [f"{t}.{p}.11-19.1"], "ms": 30000, "results": "failed"})
    assert st == 200 and r == {"results": [], "ok": 9, "stale": 0, "unknown": 0}, r
    st, _, r = call(qb, "POST", "/v1/queues/w/ack",
                    {"ids": [f"{t}.{p}.0-4.2", f"{t}.{p}.11-19.1"], "results": "failed"})
    assert st == 200 and r["ok"] == 14, r
    assert describe(qb, "w")["acked"] == 20


def test_bad_ranges_and_shapes_are_refused_with_the_reason(qb):
    make(qb, "jobs", "w", 3)
    path = "/v1/queues/w/"
    for what, body, text in [
        ("ack", {"ids": ["1.0.5-4.1"]}, "not a delivery id"),           # last < first
        ("ack", {"ids": ["1.0.0-1000.1"]}, "not a delivery id"),        # 1 001 offsets
        ("ack", {"ids": ["1.0.0-10.1", "1.0.0-999.1"]}, "1 to 1000"),   # 1 011 ids in all
        ("ack", {"ids": ["1.0.0-.1"]}, "not a delivery id"),
        ("ack", {"ids": ["1.0.0-3"]}, "not a delivery id"),
        ("ack", {"ids": ["1.0.0.1"], "results": "some"}, "results"),
        ("ack", {"ids": ["1.0.0.1"], "results": 1}, "results"),
        ("nack", {"ids": ["1.0.0-2.1"], "delay_ms": 1.5}, "delay_ms"),
        ("extend", {"ids": ["1.0.0-2.1"], "ms": -1}, "ms"),
        ("ack", {"ids": ["1.0.0-2.1"], "ids2": []}, "ids2"),
        ("receive", {"values": "raw"}, "base64"),
    ]:
        assert_error(call(qb, "POST", path + what, body), 400, "invalid_argument", text)
    # Duplicate keys and invalid JSON take the slow way, which says what is wrong.
    for raw in (b'{"ids":["1.0.0.1"],"ids":["1.0.1.1"]}', b'{"ids":["1.0.0.1"]',
                b'{"ids":["1.0.0.1"]}x'):
        st, _, r = call(qb, "POST", path + "ack", raw)
        assert st == 400 and r["error"]["code"] == "invalid_json", (raw, r)
    # Escapes are valid JSON: the slow way reads them (an error text with them, ids written
    # with them) to the same outcome.
    evs = receive(qb, "w", max=3)
    rs = ranges_of(evs)
    assert len(rs) == 1
    st, _, r = call(qb, "POST", path + "nack", json.dumps(
        {"ids": rs, "delay_ms": 0, "error": "caf\u00e9 \u2013 retry", "results": "failed"}))
    assert st == 200 and r == {"results": [], "ok": 3, "stale": 0, "unknown": 0}, r
    evs = receive(qb, "w", max=3)
    assert {e["deliveries"] for e in evs} == {2}
    rs = ranges_of(evs)
    escaped = json.dumps({"ids": rs}).replace(".", "\\u002e").encode()
    st, _, r = call(qb, "POST", path + "ack", escaped)
    assert st == 200 and r["ok"] == 3 and [x["result"] for x in r["results"]] == ["ok"] * 3
    # Nothing was acked by the refused requests above: 3 acked in all.
    assert describe(qb, "w")["acked"] == 3


def test_receive_gives_events_as_a_topic_read_does(qb):
    call(qb, "POST", "/v1/topics", {"name": "mixed"})
    values = [b'{"n": 1, "list": [1.5, true, null]}', b"plain text", b"caf\xc3\xa9 \xf0\x9f\x98\x80",
              b"quote \" backslash \\ nl \n tab \t ctl \x01", b"\xff\xfe not utf-8", b"", b"[1,",
              b"  42  "]
    p = Producer({"bootstrap.servers": qb.bootstrap})
    for i, v in enumerate(values):
        p.produce("mixed", value=v, key=(b"k\xff" if i % 2 else b"key-%d" % i),
                  headers=[("h", b"x"), ("bin", b"\x00\xff"), ("none", None)])
    p.produce("mixed", value=None, key=None)
    assert p.flush(30) == 0
    n = len(values) + 1
    for values_mode in ("json", "string"):
        group = "g-" + values_mode
        assert call(qb, "PUT", f"/v1/queues/{group}", {"topic": "mixed"})[0] == 201
        evs = receive(qb, group, max=n, values=values_mode)
        st, _, page = call(qb, "GET", f"/v1/topics/mixed/events?from=earliest&limit={n}"
                           + ("&values=string" if values_mode == "string" else ""))
        assert st == 200 and len(evs) == n == len(page["events"])
        for got, want in zip(evs, page["events"]):
            assert got.pop("id").endswith(".%d.1" % want["offset"])
            assert got.pop("deliveries") == 1 and got.pop("topic") == "mixed"
            assert got == want
    assert call(qb, "PUT", "/v1/queues/g-b64", {"topic": "mixed"})[0] == 201
    evs = receive(qb, "g-b64", max=n, values="base64")
    assert [base64.b64decode(e["value_b64"]) for e in evs[:-1]] == values
    assert all("value" not in e and "value_text" not in e for e in evs[:-1])
    assert evs[-1]["value"] is None and evs[-1]["key"] is None
    assert evs[1]["key_b64"] == base64.b64encode(b"k\xff").decode()
    assert evs[0]["headers"][1] == {"key": "bin", "value_b64": "AP8="}


def test_batches_over_one_keep_alive_connection(qb):
    """What a bulk consumer does: receive 500 in base64 and ack them by ranges, on one
    connection, until the queue is empty; every event once."""
    make(qb, "bulk", "w", 2000, partitions=4, max_in_flight_per_consumer=1000)
    c = http.client.HTTPConnection("127.0.0.1", qb.http_port, timeout=10)
    seen = []
    for _ in range(20):
        st, _, r = call(qb, "POST", "/v1/queues/w/receive",
                        {"max": 500, "values": "base64", "consumer": "bulk-1"}, conn=c)
        assert st == 200
        if not r["events"]:
            break
        seen += [(e["partition"], e["offset"]) for e in r["events"]]
        st, _, a = call(qb, "POST", "/v1/queues/w/ack",
                        {"ids": ranges_of(r["events"]), "results": "failed"}, conn=c)
        assert st == 200 and a["ok"] == len(r["events"]) and a["results"] == [], a
    c.close()
    assert len(seen) == 2000 == len(set(seen))
    assert describe(qb, "w")["acked"] == 2000


def test_ranges_go_through_authorization(ab):  # noqa: F811 (the fixture)
    topic = "t-" + uuid.uuid4().hex[:8]
    q = "q-" + topic
    adm, bob = ("admin", ADMIN_PW), ("bob", BOB_PW)
    assert curl(ab, "POST", "/v1/topics", adm, {"name": topic})[0] == 201
    events = [{"value": "v%d" % i} for i in range(5)]
    assert curl(ab, "POST", f"/v1/topics/{topic}/events", adm, events)[0] == 200
    assert curl(ab, "PUT", f"/v1/queues/{q}", adm, {"topic": topic})[0] == 201
    st, _, body = curl(ab, "POST", f"/v1/queues/{q}/receive", adm, {"max": 5, "values": "base64"})
    assert st == 200 and len(body["events"]) == 5
    rs = ranges_of(body["events"])
    assert len(rs) == 1
    # bob may not settle them, in any shape; nothing changes.
    for what, b in (("ack", {"ids": rs, "results": "failed"}),
                    ("nack", {"ids": rs, "delay_ms": 0}),
                    ("extend", {"ids": rs, "ms": 1000}),
                    ("receive", {"max": 5, "values": "base64"})):
        st, _, r = curl(ab, "POST", f"/v1/queues/{q}/{what}", bob, b)
        assert st == 403 and r["error"]["resource_type"] == "group", (what, r)
    st, _, r = curl(ab, "POST", f"/v1/queues/{q}/ack", adm, {"ids": rs, "results": "failed"})
    assert st == 200 and r == {"results": [], "ok": 5, "stale": 0, "unknown": 0}, r
