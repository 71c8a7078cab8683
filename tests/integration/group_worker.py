"""One consumer-group member for test_kafka_groups.py, run as its own process so that a test can
kill it with SIGKILL or stop it cleanly with SIGTERM (it then leaves the group).

usage: group_worker.py LIB BOOTSTRAP TOPIC GROUP STRATEGY OUT
  LIB       confluent (librdkafka) or kafka-python
  STRATEGY  range, roundrobin or cooperative-sticky (confluent only)

OUT gets one line per event processed, "rec PARTITION OFFSET VALUE", written and flushed before
the offsets are committed (processing, then commit: at least once), and one line per change of
assignment, "assign P,P,..." (the whole current assignment). The loop is bounded in time.
"""
import signal
import sys
import time

LIB, BOOTSTRAP, TOPIC, GROUP, STRATEGY, OUT = sys.argv[1:7]
MAX_SECONDS = 300
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
out = open(OUT, "a", buffering=1)
current = set()


def log_assignment():
    out.write("assign " + ",".join(str(p) for p in sorted(current)) + "\n")
    out.flush()


def run_confluent():
    import confluent_kafka as ck
    c = ck.Consumer({
        "bootstrap.servers": BOOTSTRAP,
        "group.id": GROUP,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "partition.assignment.strategy": STRATEGY,
    })
    cooperative = STRATEGY == "cooperative-sticky"

    def on_assign(consumer, parts):
        if not cooperative:
            current.clear()
        current.update(p.partition for p in parts)
        log_assignment()

    def on_revoke(consumer, parts):
        if cooperative:
            current.difference_update(p.partition for p in parts)
        else:
            current.clear()
        log_assignment()

    c.subscribe([TOPIC], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)
    t0 = time.time()
    while not stop and time.time() - t0 < MAX_SECONDS:
        # poll(), not consume(num_messages): librdkafka 2.0's batch consume can lose messages
        # when a rebalance pauses partitions meanwhile (its v2.0.0 "Known Issues").
        recs = []
        t1 = time.time()
        while len(recs) < 200 and time.time() - t1 < 0.3:
            m = c.poll(0.05)
            if m is not None and not m.error():
                recs.append(m)
        for m in recs:
            out.write(f"rec {m.partition()} {m.offset()} {m.value().decode()}\n")
        out.flush()
        if recs:
            offsets = {}
            for m in recs:
                offsets[m.partition()] = m.offset() + 1
            try:
                c.commit(offsets=[ck.TopicPartition(TOPIC, p, o) for p, o in offsets.items()],
                         asynchronous=False)
            except ck.KafkaException as e:
                out.write(f"commit-failed {e}\n")  # redelivered to whoever owns it next
    c.close()


def run_kafka_python():
    from kafka import KafkaConsumer, ConsumerRebalanceListener, OffsetAndMetadata, TopicPartition
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from kafka.errors import CommitFailedError, KafkaError

    assignor = RoundRobinPartitionAssignor if STRATEGY == "roundrobin" else RangePartitionAssignor

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            current.clear()
            log_assignment()

        def on_partitions_assigned(self, assigned):
            current.clear()
            current.update(tp.partition for tp in assigned)
            log_assignment()

    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=GROUP,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      session_timeout_ms=6000, heartbeat_interval_ms=500,
                      partition_assignment_strategy=[assignor])
    c.subscribe([TOPIC], listener=Listener())
    t0 = time.time()
    while not stop and time.time() - t0 < MAX_SECONDS:
        batches = c.poll(timeout_ms=300, max_records=200)
        offsets = {}
        for tp, recs in batches.items():
            for m in recs:
                out.write(f"rec {m.partition} {m.offset} {m.value.decode()}\n")
                offsets[TopicPartition(TOPIC, m.partition)] = OffsetAndMetadata(m.offset + 1, "")
        out.flush()
        if offsets:
            try:
                c.commit(offsets)
            except (CommitFailedError, KafkaError) as e:
                out.write(f"commit-failed {e}\n")
    c.close()


if LIB == "confluent":
    run_confluent()
else:
    run_kafka_python()
out.write("closed\n")
out.close()
