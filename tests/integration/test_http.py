"""The HTTP listener: health and readiness, the topics REST API (through Python's http.client
and curl), what Kafka clients see of it, and HTTP/1.1 framing and bad input on raw sockets:
keep-alive, pipelining, chunked bodies, Expect: 100-continue, HTTP/1.0, malformed requests,
limits and slow clients. Every error must be JSON with the right status, and other clients must
go on being served."""
import http.client
import json
import select
import socket
import subprocess
import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker


@pytest.fixture
def hb(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True,
               extra=["--set", "http.request.timeout.ms=700",
                      "--set", "http.max.body.bytes=65536"]).start()
    yield b
    if b.proc:
        b.stop()


def call(b, method, path, body=None, headers=None, conn=None):
    """One request; returns (status, headers, parsed JSON or None)."""
    c = conn or http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=10)
    data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
    hdrs = dict(headers or {})
    if data is not None and "Content-Type" not in hdrs:
        hdrs["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=hdrs)
    r = c.getresponse()
    raw = r.read()
    if not conn:
        c.close()
    parsed = json.loads(raw) if raw else None
    return r.status, dict(r.getheaders()), parsed


def assert_error(resp, status, code, contains=""):
    st, hdrs, body = resp
    assert st == status, resp
    assert hdrs["Content-Type"] == "application/json"
    assert body["error"]["code"] == code and body["error"]["status"] == status, body
    assert contains in body["error"]["message"], body


def test_health_and_ready(hb):
    assert call(hb, "GET", "/health")[::2] == (200, {"status": "ok"})
    assert call(hb, "GET", "/ready")[::2] == (200, {"status": "ready"})
    st, hdrs, body = call(hb, "HEAD", "/health")
    assert st == 200 and body is None and hdrs["Content-Length"] == "16"
    st, hdrs, _ = call(hb, "POST", "/health", body={})
    assert st == 405 and hdrs["Allow"] == "GET, HEAD"


def test_topic_lifecycle(hb):
    st, _, t = call(hb, "POST", "/v1/topics",
                    {"name": "orders", "partitions": 3, "config": {"retention.ms": 3600000,
                                                                    "fsync": "none"}})
    assert st == 201
    assert t["name"] == "orders" and t["partition_count"] == 3
    assert t["config"]["retention.ms"] == "3600000" and t["config"]["fsync"] == "none"
    assert t["config"]["cleanup.policy"] == "delete"
    assert [p["partition"] for p in t["partitions"]] == [0, 1, 2]
    assert all(p["high_watermark"] == 0 and not p["offline"] for p in t["partitions"])
    assert_error(call(hb, "POST", "/v1/topics", {"name": "orders"}), 409, "already_exists")
    # Listed, and described the same way.
    st, _, lst = call(hb, "GET", "/v1/topics")
    assert st == 200 and [x["name"] for x in lst["topics"]] == ["orders"]
    assert lst["topics"][0]["partition_count"] == 3
    st, _, d = call(hb, "GET", "/v1/topics/orders")
    assert st == 200 and d["config"] == t["config"]
    # Alter: a key back to its default (null), another set, partitions grown.
    st, _, a = call(hb, "PATCH", "/v1/topics/orders",
                    {"partitions": 5, "config": {"retention.ms": None, "segment.ms": "60000"}})
    assert st == 200, a
    assert a["partition_count"] == 5 and len(a["partitions"]) == 5
    assert a["config"]["retention.ms"] == "604800000" and a["config"]["segment.ms"] == "60000"
    assert_error(call(hb, "PATCH", "/v1/topics/orders", {"partitions": 2}), 400,
                 "invalid_argument", "never removed")
    assert_error(call(hb, "PATCH", "/v1/topics/orders", {"config": {"fsync": "sometimes"}}),
                 400, "invalid_config", "fsync")
    assert_error(call(hb, "PATCH", "/v1/topics/nope", {"config": {}}), 404, "not_found")
    # Delete.
    st, hdrs, body = call(hb, "DELETE", "/v1/topics/orders")
    assert st == 204 and body is None and "Content-Length" not in hdrs
    assert_error(call(hb, "GET", "/v1/topics/orders"), 404, "not_found", "orders")
    assert_error(call(hb, "DELETE", "/v1/topics/orders"), 404, "not_found")
    assert call(hb, "GET", "/v1/topics")[2] == {"topics": []}


def test_request_errors(hb):
    assert_error(call(hb, "POST", "/v1/topics", b'{"name": "x",'), 400, "invalid_json",
                 "line 1")
    assert_error(call(hb, "POST", "/v1/topics", b"[1, 2]"), 400, "invalid_json", "object")
    assert_error(call(hb, "POST", "/v1/topics", b'{"name": "x", "name": "y"}'), 400,
                 "invalid_json", "duplicate")
    assert_error(call(hb, "POST", "/v1/topics", {"partitions": 1}), 400, "invalid_argument",
                 "name")
    assert_error(call(hb, "POST", "/v1/topics", {"name": "x", "replicas": 3}), 400,
                 "invalid_argument", "replicas")
    assert_error(call(hb, "POST", "/v1/topics", {"name": "bad name"}), 400, "invalid_name")
    assert_error(call(hb, "POST", "/v1/topics", {"name": "x", "partitions": 0}), 400,
                 "invalid_argument")
    assert_error(call(hb, "POST", "/v1/topics", {"name": "x", "partitions": "3"}), 400,
                 "invalid_argument")
    assert_error(call(hb, "POST", "/v1/topics", {"name": "x", "config": {"nokey": "1"}}), 400,
                 "invalid_config", "nokey")
    assert_error(call(hb, "POST", "/v1/topics", {"name": "x", "config": {"retention.ms": []}}),
                 400, "invalid_config")
    assert_error(call(hb, "POST", "/v1/topics", b"<x/>", {"Content-Type": "text/xml"}), 415,
                 "unsupported_media_type")
    st, hdrs, body = call(hb, "PUT", "/v1/topics/x")
    assert st == 405 and hdrs["Allow"] == "GET, HEAD, PATCH, DELETE"
    assert_error(call(hb, "GET", "/nothing/here"), 404, "not_found", "/nothing/here")
    assert_error(call(hb, "GET", "/v1/topics/a%zz"), 400, "bad_request", "percent")
    assert call(hb, "GET", "/v1/topics")[2] == {"topics": []}  # nothing was created


def test_curl_and_kafka_see_the_same_topics(hb):
    base = f"http://127.0.0.1:{hb.http_port}"
    # curl -d sends application/x-www-form-urlencoded unless told otherwise: a type an HTML
    # form of any web site can post, so it is refused; curl --json says application/json.
    out = subprocess.run(["curl", "-sS", "-X", "POST", base + "/v1/topics", "-d",
                          '{"name": "from-http", "partitions": 2}'],
                         capture_output=True, timeout=30, check=True).stdout
    assert json.loads(out)["error"]["code"] == "unsupported_media_type"
    out = subprocess.run(["curl", "-sS", base + "/v1/topics", "--json",
                          '{"name": "from-http", "partitions": 2}'],
                         capture_output=True, timeout=30, check=True).stdout
    assert json.loads(out)["partition_count"] == 2
    admin = AdminClient({"bootstrap.servers": hb.bootstrap})
    md = admin.list_topics(timeout=10)
    assert len(md.topics["from-http"].partitions) == 2
    admin.create_topics([NewTopic("from-kafka", 4, 1)])["from-kafka"].result(timeout=10)
    subprocess.run(["kcat", "-b", hb.bootstrap, "-P", "-t", "from-kafka", "-p", "1"],
                   input=b"a\nb\nc\n", timeout=30, check=True)
    out = subprocess.run(["curl", "-sS", "-f", base + "/v1/topics/from-kafka"],
                         capture_output=True, timeout=30, check=True).stdout
    d = json.loads(out)
    assert d["partition_count"] == 4
    assert d["partitions"][1]["high_watermark"] == 3
    assert d["partitions"][1]["size_bytes"] > 0
    assert d["partitions"][0]["high_watermark"] == 0
    names = [t["name"] for t in call(hb, "GET", "/v1/topics")[2]["topics"]]
    assert names == ["from-http", "from-kafka"]
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE",
                        base + "/v1/topics/from-kafka"], capture_output=True, timeout=30)
    assert r.stdout == b"204"
    assert "from-kafka" not in admin.list_topics(timeout=10).topics


# ---------------------------------------------------------------------------------------------
# Framing and bad input on raw sockets
def raw(hb, data, timeout=5.0, shut=False):
    """Sends data on a new connection and reads until the broker closes it (or timeout)."""
    s = socket.create_connection(("127.0.0.1", hb.http_port), timeout=timeout)
    s.sendall(data)
    if shut:
        s.shutdown(socket.SHUT_WR)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    s.close()
    return out


def responses(data):
    """Splits a byte stream of responses with Content-Length bodies: [(status, headers, body)]."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        n = int(hdrs.get("content-length", 0))
        out.append((status, hdrs, rest[:n]))
        data = rest[n:]
    return out


def test_pipelined_requests_answer_in_order(hb):
    reqs = (b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"
            b"POST /v1/topics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 15\r\n\r\n{\"name\": \"pip\"}"
            b"GET /v1/topics/pip HTTP/1.1\r\nHost: localhost\r\n\r\n"
            b"GET /ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    rs = responses(raw(hb, reqs))
    assert [r[0] for r in rs] == [200, 201, 200, 200]
    assert json.loads(rs[2][2])["name"] == "pip"
    assert rs[3][1]["connection"] == "close" and "connection" not in rs[0][1]


def test_keep_alive_and_http10(hb):
    c = http.client.HTTPConnection("127.0.0.1", hb.http_port, timeout=10)
    for _ in range(20):
        assert call(hb, "GET", "/health", conn=c)[0] == 200
    c.close()
    out = raw(hb, b"GET /health HTTP/1.0\r\n\r\n")  # 1.0 without keep-alive: closed after
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close" in out
    out = raw(hb, b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", timeout=1.0)
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close" not in out


def test_chunked_body_and_expect_continue(hb):
    body = b'{"name": "chunky", "partitions": 2}'
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                       for i in range(0, len(body), 7)) + b"0\r\n\r\n"
    rs = responses(raw(hb, b"POST /v1/topics HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
                           b"Connection: close\r\n\r\n" + chunked))
    assert rs[0][0] == 201 and json.loads(rs[0][2])["partition_count"] == 2
    # Expect: 100-continue gets the interim answer before the body is sent.
    s = socket.create_connection(("127.0.0.1", hb.http_port), timeout=5)
    body = b'{"name": "expecting"}'
    s.sendall(b"POST /v1/topics HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
              b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
    assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    s.sendall(body)
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    s.close()
    assert responses(out)[0][0] == 201


@pytest.mark.parametrize("data,status,code", [
    (b"GARBAGE\r\n\r\n", 400, "bad_request"),
    (b"GET / HTTP/1.1\r\n\r\n", 400, "bad_request"),                     # no Host
    (b"GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", 505, "http_version_not_supported"),
    (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "bad_request"),
    (b"POST /v1/topics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked"
     b"\r\n\r\n", 400, "bad_request"),
    (b"POST /v1/topics HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
     "not_implemented"),
    (b"POST /v1/topics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 70000\r\n\r\n", 413,
     "body_too_large"),
    (b"POST /v1/topics HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"20000\r\n", 413, "body_too_large"),
    (b"POST /v1/topics HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
     "bad_request"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414, "uri_too_long"),
    (b"GET / HTTP/1.1\r\nHost: localhost\r\n" + b"X-Big: " + b"v" * 20000 + b"\r\n\r\n", 431,
     "headers_too_large"),
    (b"GET / HTTP/1.1\r\nHost: localhost\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(80)) +
     b"\r\n", 431, "headers_too_large"),
])
def test_bad_requests_get_json_errors_and_a_close(hb, data, status, code):
    out = raw(hb, data)
    rs = responses(out)
    assert len(rs) == 1, out[:300]
    st, hdrs, body = rs[0]
    assert (st, hdrs["connection"]) == (status, "close")
    assert json.loads(body)["error"]["code"] == code
    assert call(hb, "GET", "/health")[0] == 200  # everyone else is still served


def test_slow_and_idle_clients(hb):
    # A request that never completes is answered 408 after http.request.timeout.ms (700 ms).
    t0 = time.time()
    out = raw(hb, b"GET /health HTTP/1.1\r\nHost: localhost\r\n", timeout=10)
    assert out.startswith(b"HTTP/1.1 408 ") and time.time() - t0 < 5
    assert json.loads(responses(out)[0][2])["error"]["code"] == "request_timeout"
    # Dripping a byte at a time does not extend it.
    s = socket.create_connection(("127.0.0.1", hb.http_port), timeout=10)
    t0 = time.time()
    for ch in b"POST /v1/topics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n" + b"x" * 100:
        if select.select([s], [], [], 0.05)[0] or time.time() - t0 > 4:
            break  # the answer is there: stop sending (more would reset the connection)
        s.send(bytes([ch]))
    got = s.recv(65536)
    s.close()
    assert got.startswith(b"HTTP/1.1 408 "), got[:100]
    assert time.time() - t0 < 4
    # Many connections that send nothing do not stop others.
    idle = [socket.create_connection(("127.0.0.1", hb.http_port)) for _ in range(200)]
    assert call(hb, "GET", "/health")[0] == 200
    for s in idle:
        s.close()


# ---------------------------------------------------------------------------------------------
# Events
def test_produce_and_read_events(hb):
    assert call(hb, "POST", "/v1/topics", {"name": "ev", "partitions": 3})[0] == 201
    events = [{"key": "user-1", "value": {"n": 1, "tags": ["a", "b"]},
               "headers": {"event-type": "created", "trace": None}},
              {"key": "user-2", "value_text": "plain text, not JSON"},
              {"value_b64": "AAEC/w==", "partition": 2, "timestamp": 1700000000000},
              {"key_b64": "3q2+7w==", "value": "a JSON string"},
              {"key": "user-1", "value": None}]
    st, _, r = call(hb, "POST", "/v1/topics/ev/events", events)
    assert st == 200, r
    offs = r["offsets"]
    assert len(offs) == 5 and offs[2]["partition"] == 2
    assert offs[0]["partition"] == offs[4]["partition"]  # same key, same partition
    assert offs[4]["offset"] > offs[0]["offset"]  # and after it
    # One object (not an array) is one event.
    st, _, r = call(hb, "POST", "/v1/topics/ev/events", {"value": 42, "partition": 1})
    assert st == 200 and len(r["offsets"]) == 1
    # Read everything back, every partition.
    st, _, r = call(hb, "GET", "/v1/topics/ev/events?limit=100")
    assert st == 200
    got = r["events"]
    assert len(got) == 6
    assert sum(r["next_offsets"].values()) == 6
    by = {(e["partition"], e["offset"]): e for e in got}
    e0 = by[(offs[0]["partition"], offs[0]["offset"])]
    assert e0["key"] == "user-1" and e0["value"] == {"n": 1, "tags": ["a", "b"]}
    assert e0["headers"] == [{"key": "event-type", "value": "created"},
                             {"key": "trace", "value": None}]
    e1 = by[(offs[1]["partition"], offs[1]["offset"])]
    assert e1["value_text"] == "plain text, not JSON" and "value" not in e1
    e2 = by[(2, offs[2]["offset"])]
    assert e2["value_b64"] == "AAEC/w==" and e2["timestamp"] == 1700000000000
    assert e2["key"] is None
    e3 = by[(offs[3]["partition"], offs[3]["offset"])]
    assert e3["key_b64"] == "3q2+7w==" and e3["value"] == "a JSON string"
    e4 = by[(offs[4]["partition"], offs[4]["offset"])]
    assert e4["value"] is None  # a null value (tombstone)
    # By partition and offset, with a limit; then from the end; then by time.
    p = offs[0]["partition"]
    st, _, r = call(hb, "GET", f"/v1/topics/ev/events?partition={p}&offset={offs[4]['offset']}")
    assert [e["offset"] for e in r["events"]] == [offs[4]["offset"]]
    st, _, r = call(hb, "GET", f"/v1/topics/ev/events?partition={p}&limit=1")
    assert len(r["events"]) == 1 and r["next_offsets"] == {str(p): 1}
    st, _, r = call(hb, "GET", "/v1/topics/ev/events?from=latest")
    assert r["events"] == [] and sum(r["next_offsets"].values()) == 6
    assert call(hb, "POST", "/v1/topics", {"name": "tt", "partitions": 1})[0] == 201
    st, _, _ = call(hb, "POST", "/v1/topics/tt/events",
                    [{"value": i, "timestamp": 1000 * (i + 1)} for i in range(3)])
    st, _, r = call(hb, "GET", "/v1/topics/tt/events?partition=0&time=2000")
    assert [e["offset"] for e in r["events"]] == [1, 2]
    st, _, r = call(hb, "GET", "/v1/topics/tt/events?time=1500")  # every partition
    assert [e["value"] for e in r["events"]] == [1, 2]
    st, _, r = call(hb, "GET", "/v1/topics/tt/events?partition=0&time=5000")
    assert r["events"] == [] and r["next_offsets"] == {"0": 3}
    # ?values=string: every UTF-8 value as a string of its exact bytes (JSON is not parsed).
    call(hb, "POST", "/v1/topics/tt/events",
         [{"value_text": '{"a":  1}'}, {"value": {"b": 2}}, {"value_b64": "/w=="}])
    st, _, r = call(hb, "GET", "/v1/topics/tt/events?partition=0&offset=3&values=string")
    assert st == 200
    assert [{k: e.get(k) for k in ("value", "value_b64")} for e in r["events"]] == \
        [{"value": '{"a":  1}', "value_b64": None}, {"value": '{"b":2}', "value_b64": None},
         {"value": None, "value_b64": "/w=="}]
    assert "value_text" not in r["events"][0]
    st, _, r = call(hb, "GET", "/v1/topics/tt/events?partition=0&offset=3&values=json")
    assert r["events"][0]["value"] == {"a": 1} and r["events"][1]["value"] == {"b": 2}


def test_events_errors(hb):
    assert call(hb, "POST", "/v1/topics", {"name": "err", "partitions": 2})[0] == 201
    path = "/v1/topics/err/events"
    assert_error(call(hb, "POST", "/v1/topics/nope/events", {"value": 1}), 404, "not_found")
    assert_error(call(hb, "GET", "/v1/topics/nope/events"), 404, "not_found")
    assert_error(call(hb, "POST", path, []), 400, "invalid_argument", "1 to")
    assert_error(call(hb, "POST", path, [1]), 400, "invalid_argument", "object")
    assert_error(call(hb, "POST", path, {"value": 1, "value_text": "x"}), 400,
                 "invalid_argument", "at most one")
    assert_error(call(hb, "POST", path, {"value_b64": "not base64!"}), 400, "invalid_argument",
                 "base64")
    assert_error(call(hb, "POST", path, {"key": 5}), 400, "invalid_argument", "key")
    assert_error(call(hb, "POST", path, {"value": 1, "extra": 1}), 400, "invalid_argument",
                 "extra")
    assert_error(call(hb, "POST", path, {"value": 1, "partition": 7}), 404, "not_found",
                 "partition 7")
    assert_error(call(hb, "POST", path, {"value": 1, "partition": -1}), 400, "invalid_argument")
    assert_error(call(hb, "POST", path, {"value": 1, "timestamp": "now"}), 400,
                 "invalid_argument", "timestamp")
    assert_error(call(hb, "POST", path, {"value": 1, "headers": {"h": 1}}), 400,
                 "invalid_argument", "header")
    assert_error(call(hb, "POST", path, [{}] * 10001), 400, "invalid_argument", "10000")
    assert_error(call(hb, "POST", path, b"{"), 400, "invalid_json")
    # A bad event anywhere stores nothing.
    assert_error(call(hb, "POST", path, [{"value": 1}, {"value": 2, "partition": 9}]), 404,
                 "not_found")
    assert call(hb, "GET", path)[2]["events"] == []
    assert_error(call(hb, "GET", path + "?offset=0"), 400, "invalid_argument", "partition")
    assert_error(call(hb, "GET", path + "?partition=2"), 400, "invalid_argument", "partition")
    assert_error(call(hb, "GET", path + "?partition=0&offset=5"), 400, "offset_out_of_range")
    assert_error(call(hb, "GET", path + "?limit=0"), 400, "invalid_argument", "limit")
    assert_error(call(hb, "GET", path + "?limit=x"), 400, "invalid_argument", "limit")
    assert_error(call(hb, "GET", path + "?from=middle"), 400, "invalid_argument", "from")
    assert_error(call(hb, "GET", path + "?from=latest&time=5"), 400, "invalid_argument")
    assert_error(call(hb, "GET", path + "?values=raw"), 400, "invalid_argument", "values")
    st, hdrs, _ = call(hb, "DELETE", path)
    assert st == 405 and hdrs["Allow"] == "GET, HEAD, POST"


def test_events_cross_protocol(hb):
    """Events produced over HTTP are consumed by kcat with the same key, value and headers, and
    events produced by kcat read back over HTTP."""
    assert call(hb, "POST", "/v1/topics", {"name": "x", "partitions": 1})[0] == 201
    st, _, _ = call(hb, "POST", "/v1/topics/x/events",
                    [{"key": "k1", "value_text": "first", "headers": {"h1": "v1"}},
                     {"key": "k2", "value": {"second": True}}])
    assert st == 200
    out = subprocess.run(["kcat", "-b", hb.bootstrap, "-C", "-t", "x", "-e", "-q", "-f",
                          "%k|%s|%h\n"], capture_output=True, timeout=30, check=True).stdout
    assert out.decode().splitlines() == ['k1|first|h1=v1', 'k2|{"second":true}|']
    subprocess.run(["kcat", "-b", hb.bootstrap, "-P", "-t", "x", "-K:", "-H", "source=kcat"],
                   input=b'k3:{"third": 3}\nk4:not json\n', timeout=30, check=True)
    st, _, r = call(hb, "GET", "/v1/topics/x/events?partition=0&offset=2")
    ev = r["events"]
    assert [(e["key"], e.get("value"), e.get("value_text")) for e in ev] == \
        [("k3", {"third": 3}, None), ("k4", None, "not json")]
    assert ev[0]["headers"] == [{"key": "source", "value": "kcat"}]


def test_pipelined_produce_then_read_stays_in_order(hb):
    """A produce answers after its fsync (fsync=always); the read pipelined behind it on the
    same connection is not answered before it, and sees the events."""
    assert call(hb, "POST", "/v1/topics", {"name": "order", "partitions": 1})[0] == 201
    body = json.dumps([{"value": i} for i in range(50)]).encode()
    req = (b"POST /v1/topics/order/events HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n"
           % len(body) + body +
           b"GET /v1/topics/order/events?limit=1000 HTTP/1.1\r\nHost: localhost\r\n"
           b"Connection: close\r\n\r\n")
    rs = responses(raw(hb, req))
    assert [r[0] for r in rs] == [200, 200]
    assert len(json.loads(rs[0][2])["offsets"]) == 50
    assert [e["value"] for e in json.loads(rs[1][2])["events"]] == list(range(50))
    # A client that leaves while its produce waits does not disturb the broker.
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", hb.http_port))
        s.sendall(req[:len(req) - 60])
        s.close()
    st, _, r = call(hb, "GET", "/v1/topics/order/events?limit=10000")
    assert st == 200 and len(r["events"]) in range(50, 50 * 22)
