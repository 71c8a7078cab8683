"""The trace index (trace.index; docs/tracing.md "Trace index"): GET /v1/traces/{id} and
GET /v1/topics/{t}/partitions/{p}/offsets/{o}/caused, the simulated order flow of issue 25 across
HTTP, Kafka and Redis with a dead letter and a redrive, authorization (hidden events), bounds,
restart, and the `tidings trace` command locally and with --server."""
import subprocess
import time

import pytest
import redis
from confluent_kafka import Producer

from conftest import BIN, Broker
from test_http import assert_error, call
from test_tracing import hdrs, produce, read, wait_for

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
S_ORDER = "00f067aa0ba902b7"


def tp(span, trace=TRACE):
    return f"00-{trace}-{span}-01"


def traced_topic(b, name):
    st, _, r = call(b, "POST", "/v1/topics", {"name": name, "config": {"trace.index": "true"}})
    assert st == 201, r


def start(tmp_path, *extra):
    return Broker(str(tmp_path / "data"), extra=extra, http=True, redis=True).start()


@pytest.fixture
def tb(tmp_path):
    b = start(tmp_path)
    yield b
    if b.proc:
        b.stop()


def trace(b, tid=TRACE, q=""):
    st, _, r = call(b, "GET", f"/v1/traces/{tid}{q}")
    assert st == 200, r
    return r


def order_flow(b):
    """Order placed over HTTP -> inventory reserved over Kafka -> payment over Redis ->
    shipment over HTTP; billing's queue dead-letters the order, which is redriven. Returns the
    dead letter's offset."""
    for t in ("orders", "inventory", "payments", "shipments"):
        traced_topic(b, t)
    # 1. The checkout service: the order, with its span's context.
    produce(b, "orders", {"key": "o-1", "value": {"total": 42}},
            headers={"traceparent": tp(S_ORDER)})
    # 2. The inventory service consumed it and produces over Kafka with a child span, naming
    # its parent span as an OpenTelemetry instrumentation's link would. A few ms later: the
    # dead letter of step 5 keeps the order's timestamp, and the tree orders events of the
    # same millisecond by topic name, which would put inventory before it.
    time.sleep(0.005)
    p = Producer({"bootstrap.servers": b.bootstrap})
    p.produce("inventory", key=b"o-1", value=b'{"reserved":1}',
              headers=[("traceparent", tp("1111111111111111").encode()),
                       ("x-causation-span-id", S_ORDER.encode())])
    assert p.flush(10) == 0
    # 3. The payment service carries the inventory event's context on over Redis.
    r = redis.Redis(host="127.0.0.1", port=b.redis_port, socket_timeout=10)
    r.execute_command("XADD", "payments", "*", "order", "o-1", "traceparent",
                      tp("1111111111111111"))
    # 4. The shipment, over HTTP, a child of the payment's span.
    produce(b, "shipments", {"key": "o-1", "value": {"carrier": "x"},
                             "headers": {"x-causation-span-id": "1111111111111111"}},
            headers={"traceparent": tp("2222222222222222")})
    # 5. Billing fails the order: dead letter, then redrive back to orders.
    st, _, _ = call(b, "PUT", "/v1/queues/billing",
                    {"topic": "orders", "max_deliveries": 1, "ack_timeout_ms": 10000})
    assert st in (200, 201)
    st, _, rc = call(b, "POST", "/v1/queues/billing/receive", {"max": 1, "wait_ms": 2000})
    assert st == 200 and len(rc["events"]) == 1
    call(b, "POST", "/v1/queues/billing/nack", {"ids": [rc["events"][0]["id"]], "error": "no"})
    (dead,) = wait_for(lambda: call(b, "GET", "/v1/topics/orders.dlq/events")[2]
                       .get("events") if call(b, "GET", "/v1/topics/orders.dlq")[0] == 200
                       else None)
    st, _, job = call(b, "POST", "/v1/topics/orders.dlq/redrive", {"keep": True})
    assert st == 202, job
    wait_for(lambda: call(b, "GET", f"/v1/redrives/{job['id']}")[2]["state"] == "done")
    read(b, "orders", 2)
    return dead["offset"]


def chain(r):
    return [(e["topic"], e["depth"]) for e in r["events"]]


def test_order_flow_is_one_trace_in_causal_order(tb):
    order_flow(tb)
    # the dead-letter topic the broker made inherits trace.index from orders
    assert call(tb, "GET", "/v1/topics/orders.dlq")[2]["config"]["trace.index"] == "true"
    r = wait_for(lambda: (lambda x: x if x["count"] == 6 else None)(trace(tb)))
    assert r["hidden"] == 0 and r["truncated"] is False and r["trace_id"] == TRACE
    # The copies keep the order's timestamp: the dead letter comes first among its children.
    assert chain(r) == [("orders", 0), ("orders.dlq", 1), ("orders", 2), ("inventory", 1),
                        ("payments", 2), ("shipments", 3)], r
    evs = r["events"]
    assert evs[0]["span_id"] == S_ORDER and evs[0]["parent"] is None
    assert evs[0]["elapsed_ms"] == 0 and "since_parent_ms" not in evs[0]
    assert evs[1]["cause"] == "orders/0/0" and evs[1]["parent"] == 0
    assert "x-dlq-topic" in evs[1]["headers"]
    assert evs[2]["cause"] == "orders.dlq/0/0" and evs[2]["parent"] == 1
    assert evs[2]["offset"] == 1
    assert evs[3]["parent_span_id"] == S_ORDER and evs[3]["parent"] == 0
    assert evs[3]["since_parent_ms"] >= 0 and evs[3]["key"] == "o-1"
    assert evs[4]["span_id"] == "1111111111111111" and evs[4]["parent"] == 3
    assert evs[5]["parent"] == 4
    assert r["duration_ms"] == max(e["elapsed_ms"] for e in evs)
    # What the order caused: everything below it; the inventory event: payment and shipment.
    st, _, c = call(tb, "GET", "/v1/topics/orders/partitions/0/offsets/0/caused?depth=8")
    assert st == 200, c
    assert chain(c) == chain(r)
    st, _, c = call(tb, "GET", "/v1/topics/orders/partitions/0/offsets/0/caused?depth=1")
    assert sorted(e["topic"] for e in c["events"]) == ["inventory", "orders", "orders.dlq"]
    st, _, c = call(tb, "GET", "/v1/topics/inventory/partitions/0/offsets/0/caused")
    assert chain(c) == [("inventory", 0), ("payments", 1), ("shipments", 2)]
    # Another trace, and one nobody wrote.
    assert trace(tb, "0af7651916cd43dd8448eb211c80319c")["count"] == 0


def test_restart_keeps_the_index(tmp_path):
    b = start(tmp_path)
    try:
        order_flow(b)
        wait_for(lambda: trace(b)["count"] == 6)
        before = chain(trace(b))
        b.stop()
        b = start(tmp_path)
        assert chain(trace(b)) == before
        assert b.proc is not None
    finally:
        b.stop()


def test_topics_without_the_index_and_limits(tb):
    assert call(tb, "POST", "/v1/topics", {"name": "plain"})[0] == 201
    traced_topic(tb, "t")
    for i in range(5):
        produce(tb, "t", {"value": i, "headers": {"traceparent": tp("%016x" % (i + 1))}})
        produce(tb, "plain", {"value": i, "headers": {"traceparent": tp("%016x" % (i + 1))}})
    r = trace(tb)
    assert r["count"] == 5 and {e["topic"] for e in r["events"]} == {"t"}
    assert [e["offset"] for e in r["events"]] == [0, 1, 2, 3, 4]  # roots, by time
    r = trace(tb, q="?limit=2")
    assert r["count"] == 2 and r["truncated"] is True and r["limit"] == 2
    assert_error(call(tb, "GET", f"/v1/traces/{TRACE}?limit=0"), 400, "invalid_argument")
    assert_error(call(tb, "GET", f"/v1/traces/{TRACE}?limit=10001"), 400, "invalid_argument")
    for bad in ("xyz", TRACE.upper(), TRACE + "0", "0" * 32):
        assert_error(call(tb, "GET", f"/v1/traces/{bad}"), 400, "invalid_trace_id")
    base = "/v1/topics/t/partitions/0/offsets"
    assert_error(call(tb, "GET", f"{base}/0/caused?depth=0"), 400, "invalid_argument")
    assert_error(call(tb, "GET", f"{base}/0/caused?depth=33"), 400, "invalid_argument")
    assert_error(call(tb, "GET", f"{base}/-1/caused"), 400, "invalid_argument")
    assert call(tb, "GET", f"{base}/99/caused")[0] == 404
    assert call(tb, "GET", "/v1/topics/nope/partitions/0/offsets/0/caused")[0] == 404
    assert call(tb, "POST", f"/v1/traces/{TRACE}", {})[0] == 405
    # internal topics are never indexed
    st, _, r = call(tb, "PATCH", "/v1/topics/__consumer_offsets",
                    {"config": {"trace.index": "true"}})
    assert st >= 400, r


def cli(*args, code=0):
    p = subprocess.run([BIN, "trace", *args], capture_output=True, timeout=60)
    assert p.returncode == code, p.stderr.decode()
    return p.stdout.decode()


def test_cli_remote_and_local(tmp_path):
    b = start(tmp_path)
    url = f"http://127.0.0.1:{b.http_port}"
    try:
        order_flow(b)
        wait_for(lambda: trace(b)["count"] == 6)
        out = cli(TRACE, "--server", url)
        lines = out.splitlines()
        assert lines[0].startswith(f"trace {TRACE}: 6 events"), out
        body = [l for l in lines[1:] if l.strip()]
        assert body[0].startswith("orders/0/0 ") and "+0ms" in body[0], out
        assert body[1].startswith("  orders.dlq/0/0 "), out
        assert body[2].startswith("    orders/0/1 "), out
        assert body[3].startswith("  inventory/0/0 "), out
        assert body[4].startswith("    payments/0/0 "), out
        assert body[5].startswith("      shipments/0/0 "), out
        out = cli("--caused", "orders/0/0", "--depth", "1", "--server", url)
        assert [l.strip().split()[0] for l in out.splitlines()[1:] if l.strip()] == \
            ["orders/0/0", "orders.dlq/0/0", "inventory/0/0"], out
        cli("not-a-trace", "--server", url, code=2)
        cli("--caused", "inventory/x/0", "--server", url, code=2)
        remote = cli(TRACE, "--json", "--server", url)
    finally:
        b.stop()
    # Locally, on the data directory of the stopped broker: the same tree.
    out = cli(TRACE, "--data", str(tmp_path / "data"))
    assert [l.split()[0] for l in out.splitlines()[1:] if l.strip()] == \
        [l.split()[0] for l in lines[1:] if l.strip()], out
    assert '"events"' in remote


def test_events_of_unreadable_topics_are_hidden(tmp_path):
    """Under ACLs, a trace's events in topics the principal may not Read are left out and
    counted; what an event caused likewise; /caused on an unreadable topic answers 404."""
    b = start(tmp_path)
    url = f"http://127.0.0.1:{b.http_port}"
    try:
        traced_topic(b, "pub")
        traced_topic(b, "secret")
        produce(b, "pub", {"value": 1}, headers={"traceparent": tp(S_ORDER)})
        produce(b, "secret", {"value": 2, "headers": {"x-causation-span-id": S_ORDER}},
                headers={"traceparent": tp("3333333333333333")})
        produce(b, "pub", {"value": 3, "headers": {"x-causation-span-id": S_ORDER}},
                headers={"traceparent": tp("4444444444444444")})
        for op in ("Read", "Describe"):
            p = subprocess.run([BIN, "acl", "add", "--allow-principal", "User:ANONYMOUS",
                                "--operation", op, "--topic", "pub", "--server", url],
                               capture_output=True, timeout=30)
            assert p.returncode == 0, p.stderr.decode()
        assert trace(b)["count"] == 3
    finally:
        b.stop()
    with open(tmp_path / "acl.conf", "w") as f:
        f.write("anonymous.access = acl\n")
    b = start(tmp_path, "--config", str(tmp_path / "acl.conf"))
    try:
        r = trace(b)
        assert r["count"] == 2 and r["hidden"] == 1, r
        assert {e["topic"] for e in r["events"]} == {"pub"}
        st, _, c = call(b, "GET", "/v1/topics/pub/partitions/0/offsets/0/caused")
        assert st == 200 and c["count"] == 2 and c["hidden"] == 1, c
        assert call(b, "GET", "/v1/topics/secret/partitions/0/offsets/0/caused")[0] == 404
        out = subprocess.run([BIN, "trace", TRACE, "--server", f"http://127.0.0.1:{b.http_port}"],
                             capture_output=True, timeout=30).stdout.decode()
        assert "1 hidden" in out, out
    finally:
        b.stop()
