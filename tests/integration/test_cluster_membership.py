"""Cluster membership through etcd (issue 28, stage 1): brokers register on their leases, one is
elected controller, and every broker's Metadata, DescribeCluster, GET /v1/cluster, `tidings
cluster status` and metrics show the live brokers; a broker that dies, is stopped past its
lease, restarts or loses etcd is seen so within the bounds the design gives (the lease's TTL,
cluster.session.timeout.ms=2000 here, plus a little). Topics stay local to each broker in this
stage: nothing here reads one broker's topic through another.

Every wait polls with a deadline (wait_for); the only sleeps hold a pause (SIGSTOP of a broker
or of etcd) or an outage of etcd for twice the TTL, whose length is the point.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request

from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

import kafkawire as kw
from conftest import Broker, Cli
from etcd_support import (SESSION_MS, cluster, etcd, free_port, gateway,  # noqa: F401
                          kv_get, new_prefix, restart, serve_expect_failure, start_broker)

TTL = SESSION_MS / 1000


# ---------------------------------------------------------------------------------------------
# Helpers

def wait_for(fn, timeout, what):
    """Polls fn until it returns something truthy (an exception counts as not yet); returns
    (that value, seconds waited). Fails naming what and fn's last answer at the deadline."""
    t0 = time.time()
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v, time.time() - t0
            last = v
        except Exception as e:  # noqa: BLE001 - a broker or etcd in between states
            last = e
        if time.time() - t0 > timeout:
            raise AssertionError(f"{what}: not within {timeout:.1f} s (last: {last!r})")
        time.sleep(0.05)


def http_get(b, path, timeout=5):
    with urllib.request.urlopen(f"http://127.0.0.1:{b.http_port}{path}", timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


def info(b):
    """GET /v1/cluster of broker b."""
    st, ctype, body = http_get(b, "/v1/cluster")
    assert st == 200, st
    assert ctype.startswith("application/json"), ctype
    return json.loads(body)


TOP_FIELDS = ("mode", "cluster_id", "broker_id", "coordinator", "etcd", "controller", "brokers")
BROKER_FIELDS = ("id", "epoch", "rack", "kafka", "http", "redis")


def spec_view(v):
    """A /v1/cluster body cut to the fields this stage's interface names (docs/http-api.md adds
    this broker's own "epoch" and each broker's "listeners", checked apart)."""
    out = {k: v[k] for k in TOP_FIELDS if k in v}
    if isinstance(v.get("brokers"), list):
        out["brokers"] = [{k: x[k] for k in BROKER_FIELDS if k in x} for x in v["brokers"]]
    return out


def listing(b):
    """{broker id: epoch} as b lists them."""
    return {x["id"]: x["epoch"] for x in info(b)["brokers"]}


def controller(b):
    c = info(b)["controller"]
    return (c["broker_id"], c["epoch"]) if c else None


def settled(bs, ids=None, timeout=10):
    """Waits until every broker of bs lists exactly ids (default: theirs) with the same epochs
    and the same controller among them; returns one broker's /v1/cluster."""
    want = set(ids if ids is not None else [b.broker_id for b in bs])

    def agree():
        views = [info(b) for b in bs]
        first = views[0]
        for v in views:
            if {x["id"] for x in v["brokers"]} != want:
                return None
            if v["brokers"] != first["brokers"] or v["controller"] != first["controller"]:
                return None
        if not first["controller"] or first["controller"]["broker_id"] not in want:
            return None
        return first
    return wait_for(agree, timeout, f"brokers {sorted(b.broker_id for b in bs)} agree on "
                                    f"{sorted(want)} and a controller")[0]


def scrape(b):
    """{sample name: value} of GET /metrics for the samples without labels (the cluster's)."""
    st, _, body = http_get(b, "/metrics")
    assert st == 200
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            if not s.labels:
                out[s.name] = s.value
    return out


def metric(b, name):
    m = scrape(b)
    assert name in m, f"{name} missing from broker {b.broker_id}'s /metrics"
    return m[name]


def addr(port):
    return f"127.0.0.1:{port}"


def by_id(bs):
    return {b.broker_id: b for b in bs}


# Kafka Metadata (key 3) and DescribeCluster (key 60) on the wire, every version.

def metadata_brokers(port, version):
    """Metadata vN with no topics asked (v0: all of them): (brokers [(id, host, port, rack)],
    cluster id or None before v2, controller id or None before v1)."""
    flex = version >= 9
    body = kw.array([], flex)
    if version >= 4:
        body += kw.i8(0)  # no auto-creation
    if 8 <= version <= 10:
        body += kw.i8(0)
    if version >= 8:
        body += kw.i8(0)
    body += kw.tags(flex)
    c = kw.Conn(port)
    try:
        r = c.request(3, version, body, flex=flex)
    finally:
        c.close()
    if version >= 3:
        r.i32()  # throttle
    brokers = []
    for _ in range(r.array_len()):
        node, host, p = r.i32(), r.string(), r.i32()
        rack = r.string() if version >= 1 else None
        r.tags()
        brokers.append((node, host, p, rack))
    cluster_id = r.string() if version >= 2 else None
    controller_id = r.i32() if version >= 1 else None
    return sorted(brokers), cluster_id, controller_id


def describe_cluster(port, version):
    """DescribeCluster vN: (error, cluster id, controller id, brokers [(id, host, port, rack)])."""
    body = kw.i8(0) + (kw.i8(1) if version >= 1 else b"") + kw.tags(True)
    c = kw.Conn(port)
    try:
        r = c.request(60, version, body, flex=True)
    finally:
        c.close()
    r.i32()
    err = r.i16()
    r.string()
    if version >= 1:
        assert r.i8() == 1
    cluster_id, controller_id = r.string(), r.i32()
    brokers = []
    for _ in range(r.array_len()):
        node, host, p, rack = r.i32(), r.string(), r.i32(), r.string()
        r.tags()
        brokers.append((node, host, p, rack))
    r.i32()
    r.tags()
    assert r.done()
    return err, cluster_id, controller_id, sorted(brokers)


def check_kafka_view(b, bs, cluster_id, controller_id):
    """Every Metadata version and DescribeCluster of b list exactly bs, the controller and the
    cluster id."""
    want = sorted((x.broker_id, "127.0.0.1", x.port, x.rack) for x in bs)
    for v in range(13):
        brokers, cid, ctl = metadata_brokers(b.port, v)
        exp = want if v >= 1 else [(i, h, p, None) for i, h, p, _ in want]
        assert brokers == exp, (f"Metadata v{v} from broker {b.broker_id}", brokers, exp)
        if v >= 1:
            assert ctl == controller_id, (f"Metadata v{v} controller", ctl, controller_id)
        if v >= 2:
            assert cid == cluster_id, (f"Metadata v{v} cluster id", cid, cluster_id)
    for v in (0, 1):
        assert describe_cluster(b.port, v) == (0, cluster_id, controller_id, want), \
            f"DescribeCluster v{v} from broker {b.broker_id}"


def coordinator_of(etcd, prefix):
    return etcd.url + prefix


# ---------------------------------------------------------------------------------------------
# Tests

def test_three_brokers_agree_everywhere(tmp_path, etcd):
    """Three brokers: Metadata (every version), DescribeCluster, librdkafka, kafka-python, kcat
    and /v1/cluster of each list brokers 1..3 at their ports and racks, one controller and one
    cluster id; the epochs are the registrations' create revisions in etcd."""
    bs = cluster(tmp_path, etcd, 3, racks=["ra", "rb", "rc"], redis=True)
    prefix = bs[0].prefix
    top = settled(bs)
    cid = top["cluster_id"]
    ctl = top["controller"]
    assert isinstance(cid, str) and cid
    assert isinstance(ctl["epoch"], int) and ctl["epoch"] > 0
    epochs = [x["epoch"] for x in top["brokers"]]
    assert all(isinstance(e, int) and e > 0 for e in epochs)
    assert len(set(epochs)) == 3, epochs
    for b in bs:
        v = info(b)
        assert spec_view(v) == {
            "mode": "cluster", "cluster_id": cid, "broker_id": b.broker_id,
            "coordinator": coordinator_of(etcd, prefix), "etcd": "up", "controller": ctl,
            "brokers": [{"id": x.broker_id, "epoch": v["brokers"][i]["epoch"], "rack": x.rack,
                         "kafka": addr(x.port), "http": addr(x.http_port),
                         "redis": addr(x.redis_port)} for i, x in enumerate(bs)]}, v
        assert [x["id"] for x in v["brokers"]] == [1, 2, 3]  # sorted by id
        assert v["brokers"] == top["brokers"]
        # Beyond the brief, as docs/http-api.md has them: its own epoch, every listener.
        assert v.get("epoch") == v["brokers"][b.broker_id - 1]["epoch"], v
        for i, x in enumerate(bs):
            assert v["brokers"][i].get("listeners") == [
                {"protocol": "PLAINTEXT", "host": "127.0.0.1", "port": x.port}], v

    # etcd holds what they say: the registrations, the controller, the cluster id.
    regs = {int(k["key"].rsplit("/", 1)[1]): k
            for k in etcd.range(prefix + "/brokers/", prefix=True)}
    assert {i: k["create_revision"] for i, k in regs.items()} == \
        {x["id"]: x["epoch"] for x in top["brokers"]}
    assert all(k["lease"] != 0 for k in regs.values()), regs
    assert len({k["lease"] for k in regs.values()}) == 3  # one lease each
    for k in regs.values():  # cluster.session.timeout.ms 2000: a lease of 2 s
        ttl = gateway(etcd.client_url, "/v3/lease/timetolive", {"ID": str(k["lease"])})
        assert int(ttl["grantedTTL"]) == 2, ttl
    c = etcd.get(prefix + "/controller")
    assert c and c["create_revision"] == ctl["epoch"] and c["lease"] == regs[ctl["broker_id"]][
        "lease"], (c, regs)
    kcid = etcd.get(prefix + "/cluster_id")
    assert kcid and cid in kcid["value"], kcid

    for b in bs:
        check_kafka_view(b, bs, cid, ctl["broker_id"])

        md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
        assert {i: (m.host, m.port) for i, m in md.brokers.items()} == \
            {x.broker_id: ("127.0.0.1", x.port) for x in bs}
        assert md.controller_id == ctl["broker_id"]
        assert md.cluster_id == cid

        out = subprocess.run(["kcat", "-L", "-b", b.bootstrap, "-m", "10"], capture_output=True,
                             timeout=30)
        assert out.returncode == 0, out.stderr
        text = out.stdout.decode()
        assert re.search(r"^ 3 brokers:$", text, re.M), text
        listed = dict(re.findall(r"^  broker (\d+) at (\S+)", text, re.M))
        assert listed == {str(x.broker_id): addr(x.port) for x in bs}, text
        assert re.search(rf"^  broker {ctl['broker_id']} at \S+ \(controller\)$", text, re.M), text

    a = KafkaAdminClient(bootstrap_servers=bs[1].bootstrap, request_timeout_ms=10000)
    try:
        d = a.describe_cluster()
    finally:
        a.close()
    assert d["cluster_id"] == cid and d["controller_id"] == ctl["broker_id"], d
    assert sorted((x["node_id"], x["host"], x["port"], x["rack"]) for x in d["brokers"]) == \
        [(x.broker_id, "127.0.0.1", x.port, x.rack) for x in bs], d


def test_killed_broker_is_dropped_controller_stays(tmp_path, etcd):
    """kill -9 of a broker that is not the controller: the others stop listing it within the
    TTL and a little, in /v1/cluster, Metadata and tidings_cluster_brokers; the controller and
    the survivors' epochs do not change."""
    bs = cluster(tmp_path, etcd, 3)
    top = settled(bs)
    ctl = top["controller"]
    victim = next(b for b in reversed(bs) if b.broker_id != ctl["broker_id"])
    rest = [b for b in bs if b is not victim]
    before = {x["id"]: x["epoch"] for x in top["brokers"]}

    t0 = time.time()
    victim.stop(signal.SIGKILL)
    want = {b.broker_id for b in rest}
    wait_for(lambda: all(set(listing(b)) == want for b in rest), TTL + 1.5,
             f"the survivors drop broker {victim.broker_id}")
    took = time.time() - t0
    assert took <= TTL + 1.5, took
    for b in rest:
        v = info(b)
        assert v["controller"] == ctl, (v, ctl)
        assert listing(b) == {i: e for i, e in before.items() if i in want}
        brokers, _, controller_id = metadata_brokers(b.port, 12)
        assert sorted(x[0] for x in brokers) == sorted(want)
        assert controller_id == ctl["broker_id"]
        assert metric(b, "tidings_cluster_brokers") == 2
    assert etcd.get(f"{victim.prefix}/brokers/{victim.broker_id}") is None


def test_controller_killed_another_takes_over(tmp_path, etcd):
    """kill -9 of the controller: within the TTL and a little another broker is controller,
    with a greater epoch, agreed by both survivors, their Metadata and their metrics."""
    bs = cluster(tmp_path, etcd, 3)
    top = settled(bs)
    old = top["controller"]
    victim = by_id(bs)[old["broker_id"]]
    rest = [b for b in bs if b is not victim]

    t0 = time.time()
    victim.stop(signal.SIGKILL)

    def new_controller():
        cs = [info(b)["controller"] for b in rest]
        ok = all(c and c == cs[0] and c["broker_id"] != old["broker_id"] for c in cs)
        return cs[0] if ok else None
    new, _ = wait_for(new_controller, TTL + 1.5, "a new controller")
    took = time.time() - t0
    assert took <= TTL + 1.5, took
    assert new["broker_id"] in {b.broker_id for b in rest}
    assert new["epoch"] > old["epoch"], (new, old)
    top = settled(rest, timeout=TTL)
    assert top["controller"] == new
    assert etcd.get(rest[0].prefix + "/controller")["create_revision"] == new["epoch"]
    for b in rest:
        assert metadata_brokers(b.port, 1)[2] == new["broker_id"]
        assert describe_cluster(b.port, 0)[2] == new["broker_id"]
        assert metric(b, "tidings_cluster_controller_active") == \
            (1 if b.broker_id == new["broker_id"] else 0)


def test_restarted_broker_takes_its_id_back_at_once(tmp_path, etcd):
    """A broker killed and restarted with the same data directory revokes the lease it had and
    registers again at once (well within the TTL, 6 s here, that the old lease would take to
    expire), with a new, greater epoch; the new process has registered once."""
    bs = cluster(tmp_path, etcd, 3, session_ms=6000)
    top = settled(bs)
    victim = next(b for b in reversed(bs) if b.broker_id != top["controller"]["broker_id"])
    old_epoch = listing(bs[0])[victim.broker_id]
    old_lease = etcd.get(f"{victim.prefix}/brokers/{victim.broker_id}")["lease"]

    t0 = time.time()
    victim.stop(signal.SIGKILL)
    again = restart(victim, etcd)
    started = time.time() - t0
    everyone = [again] + [b for b in bs if b is not victim]

    def relisted():
        return all(listing(b).get(victim.broker_id, 0) > old_epoch for b in everyone)
    wait_for(relisted, 6, f"broker {victim.broker_id} listed again with a new epoch")
    took = time.time() - t0
    assert took < 3.0, f"listed again {took:.2f} s after the kill (the process started in " \
                       f"{started:.2f} s): the old lease was not revoked?"
    top = settled(everyone, timeout=2)
    new_epoch = {x["id"]: x["epoch"] for x in top["brokers"]}[victim.broker_id]
    assert new_epoch > old_epoch
    reg = etcd.get(f"{victim.prefix}/brokers/{victim.broker_id}")
    assert reg["create_revision"] == new_epoch and reg["lease"] not in (0, old_lease), reg
    assert len(etcd.range(victim.prefix + "/brokers/", prefix=True)) == 3
    assert metric(again, "tidings_cluster_registrations_total") == 1
    assert info(again)["broker_id"] == victim.broker_id

    # The controller, killed and restarted at once: its old lease revoked takes the controller
    # key with it, and a controller is elected again (well within the TTL) with a new epoch.
    old_ctl = top["controller"]
    bs = everyone
    ctl = by_id(bs)[old_ctl["broker_id"]]
    t0 = time.time()
    ctl.stop(signal.SIGKILL)
    again = restart(ctl, etcd)
    bs = [again] + [b for b in bs if b is not ctl]

    def reelected():
        v = settled(bs, timeout=0.2)
        return v if v["controller"]["epoch"] > old_ctl["epoch"] and \
            v["brokers"][old_ctl["broker_id"] - 1]["epoch"] > old_ctl["epoch"] else None
    v, _ = wait_for(reelected, 6, "the restarted controller's id back and a controller again")
    assert time.time() - t0 < 3.0, time.time() - t0
    assert etcd.get(f"{again.prefix}/controller")["create_revision"] == v["controller"]["epoch"]


def test_stopped_past_its_lease_registers_again(tmp_path, etcd):
    """SIGSTOP for twice the TTL: the others drop the broker within the TTL and a little;
    after SIGCONT it notices the lost lease on its next keepalive and registers again with a
    new epoch (tidings_cluster_registrations_total 2), listed by all within TTL + 2 s."""
    bs = cluster(tmp_path, etcd, 3)
    top = settled(bs)
    ctl = top["controller"]
    victim = next(b for b in reversed(bs) if b.broker_id != ctl["broker_id"])
    rest = [b for b in bs if b is not victim]
    old_epoch = {x["id"]: x["epoch"] for x in top["brokers"]}[victim.broker_id]

    t0 = time.time()
    victim.proc.send_signal(signal.SIGSTOP)
    try:
        want = {b.broker_id for b in rest}
        wait_for(lambda: all(set(listing(b)) == want for b in rest), TTL + 1.5,
                 f"the others drop the stopped broker {victim.broker_id}")
        assert time.time() - t0 <= TTL + 1.5
        time.sleep(max(0.0, t0 + 2 * TTL - time.time()))
    finally:
        victim.proc.send_signal(signal.SIGCONT)
    t1 = time.time()
    wait_for(lambda: all(listing(b).get(victim.broker_id, 0) > old_epoch for b in bs),
             TTL + 2, f"broker {victim.broker_id} listed again with a new epoch")
    assert time.time() - t1 <= TTL + 2
    top = settled(bs, timeout=2)
    assert top["controller"] == ctl
    assert info(victim)["etcd"] == "up"
    assert metric(victim, "tidings_cluster_registrations_total") == 2
    for b in rest:
        assert metric(b, "tidings_cluster_registrations_total") == 1
    new_epoch = {x["id"]: x["epoch"] for x in top["brokers"]}[victim.broker_id]
    assert etcd.get(f"{victim.prefix}/brokers/{victim.broker_id}")["create_revision"] == \
        new_epoch


def test_graceful_stop_leaves_at_once(tmp_path, etcd):
    """SIGTERM revokes the broker's lease: the others drop it, and elect another controller
    when it was the one, at once rather than after the TTL (6 s here)."""
    bs = cluster(tmp_path, etcd, 3, session_ms=6000)
    top = settled(bs)
    old = top["controller"]
    ctl = by_id(bs)[old["broker_id"]]
    other = next(b for b in reversed(bs) if b is not ctl)

    t0 = time.time()
    other.stop()
    rest = [b for b in bs if b is not other]
    settled(rest, timeout=6)
    assert time.time() - t0 < 2.0, time.time() - t0
    assert etcd.get(f"{other.prefix}/brokers/{other.broker_id}") is None

    t0 = time.time()
    ctl.stop()
    last = [b for b in rest if b is not ctl]
    top = settled(last, timeout=6)
    assert time.time() - t0 < 2.0, time.time() - t0
    assert top["controller"]["broker_id"] == last[0].broker_id
    assert top["controller"]["epoch"] > old["epoch"]


def test_keys_deleted_behind_their_back(tmp_path, etcd):
    """Someone deletes a broker's registration, then the controller key, in etcd: the broker
    registers again with a new epoch (its second registration), and a controller is elected
    again with a new epoch."""
    bs = cluster(tmp_path, etcd, 3)
    top = settled(bs)
    ctl = top["controller"]
    victim = next(b for b in reversed(bs) if b.broker_id != ctl["broker_id"])
    old_epoch = {x["id"]: x["epoch"] for x in top["brokers"]}[victim.broker_id]

    assert etcd.delete(f"{victim.prefix}/brokers/{victim.broker_id}") == 1
    wait_for(lambda: all(listing(b).get(victim.broker_id, 0) > old_epoch for b in bs), TTL + 2,
             f"broker {victim.broker_id} registered again")
    top = settled(bs, timeout=2)
    new_epoch = {x["id"]: x["epoch"] for x in top["brokers"]}[victim.broker_id]
    assert etcd.get(f"{victim.prefix}/brokers/{victim.broker_id}")["create_revision"] == \
        new_epoch
    assert metric(victim, "tidings_cluster_registrations_total") == 2
    assert top["controller"] == ctl

    assert etcd.delete(f"{victim.prefix}/controller") == 1

    def elected():
        cs = [info(b)["controller"] for b in bs]
        return cs[0] if all(c and c == cs[0] and c["epoch"] > ctl["epoch"] for c in cs) \
            else None
    new, _ = wait_for(elected, TTL + 2, "a controller elected again")
    assert etcd.get(f"{victim.prefix}/controller")["create_revision"] == new["epoch"]
    assert sum(metric(b, "tidings_cluster_controller_active") for b in bs) == 1
    assert metric(by_id(bs)[new["broker_id"]], "tidings_cluster_controller_active") == 1


def test_duplicate_broker_id_refused(tmp_path, etcd):
    """A second process with broker.id=1 and another data directory, while broker 1 lives,
    exits nonzero within cluster.connect.timeout.ms naming broker.id; broker 1 stays listed
    with its epoch."""
    bs = cluster(tmp_path, etcd, 2)
    top = settled(bs)
    epochs = {x["id"]: x["epoch"] for x in top["brokers"]}
    rc, err, took = serve_expect_failure(
        str(tmp_path / "dup" / "data"),
        ["--set", f"cluster.coordinator={coordinator_of(etcd, bs[0].prefix)}",
         "--set", "broker.id=1", "--set", f"cluster.session.timeout.ms={SESSION_MS}",
         "--set", "cluster.connect.timeout.ms=3000"], timeout=30)
    assert rc != 0, err
    assert "broker.id" in err, err
    assert "Sanitizer" not in err, err
    assert took <= 3.0 + 4.0, took  # the timeout, and the process's own start and exit
    for b in bs:
        assert listing(b) == epochs
        assert b.alive()
    assert etcd.get(f"{bs[0].prefix}/brokers/1")["create_revision"] == epochs[1]


def test_cluster_id_binds_the_data_directory(tmp_path, etcd):
    """The cluster id made by the first broker lives in etcd and in DATA/cluster.properties
    (with the broker id); that data directory refuses another cluster (prefix) and another
    broker.id, then starts again as it was."""
    prefix_a = new_prefix()
    b = cluster(tmp_path, etcd, 1, prefix=prefix_a)[0]
    cid = settled([b])["cluster_id"]
    kcid = etcd.get(prefix_a + "/cluster_id")
    assert kcid and cid in kcid["value"], kcid
    props = {}
    with open(b.data + "/cluster.properties") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                props[k.strip()] = v.strip()
    assert props.get("cluster.id") == cid and props.get("broker.id") == "1", props
    b.stop()
    with open(b.data + "/cluster.properties", "rb") as f:
        saved = f.read()

    def refused(prefix, broker_id):
        rc, err, took = serve_expect_failure(b.data, [
            "--set", f"cluster.coordinator={coordinator_of(etcd, prefix)}",
            "--set", f"broker.id={broker_id}", "--set", f"cluster.session.timeout.ms={SESSION_MS}",
            "--set", "cluster.connect.timeout.ms=5000"], timeout=30)
        assert rc != 0, f"started against {prefix} as {broker_id}: {err}"
        assert "Sanitizer" not in err, err
        return err

    err = refused(new_prefix(), 1)  # another cluster
    assert re.search(r"cluster[ ._-]?id", err, re.I), err
    err = refused(prefix_a, 2)  # another broker id
    assert "broker.id" in err, err
    assert etcd.get(prefix_a + "/brokers/2") is None
    with open(b.data + "/cluster.properties", "rb") as f:
        assert f.read() == saved

    again = restart(b, etcd)
    v = settled([again])
    assert v["cluster_id"] == cid and v["broker_id"] == 1


def test_etcd_down_then_back(tmp_path, etcd):
    """etcd stopped: the brokers serve their own topics as before and say etcd is down
    (/v1/cluster, tidings_cluster_etcd_up 0); etcd started again on its data: they say it is up
    and list the same three brokers with the same epochs and controller, having registered
    once (the leases survived)."""
    bs = cluster(tmp_path, etcd, 3)
    top = settled(bs)
    b = bs[0]

    etcd.stop(signal.SIGTERM)
    t0 = time.time()
    wait_for(lambda: all(info(x)["etcd"] == "down" for x in bs), 6, "etcd seen down")
    for x in bs:
        assert metric(x, "tidings_cluster_etcd_up") == 0

    topic = "local-while-etcd-down"
    events = [f"event-{i}" for i in range(5)]
    p = subprocess.run(["kcat", "-b", b.bootstrap, "-P", "-t", topic],
                       input="\n".join(events).encode() + b"\n", capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    c = subprocess.run(["kcat", "-b", b.bootstrap, "-C", "-t", topic, "-p", "0", "-o",
                        "beginning", "-e", "-f", "%s\n"], capture_output=True, timeout=30)
    assert c.returncode == 0, c.stderr
    assert c.stdout.decode().split("\n")[:-1] == events, c.stdout
    assert time.time() - t0 < 30

    # Down for twice the TTL at least: the leases do not run out while etcd is away.
    time.sleep(max(0.0, t0 + 2 * TTL - time.time()))
    etcd.restart()
    wait_for(lambda: all(info(x)["etcd"] == "up" for x in bs), TTL + 4, "etcd seen up again")
    after = settled(bs, timeout=TTL + 4)
    assert after["brokers"] == top["brokers"]
    assert after["controller"] == top["controller"]
    for x in bs:
        m = scrape(x)
        assert m.get("tidings_cluster_etcd_up") == 1
        assert m.get("tidings_cluster_registrations_total") == 1
        assert m.get("tidings_cluster_brokers") == 3


def test_etcd_data_lost(tmp_path, etcd):
    """etcd's data wiped under running brokers: they register again and write their cluster id
    back, keep it (a broker never moves to another cluster while it runs), a new broker joins
    that cluster, and a restarted one is still welcome."""
    bs = cluster(tmp_path, etcd, 2)
    top = settled(bs)
    cid = top["cluster_id"]
    etcd.kill()
    shutil.rmtree(etcd.data)
    etcd.restart()
    wait_for(lambda: all(metric(x, "tidings_cluster_registrations_total") == 2 for x in bs),
             TTL + 8, "both brokers registered again")
    settled(bs, timeout=TTL + 4)
    kv = kv_get(etcd.client_url, bs[0].prefix + "/cluster_id")
    assert kv and kv["value"] == cid, kv
    b3 = start_broker(str(tmp_path / "b3" / "data"), etcd, bs[0].prefix, 3)
    after = settled(bs + [b3], timeout=TTL + 4)
    assert after["cluster_id"] == cid
    for x in bs + [b3]:
        assert info(x)["cluster_id"] == cid
    bs[0].stop()
    b1 = restart(bs[0], etcd)
    assert info(b1)["cluster_id"] == cid


def test_etcd_paused_past_the_leases(tmp_path, etcd):
    """etcd paused (SIGSTOP: calls hang rather than fail) for twice the TTL: the brokers say it
    is down (each call is bounded) and still answer Kafka; resumed, etcd expires every lease,
    and the brokers register again (a second time each) with new epochs and elect a controller
    again."""
    bs = cluster(tmp_path, etcd, 3)
    top = settled(bs)
    highest = max([x["epoch"] for x in top["brokers"]] + [top["controller"]["epoch"]])
    etcd.proc.send_signal(signal.SIGSTOP)
    t0 = time.time()
    try:
        wait_for(lambda: all(info(x)["etcd"] == "down" for x in bs), TTL + 2,
                 "the paused etcd seen down")
        for b in bs:
            assert sorted(x[0] for x in metadata_brokers(b.port, 12)[0]) == [1, 2, 3]
        time.sleep(max(0.0, t0 + 2 * TTL - time.time()))
    finally:
        etcd.proc.send_signal(signal.SIGCONT)

    def again():
        v = settled(bs, timeout=0.2)
        return v if v["etcd"] == "up" and v["controller"]["epoch"] > highest and \
            all(x["epoch"] > highest for x in v["brokers"]) else None
    v, _ = wait_for(again, TTL + 3, "all registered again after etcd resumed")
    for b in bs:
        m = scrape(b)
        assert m.get("tidings_cluster_registrations_total") == 2, (b.broker_id, m)
        assert m.get("tidings_cluster_etcd_up") == 1
    assert etcd.get(bs[0].prefix + "/controller")["create_revision"] == v["controller"]["epoch"]


def test_graceful_stop_while_etcd_is_away(tmp_path, etcd):
    """SIGTERM while etcd refuses connections, and while it hangs (SIGSTOP): the broker
    still stops at once with status 0 (its lease's revoke is bounded)."""
    b1, b2 = cluster(tmp_path, etcd, 2)
    settled([b1, b2])
    etcd.stop()
    wait_for(lambda: info(b1)["etcd"] == "down", TTL + 2, "etcd seen down")
    t0 = time.time()
    b1.stop()
    assert time.time() - t0 < 2 * TTL, time.time() - t0

    etcd.restart()
    wait_for(lambda: info(b2)["etcd"] == "up", TTL + 4, "etcd seen up")
    etcd.proc.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: info(b2)["etcd"] == "down", TTL + 2, "the paused etcd seen down")
        t0 = time.time()
        b2.stop()
        assert time.time() - t0 < 2 * TTL, time.time() - t0
    finally:
        etcd.proc.send_signal(signal.SIGCONT)


def test_single_mode(tmp_path):
    """No coordinator: /v1/cluster describes one broker in single mode, Metadata lists it as
    its own controller, `cluster status --json` prints the same."""
    b = Broker(str(tmp_path / "data"), http=True, redis=True).start()
    try:
        v = info(b)
        brokers, cid, ctl = metadata_brokers(b.port, 12)
        assert len(brokers) == 1 and brokers[0][1:] == ("127.0.0.1", b.port, None), brokers
        me = brokers[0][0]
        assert ctl == me
        assert spec_view(v) == {
            "mode": "single", "cluster_id": cid, "broker_id": me, "coordinator": None,
            "etcd": None, "controller": {"broker_id": me, "epoch": 0},
            "brokers": [{"id": me, "epoch": 0, "rack": None, "kafka": addr(b.port),
                         "http": addr(b.http_port), "redis": addr(b.redis_port)}]}, v
        assert v.get("epoch", 0) == 0, v
        assert describe_cluster(b.port, 1) == (0, cid, me, brokers)
        cli = Cli(None, server=f"http://127.0.0.1:{b.http_port}")
        assert json.loads(cli.out("cluster", "status", "--json")) == v
        assert cid in cli.out("cluster", "status")
    finally:
        b.stop()


def test_broker_id_required_with_a_coordinator(tmp_path, etcd):
    rc, err, took = serve_expect_failure(
        str(tmp_path / "data"), ["--set", f"cluster.coordinator={etcd.url}{new_prefix()}"],
        timeout=30)
    assert rc != 0, err
    assert "broker.id" in err, err
    assert "Sanitizer" not in err, err


def test_unreachable_etcd_gives_up_at_the_connect_timeout(tmp_path):
    """Nothing listens at the coordinator's address: the broker keeps trying until
    cluster.connect.timeout.ms (2 s), then exits nonzero saying so."""
    dead = free_port()
    rc, err, took = serve_expect_failure(
        str(tmp_path / "data"),
        ["--set", f"cluster.coordinator=etcd://127.0.0.1:{dead}/x", "--set", "broker.id=1",
         "--set", "cluster.connect.timeout.ms=2000"], timeout=30)
    assert rc != 0, err
    assert 1.5 <= took <= 5.0, took
    assert re.search(r"etcd|coordinator", err, re.I), err
    assert "Sanitizer" not in err, err


def test_coordinator_list_and_default_prefix(tmp_path, etcd):
    """A coordinator of several endpoints, the first one dead, and no path: the broker
    registers through the live one under /tidings/default."""
    coord = f"etcd://127.0.0.1:{free_port()},127.0.0.1:{etcd.client_port}"
    b = start_broker(str(tmp_path / "data"), etcd, "/tidings/default", 1, coordinator=coord,
                     session_ms=2500)
    v = settled([b])
    assert v["etcd"] == "up"
    reg = etcd.get("/tidings/default/brokers/1")
    assert reg and reg["create_revision"] == v["brokers"][0]["epoch"], reg
    assert etcd.get("/tidings/default/cluster_id")
    # cluster.session.timeout.ms 2500 is a lease of 3 s (rounded up to whole seconds).
    ttl = gateway(etcd.client_url, "/v3/lease/timetolive", {"ID": str(reg["lease"])})
    assert int(ttl["grantedTTL"]) == 3, ttl


def test_cli_cluster_status(tmp_path, etcd):
    """`tidings cluster status` through one broker prints the cluster id, the controller and a
    line per broker; --json prints /v1/cluster's body; an unreachable server exits 5."""
    bs = cluster(tmp_path, etcd, 2)
    top = settled(bs)
    b = bs[1]
    cli = Cli(None, server=f"http://127.0.0.1:{b.http_port}")
    out = cli.out("cluster", "status")
    assert top["cluster_id"] in out, out
    assert coordinator_of(etcd, b.prefix) in out, out
    lines = out.splitlines()
    for x in bs:
        assert len([ln for ln in lines if addr(x.port) in ln]) == 1, out
        line = next(ln for ln in lines if addr(x.port) in ln)
        assert re.search(rf"\b{x.broker_id}\b", line), line
        # the broker asked is marked (docs/cli.md#cluster)
        assert line.split()[0] == (f"{x.broker_id}*" if x is b else str(x.broker_id)), line
    ctl = top["controller"]["broker_id"]
    assert any(re.search(r"controller", ln, re.I) and re.search(rf"\b{ctl}\b", ln)
               for ln in lines), out
    assert json.loads(cli.out("cluster", "status", "--json")) == info(b)

    env = dict(os.environ, TIDINGS_SERVER=f"http://127.0.0.1:{bs[0].http_port}")
    p = Cli(None).run("cluster", "status", "--json", data=False, env=env)
    assert json.loads(p.stdout) == info(bs[0])

    p = Cli(None, server=f"http://127.0.0.1:{free_port()}").run("cluster", "status",
                                                                  check=False)
    assert p.returncode == 5, (p.returncode, p.stderr)


def test_cluster_metrics(tmp_path, etcd):
    """Each broker's /metrics: the live brokers it sees, whether it is the controller, etcd up,
    one registration."""
    bs = cluster(tmp_path, etcd, 3)
    top = settled(bs)
    ctl = top["controller"]["broker_id"]
    for b in bs:
        m = scrape(b)
        assert m.get("tidings_cluster_brokers") == 3, m
        assert m.get("tidings_cluster_controller_active") == (1 if b.broker_id == ctl else 0), m
        assert m.get("tidings_cluster_etcd_up") == 1, m
        assert m.get("tidings_cluster_registrations_total") == 1, m
