"""Brokers against a three-member etcd (docs/clustering.md): losing one member, the one a broker
talks to, stays within the quorum. The brokers move to the next endpoint, keep their
registrations and epochs, and still see the cluster change."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import Broker

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Quorum:
    """Three etcd members on loopback ports, each with its own data directory."""

    def __init__(self, base):
        if not os.access(ETCD, os.X_OK):
            pytest.fail("etcd is not installed: scripts/install-deps.sh --test installs it",
                        pytrace=False)
        ports = free_ports(6)
        self.client = ports[:3]
        self.peer = ports[3:]
        initial = ",".join(f"m{i}=http://127.0.0.1:{p}" for i, p in enumerate(self.peer))
        self.procs = []
        for i in range(3):
            log = open(os.path.join(base, f"etcd{i}.log"), "ab")
            self.procs.append(subprocess.Popen(
                [ETCD, "--name", f"m{i}", "--data-dir", os.path.join(base, f"etcd{i}"),
                 "--listen-client-urls", f"http://127.0.0.1:{self.client[i]}",
                 "--advertise-client-urls", f"http://127.0.0.1:{self.client[i]}",
                 "--listen-peer-urls", f"http://127.0.0.1:{self.peer[i]}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer[i]}",
                 "--initial-cluster", initial, "--initial-cluster-state", "new",
                 "--unsafe-no-fsync", "--logger", "zap", "--log-level", "warn"],
                stdout=log, stderr=log))
        deadline = time.time() + 30
        while time.time() < deadline:
            if all(self.healthy(i) for i in range(3)):
                return
            time.sleep(0.1)
        self.stop()
        raise AssertionError("the etcd members did not form a quorum")

    def healthy(self, i):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.client[i]}/health",
                                        timeout=1) as r:
                return json.loads(r.read()).get("health") == "true"
        except OSError:
            return False

    def coordinator(self, order, prefix):
        return "etcd://" + ",".join(f"127.0.0.1:{self.client[i]}" for i in order) + prefix

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def quorum(tmp_path):
    q = Quorum(str(tmp_path))
    yield q
    q.stop()


def cluster_of(b):
    with urllib.request.urlopen(f"http://127.0.0.1:{b.http_port}/v1/cluster", timeout=5) as r:
        return json.loads(r.read())


def until(what, fn, timeout=15):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > deadline:
            assert v, what
            return v
        time.sleep(0.1)


def test_losing_one_member_keeps_the_cluster(tmp_path, quorum):
    # Each broker talks first to a member of its own; broker 1's is the one that dies.
    brokers = []
    try:
        for i, order in ((1, [0, 2, 1]), (2, [1, 2, 0])):
            brokers.append(Broker(str(tmp_path / f"b{i}"), http=True, extra=[
                "--set", "cluster.coordinator=" + quorum.coordinator(order, "/q"),
                "--set", f"broker.id={i}", "--set", "cluster.session.timeout.ms=2000"]).start())
        b1, b2 = brokers
        before = until("both brokers listed",
                       lambda: (lambda c: c if len(c["brokers"]) == 2 else None)(cluster_of(b2)))
        epochs = {b["id"]: b["epoch"] for b in before["brokers"]}
        quorum.procs[0].kill()  # broker 1's first endpoint
        quorum.procs[0].wait()
        # Past two lease TTLs, both are still registered with the same epochs, and etcd is up
        # for both (broker 1 moved to the next member).
        time.sleep(4.5)
        for b in (b1, b2):
            c = until("etcd up again", lambda: (lambda c: c if c["etcd"] == "up" else None)(
                cluster_of(b)), timeout=10)
            assert {x["id"]: x["epoch"] for x in c["brokers"]} == epochs, c
        # Broker 1 still sees the cluster change: its watch moved to a live member too.
        b3 = Broker(str(tmp_path / "b3"), http=True, extra=[
            "--set", "cluster.coordinator=" + quorum.coordinator([1, 2], "/q"),
            "--set", "broker.id=3", "--set", "cluster.session.timeout.ms=2000"]).start()
        brokers.append(b3)
        until("broker 3 seen by broker 1",
              lambda: [x["id"] for x in cluster_of(b1)["brokers"]] == [1, 2, 3])
        b3.stop()
        brokers.remove(b3)
        until("broker 3 gone for broker 1",
              lambda: [x["id"] for x in cluster_of(b1)["brokers"]] == [1, 2], timeout=5)
        assert "Sanitizer" not in b1.stderr()
    finally:
        for b in brokers:
            if b.proc:
                b.stop()


def cluster_events(b, want, timeout=15):
    """The health events on b's $sys.cluster, waiting until every type of want is there."""
    deadline = time.time() + timeout
    while True:
        url = (f"http://127.0.0.1:{b.http_port}/v1/topics/%24sys.cluster/events"
               "?partition=0&offset=0&limit=1000")
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.loads(r.read())
        vals = [e["value"] for e in body["events"]]
        for e in body["events"]:
            assert e["headers"] == [{"key": "tidings-health-type", "value": e["value"]["type"]}]
        types = [v["type"] for v in vals]
        if all(w in types for w in want):
            return vals
        assert time.time() < deadline, f"{want} not all in {types}"
        time.sleep(0.1)


def test_cluster_health_events(tmp_path, quorum):
    """$sys.cluster tells what a broker sees: brokers joining and leaving (by id and epoch),
    the controller changing, etcd becoming unreachable."""
    brokers = []
    try:
        def start(i):
            b = Broker(str(tmp_path / f"b{i}"), http=True, extra=[
                "--set", "cluster.coordinator=" + quorum.coordinator([0, 1, 2], "/ev"),
                "--set", f"broker.id={i}", "--set", "cluster.session.timeout.ms=2000"]).start()
            brokers.append(b)
            return b
        b1 = start(1)
        until("broker 1 controller", lambda: cluster_of(b1)["controller"])
        b2 = start(2)
        epoch2 = until("broker 2 listed", lambda: {x["id"]: x["epoch"] for x in
                                                   cluster_of(b1)["brokers"]}.get(2))
        vals = cluster_events(b1, ["cluster.broker_joined"])
        joined = [v for v in vals if v["type"] == "cluster.broker_joined"]
        assert [(v["broker_id"], v["epoch"], v["observer"]) for v in joined] == [(2, epoch2, 1)]
        assert joined[0]["kafka"] == f"127.0.0.1:{b2.port}" and joined[0]["rack"] is None
        # Broker 1 leaves: broker 2 sees it go and becomes the controller.
        b1.stop()
        brokers.remove(b1)
        vals = cluster_events(b2, ["cluster.broker_left", "cluster.controller_changed"])
        left = [v for v in vals if v["type"] == "cluster.broker_left"]
        assert [(v["broker_id"], v["observer"]) for v in left] == [(1, 2)]
        changes = [v for v in vals if v["type"] == "cluster.controller_changed"]
        assert changes[-1]["controller_id"] == 2 and changes[-1]["observer"] == 2
        assert changes[-1]["epoch"] > 0
        # etcd gone altogether: broker 2 says so once its next keepalive fails.
        quorum.stop()
        vals = cluster_events(b2, ["cluster.etcd_unreachable"])
        assert [v["broker_id"] for v in vals if v["type"] == "cluster.etcd_unreachable"] == [2]
    finally:
        for b in brokers:
            if b.proc:
                b.stop()
