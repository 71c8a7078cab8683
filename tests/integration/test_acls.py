"""ACLs (docs/security.md#authorization): kafka-python's KafkaAdminClient creating, describing and
deleting ACLs; their enforcement on confluent-kafka clients that present a client certificate
(the principal is its CN: alice, bob; "admin" is the default super user) and on anonymous
clients with anonymous.access=acl; `tidings acl` and ACLs surviving a restart.

confluent-kafka 1.7 (Debian 12's) has no ACL calls in its AdminClient: ACLs are administered
here with kafka-python, and confluent-kafka produces and consumes under them.
"""
import os
import subprocess
import time
import urllib.request
import uuid

import pytest

from conftest import BIN, Broker
from test_tls import TlsBroker, make_ca, make_cert


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("aclcerts"))
    make_ca(d, "ca")
    make_cert(d, "ca", "server", "localhost", 1001)
    for serial, cn in enumerate(("alice", "bob", "admin"), start=5000):
        make_cert(d, "ca", cn, cn, serial, server=False)
    return d


class AclBroker(TlsBroker):
    """Kafka over TLS with client certificates required, plus the plaintext listener (anonymous
    there is User:ANONYMOUS under the ACLs)."""

    def __init__(self, data, certs):
        super().__init__(data, certs, protos=("kafka",), client_auth="required")
        with open(data + ".conf", "a") as f:
            f.write("anonymous.access = acl\n")


@pytest.fixture(scope="module")
def ab(tmp_path_factory, certs):
    b = AclBroker(str(tmp_path_factory.mktemp("acl") / "data"), certs).start()
    yield b
    if b.proc:
        b.stop()


def ck(b, certs, who, **kw):
    c = {"bootstrap.servers": f"127.0.0.1:{b.tls_port['kafka']}", "security.protocol": "SSL",
         "ssl.ca.location": os.path.join(certs, "ca.pem"),
         "ssl.certificate.location": os.path.join(certs, f"{who}.pem"),
         "ssl.key.location": os.path.join(certs, f"{who}.key")}
    c.update(kw)
    return c


def kp_admin(b, certs, who="admin"):
    from kafka.admin import KafkaAdminClient
    return KafkaAdminClient(
        bootstrap_servers=f"127.0.0.1:{b.tls_port['kafka']}", security_protocol="SSL",
        ssl_cafile=os.path.join(certs, "ca.pem"), ssl_certfile=os.path.join(certs, f"{who}.pem"),
        ssl_keyfile=os.path.join(certs, f"{who}.key"), ssl_check_hostname=False,
        request_timeout_ms=10000)


def acl(principal, op, name, rtype="TOPIC", pattern="LITERAL", perm="ALLOW", host="*"):
    from kafka.admin import (ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             ResourcePattern, ResourceType)
    return ACL(principal=principal, host=host, operation=getattr(ACLOperation, op),
               permission_type=getattr(ACLPermissionType, perm),
               resource_pattern=ResourcePattern(getattr(ResourceType, rtype), name,
                                                getattr(ACLResourcePatternType, pattern)))


def grant(b, certs, *acls):
    a = kp_admin(b, certs)
    try:
        r = a.create_acls(list(acls))
        assert r["failed"] == [], r
    finally:
        a.close()


def create_topic(b, certs, name, partitions=1):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient(ck(b, certs, "admin"))  # kept alive until the future is done
    a.create_topics([NewTopic(name, partitions, 1)])[name].result(15)


def produce(conf, topic, n=1):
    """Produces n events; the delivery errors' names (empty when all were delivered)."""
    from confluent_kafka import Producer
    errors = []
    p = Producer({"message.timeout.ms": 8000, "retries": 0, **conf})

    def cb(err, _msg):
        if err is not None:
            errors.append(err.name())

    for i in range(n):
        p.produce(topic, f"v{i}".encode(), on_delivery=cb)
    left = p.flush(15)
    assert left == 0
    return errors


def test_kafka_python_admin_acls(ab, certs):
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType,
                             ACLResourcePatternType, ResourcePatternFilter, ResourceType)
    from kafka.errors import ClusterAuthorizationFailedError, InvalidRequestError
    a = kp_admin(ab, certs)
    good = [acl("User:carol", "READ", "adm-", pattern="PREFIXED"),
            acl("User:carol", "WRITE", "adm-x", perm="DENY", host="10.1.2.3")]
    bad = [acl("User:carol", "ALTER", "not-the-cluster", rtype="CLUSTER"),
           acl("carol", "READ", "adm-y")]
    r = a.create_acls(good + bad)
    assert [x for x in r["succeeded"]] == good
    assert [(x[0], x[1]) for x in r["failed"]] == [(bad[0], InvalidRequestError),
                                                   (bad[1], InvalidRequestError)]
    f = ACLFilter(principal="User:carol", host=None, operation=ACLOperation.ANY,
                  permission_type=ACLPermissionType.ANY,
                  resource_pattern=ResourcePatternFilter(ResourceType.ANY, None,
                                                         ACLResourcePatternType.ANY))
    acls, err = a.describe_acls(f)
    assert err.errno == 0
    got = {(x.operation, x.permission_type, x.resource_pattern.resource_name,
            x.resource_pattern.pattern_type, x.host) for x in acls}
    assert got == {(ACLOperation.READ, ACLPermissionType.ALLOW, "adm-",
                    ACLResourcePatternType.PREFIXED, "*"),
                   (ACLOperation.WRITE, ACLPermissionType.DENY, "adm-x",
                    ACLResourcePatternType.LITERAL, "10.1.2.3")}
    # MATCH: the ACLs that apply to topic adm-x (the prefix and the literal).
    m = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                  permission_type=ACLPermissionType.ANY,
                  resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, "adm-x",
                                                         ACLResourcePatternType.MATCH))
    assert len(a.describe_acls(m)[0]) == 2
    # Not an administrator: alice may neither change nor describe ACLs.
    alice = kp_admin(ab, certs, "alice")
    r = alice.create_acls([acl("User:alice", "ALL", "*")])
    assert r["failed"][0][1] is ClusterAuthorizationFailedError
    with pytest.raises(ClusterAuthorizationFailedError):
        alice.describe_acls(f)
    d = alice.delete_acls([f])
    assert d[0][2] is ClusterAuthorizationFailedError
    alice.close()
    # Deleting returns what was removed.
    d = a.delete_acls([f])
    assert d[0][2].errno == 0
    assert {x[0].resource_pattern.resource_name for x in d[0][1]} == {"adm-", "adm-x"}
    assert a.describe_acls(f)[0] == []
    a.close()


def test_produce_allow_deny_prefixed(ab, certs):
    t = "orders-" + uuid.uuid4().hex[:6]
    create_topic(ab, certs, t)
    alice = ck(ab, certs, "alice")
    # No ACL: refused with Kafka's code.
    assert produce(alice, t) == ["TOPIC_AUTHORIZATION_FAILED"]
    grant(ab, certs, acl("User:alice", "WRITE", t))
    assert produce(alice, t, 3) == []
    # An idempotent producer's InitProducerId is allowed by that Write (KIP-679).
    assert produce({**alice, "enable.idempotence": True, "retries": 3}, t, 3) == []
    # bob is not alice; allowed to describe the topic only, bob's idempotent producer cannot
    # even get a producer id (no IdempotentWrite, no Write anywhere).
    assert produce(ck(ab, certs, "bob"), t) == ["TOPIC_AUTHORIZATION_FAILED"]
    grant(ab, certs, acl("User:bob", "DESCRIBE", t))
    from confluent_kafka import KafkaException, Producer
    p = Producer({**ck(ab, certs, "bob"), "enable.idempotence": True, "message.timeout.ms": 8000})
    with pytest.raises(KafkaException) as e:
        p.produce(t, b"x")
        p.flush(15)
    assert e.value.args[0].name() == "CLUSTER_AUTHORIZATION_FAILED"
    assert "denied bob: IdempotentWrite on Cluster 'kafka-cluster' (InitProducerId)" in ab.stderr()
    # A deny for everyone overrides alice's allow.
    grant(ab, certs, acl("User:*", "WRITE", t, perm="DENY"))
    assert produce(alice, t) == ["TOPIC_AUTHORIZATION_FAILED"]
    # Prefixed: every topic that starts with the prefix.
    p = "logs-" + uuid.uuid4().hex[:6] + "-"
    create_topic(ab, certs, p + "a")
    grant(ab, certs, acl("User:alice", "WRITE", p, pattern="PREFIXED"))
    assert produce(alice, p + "a", 2) == []
    # The refusals were counted. /metrics needs Describe on the cluster (anonymous is under
    # the ACLs on this broker).
    grant(ab, certs, acl("User:ANONYMOUS", "DESCRIBE", "kafka-cluster", rtype="CLUSTER"))
    with urllib.request.urlopen(f"http://127.0.0.1:{ab.http_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    line = [x for x in text.splitlines() if x.startswith("tidings_security_denied_total{")
            and 'protocol="kafka"' in x and 'reason="acl"' in x]
    assert line and float(line[0].rsplit(" ", 1)[1]) >= 3


def test_metadata_hides_topics(ab, certs):
    from confluent_kafka.admin import AdminClient
    tag = uuid.uuid4().hex[:6]
    seen, hidden = f"vis-{tag}", f"hid-{tag}"
    create_topic(ab, certs, seen)
    create_topic(ab, certs, hidden)
    grant(ab, certs, acl("User:bob", "DESCRIBE", seen))
    md = AdminClient(ck(ab, certs, "bob")).list_topics(timeout=10)
    assert seen in md.topics and hidden not in md.topics
    md = AdminClient(ck(ab, certs, "bob")).list_topics(topic=hidden, timeout=10)
    assert md.topics[hidden].error.name() == "TOPIC_AUTHORIZATION_FAILED"
    # The administrator sees both.
    md = AdminClient(ck(ab, certs, "admin")).list_topics(timeout=10)
    assert seen in md.topics and hidden in md.topics


def test_consumer_group_acls(ab, certs):
    from confluent_kafka import Consumer
    t = "grp-" + uuid.uuid4().hex[:6]
    create_topic(ab, certs, t)
    grant(ab, certs, acl("User:alice", "WRITE", t), acl("User:alice", "READ", t),
          acl("User:alice", "READ", "g-ok-" + t, rtype="GROUP"))
    assert produce(ck(ab, certs, "alice"), t, 5) == []

    def consume(group):
        c = Consumer(ck(ab, certs, "alice", **{"group.id": group,
                                                "auto.offset.reset": "earliest"}))
        c.subscribe([t])
        got, errors = 0, []
        deadline = time.time() + 20
        while got < 5 and not errors and time.time() < deadline:
            for m in c.consume(10, 0.5):
                if m.error():
                    errors.append(m.error().name())
                else:
                    got += 1
        c.close()
        return got, errors

    assert consume("g-ok-" + t) == (5, [])
    got, errors = consume("g-no-" + t)
    assert got == 0 and errors[0] == "GROUP_AUTHORIZATION_FAILED"


def test_anonymous_under_acls(ab, certs):
    t = "anon-" + uuid.uuid4().hex[:6]
    create_topic(ab, certs, t)
    plain = {"bootstrap.servers": f"127.0.0.1:{ab.port}"}
    assert produce(plain, t) == ["TOPIC_AUTHORIZATION_FAILED"]
    grant(ab, certs, acl("User:ANONYMOUS", "WRITE", t))
    assert produce(plain, t) == []


def test_cli_acls_and_restart(tmp_path):
    from confluent_kafka.admin import AdminClient
    data = str(tmp_path / "b" / "data")
    t = "cli-topic"

    def cli(*args, check=True):
        p = subprocess.run([BIN, "acl", *args, "--data", data], capture_output=True, timeout=30)
        assert (p.returncode == 0) == check, p.stderr.decode()
        return p.stdout.decode()

    subprocess.run([BIN, "topic", "create", t, "--data", data], check=True, capture_output=True,
                   timeout=30)
    out = cli("add", "--allow-principal", "User:ANONYMOUS", "--operation", "Write",
              "--operation", "Describe", "--topic", "cli-", "--resource-pattern-type", "prefixed")
    assert out.count("added ACL") == 2
    cli("add", "--allow-principal", "User:ANONYMOUS", "--operation", "Read", "--topic", "cli.*",
        "--resource-pattern-type", "wildcard")
    cli("add", "--allow-principal", "nobody", "--operation", "Read", "--topic", "x", check=False)
    listing = cli("list")
    assert "User:ANONYMOUS" in listing and "Prefixed" in listing and "Wildcard" in listing
    b = Broker(data, extra=["--config", str(tmp_path / "anon.conf")])
    with open(tmp_path / "anon.conf", "w") as f:
        f.write("anonymous.access = acl\n")
    b.start()
    try:
        plain = {"bootstrap.servers": f"127.0.0.1:{b.port}"}
        assert produce(plain, t) == []
        assert t in AdminClient(plain).list_topics(timeout=10).topics
    finally:
        b.stop()
    out = cli("remove", "--principal", "User:ANONYMOUS", "--operation", "Write")
    assert out.count("removed ACL") == 1
    b.start()
    try:
        assert produce({"bootstrap.servers": f"127.0.0.1:{b.port}"}, t) == [
            "TOPIC_AUTHORIZATION_FAILED"]
    finally:
        b.stop()
    listing = cli("list", "--json")
    assert '"operation":"Describe"' in listing and '"operation":"Write"' not in listing


def test_cli_remote_and_http_acls(tmp_path):
    """`tidings acl --server` over /v1/acls: an administrator (anonymous on loopback with
    anonymous.access=all) adds, lists and removes; with anonymous.access=acl, 403."""
    import json
    data = str(tmp_path / "r" / "data")
    b = Broker(data, http=True).start()
    url = f"http://127.0.0.1:{b.http_port}"

    def cli(*args, code=0):
        p = subprocess.run([BIN, "acl", *args, "--server", url], capture_output=True, timeout=30)
        assert p.returncode == code, p.stderr.decode()
        return p.stdout.decode() + p.stderr.decode()

    try:
        out = cli("add", "--allow-principal", "User:alice", "--allow-principal", "User:bob",
                  "--operation", "Read", "--topic", "r-", "--resource-pattern-type", "prefixed")
        assert out.count("added ACL") == 2
        cli("add", "--deny-principal", "User:bob", "--host", "10.0.0.9", "--operation", "All",
            "--group", "g")
        cli("add", "--allow-principal", "alice", "--operation", "Read", "--topic", "x", code=2)
        listing = json.loads(cli("list", "--json"))["acls"]
        assert len(listing) == 3
        assert {"principal": "User:bob", "host": "10.0.0.9", "resource_type": "Group",
                "pattern_type": "Literal", "name": "g", "operation": "All",
                "permission": "Deny"} in listing
        match = json.loads(cli("list", "--topic", "r-orders", "--resource-pattern-type", "match",
                               "--json"))["acls"]
        assert {x["principal"] for x in match} == {"User:alice", "User:bob"}
        out = cli("remove", "--principal", "User:bob")
        assert out.count("removed ACL") == 2
        cli("remove", code=2)
        with urllib.request.urlopen(url + "/v1/acls?principal=User%3Aalice", timeout=10) as r:
            assert len(json.loads(r.read())["acls"]) == 1
    finally:
        b.stop()
    with open(tmp_path / "acl.conf", "w") as f:
        f.write("anonymous.access = acl\n")
    b = Broker(data, http=True, extra=["--config", str(tmp_path / "acl.conf")]).start()
    url = f"http://127.0.0.1:{b.http_port}"
    try:
        # 403: the command's exit code for a refusal (6), with the broker's reason.
        out = cli("list", code=6)
        assert "may not Describe cluster" in out, out
        cli("add", "--allow-principal", "User:eve", "--operation", "All", "--cluster", code=6)
    finally:
        b.stop()


def test_topic_admin_acls(ab, certs):
    """CreateTopics needs Create (cluster or topic), DeleteTopics Delete, DescribeConfigs and
    AlterConfigs their operations on the topic."""
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
    tag = uuid.uuid4().hex[:6]
    a = AdminClient(ck(ab, certs, "bob"))

    def create(name):
        try:
            a.create_topics([NewTopic(name, 1, 1)])[name].result(15)
            return None
        except Exception as e:  # KafkaException carrying the broker's error
            return e.args[0].name()

    def delete(name):
        try:
            a.delete_topics([name])[name].result(15)
            return None
        except Exception as e:
            return e.args[0].name()

    assert create(f"ta-{tag}-1") == "TOPIC_AUTHORIZATION_FAILED"
    grant(ab, certs, acl("User:bob", "CREATE", f"ta-{tag}-", pattern="PREFIXED"))
    assert create(f"ta-{tag}-1") is None
    assert create(f"tb-{tag}") == "TOPIC_AUTHORIZATION_FAILED"
    res = ConfigResource("topic", f"ta-{tag}-1")
    with pytest.raises(Exception) as e:
        a.describe_configs([res])[res].result(15)
    assert "TOPIC_AUTHORIZATION_FAILED" in str(e.value) or "Authorization" in str(e.value)
    grant(ab, certs, acl("User:bob", "ALTER_CONFIGS", f"ta-{tag}-1"))
    assert a.describe_configs([res])[res].result(15)["retention.ms"].value
    assert delete(f"ta-{tag}-1") == "TOPIC_AUTHORIZATION_FAILED"
    grant(ab, certs, acl("User:bob", "DELETE", f"ta-{tag}-1"))
    assert delete(f"ta-{tag}-1") is None


def test_authorized_operations(ab, certs):
    """Metadata v8 and DescribeCluster give the principal's authorized operations when asked
    (KIP-430): bits 1 << operation code."""
    from kafkawire import Conn, Reader, array, i8, string, tags
    t = "ops-" + uuid.uuid4().hex[:6]
    create_topic(ab, certs, t)
    grant(ab, certs, acl("User:ANONYMOUS", "READ", t), acl("User:ANONYMOUS", "ALTER_CONFIGS", t),
          acl("User:ANONYMOUS", "DESCRIBE", "kafka-cluster", rtype="CLUSTER"))
    c = Conn(ab.port)
    try:
        # Metadata v8: topics, allow_auto_topic_creation, include cluster / topic operations.
        r = c.request(3, 8, array([string(t)]) + i8(0) + i8(1) + i8(1))
        r.i32()
        for _ in range(r.array_len()):
            r.i32(), r.string(), r.i32(), r.string()
        r.string(), r.i32()
        assert r.array_len() == 1
        assert (r.i16(), r.string(), r.i8()) == (0, t, 0)
        for _ in range(r.array_len()):
            r.i16(), r.i32(), r.i32(), r.i32()
            for _ in range(3):
                for _ in range(r.array_len()):
                    r.i32()
        # Read (3) implies Describe (8); AlterConfigs (11) implies DescribeConfigs (10).
        assert r.i32() == (1 << 3) | (1 << 8) | (1 << 10) | (1 << 11)
        assert r.i32() == 1 << 8  # the cluster: Describe
        assert r.done()
        # DescribeCluster v0 (flexible): include_cluster_authorized_operations.
        r = c.request(60, 0, i8(1) + tags(True), flex=True)
        r.i32(), r.i16(), r.string(), r.string(), r.i32()
        for _ in range(r.array_len()):
            r.i32(), r.string(), r.i32(), r.string(), r.tags()
        assert r.i32() == 1 << 8
        # DescribeGroups v3 with include_authorized_operations: Read implies Describe.
        g = "opsg-" + t
        grant(ab, certs, acl("User:ANONYMOUS", "READ", g, rtype="GROUP"))
        r = c.request(15, 3, array([string(g)]) + i8(1))
        r.i32()
        assert r.array_len() == 1
        assert (r.i16(), r.string()) == (0, g)
        r.string(), r.string(), r.string()
        assert r.array_len() == 0
        assert r.i32() == (1 << 3) | (1 << 8)
        assert r.done()
    finally:
        c.close()


def test_transaction_acls(ab, certs):
    """Transactions under ACLs, as Kafka checks them: Write on the transactional id for
    InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn and EndTxn; Write on each topic; Read on
    the group whose offsets a transaction commits."""
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    t = "txn-acl-" + uuid.uuid4().hex[:6]
    tid = "tx-" + t
    create_topic(ab, certs, t)
    grant(ab, certs, acl("User:alice", "WRITE", t), acl("User:alice", "DESCRIBE", t))
    conf = {**ck(ab, certs, "alice"), "transactional.id": tid}
    # No Write on the transactional id: InitProducerId is refused.
    with pytest.raises(KafkaException) as e:
        Producer(conf).init_transactions(15)
    assert e.value.args[0].name() == "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
    grant(ab, certs, acl("User:alice", "WRITE", tid, rtype="TRANSACTIONAL_ID"))
    p = Producer(conf)
    p.init_transactions(15)
    p.begin_transaction()
    p.produce(t, b"committed")
    p.commit_transaction(15)
    # Offsets for a group alice may not read: AddOffsetsToTxn is refused, and the transaction
    # must abort.
    c = Consumer({**ck(ab, certs, "alice"), "group.id": "g-" + t})
    p.begin_transaction()
    p.produce(t, b"aborted")
    with pytest.raises(KafkaException) as e:
        p.send_offsets_to_transaction([TopicPartition(t, 0, 1)], c.consumer_group_metadata(), 15)
    assert e.value.args[0].name() == "GROUP_AUTHORIZATION_FAILED"
    p.abort_transaction(15)
    c.close()
    assert "denied alice: Read on Group 'g-" + t in ab.stderr()
