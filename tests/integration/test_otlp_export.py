"""Span export to an OpenTelemetry collector over OTLP/HTTP JSON (docs/otlp-export.md), against
a small collector written here (http.server on 127.0.0.1, an ephemeral port): the requests'
structure, hex ids, parent links to the events' traceparent and attributes after produces
through HTTP, Kafka and Redis; a collector that fails, is slow or is down never stops the
broker, and its drops are counted within the queue's bound; retries on 503; the last flush at
shutdown; and with export off nothing is posted."""
import http.server
import json
import os
import re
import socket
import threading
import time

import pytest
import redis
from confluent_kafka import Producer

from conftest import Broker
from test_http import call
from test_http_metrics import scrape, val

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TP = f"00-{TRACE}-{PARENT}-01"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


class Collector:
    """Records each POST's path, headers and JSON body; answers with `status` (a list is
    consumed one answer per request, then 200), after `delay` seconds."""

    def __init__(self):
        self.posts = []
        self.status = 200
        self.delay = 0.0
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    st = outer.status
                    if isinstance(st, list):
                        st = st.pop(0) if st else 200
                    outer.posts.append((self.path, dict(self.headers), body, st))
                time.sleep(outer.delay)
                self.send_response(st)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def accepted(self):
        """Every span of the requests answered 2xx, with its request's resource."""
        out = []
        with self.lock:
            posts = list(self.posts)
        for path, hdrs, body, st in posts:
            if st // 100 != 2:
                continue
            req = json.loads(body)
            for rs in req["resourceSpans"]:
                res = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
                for ss in rs["scopeSpans"]:
                    for sp in ss["spans"]:
                        out.append((res, ss["scope"], sp))
        return out

    def wait_spans(self, n, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.accepted()
            if len(got) >= n:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{len(self.accepted())} spans arrived, expected {n}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector():
    c = Collector()
    yield c
    c.close()


def start(tmp_path, endpoint, *settings, redis_on=False):
    extra = ["--set", f"otlp.endpoint={endpoint}", "--set", "otlp.interval.ms=100"]
    for s in settings:
        extra += ["--set", s]
    return Broker(str(tmp_path / "data"), http=True, redis=redis_on, extra=extra).start()


def attrs(span):
    out = {}
    for a in span["attributes"]:
        v = a["value"]
        out[a["key"]] = v["stringValue"] if "stringValue" in v else int(v["intValue"])
    return out


def by_topic(spans, topic):
    return [sp for _, _, sp in spans if attrs(sp)["messaging.destination.name"] == topic]


def test_produce_spans_http_kafka_redis(tmp_path, collector):
    b = start(tmp_path, collector.url + "/", "otlp.headers=Authorization=Bearer s3cret",
              "otlp.resource.attributes=deployment.environment=test", redis_on=True)
    try:
        assert call(b, "POST", "/v1/topics", {"name": "orders", "partitions": 2})[0] == 201
        # HTTP: 3 events for partition 1, the first with a traceparent.
        st, _, r = call(b, "POST", "/v1/topics/orders/events",
                        [{"key": "k%d" % i, "value": {"n": i}, "partition": 1,
                          "headers": {"traceparent": TP} if i == 0 else {}} for i in range(3)])
        assert st == 200, r
        http_base = r["offsets"][0]["offset"]
        # Kafka: a batch with a traceparent on its first record, then one without.
        assert call(b, "POST", "/v1/topics", {"name": "kafka-t", "partitions": 1})[0] == 201
        p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 50})
        p.produce("kafka-t", value=b"a", partition=0, headers=[("traceparent", TP.encode())])
        p.produce("kafka-t", value=b"b", partition=0)
        assert p.flush(15) == 0
        p.produce("kafka-t", value=b"c", partition=0)
        assert p.flush(15) == 0
        # Redis: an XADD (its own topic).
        rc = redis.Redis(host="127.0.0.1", port=b.redis_port)
        rc.xadd("stream-t", {"f": "v"})
        spans = collector.wait_spans(4)
        deadline = time.time() + 10
        while (sum(attrs(s)["messaging.batch.message_count"]
                   for s in by_topic(collector.accepted(), "kafka-t")) < 3
               and time.time() < deadline):
            time.sleep(0.05)
        spans = collector.accepted()
        # Every request: the path, the JSON content type, the configured header.
        for path, hdrs, body, _ in collector.posts:
            assert path == "/v1/traces"
            assert hdrs["Content-Type"] == "application/json"
            assert hdrs["Authorization"] == "Bearer s3cret"
        res, scope, _ = spans[0]
        assert res["service.name"] == {"stringValue": "tidings"}
        assert res["deployment.environment"] == {"stringValue": "test"}
        assert re.match(r"^[0-9a-f-]{36}$", res["service.instance.id"]["stringValue"])
        assert res["host.name"]["stringValue"] == socket.gethostname()
        assert scope["name"] == "tidings"
        for _, _, sp in spans:
            assert HEX32.match(sp["traceId"]) and HEX16.match(sp["spanId"]), sp
            assert sp["kind"] == 4  # PRODUCER
            assert int(sp["startTimeUnixNano"]) <= int(sp["endTimeUnixNano"])
            assert abs(int(sp["endTimeUnixNano"]) / 1e9 - time.time()) < 120
            assert attrs(sp)["messaging.system"] == "tidings"
            assert attrs(sp)["messaging.operation"] == "publish"
        [hs] = by_topic(spans, "orders")
        assert hs["name"] == "publish orders"
        assert hs["traceId"] == TRACE and hs["parentSpanId"] == PARENT and hs["spanId"] != PARENT
        a = attrs(hs)
        assert a["messaging.destination.partition.id"] == "1"
        assert a["messaging.kafka.offset"] == http_base
        assert a["messaging.batch.message_count"] == 3
        ks = sorted(by_topic(spans, "kafka-t"), key=lambda s: attrs(s)["messaging.kafka.offset"])
        # The client may send "a" and "b" in one batch or two: the batch of "a" is a child of
        # its traceparent, the batch of "c" (no header) the root of a new trace.
        assert sum(attrs(k)["messaging.batch.message_count"] for k in ks) == 3, ks
        assert ks[0]["traceId"] == TRACE and ks[0]["parentSpanId"] == PARENT
        assert attrs(ks[0])["messaging.kafka.offset"] == 0
        assert "parentSpanId" not in ks[-1] and ks[-1]["traceId"] != TRACE  # a new trace
        assert attrs(ks[-1])["messaging.kafka.offset"] == 2
        [rs] = by_topic(spans, "stream-t")
        assert "parentSpanId" not in rs and attrs(rs)["messaging.batch.message_count"] == 1
        # No span for the internal state topics; the metric counts what the collector took
        # (once the exporter has read the collector's answer to its last post: waited for).
        assert not [s for _, _, s in spans
                    if attrs(s)["messaging.destination.name"].startswith("__")]
        deadline = time.time() + 10
        samples, _ = scrape(b)
        while ((val(samples, "tidings_otlp_spans_exported_total") or 0) < len(spans)
               and time.time() < deadline):
            time.sleep(0.05)
            samples, _ = scrape(b)
        assert val(samples, "tidings_otlp_spans_exported_total") == len(spans)
        assert val(samples, "tidings_otlp_posts_failed_total") == 0
    finally:
        b.stop()


def produce_many(b, topic, n):
    for i in range(n):
        st, _, r = call(b, "POST", f"/v1/topics/{topic}/events", [{"value": i}])
        assert st == 200, r


def test_collector_failing_slow_or_down(tmp_path, collector):
    # 500: not retried (OTLP's rule), the batch dropped and counted; the broker keeps serving.
    collector.status = 500
    b = start(tmp_path, collector.url, "otlp.retries=2")
    try:
        assert call(b, "POST", "/v1/topics", {"name": "t", "partitions": 1})[0] == 201
        produce_many(b, "t", 20)
        deadline = time.time() + 20
        while time.time() < deadline:
            samples, _ = scrape(b)
            done = (val(samples, "tidings_otlp_spans_dropped_total", reason="export_failed") or 0)
            if done >= 20:
                break
            time.sleep(0.1)
        assert done == 20
        assert val(samples, "tidings_otlp_spans_exported_total") == 0
        assert val(samples, "tidings_otlp_posts_failed_total") == len(collector.posts) >= 1
    finally:
        b.stop()
    # Slow: each answer takes 2 s, past the 300 ms timeout; the queue of 8 fills, and the
    # spans past it are dropped and counted while produces keep being answered.
    collector.status, collector.delay, collector.posts = 200, 2.0, []
    b = start(tmp_path, collector.url, "otlp.timeout.ms=300", "otlp.retries=0",
              "otlp.max.queue.spans=8", "otlp.batch.spans=4", "otlp.shutdown.timeout.ms=200")
    try:
        produce_many(b, "t", 60)
        samples, _ = scrape(b)
        assert val(samples, "tidings_otlp_queue_spans") <= 8
        full = val(samples, "tidings_otlp_spans_dropped_total", reason="queue_full")
        assert full >= 1
        assert call(b, "GET", "/health")[0] == 200
    finally:
        b.stop()
    # Down: nothing listens on the port.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    b = start(tmp_path, f"http://127.0.0.1:{dead}", "otlp.retries=1")
    try:
        produce_many(b, "t", 10)
        deadline = time.time() + 20
        while time.time() < deadline:
            samples, _ = scrape(b)
            failed = val(samples, "tidings_otlp_spans_dropped_total", reason="export_failed")
            if (failed or 0) >= 10:
                break
            time.sleep(0.1)
        assert val(samples, "tidings_otlp_spans_dropped_total", reason="export_failed") == 10
        assert val(samples, "tidings_otlp_posts_failed_total") >= 2  # retried once
        assert call(b, "GET", "/health")[0] == 200
    finally:
        b.stop()


def test_retry_on_503_then_accepted(tmp_path, collector):
    collector.status = [503]
    b = start(tmp_path, collector.url, "otlp.retries=3")
    try:
        assert call(b, "POST", "/v1/topics", {"name": "t", "partitions": 1})[0] == 201
        produce_many(b, "t", 1)
        [(_, _, sp)] = collector.wait_spans(1)
        assert len(collector.posts) == 2 and collector.posts[0][2] == collector.posts[1][2]
        # The broker counts the export once it has read the collector's answer, which the
        # collector sends after recording the post: wait (bounded) for it.
        deadline = time.time() + 10
        samples, _ = scrape(b)
        while ((val(samples, "tidings_otlp_spans_exported_total") or 0) < 1
               and time.time() < deadline):
            time.sleep(0.05)
            samples, _ = scrape(b)
        assert val(samples, "tidings_otlp_posts_failed_total") == 1
        assert val(samples, "tidings_otlp_spans_exported_total") == 1
    finally:
        b.stop()


def test_last_flush_at_shutdown(tmp_path, collector):
    # Set through the environment this time (TIDINGS_OTLP_*, docs/configuration.md).
    env = dict(os.environ, TIDINGS_OTLP_ENDPOINT=collector.url,
               TIDINGS_OTLP_INTERVAL_MS="3600000")
    b = Broker(str(tmp_path / "data"), http=True, env=env).start()
    assert call(b, "POST", "/v1/topics", {"name": "t", "partitions": 1})[0] == 201
    produce_many(b, "t", 3)
    assert collector.posts == []
    b.stop()
    assert len(collector.accepted()) == 3


def test_export_off_posts_nothing(tmp_path, collector):
    b = Broker(str(tmp_path / "data"), http=True).start()
    try:
        assert call(b, "POST", "/v1/topics", {"name": "t", "partitions": 1})[0] == 201
        produce_many(b, "t", 5)
        samples, families = scrape(b)
        assert not [f for f in families if f.startswith("tidings_otlp")]
    finally:
        b.stop()
    assert collector.posts == []


def test_bad_settings_refused(tmp_path):
    import subprocess
    from conftest import BIN
    for bad in ("otlp.endpoint=ftp://x", "otlp.max.queue.spans=0", "otlp.headers=a=b\nc: d"):
        p = subprocess.run([BIN, "serve", "--data", str(tmp_path / "d"), "--kafka", "off",
                            "--http", "off", "--redis", "off", "--set", bad],
                           capture_output=True, timeout=30)
        assert p.returncode != 0 and b"otlp." in p.stderr, (bad, p.stderr)


def test_queue_delivery_dead_letter_and_redrive_stay_in_the_trace(tmp_path, collector):
    """An event with a traceparent is delivered by a queue group (CONSUMER span), nacked into
    its dead-letter topic (a dead_letter span and the publish to the DLQ) and redriven (a
    redrive span and the publish back): every span is in the event's trace, under the span of
    the event it is about (the original, the dead letter, the redriven copy)."""
    from test_queues import outcome, put, receive, wait_job
    b = start(tmp_path, collector.url)
    try:
        assert call(b, "POST", "/v1/topics", {"name": "jobs", "partitions": 1})[0] == 201
        st, _, _ = call(b, "POST", "/v1/topics/jobs/events",
                        [{"key": "k", "value": 1, "headers": {"traceparent": TP}}])
        assert st == 200
        put(b, "work", {"topic": "jobs", "max_deliveries": 1})
        [ev] = receive(b, "work", max=10)
        outcome(b, "work", "nack", [ev["id"]], error="down")
        deadline = time.time() + 20
        while call(b, "GET", "/v1/queues/work")[2]["dead_lettered"] < 1:
            assert time.time() < deadline
            time.sleep(0.05)
        st, _, job = call(b, "POST", "/v1/topics/jobs.dlq/redrive", {})
        assert wait_job(b, job["id"])["moved"] == 1
        want = {("publish", "jobs"), ("deliver", "jobs"), ("dead_letter", "jobs"),
                ("publish", "jobs.dlq"), ("redrive", "jobs.dlq")}
        deadline = time.time() + 20
        while time.time() < deadline:
            spans = [sp for _, _, sp in collector.accepted()]
            got = {(attrs(s)["messaging.operation"], attrs(s)["messaging.destination.name"])
                   for s in spans}
            if want <= got and len([s for s in spans if s["name"] == "publish jobs"]) == 2:
                break
            time.sleep(0.05)
        assert want <= got, got

        end = time.time() + 10
        while len(evs := call(b, "GET", "/v1/topics/jobs/events?limit=10")[2]["events"]) < 2:
            assert time.time() < end, evs
            time.sleep(0.05)
        hs = {h["key"]: h["value"] for h in evs[1]["headers"]}
        # The dead letter is a child span of the event, the redriven copy a child of the dead
        # letter, which the copy names (docs/tracing.md; the redrive emptied the DLQ): each
        # hop's spans hang under the copy it makes or reads.
        dead, back = hs["x-causation-span-id"], hs["traceparent"].split("-")[2]
        parents = {(s["name"], attrs(s)["messaging.kafka.offset"]): s["parentSpanId"]
                   for s in spans}
        for s in spans:
            assert s["traceId"] == TRACE, s
        assert parents[("publish jobs", 0)] == PARENT
        assert parents[("deliver jobs", 0)] == PARENT
        assert parents[("publish jobs.dlq", 0)] == dead
        assert parents[("dead_letter jobs", 0)] == dead
        assert parents[("redrive jobs.dlq", 0)] == dead
        assert parents[("publish jobs", 1)] == back
        kinds = {attrs(s)["messaging.operation"]: s["kind"] for s in spans}
        assert kinds == {"publish": 4, "deliver": 5, "dead_letter": 1, "redrive": 1}
        [d] = [s for s in spans if s["name"] == "deliver jobs"]
        assert attrs(d)["messaging.consumer.group.name"] == "work"
        assert attrs(d)["tidings.deliveries"] == 1
        assert attrs(d)["messaging.kafka.offset"] == 0
        [dl] = [s for s in spans if s["name"] == "dead_letter jobs"]
        assert attrs(dl)["messaging.consumer.group.name"] == "work"
    finally:
        b.stop()


def test_redis_group_deliveries_make_consumer_spans(tmp_path, collector):
    """XREADGROUP's deliveries make CONSUMER spans, as a queue group's do: one per entry
    handed out ('>'), a child of the entry's traceparent, with the group's name; re-reading
    the consumer's own pending entries (an ID instead of '>') delivers nothing new, and makes
    no span."""
    b = start(tmp_path, collector.url, redis_on=True)
    try:
        rc = redis.Redis(host="127.0.0.1", port=b.redis_port)
        rc.xgroup_create("rg", "billing", id="0", mkstream=True)
        rc.xadd("rg", {"order": "o-1", "traceparent": TP})
        rc.xadd("rg", {"order": "o-2"})
        got = rc.xreadgroup("billing", "c1", {"rg": ">"}, count=10)
        assert len(got[0][1]) == 2
        assert len(rc.xreadgroup("billing", "c1", {"rg": "0"}, count=10)[0][1]) == 2  # history
        deadline = time.time() + 20
        while time.time() < deadline:
            spans = [sp for _, _, sp in collector.accepted()]
            if len([s for s in spans if s["name"] == "deliver rg"]) >= 2:
                break
            time.sleep(0.05)
        time.sleep(0.5)  # a history read's span, if one were made, would be exported by now
        spans = [sp for _, _, sp in collector.accepted()]
        ds = sorted((s for s in spans if s["name"] == "deliver rg"),
                    key=lambda s: attrs(s)["messaging.kafka.offset"])
        assert len(ds) == 2, ds
        for d in ds:
            assert d["kind"] == 5  # CONSUMER
            assert attrs(d)["messaging.operation"] == "deliver"
            assert attrs(d)["messaging.consumer.group.name"] == "billing"
        assert ds[0]["traceId"] == TRACE and ds[0]["parentSpanId"] == PARENT
        assert attrs(ds[0])["messaging.kafka.offset"] == 0
        assert ds[1]["traceId"] != TRACE and "parentSpanId" not in ds[1]  # no traceparent
        # A plain XREAD delivers nothing to a group: no span.
        rc.xread({"rg": "0"})
        time.sleep(0.5)
        assert len([s for _, _, s in collector.accepted() if s["name"] == "deliver rg"]) == 2
    finally:
        b.stop()
