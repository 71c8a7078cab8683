"""Consumer groups over HTTP: a group a Kafka consumer (librdkafka) joined is listed and
described with its members, their assignments, and committed offset, high watermark and lag per
partition; offsets are reset (earliest, latest, offset, time; dry runs) only while the group has
no members, and the consumer then reads from there; groups are deleted."""
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import Broker
from test_http import assert_error, call


@pytest.fixture
def gb(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True,
               extra=["--set", "group.initial.rebalance.delay.ms=0"]).start()
    yield b
    if b.proc:
        b.stop()


def produce(b, topic, n, start=0, partition=None):
    p = Producer({"bootstrap.servers": b.bootstrap})
    for i in range(start, start + n):
        kw = {} if partition is None else {"partition": partition}
        p.produce(topic, key=b"k%d" % i, value=b"v%d" % i, **kw)
    assert p.flush(15) == 0


def consumer(b, group, **extra):
    conf = {"bootstrap.servers": b.bootstrap, "group.id": group, "client.id": "cli-" + group,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "session.timeout.ms": 6000}
    conf.update(extra)
    return Consumer(conf)


def consume_n(c, n, deadline_s=20):
    got = []
    end = time.time() + deadline_s
    while len(got) < n and time.time() < end:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m)
    return got


def test_group_list_describe_lag(gb):
    assert call(gb, "POST", "/v1/topics", {"name": "orders", "partitions": 2})[0] == 201
    produce(gb, "orders", 10, partition=0)
    produce(gb, "orders", 4, partition=1)
    assert call(gb, "GET", "/v1/groups")[2] == {"groups": []}
    c = consumer(gb, "billing")
    c.subscribe(["orders"])
    got = consume_n(c, 14)
    assert len(got) == 14
    # Commit 6 of partition 0 and 1 of partition 1: lag 4 and 3.
    c.commit(offsets=[TopicPartition("orders", 0, 6), TopicPartition("orders", 1, 1)],
             asynchronous=False)

    st, _, lst = call(gb, "GET", "/v1/groups")
    assert st == 200
    assert lst["groups"] == [{"group": "billing", "state": "Stable", "protocol_type": "consumer",
                              "members": 1, "partitions": 2, "lag": 7}]
    st, _, d = call(gb, "GET", "/v1/groups/billing")
    assert st == 200
    assert d["state"] == "Stable" and d["protocol_type"] == "consumer" and d["generation"] >= 1
    assert d["protocol"] in ("range", "roundrobin", "cooperative-sticky")
    assert len(d["members"]) == 1
    m = d["members"][0]
    assert d["leader"] == m["member_id"] and m["client_id"] == "cli-billing"
    assert m["client_host"].startswith("127.0.0.1") or m["client_host"].startswith("/127.0.0.1")
    assert m["instance_id"] is None
    assert m["assignment"] == [{"topic": "orders", "partitions": [0, 1]}]
    rows = [(o["topic"], o["partition"], o["committed"], o["high_watermark"], o["lag"],
             o["member_id"]) for o in d["offsets"]]
    assert rows == [("orders", 0, 6, 10, 4, m["member_id"]),
                    ("orders", 1, 1, 4, 3, m["member_id"])]
    assert d["lag"] == 7 and all(o["commit_ms"] > 0 for o in d["offsets"])

    # Lag follows new events.
    produce(gb, "orders", 5, start=100, partition=1)
    assert call(gb, "GET", "/v1/groups/billing")[2]["lag"] == 12
    c.close()
    # Without members the group is Empty and keeps its offsets.
    st, _, d = call(gb, "GET", "/v1/groups/billing")
    assert d["state"] == "Empty" and d["members"] == [] and d["lag"] == 12
    assert [o["member_id"] for o in d["offsets"]] == [None, None]


def test_assigned_partitions_without_commit_are_listed(gb):
    call(gb, "POST", "/v1/topics", {"name": "t", "partitions": 3})
    produce(gb, "t", 3, partition=2)
    c = consumer(gb, "g")
    c.subscribe(["t"])
    end = time.time() + 20
    while not c.assignment() and time.time() < end:
        c.poll(0.2)
    assert len(c.assignment()) == 3
    c.commit(offsets=[TopicPartition("t", 1, 0)], asynchronous=False)
    d = call(gb, "GET", "/v1/groups/g")[2]
    mid = d["members"][0]["member_id"]
    rows = [(o["partition"], o["committed"], o["high_watermark"], o["lag"], o["member_id"])
            for o in d["offsets"]]
    assert rows == [(1, 0, 0, 0, mid), (0, None, 0, None, mid), (2, None, 3, None, mid)]
    c.close()


def test_reset_offsets(gb):
    call(gb, "POST", "/v1/topics", {"name": "orders", "partitions": 2})
    t0 = int(time.time() * 1000)
    produce(gb, "orders", 10, partition=0)
    produce(gb, "orders", 10, partition=1)
    c = consumer(gb, "billing")
    c.subscribe(["orders"])
    assert len(consume_n(c, 20)) == 20
    c.commit(offsets=[TopicPartition("orders", 0, 8), TopicPartition("orders", 1, 9)],
             asynchronous=False)
    # Refused while the consumer is a member.
    assert_error(call(gb, "POST", "/v1/groups/billing/reset", {"to": "earliest"}), 409,
                 "group_not_empty", "stop its consumers first")
    c.close()

    # A dry run answers what would change and changes nothing.
    st, _, r = call(gb, "POST", "/v1/groups/billing/reset", {"to": "earliest", "dry_run": True})
    assert st == 200 and r["dry_run"] is True
    assert [(o["partition"], o["previous"], o["offset"]) for o in r["offsets"]] == \
        [(0, 8, 0), (1, 9, 0)]
    assert [o["committed"] for o in call(gb, "GET", "/v1/groups/billing")[2]["offsets"]] == [8, 9]

    # To an offset (clamped to the log, as Kafka's tool does), on one partition.
    st, _, r = call(gb, "POST", "/v1/groups/billing/reset",
                    {"to": "offset", "offset": 3,
                     "topics": [{"topic": "orders", "partitions": [1]}]})
    assert st == 200 and r["dry_run"] is False
    assert [(o["partition"], o["previous"], o["offset"]) for o in r["offsets"]] == [(1, 9, 3)]
    r = call(gb, "POST", "/v1/groups/billing/reset", {"to": "offset", "offset": 500})[2]
    assert [o["offset"] for o in r["offsets"]] == [10, 10]
    # To latest and earliest.
    call(gb, "POST", "/v1/groups/billing/reset", {"to": "earliest", "topics": ["orders"]})
    assert [o["lag"] for o in call(gb, "GET", "/v1/groups/billing")[2]["offsets"]] == [10, 10]
    r = call(gb, "POST", "/v1/groups/billing/reset", {"to": "latest"})[2]
    assert [o["offset"] for o in r["offsets"]] == [10, 10]
    # By time: events after t1 only; the consumer reads from there.
    time.sleep(0.05)
    t1 = int(time.time() * 1000)
    produce(gb, "orders", 2, start=50, partition=0)
    r = call(gb, "POST", "/v1/groups/billing/reset", {"to": "time", "time": t1})[2]
    assert [o["offset"] for o in r["offsets"]] == [10, 10]
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 // 1000 - 1)) + ".000Z"
    r = call(gb, "POST", "/v1/groups/billing/reset", {"to": "time", "time": iso})[2]
    assert [o["offset"] for o in r["offsets"]] == [0, 0]
    call(gb, "POST", "/v1/groups/billing/reset",
         {"to": "offset", "offset": 11, "topics": [{"topic": "orders", "partitions": [0]}]})
    c = consumer(gb, "billing")
    c.subscribe(["orders"])
    got = consume_n(c, 11)
    firsts = {}
    for m in got:
        firsts.setdefault(m.partition(), m.offset())
    assert firsts == {0: 11, 1: 0} and len(got) == 11
    c.close()

    # A group that never committed: topics must be named; then it exists.
    assert_error(call(gb, "POST", "/v1/groups/fresh/reset", {"to": "earliest"}), 400,
                 "invalid_argument", "name the 'topics'")
    r = call(gb, "POST", "/v1/groups/fresh/reset", {"to": "latest", "topics": ["orders"]})[2]
    assert [(o["partition"], o["previous"], o["offset"]) for o in r["offsets"]] == \
        [(0, None, 12), (1, None, 10)]
    assert call(gb, "GET", "/v1/groups/fresh")[2]["lag"] == 0


def test_reset_bad_input(gb):
    call(gb, "POST", "/v1/topics", {"name": "t"})
    path = "/v1/groups/g/reset"
    assert_error(call(gb, "POST", path, {}), 400, "invalid_argument", "'to' must be")
    assert_error(call(gb, "POST", path, {"to": "sideways"}), 400, "invalid_argument")
    assert_error(call(gb, "POST", path, {"to": "offset", "topics": ["t"]}), 400,
                 "invalid_argument", "needs 'offset'")
    assert_error(call(gb, "POST", path, {"to": "offset", "offset": -1, "topics": ["t"]}), 400,
                 "invalid_argument")
    assert_error(call(gb, "POST", path, {"to": "time", "time": "yesterday", "topics": ["t"]}),
                 400, "invalid_argument", "ISO 8601")
    assert_error(call(gb, "POST", path, {"to": "earliest", "topics": ["nope"]}), 404,
                 "not_found")
    assert_error(call(gb, "POST", path, {"to": "earliest", "topics": "t"}), 400,
                 "invalid_argument")
    assert_error(call(gb, "POST", path, {"to": "earliest",
                                         "topics": [{"topic": "t", "partitions": [1]}]}),
                 400, "invalid_argument", "partitions 0 to 0")
    assert_error(call(gb, "POST", path, {"to": "earliest", "extra": 1}), 400,
                 "invalid_argument", "unknown field 'extra'")
    assert_error(call(gb, "POST", path, {"to": "earliest", "dry_run": "yes"}), 400,
                 "invalid_argument")
    assert_error(call(gb, "POST", path, "[1]"), 400, "invalid_json")
    assert_error(call(gb, "GET", path), 405, "method_not_allowed")
    assert_error(call(gb, "POST", "/v1/groups/g/rewind", {}), 404, "not_found")
    assert_error(call(gb, "GET", "/v1/groups/nobody"), 404, "not_found", "no group 'nobody'")
    assert_error(call(gb, "PUT", "/v1/groups"), 405, "method_not_allowed")
    # Nothing was committed by the refused calls.
    assert call(gb, "GET", "/v1/groups")[2] == {"groups": []}


def test_delete_group(gb):
    call(gb, "POST", "/v1/topics", {"name": "t"})
    produce(gb, "t", 3)
    c = consumer(gb, "g")
    c.subscribe(["t"])
    assert len(consume_n(c, 3)) == 3
    c.commit(asynchronous=False)
    assert_error(call(gb, "DELETE", "/v1/groups/g"), 409, "group_not_empty")
    c.close()
    st, _, body = call(gb, "DELETE", "/v1/groups/g")
    assert st == 204 and body is None
    assert_error(call(gb, "GET", "/v1/groups/g"), 404, "not_found")
    assert_error(call(gb, "DELETE", "/v1/groups/g"), 404, "not_found")
    assert call(gb, "GET", "/v1/groups")[2] == {"groups": []}
    # A new consumer of the group starts over (auto.offset.reset=earliest).
    c = consumer(gb, "g")
    c.subscribe(["t"])
    assert [m.offset() for m in consume_n(c, 3)] == [0, 1, 2]
    c.close()
