"""Hardening of the HTTP API (issue 19): every error carries its JSON body, also when the
request names things in bytes that are not UTF-8; a subscriber that stopped reading gets its
final slow_consumer event before the end of the stream; request bodies are parsed with memory
bounded by their size (an array of events an element at a time, a body whose parse would cost
too much refused with 413); reals come out in their shortest form; patterns with an empty
segment (what an unescaped '#' leaves) and malformed delivery ids are refused."""
import http.client
import json
import os
import socket
import threading
import time

import pytest

from conftest import ROOT, Broker
from test_http import assert_error, call


@pytest.fixture
def hh(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True,
               extra=["--set", "http.sse.stall.timeout.ms=500"]).start()
    yield b
    if b.proc:
        b.stop()


def raw_call(b, method, path, body=None):
    """One request with a body of raw bytes; returns (status, headers, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=60)
    c.request(method, path, body=body,
              headers={"Content-Type": "application/json"} if body is not None else {})
    r = c.getresponse()
    # A stream (a subscription that should have been refused) is not read: it never ends.
    data = b"" if r.getheader("Content-Type") == "text/event-stream" else r.read()
    c.close()
    return r.status, dict(r.getheaders()), data


def assert_json_error(resp, status):
    st, hdrs, data = resp
    assert st == status, resp
    assert hdrs.get("Content-Type") == "application/json", resp
    body = json.loads(data)
    assert body["error"]["status"] == status and body["error"]["code"], body
    assert body["error"]["message"], body
    return body["error"]


# ---------------------------------------------------------------------------------------------
# Every error has its JSON body

def test_errors_naming_bytes_that_are_not_utf8_have_json_bodies(hh):
    call(hh, "POST", "/v1/topics", {"name": "t"})
    # The case: the message quotes the name, which jansson refused to encode.
    err = assert_json_error(raw_call(hh, "GET", "/v1/topics/%FF%FE%FD"), 404)
    assert err["code"] == "not_found" and "\\xFF\\xFE\\xFD" in err["message"], err
    cases = [
        ("DELETE", "/v1/topics/%FF", None, 404),
        ("PATCH", "/v1/topics/%FF", b"{}", 404),
        ("GET", "/v1/topics/%FF/events", None, 404),
        ("POST", "/v1/topics/%FF/events", b'{"value": 1}', 404),
        ("POST", "/v1/topics/%C0%AF/redrive", b"{}", 404),
        ("POST", "/v1/topics", b'{"name": "a\xffb"}', 400),           # jansson's own error
        ("POST", "/v1/topics/t/events", b'[{"value": "\xed\xa0\x80"}]', 400),
        ("GET", "/v1/groups/%FF", None, 404),
        ("DELETE", "/v1/groups/%FF", None, 404),
        ("GET", "/v1/queues/%FF", None, 404),
        ("PUT", "/v1/queues/q", b'{"topic": "%s"}' % "\u00ff".encode("latin-1"), 400),
        ("GET", "/v1/redrives/%FF", None, 404),
        ("GET", "/v1/subscribe?topics=%FF", None, 400),
        ("GET", "/v1/topics/t/events?from=%FF", None, 400),
        ("GET", "/%FF%FE", None, 404),
    ]
    for method, path, body, status in cases:
        try:
            assert_json_error(raw_call(hh, method, path, body), status)
        except (AssertionError, ValueError) as e:
            raise AssertionError(f"{method} {path}: {e}") from e
    assert call(hh, "GET", "/health")[0] == 200


# ---------------------------------------------------------------------------------------------
# A stalled subscriber gets its final event first

def dechunk(data):
    """The body of a chunked HTTP/1.1 response (after its head); asserts the framing."""
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in head
    body = bytearray()
    while True:
        line, _, rest = rest.partition(b"\r\n")
        size = int(line, 16)
        if size == 0:
            assert rest == b"\r\n", rest[:100]
            return bytes(body)
        body += rest[:size]
        assert rest[size:size + 2] == b"\r\n"
        rest = rest[size + 2:]


def test_stalled_subscriber_gets_slow_consumer_before_the_end(hh):
    call(hh, "POST", "/v1/topics", {"name": "big", "config": {"fsync": "none"}})
    sock = socket.socket()
    # A small receive buffer: what the broker queued, not the client's kernel, holds the
    # backlog, as on a real network.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", hh.http_port))
    sock.sendall(b"GET /v1/subscribe?topics=big HTTP/1.1\r\nHost: localhost\r\n\r\n")
    time.sleep(0.3)
    value = "x" * 60000
    for _ in range(13):  # ~12 MB: the socket buffers, then the broker's 4 MiB output limit
        st, _, _ = call(hh, "POST", "/v1/topics/big/events", [{"value": value}] * 15)
        assert st == 200
    deadline = time.time() + 20
    while "subscription ended: slow_consumer" not in hh.stderr():
        assert time.time() < deadline, "the stalled subscriber was not ended"
        time.sleep(0.05)
    # The client reads nothing for longer than the broker's grace period (five seconds), while
    # the broker still holds megabytes of its events, then reads: the final event must be there
    # before the end of the stream.
    time.sleep(5.5)
    buf = bytearray()
    deadline = time.time() + 30
    while time.time() < deadline:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
    else:
        raise AssertionError("the broker did not close the slow subscriber")
    sock.close()
    body = dechunk(bytes(buf)).decode()
    messages = [m for m in body.split("\n\n") if m]
    assert messages[-1].startswith("event: error\ndata: "), messages[-1][:300]
    err = json.loads(messages[-1].split("data: ", 1)[1])["error"]
    assert err["code"] == "slow_consumer" and "read nothing" in err["message"]
    # Every event before it arrived whole, in order, with its id.
    data = [m for m in messages[1:-1]]
    assert data, "no event before the error"
    offsets = []
    for m in data:
        lines = dict(line.split(": ", 1) for line in m.split("\n"))
        ev = json.loads(lines["data"])
        assert ev["value"] == value
        assert lines["id"].startswith(f"big/0/{ev['offset']};")
        offsets.append(ev["offset"])
    assert offsets == list(range(len(offsets)))
    # What was queued and not yet sent was dropped, not sent ahead of the error.
    assert "bytes of unsent events before the final error" in hh.stderr()
    assert len(offsets) < 13 * 15


# ---------------------------------------------------------------------------------------------
# Memory: bodies are parsed at a cost bounded by their size

def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_json_bodies_parse_in_bounded_memory(hh):
    call(hh, "POST", "/v1/topics", {"name": "m", "config": {"fsync": "none"}})
    pid = hh.proc.pid
    before = status_kb(pid, "VmHWM")
    # The body: 6 MB of two million empty objects (455 MB of jansson tree before).
    storm = b"[" + b",".join([b"{}"] * 2000000) + b"]"
    inside = b'[{"value": ' + storm + b"}]"      # one event whose value is the storm
    config = b'{"name": "n", "config": ' + storm + b"}"
    results = {}

    def send(name, path, body):
        results[name] = raw_call(hh, "POST", path, body)

    threads = [threading.Thread(target=send, args=a) for a in [
        ("array", "/v1/topics/m/events", storm),
        ("array2", "/v1/topics/m/events", storm),
        ("value", "/v1/topics/m/events", inside),
        ("config", "/v1/topics", config)]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    grown_mb = (status_kb(pid, "VmHWM") - before) / 1024
    # Four 6 MB bodies in flight at once: their buffers, never their trees.
    assert grown_mb < 150, f"peak RSS grew by {grown_mb:.0f} MB"
    for name in ("array", "array2"):
        err = assert_json_error(results[name], 400)
        assert err["code"] == "invalid_argument" and "1 to 10000 events" in err["message"]
    for name in ("value", "config"):
        err = assert_json_error(results[name], 413)
        assert err["code"] == "body_too_large" and "MiB" in err["message"], err
    # The broker still serves, and a body of many events is still taken whole.
    many = [{"key": f"k{i}", "value": {"n": i, "tags": ["a", "b"]}} for i in range(10000)]
    st, _, body = call(hh, "POST", "/v1/topics/m/events", many)
    assert st == 200 and len(body["offsets"]) == 10000
    st, _, got = call(hh, "GET", "/v1/topics/m/events?partition=0&offset=9999&limit=1")
    assert got["events"][0]["value"] == {"n": 9999, "tags": ["a", "b"]}


def test_errors_in_an_array_of_events_point_into_the_body(hh):
    call(hh, "POST", "/v1/topics", {"name": "e"})
    path = "/v1/topics/e/events"
    err = assert_json_error(raw_call(hh, "POST", path, b'[{"value": 1},\n {"value": tru},\n {}]'),
                            400)
    assert err["code"] == "invalid_json" and "line 2, column" in err["message"], err
    err = assert_json_error(raw_call(hh, "POST", path, b'[{"value": 1},\n {"value": 2'), 400)
    assert err["code"] == "invalid_json" and "line 2" in err["message"], err
    err = assert_json_error(raw_call(hh, "POST", path, b'[{"value": 1}, {"value": 2, "value": 3}]'),
                            400)
    assert err["code"] == "invalid_json" and "duplicate" in err["message"], err
    for body, text in [(b"[]", "1 to 10000"), (b"[1]", "event 0 must be an object"),
                       (b'[{"value": 1}, 2]', "event 1 must be an object"),
                       (b'[{"value": 1},]', "invalid JSON")]:
        err = assert_json_error(raw_call(hh, "POST", path, body), 400)
        assert text in err["message"], (body, err)
    # Nothing of a refused request was stored.
    st, _, t = call(hh, "GET", "/v1/topics/e")
    assert t["partitions"][0]["high_watermark"] == 0


# ---------------------------------------------------------------------------------------------
# Reals, patterns, delivery ids, and the docs' example

def test_reals_are_written_in_their_shortest_form(hh):
    call(hh, "POST", "/v1/topics", {"name": "r"})
    st, _, _ = raw_call(hh, "POST", "/v1/topics/r/events",
                        b'{"value": {"price": 0.1, "tiny": 1.5e-7, "big": 1e300, "n": 3, '
                        b'"third": 0.3333333333333333, "whole": 2.0}}')
    assert st == 200
    # Stored as the compact text with shortest reals, as Python and JavaScript print them.
    st, _, got = call(hh, "GET", "/v1/topics/r/events?values=string")
    assert got["events"][0]["value"] == ('{"price":0.1,"tiny":1.5e-07,"big":1e+300,"n":3,'
                                         '"third":0.3333333333333333,"whole":2.0}')
    # And so in answers: the raw text of a queue group's policy (jitter 0.1, multiplier 2).
    st, _, text = raw_call(hh, "PUT", "/v1/queues/g", b'{"topic": "r", "backoff": '
                                                      b'{"jitter": 0.1, "multiplier": 1.1}}')
    assert st == 201
    assert b'"multiplier":1.1,' in text and b'"jitter":0.1}' in text, text
    assert b"0000000" not in text, text
    # Live subscriptions too.
    st, _, data = sse_first_event(hh, "topics=r&from=earliest")
    assert '"price":0.1,' in data and '"tiny":1.5e-07' in data, data


def sse_first_event(b, query):
    """The first data event of a subscription: (status, id, data text)."""
    c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=10)
    c.request("GET", "/v1/subscribe?" + query)
    r = c.getresponse()
    assert r.status == 200
    ev = {}
    while True:
        line = r.readline().decode().rstrip("\n")
        if line == "" and ev.get("event", "message") == "message" and "data" in ev:
            c.close()
            return r.status, ev.get("id"), ev["data"]
        if line == "":
            ev = {}
            continue
        name, _, value = line.partition(": ")
        ev[name] = value


def test_patterns_with_an_empty_segment_are_refused(hh):
    call(hh, "POST", "/v1/topics", {"name": "orders"})
    # What a URL leaves of orders.# when '#' is not written %23.
    for query in ("topics=orders.", "topics=orders.&from=earliest", "topics=a,orders."):
        err = assert_json_error(raw_call(hh, "GET", "/v1/subscribe?" + query), 400)
        assert err["code"] == "invalid_pattern" and "empty segment" in err["message"], err
        assert "%23" in err["message"], err
    for query in ("topics=a..b", "topics=.orders"):
        err = assert_json_error(raw_call(hh, "GET", "/v1/subscribe?" + query), 400)
        assert "empty segment" in err["message"], err
    err = assert_json_error(raw_call(hh, "PUT", "/v1/queues/q", b'{"topic": "orders.*."}'), 400)
    assert err["code"] == "invalid_pattern" and "empty segment" in err["message"], err
    # Written properly, the same subscription works.
    st, _, _ = raw_call(hh, "POST", "/v1/topics/orders/events", b'{"value": 1}')
    assert st == 200
    assert sse_first_event(hh, "topics=orders.%23&from=earliest")[1].startswith("orders/0/0;")
    # A topic whose own name has an empty segment (valid in Kafka) is still subscribed to by
    # that name once it exists.
    call(hh, "POST", "/v1/topics", {"name": "a..b"})
    st, _, _ = raw_call(hh, "POST", "/v1/topics/a..b/events", b'{"value": 2}')
    assert st == 200
    assert sse_first_event(hh, "topics=a..b&from=earliest")[1].startswith("a..b/0/0;")


def test_malformed_delivery_ids_are_bad_requests(hh):
    call(hh, "POST", "/v1/topics", {"name": "q"})
    assert call(hh, "PUT", "/v1/queues/billing", {"topic": "q"})[0] == 201
    for action in ("ack", "nack", "extend"):
        for bad in ("notanid", "1.0.0", "1.0.0.1.2", "1.0.x.1", "", "-1.0.0.1"):
            err = assert_json_error(
                raw_call(hh, "POST", f"/v1/queues/billing/{action}",
                         json.dumps({"ids": ["1.0.0.1", bad]}).encode()), 400)
            assert err["code"] == "invalid_argument" and "not a delivery id" in err["message"]
    # A well-formed id this group never gave is an answer, not an error.
    st, _, r = call(hh, "POST", "/v1/queues/billing/ack", {"ids": ["1.0.0.1"]})
    assert st == 200 and r["results"] == [{"id": "1.0.0.1", "result": "unknown"}]


def docs_commands(path, first_line):
    """The commands of the shell block that starts with first_line in a docs page."""
    with open(os.path.join(ROOT, path)) as f:
        text = f.read()
    block = text[text.index("```sh\n" + first_line) + 6:]
    block = block[:block.index("```")]
    return [c.strip() for c in block.replace("\\\n", " ").splitlines()
            if c.strip() and not c.strip().startswith("#")]


def test_the_http_api_docs_example_answers_what_it_says(hh):
    import shlex
    import subprocess
    commands = docs_commands("docs/http-api.md", "tidings serve &")
    assert commands[0].startswith("tidings serve &")
    outputs = []
    for line in commands[1:]:
        args = [a.replace("localhost:8080", f"127.0.0.1:{hh.http_port}")
                for a in shlex.split(line, comments=True)]
        assert args[0] == "curl", line
        live = "-sN" in args
        p = subprocess.run(args + (["--max-time", "2"] if live else []) + ["-w", "\n%{http_code}"],
                           capture_output=True, timeout=30)
        out, _, code = p.stdout.decode().rpartition("\n")
        assert p.returncode == (28 if live else 0), (line, p.stderr)
        assert code.startswith("2"), (line, code, out)
        if not live and "/metrics" not in line and out.strip():
            assert "error" not in json.loads(out), (line, out)
        outputs.append((line, out))
    by_part = [o for l, o in outputs if "partition=2&offset=0" in l][0]
    assert [e["key"] for e in json.loads(by_part)["events"]] == ["user-1"]
    every = [o for l, o in outputs if "events?limit=10" in l][0]
    assert [e["value"] for e in json.loads(every)["events"]] == [{"total": 42}]
    posted = [o for l, o in outputs if "--json" in l and "/events" in l][0]
    assert json.loads(posted) == {"offsets": [{"partition": 2, "offset": 0}]}
    live = [o for l, o in outputs if "-sN" in l][0]
    assert '"key":"user-1"' in live, live
