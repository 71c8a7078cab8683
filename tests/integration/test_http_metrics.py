"""GET /metrics: the Prometheus text format, parsed with Debian's python3-prometheus-client, and
every counter checked against the traffic the test sent: events and bytes in and out per topic
through HTTP and Kafka, requests and latency histograms per API, HTTP status codes,
connections per protocol, fsync durations, storage per topic and partition, consumer-group lag,
and the process series."""
import http.client
import subprocess
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from conftest import Broker
from test_http import call


@pytest.fixture
def mb(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True,
               extra=["--set", "group.initial.rebalance.delay.ms=0"]).start()
    yield b
    if b.proc:
        b.stop()


def scrape(b):
    """{(name, frozenset(labels)): value} for every sample, and the families by name."""
    c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=10)
    c.request("GET", "/metrics")
    r = c.getresponse()
    text = r.read().decode()
    c.close()
    assert r.status == 200
    assert r.getheader("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    samples, families = {}, {}
    for fam in text_string_to_metric_families(text):
        assert fam.name not in families, "a family appears twice: " + fam.name
        families[fam.name] = fam
        for s in fam.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, families


def val(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def test_metrics_follow_traffic(mb):
    assert call(mb, "POST", "/v1/topics", {"name": "orders", "partitions": 3})[0] == 201
    # 5 events through HTTP (one request) and 7 through Kafka.
    st, _, r = call(mb, "POST", "/v1/topics/orders/events",
                    [{"key": "k%d" % i, "value": {"n": i}} for i in range(5)])
    assert st == 200
    p = Producer({"bootstrap.servers": mb.bootstrap})
    for i in range(7):
        p.produce("orders", key=b"kafka-%d" % i, value=b"x" * 100)
    assert p.flush(15) == 0
    # 4 read through HTTP from partition 0 or fewer if it has fewer; all 12 through kcat.
    st, _, got = call(mb, "GET", "/v1/topics/orders/events?from=earliest&limit=4")
    http_read = len(got["events"])
    assert st == 200 and 1 <= http_read <= 4
    out = subprocess.run(["kcat", "-b", mb.bootstrap, "-C", "-t", "orders", "-e", "-q",
                          "-f", "%o\n"], capture_output=True, timeout=60, check=True)
    assert len(out.stdout.split()) == 12
    assert call(mb, "GET", "/v1/topics/nope")[0] == 404

    s, fams = scrape(mb)
    assert val(s, "tidings_topic_events_in_total", topic="orders") == 12
    stored = sum(val(s, "tidings_partition_storage_bytes", topic="orders", partition=str(i))
                 for i in range(3))
    # Every appended byte is stored (no retention yet), and the topic total is the sum.
    assert val(s, "tidings_topic_bytes_in_total", topic="orders") == stored
    assert stored > 7 * 100
    assert val(s, "tidings_topic_storage_bytes", topic="orders") == stored
    assert sum(val(s, "tidings_partition_high_watermark", topic="orders", partition=str(i))
               for i in range(3)) == 12
    assert val(s, "tidings_topic_partitions", topic="orders") == 3
    assert val(s, "tidings_partition_offline", topic="orders", partition="0") == 0
    assert val(s, "tidings_topic_events_out_total", topic="orders") == 12 + http_read
    assert val(s, "tidings_topic_bytes_out_total", topic="orders") >= stored

    # Requests per API, with histograms that agree with the counters.
    assert val(s, "tidings_requests_total", protocol="http",
               api="POST /v1/topics/{topic}/events") == 1
    assert val(s, "tidings_requests_total", protocol="http",
               api="GET /v1/topics/{topic}/events") == 1
    assert val(s, "tidings_requests_total", protocol="http", api="POST /v1/topics") == 1
    assert val(s, "tidings_requests_total", protocol="http", api="GET /v1/topics/{topic}") == 1
    assert val(s, "tidings_requests_total", protocol="kafka", api="Produce") >= 1
    assert val(s, "tidings_requests_total", protocol="kafka", api="Fetch") >= 1
    assert val(s, "tidings_requests_total", protocol="kafka", api="Metadata") >= 2
    hist = fams["tidings_request_duration_seconds"]
    assert hist.type == "histogram"
    for proto, api in [("kafka", "Produce"), ("http", "POST /v1/topics/{topic}/events")]:
        count = val(s, "tidings_request_duration_seconds_count", protocol=proto, api=api)
        assert count == val(s, "tidings_requests_total", protocol=proto, api=api)
        buckets = sorted((float(sm.labels["le"]), sm.value) for sm in hist.samples
                         if sm.name.endswith("_bucket") and sm.labels["protocol"] == proto
                         and sm.labels["api"] == api)
        assert buckets[-1] == (float("inf"), count)
        assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
        assert val(s, "tidings_request_duration_seconds_sum", protocol=proto, api=api) > 0
    # Status codes: 201 (create), 200s, and the 404.
    assert val(s, "tidings_http_responses_total", code="201") == 1
    assert val(s, "tidings_http_responses_total", code="404") == 1
    assert val(s, "tidings_http_responses_total", code="200") >= 2

    # fsync=always (the default): the produces were fsynced.
    assert val(s, "tidings_fsync_duration_seconds_count") >= 1
    # Connections: this scrape's own HTTP connection is open; the Kafka ones were accepted.
    assert val(s, "tidings_connections", protocol="http") >= 1
    assert val(s, "tidings_connections_accepted_total", protocol="kafka") >= 2
    assert val(s, "tidings_connections_accepted_total", protocol="http") >= 5
    # Process series.
    assert abs(val(s, "process_start_time_seconds") - time.time()) < 300
    assert val(s, "process_resident_memory_bytes") > 1 << 20
    assert val(s, "process_open_fds") > 3
    assert val(s, "tidings_build_info", version=fams["tidings_build_info"].samples[0]
               .labels["version"]) == 1


def test_group_lag_and_deleted_topics(mb):
    call(mb, "POST", "/v1/topics", {"name": "t", "partitions": 2})
    call(mb, "POST", "/v1/topics/t/events",
         [{"value": i, "partition": i % 2} for i in range(10)])
    c = Consumer({"bootstrap.servers": mb.bootstrap, "group.id": "billing",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe(["t"])
    n, end = 0, time.time() + 20
    while n < 10 and time.time() < end:
        m = c.poll(0.5)
        n += m is not None and not m.error()
    assert n == 10
    c.commit(offsets=[TopicPartition("t", 0, 2), TopicPartition("t", 1, 5)], asynchronous=False)
    s, _ = scrape(mb)
    assert val(s, "tidings_group_members", group="billing") == 1
    assert val(s, "tidings_group_lag", group="billing", topic="t", partition="0") == 3
    assert val(s, "tidings_group_lag", group="billing", topic="t", partition="1") == 0
    assert val(s, "tidings_group_committed_offset", group="billing", topic="t",
               partition="0") == 2
    c.close()
    s, _ = scrape(mb)
    assert val(s, "tidings_group_members", group="billing") == 0
    assert val(s, "tidings_group_lag", group="billing", topic="t", partition="0") == 3

    # A deleted topic leaves every series; created again, its counters start over.
    assert val(s, "tidings_topic_events_in_total", topic="t") == 10
    assert call(mb, "DELETE", "/v1/topics/t")[0] == 204
    s, _ = scrape(mb)
    assert not [k for k in s if ("topic", "t") in k[1]]
    call(mb, "POST", "/v1/topics", {"name": "t"})
    call(mb, "POST", "/v1/topics/t/events", {"value": "again"})
    s, _ = scrape(mb)
    assert val(s, "tidings_topic_events_in_total", topic="t") == 1
    assert val(s, "tidings_topic_events_out_total", topic="t") == 0


def test_metrics_methods_and_unmatched_paths(mb):
    st, hdrs, _ = call(mb, "POST", "/metrics", body="{}")
    assert st == 405 and hdrs["Allow"] == "GET, HEAD"
    for path in ["/a", "/b/c", "/v1/nothing/here"]:
        assert call(mb, "GET", path)[0] == 404
    s, _ = scrape(mb)
    # Paths that match no route share one series, whatever they were.
    assert val(s, "tidings_requests_total", protocol="http", api="unmatched") == 3
    assert val(s, "tidings_requests_total", protocol="http", api="POST /metrics") == 1
    assert not [k for k in s if ("api", "GET /a") in k[1]]
