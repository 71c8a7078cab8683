"""The Kafka protocol at the byte level: exact versions including flexible ones, and bad
input. After every bad frame the broker must still serve a fresh connection."""
import socket
import struct
import time

import pytest

import kafkawire as kw
from kafkawire import array, bytes_, i8, i16, i32, i64, string, tags, uvarint


def still_serving(broker):
    c = kw.Conn(broker.port)
    r = c.request(18, 0, b"")
    assert r.i16() == 0
    c.close()
    assert broker.alive()


def api_versions(r):
    err = r.i16()
    apis = {}
    for _ in range(r.array_len()):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        r.tags()
        apis[k] = (lo, hi)
    return err, apis


def test_api_versions_v3_flexible_body_with_v0_header(broker):
    c = kw.Conn(broker.port)
    body = string("wire-test", True) + string("1.0", True) + tags(True)
    r = c.request(18, 3, body, flex=True, resp_flex_header=False)
    r.flex = True
    err, apis = api_versions(r)
    assert err == 0
    assert apis[0] == (3, 9) and apis[1] == (4, 17) and apis[3] == (0, 12)
    assert r.i32() == 0  # throttle
    r.tags()
    assert r.done()


def test_api_versions_unsupported_version_answers_v0_with_error_35(broker):
    c = kw.Conn(broker.port)
    r = c.request(18, 99, b"", flex=False)
    err, apis = api_versions(r)
    assert err == 35
    assert 18 in apis and apis[18] == (0, 3)
    assert r.done()
    # The connection stays usable.
    r = c.request(18, 0, b"")
    assert r.i16() == 0


def metadata_body(version, topics, flex):
    ts = []
    for t in topics:
        item = b""
        if version >= 10:
            item += b"\0" * 16
        item += string(t, flex) + tags(flex)
        ts.append(item)
    body = array(ts, flex)
    if version >= 4:
        body += i8(1)  # allow auto creation
    if 8 <= version <= 10:
        body += i8(0)
    if version >= 8:
        body += i8(0)
    return body + tags(flex)


@pytest.mark.parametrize("version", [0, 1, 4, 5, 7, 8, 9, 10, 11, 12])
def test_metadata_every_version_parses_completely(broker, version):
    flex = version >= 9
    c = kw.Conn(broker.port)
    r = c.request(3, version, metadata_body(version, [f"md{version}"], flex), flex=flex)
    if version >= 3:
        assert r.i32() == 0
    nb = r.array_len()
    assert nb == 1
    assert r.i32() == 1
    assert r.string() == "127.0.0.1"
    assert r.i32() == broker.port
    if version >= 1:
        assert r.string() is None
    r.tags()
    if version >= 2:
        assert r.string()
    if version >= 1:
        assert r.i32() == 1
    assert r.array_len() == 1
    assert r.i16() == 0
    assert r.string() == f"md{version}"
    if version >= 10:
        assert r.take(16) != b"\0" * 16
    if version >= 1:
        assert r.i8() == 0
    assert r.array_len() == 1
    assert r.i16() == 0 and r.i32() == 0 and r.i32() == 1
    if version >= 7:
        r.i32()
    for _ in range(3 if version >= 5 else 2):
        n = r.array_len()
        [r.i32() for _ in range(n)]
    r.tags()
    if version >= 8:
        r.i32()
    r.tags()
    if 8 <= version <= 10:
        r.i32()
    r.tags()
    assert r.done()


def read_fetch_one(r, read_topic):
    """A flexible (v12+) Fetch response for one partition 0 of one topic, read completely:
    returns (topic as read_topic reads it, error, high watermark, records)."""
    assert r.i32() == 0 and r.i16() == 0 and r.i32() == 0
    assert r.array_len() == 1
    topic = read_topic()
    assert r.array_len() == 1
    assert r.i32() == 0
    err, hw = r.i16(), r.i64()
    r.i64()
    r.i64()
    assert r.array_len() == -1
    assert r.i32() == -1
    records = r.bytes()
    r.tags()
    r.tags()
    r.tags()
    assert r.done()
    return topic, err, hw, records


@pytest.mark.parametrize("version", [3, 5, 7, 8, 9])
def test_produce_then_fetch_v12_flexible(broker, version):
    flex = version >= 9
    c = kw.Conn(broker.port)
    c.request(3, 1, metadata_body(1, ["pf"], False))  # auto-creates the topic
    batch = kw.make_batch([b"a", b"bb", b"ccc"], keys=[b"1", b"2", b"3"])
    r = c.request(0, version, kw.produce_body("pf", 0, batch, flex=flex), flex=flex)
    res = kw.read_produce(r, version)
    assert res[0][2] == 0
    base = res[0][3]
    assert r.done()
    # Fetch v12 (flexible) from that offset.
    part = i32(0) + i32(-1) + i64(base) + i32(-1) + i64(-1) + i32(1 << 20) + tags(True)
    topic = string("pf", True) + array([part], True) + tags(True)
    body = (i32(-1) + i32(100) + i32(1) + i32(1 << 20) + i8(0) + i32(0) + i32(-1) +
            array([topic], True) + array([], True) + string("", True) + tags(True))
    r = c.request(1, 12, body, flex=True)
    topic, err, hw, records = read_fetch_one(r, lambda: r.string())
    assert (topic, err, hw) == ("pf", 0, base + 3)
    # The stored batch is the one sent, with the broker's base offset.
    assert struct.unpack(">q", records[:8])[0] == base
    assert records[8:] == batch[8:]


def metadata_v12_first_topic(r):
    """Reads a Metadata v12 response up to its one topic; returns (error, name, topic id)."""
    r.i32()
    for _ in range(r.array_len()):
        r.i32(), r.string(), r.i32(), r.string()
        r.tags()
    r.string()
    r.i32()
    assert r.array_len() == 1
    return r.i16(), r.string(), r.take(16)


def topic_id_of(c, name):
    """The topic id Metadata v12 gives for name (auto-creating the topic)."""
    r = c.request(3, 12, metadata_body(12, [name], True), flex=True)
    err, got, tid = metadata_v12_first_topic(r)
    assert (err, got) == (0, name)
    return tid


def fetch_by_id_body(version, topic_id, offset):
    replica = i32(-1) if version <= 14 else b""
    part = i32(0) + i32(-1) + i64(offset) + i32(-1) + i64(-1) + i32(1 << 20) + tags(True)
    topic = topic_id + array([part], True) + tags(True)
    return (replica + i32(100) + i32(1) + i32(1 << 20) + i8(0) + i32(0) + i32(-1) +
            array([topic], True) + array([], True) + string("", True) + tags(True))


@pytest.mark.parametrize("version", [13, 14, 15, 16, 17])
def test_fetch_by_topic_id(broker, version):
    """Fetch v13+ names topics by id (v15+ moves the replica id into a tagged field); an id
    no topic has is UNKNOWN_TOPIC_ID (100) for its partitions."""
    c = kw.Conn(broker.port)
    tid = topic_id_of(c, "byid")
    batch = kw.make_batch([b"x", b"yy"])
    r = c.request(0, 9, kw.produce_body("byid", 0, batch, flex=True), flex=True)
    assert kw.read_produce(r, 9)[0][2] == 0
    unknown = tid[:8] + b"\xff" * 8
    for want_id, err in ((tid, 0), (unknown, 100), (b"\x01" * 16, 100)):
        r = c.request(1, version, fetch_by_id_body(version, want_id, 0), flex=True)
        topic, got_err, hw, records = read_fetch_one(r, lambda: r.take(16))
        assert (topic, got_err) == (want_id, err)
        if err == 0:
            assert hw >= 2 and records[8:] == batch[8:]
        else:
            assert records == b""
    c.close()


def test_metadata_and_delete_topics_by_id(broker):
    c = kw.Conn(broker.port)
    tid = topic_id_of(c, "gone-by-id")
    # Metadata v12 by id (null name): the topic, by name and id; an unknown id is 100.
    for want, err in ((tid, 0), (tid[:8] + b"\x00" * 5 + b"\x0f\x42\x3f", 100)):
        body = array([want + string(None, True) + tags(True)], True) + i8(0) + i8(0) + tags(True)
        r = c.request(3, 12, body, flex=True)
        assert metadata_v12_first_topic(r) == (err, "gone-by-id" if err == 0 else None, want)
    # DeleteTopics v6 by id.
    body = array([string(None, True) + tid + tags(True)], True) + i32(5000) + tags(True)
    r = c.request(20, 6, body, flex=True)
    r.i32()
    assert r.array_len() == 1
    assert r.string() == "gone-by-id" and r.take(16) == tid and r.i16() == 0
    r = c.request(20, 6, body, flex=True)
    r.i32()
    r.array_len()
    r.string()
    r.take(16)
    assert r.i16() == 100
    c.close()


def test_produce_corrupt_batches_get_per_partition_errors(broker):
    c = kw.Conn(broker.port)
    c.request(3, 1, metadata_body(1, ["bad"], False))
    batch = bytearray(kw.make_batch([b"x" * 20, b"y" * 20]))
    # CRC mismatch: CORRUPT_MESSAGE (2).
    crc_bad = bytearray(batch)
    crc_bad[-1] ^= 0xFF
    r = c.request(0, 7, kw.produce_body("bad", 0, bytes(crc_bad)))
    assert kw.read_produce(r, 7)[0][2] == 2
    # A record that lies about its length, with a valid CRC: INVALID_RECORD (87).
    liar = bytearray(batch)
    liar[61] = 0x7E  # first record's length varint: 63, far past the record
    r = c.request(0, 7, kw.produce_body("bad", 0, kw.fix_crc(bytes(liar))))
    assert kw.read_produce(r, 7)[0][2] in (2, 87)
    # Batch length larger than the bytes sent: CORRUPT_MESSAGE.
    short = bytes(batch[:-5])
    r = c.request(0, 7, kw.produce_body("bad", 0, short))
    assert kw.read_produce(r, 7)[0][2] == 2
    # Unknown partition and unknown topic.
    r = c.request(0, 7, kw.produce_body("bad", 7, bytes(batch)))
    assert kw.read_produce(r, 7)[0][2] == 3
    r = c.request(0, 7, kw.produce_body("nope", 0, bytes(batch)))
    assert kw.read_produce(r, 7)[0][2] == 3
    # Bad acks: INVALID_REQUIRED_ACKS (21).
    r = c.request(0, 7, kw.produce_body("bad", 0, bytes(batch), acks=2))
    assert kw.read_produce(r, 7)[0][2] == 21
    # Old message format (magic 1): refused.
    old = bytearray(batch)
    old[16] = 1
    r = c.request(0, 7, kw.produce_body("bad", 0, bytes(old)))
    assert kw.read_produce(r, 7)[0][2] == 43
    # Nothing that failed validation was stored: a good batch gets offset 0.
    r = c.request(0, 7, kw.produce_body("bad", 0, bytes(batch)))
    res = kw.read_produce(r, 7)[0]
    assert res[2] == 0 and res[3] == 0


def test_frame_above_the_limit_closes_only_that_connection(broker):
    c = kw.Conn(broker.port)
    c.send_raw(i32(200 * 1024 * 1024) + b"\0" * 16)
    assert c.closed_by_peer()
    still_serving(broker)
    assert "above the limit" in broker.stderr()


@pytest.mark.parametrize("payload", [
    i32(-5),                                   # negative size
    i32(4) + b"\xff\xff\x00\x00",              # truncated header
    i32(10) + i16(999) + i16(0) + i32(1) + i16(0),  # unknown API key
    i32(10) + i16(3) + i16(55) + i32(1) + i16(0),   # Metadata v55
    i32(12) + i16(0) + i16(7) + i32(1) + i16(-1) + i16(5),  # produce body truncated
    i32(30) + bytes(range(30)),                # garbage
])
def test_bad_frames_close_the_connection_and_nothing_else(broker, payload):
    c = kw.Conn(broker.port)
    c.send_raw(payload)
    assert c.closed_by_peer()
    still_serving(broker)


def test_truncated_frame_then_disconnect(broker):
    c = kw.Conn(broker.port)
    c.send_raw(i32(100) + b"\0" * 10)
    c.close()
    still_serving(broker)


def test_array_count_lying_about_its_size(broker):
    """A count of two billion topics in a tiny frame is refused before any allocation."""
    c = kw.Conn(broker.port)
    body = i32(0x7FFFFFF0)
    frame = kw.header(3, 1, 1, False) + body
    c.send_raw(i32(len(frame)) + frame)
    assert c.closed_by_peer()
    still_serving(broker)


def test_thousands_of_connections_opened_and_closed(broker):
    deadline = time.time() + 60
    n = 0
    while n < 3000 and time.time() < deadline:
        s = socket.create_connection(("127.0.0.1", broker.port))
        if n % 3 == 0:
            s.sendall(i32(100) + b"\1" * 7)  # a partial frame left behind
        s.close()
        n += 1
    assert n == 3000
    still_serving(broker)


def test_pipelined_requests_answer_in_order(broker):
    c = kw.Conn(broker.port)
    frames = b""
    for corr in range(1, 51):
        f = kw.header(18 if corr % 2 else 3, 0, corr, False) + (b"" if corr % 2 else i32(0))
        frames += i32(len(f)) + f
    c.send_raw(frames)
    for corr in range(1, 51):
        r = kw.Reader(c.recv_frame())
        assert r.i32() == corr


@pytest.mark.parametrize("version", [0, 1])
def test_describe_cluster(broker, version):
    c = kw.Conn(broker.port)
    body = i8(0) + (i8(1) if version >= 1 else b"") + tags(True)
    r = c.request(60, version, body, flex=True)
    assert r.i32() == 0 and r.i16() == 0 and r.string() is None
    if version >= 1:
        assert r.i8() == 1
    assert r.string()
    assert r.i32() == 1
    assert r.array_len() == 1
    assert r.i32() == 1 and r.string() == "127.0.0.1" and r.i32() == broker.port
    assert r.string() is None
    r.tags()
    r.i32()
    r.tags()
    assert r.done()
