"""A full disk, per protocol: the broker's data directory on a small tmpfs; producers write until
the storage error, space is freed through each protocol's own API (DeleteTopics,
DeleteRecords, HTTP DELETE, DEL, XTRIM, FLUSHALL, the command line), producers write again
without a restart, and after a restart every acknowledged event is there.

Mounting a tmpfs needs root, which CI has; elsewhere the tests are skipped."""
import http.client
import json
import os
import subprocess
import types

import pytest
import redis
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from conftest import BIN, Broker
from kafkawire import Conn
from test_kafka_admin import delete_records_raw
from test_kafka_clients import consume_all

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="mounting a size-limited tmpfs needs root (CI runs as root)")

MIB = 1 << 20
TMPFS_MIB = 32   # the default disk reserve (8 MiB) included
SEGMENT = 256 << 10
VALUE = 16 << 10  # bytes per event


@pytest.fixture
def disk(tmp_path):
    """A fresh 32 MiB tmpfs at tmp_path/mnt; the data directory is mnt/data."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MIB}m", "tmpfs", str(mnt)],
                   check=True)
    brokers = []

    def start(extra=()):
        b = Broker(str(mnt / "data"), extra=extra, http=True, redis=True)
        b.stderr_path = str(tmp_path / "broker.stderr")  # not on the full disk
        brokers.append(b)
        return b.start()

    def free():
        st = os.statvfs(mnt)
        return st.f_bavail * st.f_frsize
    try:
        yield types.SimpleNamespace(mnt=mnt, data=str(mnt / "data"), start=start, free=free)
        for b in brokers:
            if b.proc:
                b.stop()
    finally:
        for b in brokers:
            if b.proc:
                b.proc.kill()
                b.proc.wait()
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def value(tag, i, size=VALUE):
    return f"{tag}-{i:07d}-".encode().ljust(size, b"x")


def fill_until_full(send, tag):
    """Sends events eight at a time until the first error, then one at a time, of decreasing
    sizes down to 16 bytes, until three of each size fail in a row: the file system then has no
    free block left, and the tail of the log's last block has no room for another batch.
    send(values) -> (acknowledged values, errors). Returns the same for the whole fill."""
    acked, errors, i = [], [], 0
    while not errors and i < 8192:
        ok, errs = send([value(tag, k) for k in range(i, i + 8)])
        acked, errors, i = acked + ok, errors + errs, i + 8
    assert errors, "the disk never filled up"
    for size in (VALUE, 4096, 512, 16):
        failing = 0
        while failing < 3 and i < 100000:
            ok, errs = send([value(tag, i, size)])
            acked, errors, i = acked + ok, errors + errs, i + 1
            failing = failing + 1 if errs else 0
    return acked, errors


# ---------------------------------------------------------------------------------------------
# Kafka

def kafka_create(b, *names):
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    fs = a.create_topics([NewTopic(n, 1, 1, config={"segment.bytes": str(SEGMENT)})
                          for n in names])
    for f in fs.values():
        f.result(10)


class KafkaSender:
    """send(values) for fill_until_full, and produce() for a run of events."""

    def __init__(self, b, topic):
        self.topic = topic
        self.p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "retries": 0,
                           "enable.idempotence": False, "linger.ms": 2,
                           "message.timeout.ms": 20000})

    def __call__(self, values):
        acked, errors = [], []

        def cb(err, msg):
            if err:
                errors.append(err.code())
            else:
                acked.append(msg.value())
        for v in values:
            self.p.produce(self.topic, value=v, on_delivery=cb)
        assert self.p.flush(30) == 0
        return acked, errors

    def produce(self, count, tag, start=0):
        acked, errors = [], []
        for i in range(start, start + count, 32):
            ok, errs = self([value(tag, k) for k in range(i, min(i + 32, start + count))])
            acked, errors = acked + ok, errors + errs
        return acked, errors


def kafka_produce(b, topic, count, tag, start=0):
    return KafkaSender(b, topic).produce(count, tag, start)


def kafka_fill_until_full(b, topic):
    acked, errors = fill_until_full(KafkaSender(b, topic), topic)
    assert set(errors) == {KafkaError.KAFKA_STORAGE_ERROR}, errors
    return acked


def kafka_check_after_restart(b, topic, acked):
    b.stop()
    b.start()
    got = [m.value() for m in consume_all(b.bootstrap, topic, 1, len(acked), timeout=30)]
    assert got == acked  # every acknowledged event, in order, nothing in between
    return b


def test_kafka_delete_topics_on_a_full_disk(disk):
    b = disk.start()
    kafka_create(b, "victim", "keep")
    assert not kafka_produce(b, "victim", 600, "victim")[1]  # ~9.4 MiB
    acked = kafka_fill_until_full(b, "keep")
    assert disk.free() < MIB
    # Producers keep getting the storage error, on every topic.
    more, errors = kafka_produce(b, "victim", 8, "victim")
    assert not more and set(errors) == {KafkaError.KAFKA_STORAGE_ERROR}

    a = AdminClient({"bootstrap.servers": b.bootstrap})
    a.delete_topics(["victim"], operation_timeout=10)["victim"].result(10)
    assert "victim" not in a.list_topics(timeout=10).topics
    assert disk.free() > 8 * MIB
    again, errors = kafka_produce(b, "keep", 64, "keep", start=10000)
    assert not errors and len(again) == 64
    kafka_check_after_restart(b, "keep", acked + again)
    assert "victim" not in AdminClient({"bootstrap.servers": b.bootstrap}) \
        .list_topics(timeout=10).topics


def test_kafka_delete_records_on_a_full_disk(disk):
    b = disk.start()
    kafka_create(b, "victim", "keep")
    assert not kafka_produce(b, "victim", 600, "victim")[1]
    acked = kafka_fill_until_full(b, "keep")
    c = Conn(b.port)
    [(part, low, err)] = delete_records_raw(c, 1, "victim", [(0, -1)])
    c.close()
    assert (part, low, err) == (0, 600, 0)
    assert disk.free() > 8 * MIB
    again, errors = kafka_produce(b, "keep", 64, "keep", start=10000)
    assert not errors and len(again) == 64
    kafka_check_after_restart(b, "keep", acked + again)
    c = Conn(b.port)
    assert delete_records_raw(c, 1, "victim", [(0, 0)]) == [(0, 600, 0)]  # still deleted
    c.close()


def test_kafka_lower_retention_on_a_full_disk(disk):
    """AlterConfigs lowering retention.bytes: the change is saved on the reserve's space and
    applied at once."""
    b = disk.start()
    kafka_create(b, "victim", "keep")
    assert not kafka_produce(b, "victim", 600, "victim")[1]
    acked = kafka_fill_until_full(b, "keep")
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    res = ConfigResource(ConfigResource.Type.TOPIC, "victim",
                         set_config={"segment.bytes": str(SEGMENT), "retention.bytes": str(SEGMENT)})
    a.alter_configs([res])[res].result(10)
    assert disk.free() > 8 * MIB
    again, errors = kafka_produce(b, "keep", 64, "keep", start=10000)
    assert not errors and len(again) == 64
    kafka_check_after_restart(b, "keep", acked + again)


# ---------------------------------------------------------------------------------------------
# HTTP

class Http:
    def __init__(self, b):
        self.c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=30)

    def __call__(self, method, path, body=None):
        self.c.request(method, path, body=None if body is None else json.dumps(body),
                       headers={"Content-Type": "application/json"})
        r = self.c.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else None


def http_sender(h, topic):
    def send(values):
        status, body = h("POST", f"/v1/topics/{topic}/events",
                         [{"value": v.decode()} for v in values])
        return ([v.decode() for v in values], []) if status == 200 else ([], [(status, body)])
    return send


def http_produce(h, topic, count, tag, start=0):
    acked, errors = [], []
    for i in range(start, start + count, 8):
        ok, errs = http_sender(h, topic)([value(tag, k)
                                          for k in range(i, min(i + 8, start + count))])
        acked, errors = acked + ok, errors + errs
    return acked, errors


def http_fill_until_full(h, topic):
    acked, errors = fill_until_full(http_sender(h, topic), topic)
    for status, body in errors:
        assert status == 507, body
        assert body["error"]["code"] == "insufficient_storage"
        assert body["error"]["status"] == 507
        assert "No space left on device" in body["error"]["message"]
    return acked


def http_events(h, topic):
    out, offset = [], 0
    for _ in range(1000):
        status, body = h("GET", f"/v1/topics/{topic}/events?partition=0&offset={offset}&limit=500")
        assert status == 200, body
        if not body["events"]:
            return out
        out += [e["value"] for e in body["events"]]
        offset = body["next_offsets"]["0"]
    raise AssertionError("too many events")


def test_http_delete_topic_on_a_full_disk(disk):
    b = disk.start()
    h = Http(b)
    for name in ("victim", "keep"):
        status, _ = h("POST", "/v1/topics", {"name": name, "partitions": 1,
                                             "config": {"segment.bytes": str(SEGMENT)}})
        assert status == 201
    assert not http_produce(h, "victim", 600, "victim")[1]
    acked = http_fill_until_full(h, "keep")

    status, body = h("DELETE", "/v1/topics/victim")
    assert status == 204, body
    assert h("GET", "/v1/topics/victim")[0] == 404
    assert disk.free() > 8 * MIB
    again, errors = http_produce(h, "keep", 64, "keep", start=10000)
    assert not errors
    b.stop()
    b.start()
    assert http_events(Http(b), "keep") == acked + again
    assert Http(b)("GET", "/v1/topics/victim")[0] == 404


def test_space_freed_by_hand_serves_again_without_a_restart(disk):
    """Space freed outside the broker: the same partition accepts appends again at once."""
    b = disk.start()
    h = Http(b)
    assert h("POST", "/v1/topics", {"name": "keep", "partitions": 1,
                                    "config": {"segment.bytes": str(SEGMENT)}})[0] == 201
    filler = disk.mnt / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * (12 * MIB))
    acked = http_fill_until_full(h, "keep")
    # Full, more than once: the partition stays writable, nothing half-written stays behind.
    for _ in range(3):
        assert http_produce(h, "keep", 8, "keep", start=20000)[1][0][0] == 507
    filler.unlink()
    again, errors = http_produce(h, "keep", 64, "keep", start=10000)
    assert not errors
    status, body = h("GET", "/v1/topics/keep")
    assert not body["partitions"][0]["offline"]
    b.stop()
    b.start()
    assert http_events(Http(b), "keep") == acked + again


# ---------------------------------------------------------------------------------------------
# Redis

def redis_sender(r, key):
    """XADDs in one pipeline (which the broker appends as one batch)."""
    def send(values):
        p = r.pipeline(transaction=False)
        for v in values:
            p.xadd(key, {"v": v})
        acked, errors = [], []
        for v, res in zip(values, p.execute(raise_on_error=False)):
            if isinstance(res, Exception):
                errors.append(str(res))
            else:
                acked.append(v)
        return acked, errors
    return send


def redis_fill(r, key, count, tag, start=0):
    acked, errors = [], []
    for i in range(start, start + count, 16):
        ok, errs = redis_sender(r, key)([value(tag, k)
                                         for k in range(i, min(i + 16, start + count))])
        acked, errors = acked + ok, errors + errs
    return acked, errors


def redis_start(disk, extra=()):
    """The streams are created over HTTP, to give them small segments."""
    b = disk.start(extra)
    h = Http(b)
    for name in ("victim", "keep"):
        assert h("POST", "/v1/topics", {"name": name, "partitions": 1,
                                        "config": {"segment.bytes": str(SEGMENT)}})[0] == 201
    return b, redis.Redis(port=b.redis_port, socket_timeout=30)


def redis_fill_until_full(r):
    assert not redis_fill(r, "victim", 600, "victim")[1]
    acked, errors = fill_until_full(redis_sender(r, "keep"), "keep")
    for e in errors:
        assert e.startswith("append to partition keep/0 failed: No space left on device"), e
    return acked


def redis_check_after_restart(b, acked):
    b.stop()
    b.start()
    r = redis.Redis(port=b.redis_port, socket_timeout=30)
    got = [fields[b"v"] for _, fields in r.xrange("keep")]
    assert got == acked
    return r


@pytest.mark.parametrize("how", ["DEL", "UNLINK", "XTRIM", "FLUSHALL"])
def test_redis_frees_a_full_disk(disk, how):
    b, r = redis_start(disk, ["--set", "redis.allow.flush=true"] if how == "FLUSHALL" else [])
    acked = redis_fill_until_full(r)
    if how in ("DEL", "UNLINK"):
        assert r.execute_command(how, "victim", "nosuchkey") == 1
        assert r.exists("victim") == 0
    elif how == "XTRIM":
        assert r.xtrim("victim", maxlen=0) == 600
        assert r.xlen("victim") == 0
    else:
        assert r.flushall() is True
        assert r.dbsize() == 0
        acked = []  # "keep" went too
    assert disk.free() > 8 * MIB
    again, errors = redis_fill(r, "keep", 64, "keep", start=10000)
    assert not errors, errors[:1]
    r = redis_check_after_restart(b, acked + again)
    if how == "XTRIM":
        assert r.xlen("victim") == 0
    else:
        assert r.exists("victim") == 0


# ---------------------------------------------------------------------------------------------
# The command line, on the data directory of a stopped broker

def test_cli_topic_delete_on_a_full_disk(disk):
    b = disk.start()
    h = Http(b)
    for name in ("victim", "keep"):
        assert h("POST", "/v1/topics", {"name": name, "partitions": 1,
                                        "config": {"segment.bytes": str(SEGMENT)}})[0] == 201
    assert not http_produce(h, "victim", 600, "victim")[1]
    acked = http_fill_until_full(h, "keep")
    b.stop()
    p = subprocess.run([BIN, "topic", "delete", "victim", "--data", disk.data],
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    assert disk.free() > 8 * MIB
    assert os.path.getsize(os.path.join(disk.data, "reserve")) == 8 * MIB
    b.start()
    h = Http(b)
    again, errors = http_produce(h, "keep", 64, "keep", start=10000)
    assert not errors
    assert http_events(h, "keep") == acked + again


# ---------------------------------------------------------------------------------------------
# Without a reserve, nothing can be freed on a full disk: every API says so

def test_without_a_reserve_every_api_reports_the_failure(disk):
    b = disk.start(["--set", "disk.reserve.bytes=0", "--set", "redis.allow.flush=true"])
    assert not os.path.exists(os.path.join(disk.data, "reserve"))
    h = Http(b)
    for name in ("victim", "keep"):
        assert h("POST", "/v1/topics", {"name": name, "partitions": 1,
                                        "config": {"segment.bytes": str(SEGMENT)}})[0] == 201
    victim, errors = http_produce(h, "victim", 256, "victim")
    assert not errors
    filler = disk.mnt / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * (4 * MIB))
    http_fill_until_full(h, "keep")

    status, body = h("DELETE", "/v1/topics/victim")
    assert (status, body["error"]["code"]) == (507, "insufficient_storage"), body
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    with pytest.raises(KafkaException) as e:
        a.delete_topics(["victim"], operation_timeout=10)["victim"].result(10)
    assert e.value.args[0].code() == KafkaError.KAFKA_STORAGE_ERROR
    c = Conn(b.port)
    assert delete_records_raw(c, 1, "victim", [(0, -1)]) == [(0, -1, 56)]
    c.close()
    r = redis.Redis(port=b.redis_port, socket_timeout=30)
    for cmd in (("DEL", "nosuchkey", "victim"), ("UNLINK", "victim"),
                ("XTRIM", "victim", "MAXLEN", "0"), ("FLUSHALL",)):
        with pytest.raises(redis.ResponseError) as e:
            r.execute_command(*cmd)
        # The log's words, or SQLite's for the catalog ("database or disk is full").
        assert "No space left on device" in str(e.value) or "disk is full" in str(e.value), \
            (cmd, str(e.value))
        if cmd[0] == "DEL":
            assert str(e.value).startswith("cannot delete 'victim' (0 keys before it deleted): ")
    # Nothing was half done: the topic is whole.
    assert http_events(h, "victim") == victim

    filler.unlink()
    assert r.execute_command("DEL", "victim") == 1
    assert not http_produce(h, "keep", 8, "keep", start=10000)[1]
