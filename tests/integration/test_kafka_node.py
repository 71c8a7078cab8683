"""Node Kafka clients from npm against the broker: @platformatic/kafka 1.x (recent flexible
versions of every API it uses) and kafkajs. tests/node/roundtrip.mjs creates a topic with the
client's admin API, produces keyed events with headers through its producer and reads every
partition back through its Fetch (kafkajs then also alters and describes the topic's
configuration and deletes records through its admin client); this test checks what it read, then reads the same topic with
confluent-kafka to check that another client sees exactly the same events; both clients do it
once more with their idempotent producers. tests/node/group.mjs
runs kafkajs's group consumer (consumer.run), tests/node/group_platformatic.mjs
@platformatic/kafka's (consume(), which fetches topics by id with Fetch v13+)."""
import json
import os
import subprocess

import pytest
from kafka.partitioner.default import murmur2

from conftest import Broker
from test_kafka_clients import consume_all

NODE_DIR = os.path.join(os.path.dirname(__file__), "..", "node")
COUNT, PARTITIONS = 2000, 3


def run_node(client, broker, topic, mode=""):
    env = dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1")
    p = subprocess.run(["node", "roundtrip.mjs", client, broker.bootstrap, topic,
                        str(PARTITIONS), str(COUNT), mode],
                       cwd=NODE_DIR, capture_output=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr.decode()[-4000:]
    return json.loads(p.stdout)


@pytest.mark.parametrize("mode", ["", "idempotent"])
@pytest.mark.parametrize("client", ["platformatic", "kafkajs"])
def test_node_client_produce_and_consume(broker, client, mode):
    topic = f"node-{client}"
    r = run_node(client, broker, topic, mode)
    assert r["produced"] == COUNT and r["partitions"] == PARTITIONS
    got = r["consumed"]
    assert len(got) == COUNT
    assert sorted(m["value"] for m in got) == sorted(f"{client}-{i}" for i in range(COUNT))
    for m in got:
        i = int(m["value"].rsplit("-", 1)[1])
        assert m["key"] == f"k{i % 13}" and m["n"] == str(i)
        # The client's (Java-compatible) partitioner and Kafka's agree.
        assert m["partition"] == (murmur2(m["key"].encode()) & 0x7FFFFFFF) % PARTITIONS
    for part in range(PARTITIONS):
        rows = [m for m in got if m["partition"] == part]
        assert [m["offset"] for m in rows] == list(range(len(rows)))
        seq = [int(m["value"].rsplit("-", 1)[1]) for m in rows]
        assert seq == sorted(seq)  # order kept within the partition
    # Another client reads the very same events at the same offsets. kafkajs's run ends by
    # deleting partition 0's records below offset 5 through its admin client (after altering
    # and describing the topic's configuration), so those are gone for the second reader.
    mine = sorted((m["partition"], m["offset"], m["key"], m["value"]) for m in got)
    if client == "kafkajs":
        assert r["configs"]["retention.ms"] == "3600000"
        assert r["configs"]["cleanup.policy"] == "delete"
        assert r["low0"] == 5
        mine = [x for x in mine if x[0] != 0 or x[1] >= 5]
    theirs = consume_all(broker.bootstrap, topic, PARTITIONS, len(mine))
    assert sorted((m.partition(), m.offset(), m.key().decode(), m.value().decode())
                  for m in theirs) == mine


def run_group(script, broker, group):
    env = dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1")
    p = subprocess.run(["node", script, broker.bootstrap, group + "-topic", "3", "600", group],
                       cwd=NODE_DIR, capture_output=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr.decode()[-4000:]
    r = json.loads(p.stdout)
    assert sorted(int(m["value"]) for m in r["consumed"]) == list(range(600))
    ends = {}
    for m in r["consumed"]:
        ends[m["partition"]] = max(ends.get(m["partition"], 0), m["offset"] + 1)
    assert sum(ends.values()) == 600
    assert {c["partition"]: c["offset"] for c in r["committed"]} == ends
    return r


def test_kafkajs_consumer_group(broker):
    """kafkajs's consumer.run() in a group: every event once, offsets committed up to the end,
    the group listed by its admin client."""
    r = run_group("group.mjs", broker, "kafkajs-group")
    assert r["listed"] == [{"groupId": "kafkajs-group", "protocolType": "consumer"}]


def test_platformatic_consumer_group(tmp_path):
    """@platformatic/kafka's consume() in a group: it fetches with Fetch v13+ (topics by id),
    commits each message, and lists the group and its offsets through its admin client."""
    b = Broker(str(tmp_path / "data"),
               extra=["--set", "group.initial.rebalance.delay.ms=100"]).start()
    try:
        r = run_group("group_platformatic.mjs", b, "platformatic-group")
        assert r["listed"] == [{"id": "platformatic-group", "protocolType": "consumer"}]
    finally:
        b.stop()
