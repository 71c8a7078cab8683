"""Kafka transactions (docs/kafka.md#transactions) with kafkajs 2.x, the Node client:
tests/node/transactions.mjs runs a transactional producer ({transactionalId, idempotent: true,
maxInFlightRequests: 1}) that commits, aborts, commits and leaves a transaction open, a
read_committed consumer (kafkajs's default) and a readUncommitted one, each in its own group,
two producers with the same transactional id, the second of which fences the first, and a
third that commits a group's offsets with a transaction (sendOffsets) and aborts another. This
test checks what each consumer read (values, partitions, offsets, order), the last stable
offsets kafkajs's admin lists, the errors the fenced producer got, and that confluent-kafka's
read_committed consumer reads the very same records.

Every wait is bounded: the script's own steps and watchdog, and the subprocess's time-out.
"""
import json
import os
import subprocess

from conftest import Broker
from test_kafka_txn import read

NODE_DIR = os.path.join(os.path.dirname(__file__), "..", "node")

# The transactions transactions.mjs runs on its topic, in order: (prefix, events, outcome).
# Event i of a transaction goes to partition i % 2.
TXNS = [("c1", 10, "commit"), ("a", 5, "abort"), ("c2", 6, "commit"), ("o", 4, "open")]


def layout():
    """Each partition's records as [(offset, value, outcome)], and its log end, once every
    transaction has ended (one marker per transaction and partition)."""
    parts = {0: [], 1: []}
    end = {0: 0, 1: 0}
    for prefix, n, outcome in TXNS:
        for i in range(n):
            p = i % 2
            parts[p].append((end[p], f"{prefix}-{i}", outcome))
            end[p] += 1
        for p in parts:
            end[p] += 1  # the transaction's COMMIT or ABORT marker
    return parts, end


def run_node(b, topic, fence_topic):
    env = dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1")
    p = subprocess.run(["node", "transactions.mjs", b.bootstrap, topic, fence_topic],
                       cwd=NODE_DIR, capture_output=True, timeout=150, env=env)
    assert p.returncode == 0, (p.stdout.decode()[-2000:], p.stderr.decode()[-4000:])
    return json.loads(p.stdout)


def by_partition(got):
    return {p: [(m["offset"], m["value"]) for m in got if m["partition"] == p] for p in (0, 1)}


def test_kafkajs_transactions(tmp_path):
    b = Broker(str(tmp_path / "data"),
               extra=["--set", "group.initial.rebalance.delay.ms=100"]).start()
    try:
        r = run_node(b, "node-txn", "node-txn-fence")
        parts, end = layout()

        def want(outcomes):
            return {p: [(o, v) for o, v, oc in rows if oc in outcomes]
                    for p, rows in parts.items()}

        # read_committed while the fourth transaction was open: the two committed ones, in
        # offset order in each partition, no aborted record, nothing of the open one.
        before = by_partition(r["committedBeforeCommit"])
        assert before == want({"commit"})
        assert len(r["committedBeforeCommit"]) == 16
        # readUncommitted: every record, aborted and open ones too; never a marker.
        assert by_partition(r["uncommitted"]) == want({"commit", "abort", "open"})
        assert len(r["uncommitted"]) == 25
        # The last stable offset held at the open transaction's first offset, then past its
        # marker once committed (kafkajs's admin lists offsets read_committed).
        first_open = [next(o for o, _, oc in parts[p] if oc == "open") for p in (0, 1)]
        assert r["lsoOpen"] == first_open == [14, 13]
        assert r["lsoCommitted"] == [end[0], end[1]] == [17, 16]
        # The commit showed the open transaction to the read_committed consumer still running.
        assert by_partition(r["committed"]) == want({"commit", "open"})
        assert len(r["committed"]) == 20
        # Another client's read_committed consumer reads the very same records.
        theirs = read(b.bootstrap, "node-txn", 2, expect=len(r["committed"]))
        assert sorted((p, o, v.decode()) for p, o, v in theirs) == sorted(
            (m["partition"], m["offset"], m["value"]) for m in r["committed"])

        # Fencing: the first producer's send and commit after the second's InitProducerId
        # fail with INVALID_PRODUCER_EPOCH (kafkajs 2.2.4 does not know PRODUCER_FENCED, 90);
        # the broker aborted the first's open transaction (zombie-*), and the second goes on.
        fence = r["fence"]
        assert fence["send"] is not None and fence["send"]["type"] == "INVALID_PRODUCER_EPOCH"
        assert fence["commit"] is not None and fence["commit"]["type"] == "INVALID_PRODUCER_EPOCH"
        assert r["fenceCommitted"] == ["fresh", "fresh-2"]
        assert [v for _, _, v in read(b.bootstrap, "node-txn-fence", expect=3)] == \
            [b"fresh", b"fresh-2", b"eos-1"]
        assert len(read(b.bootstrap, "node-txn-fence", committed=False, expect=5)) == 5  # zombie-0, -1

        # sendOffsets: the group's offset shows once the transaction commits (kafkajs's admin
        # reads -1 while it is open), and an aborted transaction's offset never shows.
        assert (r["offsetInOpenTxn"], r["offsetCommitted"], r["offsetAfterAbort"]) == (-1, 5, 5)
    finally:
        b.stop()
