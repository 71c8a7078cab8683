"""Live subscriptions over Server-Sent Events (GET /v1/subscribe): wildcard patterns, topics
created after the subscription started, events written through Kafka (kcat) arriving with the
same key, value and headers, from earliest, latest and a time, resuming with Last-Event-ID
across a broker restart with nothing lost or repeated, heartbeats, deleted topics, HTTP/1.0,
a subscriber that stops reading, and bad requests."""
import http.client
import json
import socket
import subprocess
import time

import pytest

from conftest import Broker
from test_http import assert_error, call


@pytest.fixture
def sb(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True,
               extra=["--set", "http.sse.heartbeat.ms=300",
                      "--set", "http.sse.stall.timeout.ms=600"]).start()
    yield b
    if b.proc:
        b.stop()


class Sse:
    """A minimal EventSource: http.client with SSE parsing."""

    def __init__(self, b, query, last_id=None, timeout=15):
        self.c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=timeout)
        hdrs = {"Accept": "text/event-stream"}
        if last_id is not None:
            hdrs["Last-Event-ID"] = last_id
        self.c.request("GET", "/v1/subscribe?" + query, headers=hdrs)
        self.r = self.c.getresponse()
        self.last_id = last_id

    def next(self):
        """The next event {"event", "id", "data"} or {"comment"}; None at the end."""
        ev = {}
        while True:
            line = self.r.readline()
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if line.startswith(":"):
                if not ev:
                    return {"comment": line[1:].strip()}
                continue
            if line == "":
                if ev:
                    if "id" in ev:
                        self.last_id = ev["id"]
                    ev.setdefault("event", "message")
                    if "data" in ev:
                        ev["data"] = json.loads(ev["data"])
                    return ev
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            ev[name] = ev[name] + "\n" + value if name in ev and name == "data" else value

    def events(self, n, deadline_s=15):
        """The next n data events (skipping comments)."""
        got, end = [], time.time() + deadline_s
        while len(got) < n:
            assert time.time() < end, f"only {len(got)} of {n} events"
            ev = self.next()
            assert ev is not None, f"stream ended after {len(got)} of {n} events"
            if ev.get("event") == "message":
                got.append(ev)
        return got

    def close(self):
        self.c.close()


def post(b, topic, events):
    st, _, body = call(b, "POST", f"/v1/topics/{topic}/events", events)
    assert st == 200, body
    return body["offsets"]


def test_wildcards_new_topics_and_kafka(sb):
    call(sb, "POST", "/v1/topics", {"name": "orders.eu", "partitions": 2})
    call(sb, "POST", "/v1/topics", {"name": "orders.eu.paris"})   # not orders.*
    call(sb, "POST", "/v1/topics", {"name": "billing"})           # billing.# matches it
    call(sb, "POST", "/v1/topics", {"name": "shipping"})
    post(sb, "orders.eu", [{"key": "a", "value": 1, "partition": 0}])
    s = Sse(sb, "topics=orders.*,billing.%23&from=earliest")
    assert s.r.status == 200
    assert s.r.getheader("Content-Type") == "text/event-stream"
    assert s.r.getheader("Transfer-Encoding") == "chunked"
    hello = s.next()
    assert hello["event"] == "subscribed"
    assert hello["data"] == {"patterns": ["orders.*", "billing.#"], "partitions": 3,
                             "resumed": False}
    assert hello["id"] == "billing:0=0;orders.eu:0=0,1=0"
    ev = s.events(1)[0]
    assert ev["data"]["topic"] == "orders.eu" and ev["data"]["value"] == 1
    assert ev["id"] == "orders.eu/0/0;billing:0=0;orders.eu:0=1,1=0"

    # Not matching: nothing arrives from them. A topic created now that matches: picked up.
    post(sb, "orders.eu.paris", [{"value": "no"}])
    post(sb, "shipping", [{"value": "no"}])
    call(sb, "POST", "/v1/topics", {"name": "billing.eu.invoices"})
    post(sb, "billing.eu.invoices", [{"key": "inv-1", "value": {"total": 5}}])
    ev = s.events(1)[0]["data"]
    assert (ev["topic"], ev["key"], ev["value"]) == ("billing.eu.invoices", "inv-1", {"total": 5})

    # Through Kafka: kcat's key, value and headers arrive as the REST API shows them.
    subprocess.run(["kcat", "-b", sb.bootstrap, "-P", "-t", "billing", "-k", "cust-9",
                    "-H", "event-type=paid", "-H", "traceparent=00-abc-01"],
                   input=b'{"amount": 12}', check=True, timeout=30)
    ev = s.events(1)[0]["data"]
    assert ev["topic"] == "billing" and ev["key"] == "cust-9" and ev["value"] == {"amount": 12}
    assert ev["headers"] == [{"key": "event-type", "value": "paid"},
                             {"key": "traceparent", "value": "00-abc-01"}]
    assert ev["partition"] == 0 and ev["offset"] == 0 and ev["timestamp"] > 0
    s.close()


def test_from_latest_and_time(sb):
    call(sb, "POST", "/v1/topics", {"name": "t", "partitions": 2})
    post(sb, "t", [{"value": "old", "partition": 0}])
    time.sleep(0.05)
    t1 = int(time.time() * 1000)
    post(sb, "t", [{"value": "mid", "partition": 1}])
    latest = Sse(sb, "topics=t")  # from=latest is the default
    assert latest.next()["event"] == "subscribed"
    by_time = Sse(sb, f"topics=t&from={t1}")
    assert by_time.next()["event"] == "subscribed"
    iso = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t1 // 1000 + 3600)) +
           ".%03d+01:00" % (t1 % 1000))
    by_iso = Sse(sb, "topics=t&from=" + iso.replace("+", "%2B"))
    assert by_iso.next()["event"] == "subscribed"
    post(sb, "t", [{"value": "new", "partition": 0}])
    assert latest.events(1)[0]["data"]["value"] == "new"
    assert [e["data"]["value"] for e in by_time.events(2)] == ["mid", "new"]
    # The same instant in ISO 8601 with milliseconds and a zone offset.
    assert [e["data"]["value"] for e in by_iso.events(2)] == ["mid", "new"]
    # ?values=string: the value as the string of its bytes, not parsed JSON.
    exact = Sse(sb, "topics=t&from=earliest&values=string")
    assert exact.next()["event"] == "subscribed"
    assert sorted(e["data"]["value"] for e in exact.events(3)) == ['"mid"', '"new"', '"old"']
    for x in (latest, by_time, by_iso, exact):
        x.close()


def test_resume_across_restart(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True).start()
    try:
        call(b, "POST", "/v1/topics", {"name": "a.x", "partitions": 3})
        call(b, "POST", "/v1/topics", {"name": "a.y"})
        post(b, "a.x", [{"value": i, "partition": i % 3} for i in range(9)])
        s = Sse(b, "topics=a.*&from=earliest")
        assert s.next()["event"] == "subscribed"
        first = s.events(5)
        last_id = s.last_id
        s.close()
        # While away: more events, in old and new partitions and a new topic.
        post(b, "a.y", [{"value": 100 + i} for i in range(3)])
        call(b, "PATCH", "/v1/topics/a.x", {"partitions": 4})
        post(b, "a.x", [{"value": 200, "partition": 3}, {"value": 201, "partition": 0}])
        b.stop()
        b.start()
        call(b, "POST", "/v1/topics", {"name": "a.z"})
        post(b, "a.z", [{"value": 300}])
        s = Sse(b, "topics=a.*", last_id=last_id)  # from=latest is ignored when resuming
        hello = s.next()
        assert hello["event"] == "subscribed" and hello["data"]["resumed"] is True
        rest = s.events(9 - 5 + 3 + 2 + 1)
        seen = [(e["data"]["topic"], e["data"]["partition"], e["data"]["offset"])
                for e in first + rest]
        assert len(seen) == len(set(seen)) == 15, seen   # nothing twice
        assert sorted(e["data"]["value"] for e in first + rest) == \
            list(range(9)) + [100, 101, 102, 200, 201, 300]  # nothing lost
        # Nothing more is pending: the next thing is a heartbeat or nothing, not an event.
        s.c.sock.settimeout(1.0)
        with pytest.raises(socket.timeout):
            while True:
                ev = s.next()
                assert ev is not None and ev.get("event") != "message", ev
        s.close()
        # The id of the first event resumes right after it: the other 14, once each.
        s = Sse(b, "topics=a.*", last_id=first[0]["id"])
        s.next()
        again = s.events(14)
        assert len(again) == len({(e["data"]["topic"], e["data"]["partition"],
                                   e["data"]["offset"]) for e in again})
        got = {(e["data"]["topic"], e["data"]["partition"], e["data"]["offset"]) for e in again}
        assert got == set(seen) - {seen[0]}
        s.close()
    finally:
        if b.proc:
            b.stop()


def test_heartbeats_and_deleted_topics(sb):
    call(sb, "POST", "/v1/topics", {"name": "d"})
    s = Sse(sb, "topics=d,e")
    assert s.next()["event"] == "subscribed"
    assert s.next() == {"comment": "heartbeat"}   # idle for http.sse.heartbeat.ms (300)
    post(sb, "d", [{"value": 1}])
    assert s.events(1)[0]["data"]["value"] == 1
    # Deleted and created again: the stream goes on, and reads the new topic from its start.
    assert call(sb, "DELETE", "/v1/topics/d")[0] == 204
    call(sb, "POST", "/v1/topics", {"name": "d"})
    post(sb, "d", [{"value": "second life"}])
    ev = s.events(1)[0]
    assert ev["data"]["value"] == "second life" and ev["data"]["offset"] == 0
    assert ev["id"].endswith(";d:0=1")
    s.close()


def test_http10_stream_ends_with_the_connection(sb):
    call(sb, "POST", "/v1/topics", {"name": "h"})
    sock = socket.create_connection(("127.0.0.1", sb.http_port), timeout=10)
    sock.sendall(b"GET /v1/subscribe?topics=h&from=earliest HTTP/1.0\r\n\r\n")
    post(sb, "h", [{"value": "ten"}])
    buf = b""
    while b'"value":"ten"' not in buf:  # not b"ten", which "Content-Type" holds
        chunk = sock.recv(65536)
        assert chunk
        buf += chunk
    head = buf.split(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 200") and "Connection: close" in head
    assert "Transfer-Encoding" not in head
    assert b'data: {"topic":"h","partition":0,"offset":0' in buf
    sock.close()


def test_slow_subscriber_is_dropped(sb):
    call(sb, "POST", "/v1/topics", {"name": "big", "config": {"fsync": "none"}})
    sock = socket.create_connection(("127.0.0.1", sb.http_port), timeout=30)
    sock.sendall(b"GET /v1/subscribe?topics=big HTTP/1.1\r\nHost: localhost\r\n\r\n")
    time.sleep(0.3)
    # ~40 MB of events: far more than the socket buffers and the 4 MiB output limit.
    value = "x" * 60000
    for _ in range(45):
        post(sb, "big", [{"value": value}] * 15)
    # Others are served meanwhile.
    assert call(sb, "GET", "/health")[0] == 200
    time.sleep(1.5)  # over http.sse.stall.timeout.ms (600) at the limit
    # Now read everything: the stream ends with the error event, then the connection closes.
    buf = bytearray()
    end = time.time() + 60
    while time.time() < end:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
    else:
        raise AssertionError("the broker did not close the slow subscriber")
    sock.close()
    tail = bytes(buf[-600:]).decode(errors="replace")
    assert "event: error" in tail and '"code":"slow_consumer"' in tail, tail
    assert buf.endswith(b"0\r\n\r\n")  # the chunked body was ended properly
    delivered = buf.count(b"\ndata: {")
    assert 0 < delivered < 700
    assert "subscription ended: slow_consumer" in sb.stderr()


def test_bad_subscriptions(sb):
    cases = [
        ("", 400, "invalid_pattern", "name the topics"),
        ("topics=", 400, "invalid_pattern", "name the topics"),
        ("topics=ord*", 400, "invalid_pattern", "whole segment"),
        ("topics=a.%23b", 400, "invalid_pattern", "whole segment"),
        ("topics=a,,b", 400, "invalid_pattern", "empty"),
        ("topics=a,", 400, "invalid_pattern", "empty"),
        ("topics=a%20b", 400, "invalid_pattern", "characters"),
        ("topics=" + "a" * 250, 400, "invalid_pattern", "longer than 249"),
        ("topics=a&from=yesterday", 400, "invalid_argument", "'from'"),
        ("topics=a&from=%ZZ", 400, "invalid_argument", ""),
        ("topics=a&last_event_id=orders:x=1", 400, "invalid_argument", "Last-Event-ID"),
        ("topics=a&values=bytes", 400, "invalid_argument", "'values'"),
    ]
    for query, status, code, text in cases:
        assert_error(call(sb, "GET", "/v1/subscribe?" + query), status, code, text)
    assert_error(call(sb, "GET", "/v1/subscribe?topics=a", headers={"Last-Event-ID": "junk"}),
                 400, "invalid_argument", "Last-Event-ID")
    st, hdrs, _ = call(sb, "POST", "/v1/subscribe?topics=a", body="{}")
    assert st == 405 and hdrs["Allow"] == "GET"
    assert call(sb, "GET", "/health")[0] == 200
