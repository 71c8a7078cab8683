"""One set of users and one set of permissions across the three protocols (issue 20, item 4):
alice authenticates on Kafka (SASL SCRAM-SHA-256, confluent-kafka), HTTP (Basic, curl's
Authorization header through http.client) and Redis (AUTH, redis-py), and what the same ACLs
let her do is the same on each:
  - `shared`: Read allowed (a literal ACL): readable everywhere, writable nowhere;
  - `shared-denied`: Read allowed to User:* by a prefixed ACL on `shared`, and denied to alice:
    the deny wins everywhere (she may still see that it exists: Describe comes with the allow);
  - `secret`: no ACL: unreadable everywhere, and missing from every listing.
admin (a super user) sets things up through HTTP."""
import base64
import http.client
import json
import os
import subprocess

import pytest
import redis
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from conftest import BIN, Broker

PW = {"alice": "alice-Cross-1", "admin": "admin-Cross-2"}


def cli(data, *args, inp=None):
    p = subprocess.run([BIN, *args, "--data", data], input=inp, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()


@pytest.fixture(scope="module")
def xb(tmp_path_factory):
    data = str(tmp_path_factory.mktemp("cross") / "data")
    os.makedirs(os.path.dirname(data), exist_ok=True)
    for u in ("alice", "admin"):
        cli(data, "user", "add", u, "--password-stdin", inp=(PW[u] + "\n").encode())
    cli(data, "acl", "add", "--allow-principal", "User:alice", "--operation", "Read",
        "--topic", "shared")
    cli(data, "acl", "add", "--allow-principal", "User:*", "--operation", "Read", "--topic",
        "shared", "--resource-pattern-type", "prefixed")
    # librdkafka's consumer finds its group's coordinator even when assigned partitions.
    cli(data, "acl", "add", "--allow-principal", "User:alice", "--operation", "Read",
        "--group", "alice-reader")
    cli(data, "acl", "add", "--deny-principal", "User:alice", "--operation", "Read", "--topic",
        "shared-denied")
    b = Broker(data, http=True, redis=True,
               extra=["--set", "kafka.auth=required", "--set", "http.auth=required",
                      "--set", "redis.auth=required", "--set", "super.users=admin"]).start()
    for t in ("shared", "shared-denied", "secret"):
        assert call(b, "admin", "POST", "/v1/topics", {"name": t})[0] in (200, 201)
        assert call(b, "admin", "POST", f"/v1/topics/{t}/events",
                    [{"value": f"{t}-{i}"} for i in range(3)])[0] == 200
    yield b
    b.stop()


def call(b, user, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=30)
    auth = base64.b64encode(f"{user}:{PW[user]}".encode()).decode()
    headers = {"Authorization": "Basic " + auth, "Host": "localhost"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    c.request(method, path, data, headers)
    r = c.getresponse()
    raw = r.read()
    c.close()
    return r.status, (json.loads(raw) if raw else None)


def kconf(b):
    return {"bootstrap.servers": b.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "alice",
            "sasl.password": PW["alice"]}


def kafka_read(b, topic, polls=50):
    """The values alice reads from partition 0 from offset 0, or the error's name."""
    c = Consumer({**kconf(b), "group.id": "alice-reader", "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = []
        for _ in range(polls):
            m = c.poll(0.2)
            if m is None:
                if got:
                    break
                continue
            if m.error():
                return m.error().name()
            got.append(json.loads(m.value()))  # HTTP stored JSON values as JSON text
            if len(got) == 3:
                break
        return got
    finally:
        c.close()


def kafka_write(b, topic):
    errs = []
    p = Producer({**kconf(b), "message.timeout.ms": 10000})
    p.produce(topic, b"x", on_delivery=lambda e, m: errs.append(e.name() if e else None))
    p.flush(20)
    return errs


def rconn(b):
    return redis.Redis(port=b.redis_port, username="alice", password=PW["alice"],
                       socket_timeout=20)


def test_shared_is_readable_and_not_writable_everywhere(xb):
    want = [f"shared-{i}" for i in range(3)]
    assert kafka_read(xb, "shared") == want
    assert kafka_write(xb, "shared") == ["TOPIC_AUTHORIZATION_FAILED"]
    st, body = call(xb, "alice", "GET", "/v1/topics/shared/events?partition=0&offset=0")
    assert st == 200 and [e["value"] for e in body["events"]] == want
    assert call(xb, "alice", "POST", "/v1/topics/shared/events", {"value": "x"})[0] == 403
    r = rconn(xb)
    assert len(r.xrange("shared")) == 3
    with pytest.raises(redis.exceptions.NoPermissionError):
        r.xadd("shared", {"v": "x"})


def test_a_deny_overrides_an_allow_everywhere(xb):
    assert kafka_read(xb, "shared-denied") == "TOPIC_AUTHORIZATION_FAILED"
    assert call(xb, "alice", "GET", "/v1/topics/shared-denied/events")[0] == 403
    with pytest.raises(redis.exceptions.NoPermissionError):
        rconn(xb).xrange("shared-denied")
    # Another user is allowed by the prefixed ACL: the deny is alice's alone.
    st, body = call(xb, "admin", "GET", "/v1/topics/shared-denied/events?partition=0&offset=0")
    assert st == 200 and len(body["events"]) == 3


def test_secret_is_unreadable_and_unlisted_everywhere(xb):
    # librdkafka lists all topics, finds no `secret` (hidden) and reads nothing; a client that
    # names it gets TOPIC_AUTHORIZATION_FAILED.
    assert kafka_read(xb, "secret", polls=15) in ("TOPIC_AUTHORIZATION_FAILED", [])
    md = AdminClient(kconf(xb)).list_topics(timeout=20)
    assert {"shared", "shared-denied"} <= set(md.topics) and "secret" not in md.topics
    assert call(xb, "alice", "GET", "/v1/topics/secret/events")[0] == 404
    st, body = call(xb, "alice", "GET", "/v1/topics")
    names = {t["name"] for t in body["topics"]}
    assert st == 200 and {"shared", "shared-denied"} <= names and "secret" not in names
    r = rconn(xb)
    keys = {k.decode() for k in r.keys("*")}
    assert {"shared", "shared-denied"} <= keys and "secret" not in keys
    with pytest.raises(redis.exceptions.NoPermissionError):
        r.xrange("secret")
