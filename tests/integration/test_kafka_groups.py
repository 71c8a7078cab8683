"""Consumer groups with real clients: librdkafka (confluent-kafka) and kafka-python members in
one group under a continuous producer while members join, die (SIGKILL) and leave; commits that
survive broker restarts and crashes; the admin clients' group calls.

Every wait is bounded; the producer sends a fixed number of events.
"""
import os
import signal
import subprocess
import threading
import time

import confluent_kafka as ck
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition as KTopicPartition
from kafka.structs import OffsetAndMetadata

from conftest import Broker
from kafkawire import Reader

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "group_worker.py")
PARTITIONS = 6
EVENTS = 3000


@pytest.fixture
def gbroker(tmp_path):
    b = Broker(str(tmp_path / "data"),
               extra=["--set", "group.initial.rebalance.delay.ms=300"]).start()
    yield b
    if b.proc:
        b.stop()


def create_topic(bootstrap, name, partitions):
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=10)


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Worker:
    def __init__(self, lib, bootstrap, topic, group, strategy, out):
        self.out = out
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", WORKER, lib, bootstrap, topic, group, strategy, out],
            stderr=open(out + ".stderr", "wb"))

    def lines(self):
        try:
            with open(self.out) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def records(self):
        return [tuple(int(x) for x in l.split()[1:4]) for l in self.lines()
                if l.startswith("rec ")]

    def assignment(self):
        """The worker's current assignment (None before the first)."""
        last = None
        for l in self.lines():
            if l.startswith("assign"):
                rest = l[len("assign"):].strip()
                last = {int(p) for p in rest.split(",")} if rest else set()
        return last

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        assert "closed" in self.lines(), open(self.out + ".stderr").read()[-2000:]


def produce_steadily(bootstrap, topic, n, seconds, done):
    p = ck.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    step = max(1, n // (seconds * 10))
    for i in range(0, n, step):
        for v in range(i, min(n, i + step)):
            p.produce(topic, key=str(v).encode(), value=str(v).encode())
        p.poll(0)
        time.sleep(0.1)
    assert p.flush(30) == 0
    done.set()


def high_watermarks(bootstrap, topic):
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "hwm-probe"})
    marks = [c.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10)[1]
             for p in range(PARTITIONS)]
    c.close()
    return marks


def parse_assignment(data):
    """ConsumerProtocolAssignment: version, [topic, [partition]], user data."""
    r = Reader(data)
    r.i16()
    parts = set()
    for _ in range(r.array_len()):
        r.string()
        for _ in range(r.array_len()):
            parts.add(r.i32())
    return parts


def run_group_scenario(broker, tmp_path, lib, strategy):
    topic = f"grp-{lib}-{strategy}"
    group = f"g-{lib}-{strategy}"
    create_topic(broker.bootstrap, topic, PARTITIONS)
    done = threading.Event()
    prod = threading.Thread(target=produce_steadily,
                            args=(broker.bootstrap, topic, EVENTS, 12, done), daemon=True)
    prod.start()
    workers = [Worker(lib, broker.bootstrap, topic, group, strategy, str(tmp_path / f"w{i}"))
               for i in range(3)]
    try:
        wait_for(lambda: all(w.assignment() for w in workers), 60, "three members assigned")
        # A fourth joins and gets a share.
        workers.append(Worker(lib, broker.bootstrap, topic, group, strategy,
                              str(tmp_path / "w3")))
        wait_for(lambda: workers[3].assignment(), 60, "the fourth member assigned")
        wait_for(lambda: workers[0].records(), 30, "the first member to process events")
        # One dies without a word; its partitions move on after its session timeout.
        workers[0].kill()
        # One leaves cleanly.
        workers[1].stop()
        live = workers[2:]

        def stable():
            a = [w.assignment() or set() for w in live]
            union = set().union(*a)
            return union == set(range(PARTITIONS)) and sum(len(x) for x in a) == PARTITIONS
        wait_for(stable, 60, "the two remaining members to own every partition")
        prod.join(timeout=60)
        assert done.is_set(), "the producer did not finish"
        hwm = high_watermarks(broker.bootstrap, topic)
        assert sum(hwm) == EVENTS

        def seen():
            s = set()
            for w in workers:
                s.update((p, o) for p, o, _ in w.records())
            return s
        wanted = {(p, o) for p in range(PARTITIONS) for o in range(hwm[p])}
        wait_for(lambda: wanted <= seen(), 60, "every event to be processed")
        values = {v for w in workers for _, _, v in w.records()}
        assert values == set(range(EVENTS))

        # Once stable, each partition has exactly one owner, in the members' own view and in
        # the broker's (the assignments the leader handed out).
        wait_for(stable, 30, "a stable group")
        groups = AdminClient({"bootstrap.servers": broker.bootstrap}).list_groups(
            group, timeout=10)
        assert len(groups) == 1 and groups[0].state == "Stable", groups
        owned = [parse_assignment(m.assignment) for m in groups[0].members]
        assert len(owned) == 2
        assert sorted(p for o in owned for p in o) == list(range(PARTITIONS))
        assert sorted(map(sorted, owned)) == sorted(sorted(w.assignment()) for w in live)
        assert groups[0].protocol == strategy
    finally:
        for w in workers:
            if w.alive():
                w.kill()


def test_confluent_group_range(gbroker, tmp_path):
    run_group_scenario(gbroker, tmp_path, "confluent", "range")


def test_confluent_group_cooperative_sticky(gbroker, tmp_path):
    run_group_scenario(gbroker, tmp_path, "confluent", "cooperative-sticky")


def test_kafka_python_group(gbroker, tmp_path):
    run_group_scenario(gbroker, tmp_path, "kafka-python", "roundrobin")


def test_commit_restart_resume(tmp_path):
    """Committed offsets survive a clean restart and a crash (SIGKILL right after the commit
    was answered); a consumer of the group resumes right after them."""
    b = Broker(str(tmp_path / "data"),
               extra=["--set", "group.initial.rebalance.delay.ms=0"]).start()
    try:
        create_topic(b.bootstrap, "resume", 3)
        p = ck.Producer({"bootstrap.servers": b.bootstrap})
        for i in range(300):
            p.produce("resume", value=str(i).encode(), partition=i % 3)
        assert p.flush(30) == 0
        def conf():
            return {"bootstrap.servers": b.bootstrap, "group.id": "resumers",
                    "auto.offset.reset": "earliest", "enable.auto.commit": False}
        committed = {0: 17, 1: 42, 2: 99}
        for round_, sig in enumerate([signal.SIGTERM, signal.SIGKILL]):
            c = ck.Consumer(conf())
            c.subscribe(["resume"])
            first = {}
            deadline = time.time() + 30
            while len(first) < 3 and time.time() < deadline:
                m = c.poll(0.5)
                if m is not None and not m.error() and m.partition() not in first:
                    first[m.partition()] = m.offset()
            if round_ == 0:
                assert first == {0: 0, 1: 0, 2: 0}
            else:
                assert first == committed, first  # resumed right after the commit
                committed = {0: 50, 1: 60, 2: 70}
            c.commit(offsets=[ck.TopicPartition("resume", q, o) for q, o in committed.items()],
                     asynchronous=False)
            got = c.committed([ck.TopicPartition("resume", q) for q in range(3)], timeout=10)
            assert {t.partition: t.offset for t in got} == committed
            c.close()
            # The commit was answered: it survives a clean stop and a crash.
            b.stop(sig)
            b.start()  # on a new port
        # After the crash: the offsets are there, for every client.
        c = ck.Consumer(conf())
        got = c.committed([ck.TopicPartition("resume", q) for q in range(3)], timeout=10)
        assert {t.partition: t.offset for t in got} == {0: 50, 1: 60, 2: 70}
        c.subscribe(["resume"])
        m = None
        deadline = time.time() + 30
        while time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                break
        assert m is not None and m.offset() == {0: 50, 1: 60, 2: 70}[m.partition()]
        c.close()
    finally:
        if b.proc:
            b.stop()


def test_admin_clients(gbroker):
    """kafka-python's KafkaAdminClient and confluent-kafka's AdminClient see groups, members
    and offsets; an empty group can be deleted."""
    create_topic(gbroker.bootstrap, "adm", 2)
    p = ck.Producer({"bootstrap.servers": gbroker.bootstrap})
    for i in range(20):
        p.produce("adm", value=b"x", partition=i % 2)
    assert p.flush(30) == 0
    c = KafkaConsumer("adm", bootstrap_servers=gbroker.bootstrap, group_id="adm-group",
                      client_id="adm-client", auto_offset_reset="earliest",
                      enable_auto_commit=False)
    n = 0
    deadline = time.time() + 30
    while n < 20 and time.time() < deadline:
        n += sum(len(v) for v in c.poll(timeout_ms=500).values())
    assert n == 20
    c.commit({KTopicPartition("adm", 0): OffsetAndMetadata(10, "meta-0"),
              KTopicPartition("adm", 1): OffsetAndMetadata(7, "")})
    # An offsets-only group (no members), committed by a consumer that assigns itself.
    solo = KafkaConsumer(bootstrap_servers=gbroker.bootstrap, group_id="solo-group",
                         enable_auto_commit=False)
    solo.assign([KTopicPartition("adm", 1)])
    solo.commit({KTopicPartition("adm", 1): OffsetAndMetadata(3, "solo")})
    solo.close()

    admin = KafkaAdminClient(bootstrap_servers=gbroker.bootstrap)
    groups = dict(admin.list_consumer_groups())
    assert groups["adm-group"] == "consumer"
    assert "solo-group" in groups
    desc = admin.describe_consumer_groups(["adm-group"])[0]
    assert desc.state == "Stable"
    assert desc.protocol_type == "consumer"
    assert desc.protocol == "range"
    assert len(desc.members) == 1
    m = desc.members[0]
    assert m.client_id == "adm-client"
    assert m.client_host == "/127.0.0.1"
    assert m.member_metadata.subscription == ["adm"]
    assert sorted(p for _, ps in m.member_assignment.assignment for p in ps) == [0, 1]
    offs = admin.list_consumer_group_offsets("adm-group")
    assert offs[KTopicPartition("adm", 0)] == OffsetAndMetadata(10, "meta-0")
    assert offs[KTopicPartition("adm", 1)].offset == 7
    assert admin.list_consumer_group_offsets("solo-group") == {
        KTopicPartition("adm", 1): OffsetAndMetadata(3, "solo")}
    assert admin.list_consumer_group_offsets("no-such-group") == {}
    dead = admin.describe_consumer_groups(["no-such-group"])[0]
    assert dead.state == "Dead"

    ca = AdminClient({"bootstrap.servers": gbroker.bootstrap})
    listed = {g.id: g for g in ca.list_groups(timeout=10)}
    assert listed["adm-group"].state == "Stable"
    assert listed["adm-group"].protocol_type == "consumer"
    assert len(listed["adm-group"].members) == 1
    assert listed["adm-group"].members[0].client_id == "adm-client"
    assert listed["solo-group"].state == "Empty"

    # Deleting: refused while a member is in, done once it left; offsets go with it.
    if hasattr(admin, "delete_consumer_groups"):
        res = dict(admin.delete_consumer_groups(["adm-group", "no-such-group"]))
        assert res["adm-group"].errno == 68  # NON_EMPTY_GROUP
        assert res["no-such-group"].errno == 69  # GROUP_ID_NOT_FOUND
    c.close()  # leaves the group
    wait_for(lambda: admin.describe_consumer_groups(["adm-group"])[0].state == "Empty", 10,
             "the group to be empty")
    if hasattr(admin, "delete_consumer_groups"):
        res = dict(admin.delete_consumer_groups(["adm-group"]))
        assert res["adm-group"].errno == 0
        assert admin.list_consumer_group_offsets("adm-group") == {}
    admin.close()
