"""The consumer-group APIs byte by byte, in every version served (FindCoordinator 0-4, JoinGroup
0-9, SyncGroup 0-5, Heartbeat 0-4, LeaveGroup 0-5, OffsetCommit 0-8, OffsetFetch 0-8,
ListGroups 0-4, DescribeGroups 0-5, DeleteGroups 0-2, OffsetDelete 0), and the bad input the
issue names: unknown protocols, wrong generations, unknown members, offsets beyond the log end,
expired sessions, a group with more members than allowed, truncated frames.
"""
import time

import confluent_kafka as ck
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker
from kafkawire import Conn, Reader, array, bytes_, header, i8, i16, i32, i64, string, tags

FIND, JOIN, HEARTBEAT, LEAVE, SYNC = 10, 11, 12, 13, 14
COMMIT, FETCH, DESCRIBE, LIST, DELETE, OFFSET_DELETE = 8, 9, 15, 16, 42, 47
FLEX = {FIND: 3, JOIN: 6, HEARTBEAT: 4, LEAVE: 4, SYNC: 4, COMMIT: 8, FETCH: 6, DESCRIBE: 5,
        LIST: 3, DELETE: 2, OFFSET_DELETE: 99}


def flex(key, v):
    return v >= FLEX[key]


def req(conn, key, v, body):
    return conn.request(key, v, body, flex=flex(key, v))


def subscription(topics):
    """ConsumerProtocolSubscription v0."""
    return i16(0) + array([string(t) for t in topics]) + bytes_(None)


@pytest.fixture
def wbroker(tmp_path):
    b = Broker(str(tmp_path / "data"),
               extra=["--set", "group.initial.rebalance.delay.ms=0",
                      "--set", "group.min.session.timeout.ms=100"]).start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("wt", 2, 1)])["wt"].result(timeout=10)
    yield b
    if b.proc:
        b.stop()


# --- encoders and readers, one per API ------------------------------------------------------
def find(conn, v, key):
    f = flex(FIND, v)
    body = string(key, f) if v <= 3 else array([string(key, f)], f)
    if 1 <= v <= 3:
        body += i8(0)
    elif v >= 4:
        body = i8(0) + body
    r = req(conn, FIND, v, body + tags(f))
    if v >= 1:
        r.i32()
    if v <= 3:
        err = r.i16()
        if v >= 1:
            r.string()
        out = (err, r.i32(), r.string(), r.i32())
    else:
        assert r.array_len() == 1
        assert r.string() == key
        node, host, port, err = r.i32(), r.string(), r.i32(), r.i16()
        r.string()
        r.tags()
        out = (err, node, host, port)
    r.tags()
    assert r.done()
    return out


def join(conn, v, group, member="", protocols=(("range", None),), session=10000,
         instance=None, ptype="consumer"):
    f = flex(JOIN, v)
    body = string(group, f) + i32(session)
    if v >= 1:
        body += i32(session)
    body += string(member, f)
    if v >= 5:
        body += string(instance, f)
    body += string(ptype, f)
    body += array([string(n, f) + bytes_(m if m is not None else subscription(["wt"]), f) +
                   tags(f) for n, m in protocols], f)
    if v >= 8:
        body += string(None, f)
    return body + tags(f)


def read_join(r, v):
    if v >= 2:
        r.i32()
    out = {"err": r.i16(), "gen": r.i32()}
    if v >= 7:
        out["ptype"] = r.string()
    out["protocol"] = r.string()
    out["leader"] = r.string()
    if v >= 9:
        out["skip"] = r.i8()
    out["member"] = r.string()
    out["members"] = []
    for _ in range(r.array_len()):
        mid = r.string()
        inst = r.string() if v >= 5 else None
        out["members"].append((mid, inst, r.bytes()))
        r.tags()
    r.tags()
    assert r.done()
    return out


def join_member(conn, v, group, **kw):
    """Joins like a client: learns its member id first (v4+), then joins with it."""
    res = read_join(req(conn, JOIN, v, join(conn, v, group, **kw)), v)
    if v >= 4 and kw.get("instance") is None:
        assert res["err"] == 79, res  # MEMBER_ID_REQUIRED
        assert res["member"]
        kw["member"] = res["member"]
        res = read_join(req(conn, JOIN, v, join(conn, v, group, **kw)), v)
    return res


def sync(conn, v, group, gen, member, plan=()):
    f = flex(SYNC, v)
    body = string(group, f) + i32(gen) + string(member, f)
    if v >= 3:
        body += string(None, f)
    if v >= 5:
        body += string("consumer", f) + string("range", f)
    body += array([string(m, f) + bytes_(a, f) + tags(f) for m, a in plan], f) + tags(f)
    r = req(conn, SYNC, v, body)
    if v >= 1:
        r.i32()
    err = r.i16()
    if v >= 5:
        assert r.string() == ("consumer" if err == 0 else None)
        assert r.string() == ("range" if err == 0 else None)
    data = r.bytes()
    r.tags()
    assert r.done()
    return err, data


def heartbeat(conn, v, group, gen, member):
    f = flex(HEARTBEAT, v)
    body = string(group, f) + i32(gen) + string(member, f)
    if v >= 3:
        body += string(None, f)
    r = req(conn, HEARTBEAT, v, body + tags(f))
    if v >= 1:
        r.i32()
    err = r.i16()
    r.tags()
    assert r.done()
    return err


def leave(conn, v, group, members):
    f = flex(LEAVE, v)
    body = string(group, f)
    if v <= 2:
        body += string(members[0], f)
    else:
        body += array([string(m, f) + string(None, f) + (string(None, f) if v >= 5 else b"") +
                       tags(f) for m in members], f)
    r = req(conn, LEAVE, v, body + tags(f))
    if v >= 1:
        r.i32()
    top = r.i16()
    each = []
    if v >= 3:
        for _ in range(r.array_len()):
            each.append((r.string(), r.string(), r.i16()))
            r.tags()
    r.tags()
    assert r.done()
    return top, each


def commit(conn, v, group, gen, member, parts):
    """parts: [(partition, offset, metadata)] of topic wt; returns {partition: error}."""
    f = flex(COMMIT, v)
    body = string(group, f)
    if v >= 1:
        body += i32(gen) + string(member, f)
    if v >= 7:
        body += string(None, f)
    if 2 <= v <= 4:
        body += i64(-1)
    ps = []
    for p, off, meta in parts:
        e = i32(p) + i64(off)
        if v >= 6:
            e += i32(-1)
        if v == 1:
            e += i64(-1)
        ps.append(e + string(meta, f) + tags(f))
    body += array([string("wt", f) + array(ps, f) + tags(f)], f) + tags(f)
    r = req(conn, COMMIT, v, body)
    if v >= 3:
        r.i32()
    out = {}
    for _ in range(r.array_len()):
        assert r.string() == "wt"
        for _ in range(r.array_len()):
            p = r.i32()
            out[p] = r.i16()
            r.tags()
        r.tags()
    r.tags()
    assert r.done()
    return out


def fetch_offsets(conn, v, group, partitions):
    """partitions None: all committed. Returns ({(topic, p): (offset, metadata, err)}, err)."""
    f = flex(FETCH, v)
    topics = None if partitions is None else [
        string("wt", f) + array([i32(p) for p in partitions], f) + tags(f)]
    if v <= 7:
        body = string(group, f) + array(topics, f)
    else:
        body = array([string(group, f) + array(topics, f) + tags(f)], f)
    if v >= 7:
        body += i8(0)
    r = req(conn, FETCH, v, body + tags(f))
    if v >= 3:
        r.i32()
    out, top = {}, 0

    def read_topics():
        for _ in range(r.array_len()):
            t = r.string()
            for _ in range(r.array_len()):
                p, off = r.i32(), r.i64()
                if v >= 5:
                    r.i32()
                out[(t, p)] = (off, r.string(), r.i16())
                r.tags()
            r.tags()
    if v <= 7:
        read_topics()
        if v >= 2:
            top = r.i16()
    else:
        assert r.array_len() == 1
        assert r.string() == group
        read_topics()
        top = r.i16()
        r.tags()
    r.tags()
    assert r.done()
    return out, top


def describe(conn, v, group):
    f = flex(DESCRIBE, v)
    body = array([string(group, f)], f)
    if v >= 3:
        body += i8(0)
    r = req(conn, DESCRIBE, v, body + tags(f))
    if v >= 1:
        r.i32()
    assert r.array_len() == 1
    g = {"err": r.i16(), "id": r.string(), "state": r.string(), "ptype": r.string(),
         "protocol": r.string(), "members": []}
    for _ in range(r.array_len()):
        m = {"id": r.string()}
        if v >= 4:
            m["instance"] = r.string()
        m.update(client=r.string(), host=r.string(), meta=r.bytes(), assignment=r.bytes())
        r.tags()
        g["members"].append(m)
    if v >= 3:
        r.i32()
    r.tags()
    r.tags()
    assert r.done()
    return g


def list_groups(conn, v, states=()):
    f = flex(LIST, v)
    body = array([string(s, f) for s in states], f) if v >= 4 else b""
    r = req(conn, LIST, v, body + tags(f))
    if v >= 1:
        r.i32()
    err = r.i16()
    out = {}
    for _ in range(r.array_len()):
        gid, ptype = r.string(), r.string()
        out[gid] = (ptype, r.string() if v >= 4 else None)
        r.tags()
    r.tags()
    assert r.done()
    return err, out


def delete_groups(conn, v, groups):
    f = flex(DELETE, v)
    r = req(conn, DELETE, v, array([string(g, f) for g in groups], f) + tags(f))
    r.i32()
    out = {}
    for _ in range(r.array_len()):
        gid = r.string()
        out[gid] = r.i16()
        r.tags()
    r.tags()
    assert r.done()
    return out


# --- every version ----------------------------------------------------------------------------
@pytest.mark.parametrize("v", range(10))
def test_group_apis_every_version(wbroker, v):
    conn = Conn(wbroker.port)
    group = f"wire-{v}"
    assert find(conn, v % 5, group) == (0, 1, "127.0.0.1", wbroker.port)

    res = join_member(conn, v, group)
    assert res["err"] == 0 and res["gen"] == 1, res
    member = res["member"]
    assert res["leader"] == member and res["protocol"] == "range"
    assert member.startswith("wire-test-")
    assert [m[0] for m in res["members"]] == [member]
    assert res["members"][0][2] == subscription(["wt"])
    if v >= 7:
        assert res["ptype"] == "consumer"

    assert sync(conn, v % 6, group, 1, member, [(member, b"plan")]) == (0, b"plan")
    assert heartbeat(conn, v % 5, group, 1, member) == 0
    assert heartbeat(conn, v % 5, group, 2, member) == 22  # ILLEGAL_GENERATION
    assert heartbeat(conn, v % 5, group, 1, "nobody") == 25  # UNKNOWN_MEMBER_ID

    cv = v % 9
    committer = (group, 1, member) if cv >= 1 else (f"simple-{v}", -1, "")
    assert commit(conn, cv, *committer, [(0, 5 + v, f"m{v}"), (99, 1, None)]) == {0: 0, 99: 3}
    fv = v % 9
    got, top = fetch_offsets(conn, fv, committer[0], [0, 1])
    assert top == 0
    assert got == {("wt", 0): (5 + v, f"m{v}", 0), ("wt", 1): (-1, "", 0)}
    if fv >= 2:
        assert fetch_offsets(conn, fv, committer[0], None) == (
            {("wt", 0): (5 + v, f"m{v}", 0)}, 0)

    g = describe(conn, v % 6, group)
    assert (g["err"], g["id"], g["state"], g["ptype"], g["protocol"]) == (
        0, group, "Stable", "consumer", "range")
    assert len(g["members"]) == 1
    m = g["members"][0]
    assert (m["id"], m["client"], m["host"], m["assignment"]) == (
        member, "wire-test", "/127.0.0.1", b"plan")
    assert m["meta"] == subscription(["wt"])

    err, groups = list_groups(conn, v % 5)
    assert err == 0 and groups[group][0] == "consumer"
    if v % 5 == 4:
        assert groups[group][1] == "Stable"
        assert group not in list_groups(conn, 4, ["Empty"])[1]

    top, each = leave(conn, v % 6, group, [member])
    assert top == 0
    if v % 6 >= 3:
        assert each == [(member, None, 0)]
    assert describe(conn, v % 6, group)["state"] == "Empty"
    assert delete_groups(conn, v % 3, [group]) == {group: 0}
    assert delete_groups(conn, v % 3, [group]) == {group: 69}  # GROUP_ID_NOT_FOUND
    assert describe(conn, v % 6, group)["state"] == "Dead"
    conn.close()


def test_offset_delete(wbroker):
    conn = Conn(wbroker.port)
    assert commit(conn, 2, "od", -1, "", [(0, 3, None), (1, 4, None)]) == {0: 0, 1: 0}

    def offset_delete(group, topic, parts):
        body = string(group) + array([string(topic) + array([i32(p) for p in parts])])
        r = conn.request(OFFSET_DELETE, 0, body)
        top = r.i16()
        r.i32()
        out = {}
        for _ in range(r.array_len()):
            r.string()
            for _ in range(r.array_len()):
                p = r.i32()
                out[p] = r.i16()
        assert r.done()
        return top, out
    assert offset_delete("od", "wt", [0]) == (0, {0: 0})
    assert fetch_offsets(conn, 5, "od", None)[0] == {("wt", 1): (4, "", 0)}
    assert offset_delete("od", "nope", [0]) == (0, {0: 3})
    assert offset_delete("no-such-group", "wt", [0]) == (69, {})
    # A member subscribed to the topic: its offsets stay.
    res = join_member(conn, 5, "od")
    assert sync(conn, 5, "od", res["gen"], res["member"], [(res["member"], b"")])[0] == 0
    assert offset_delete("od", "wt", [1]) == (0, {1: 86})  # GROUP_SUBSCRIBED_TO_TOPIC
    conn.close()


# --- bad input --------------------------------------------------------------------------------
def test_bad_joins_generations_and_members(wbroker):
    conn = Conn(wbroker.port)
    res = join_member(conn, 5, "bad")
    member, gen = res["member"], res["gen"]
    assert sync(conn, 5, "bad", gen, member, [(member, b"a")])[0] == 0
    other = Conn(wbroker.port)
    # A protocol the group does not speak, another protocol type, no protocols at all.
    r = read_join(req(other, JOIN, 3, join(other, 3, "bad", protocols=[("sticky", b"x")])), 3)
    assert r["err"] == 23  # INCONSISTENT_GROUP_PROTOCOL
    r = read_join(req(other, JOIN, 3, join(other, 3, "bad", ptype="connect")), 3)
    assert r["err"] == 23
    r = read_join(req(other, JOIN, 3, join(other, 3, "fresh", protocols=[])), 3)
    assert r["err"] == 23
    # Session timeouts out of range, an empty group id, member ids the group never gave.
    assert read_join(req(other, JOIN, 3, join(other, 3, "bad", session=10)), 3)["err"] == 26
    assert read_join(req(other, JOIN, 3, join(other, 3, "bad", session=10**9)), 3)["err"] == 26
    assert read_join(req(other, JOIN, 3, join(other, 3, "")), 3)["err"] == 24
    r = read_join(req(other, JOIN, 5, join(other, 5, "bad", member="made-up")), 5)
    assert r["err"] == 25
    # Wrong generations and unknown members in SyncGroup, Heartbeat, OffsetCommit.
    assert sync(other, 3, "bad", gen + 5, member)[0] == 22
    assert sync(other, 3, "bad", gen, "made-up")[0] == 25
    assert sync(other, 3, "nogroup", 1, "made-up")[0] == 25
    assert commit(other, 8, "bad", gen, "made-up", [(0, 1, None)]) == {0: 25}
    assert commit(other, 8, "bad", gen + 1, member, [(0, 1, None)]) == {0: 22}
    assert commit(other, 8, "bad", -1, "", [(0, 1, None)]) == {0: 25}  # the group has members
    assert commit(other, 8, "nogroup", 3, "m", [(0, 1, None)]) == {0: 22}
    # A negative offset is stored, as Kafka stores it; metadata too large is refused.
    assert commit(other, 8, "bad", gen, member, [(0, -5, None), (1, 1, "x" * 5000)]) == {
        0: 0, 1: 12}  # OFFSET_METADATA_TOO_LARGE
    assert leave(other, 3, "bad", ["made-up"]) == (0, [("made-up", None, 25)])
    assert leave(other, 1, "nogroup", ["made-up"])[0] == 25
    # None of that disturbed the group.
    assert heartbeat(conn, 4, "bad", gen, member) == 0
    g = describe(conn, 5, "bad")
    assert g["state"] == "Stable" and [m["id"] for m in g["members"]] == [member]

    # Offsets beyond the log end are stored, as Kafka does; a consumer resuming there is out of
    # range and starts over according to auto.offset.reset.
    assert commit(conn, 8, "bad", gen, member, [(0, 10**9, None)]) == {0: 0}
    assert fetch_offsets(conn, 8, "bad", [0])[0][("wt", 0)][0] == 10**9
    leave(conn, 3, "bad", [member])
    p = ck.Producer({"bootstrap.servers": wbroker.bootstrap})
    p.produce("wt", value=b"first", partition=0)
    assert p.flush(10) == 0
    c = ck.Consumer({"bootstrap.servers": wbroker.bootstrap, "group.id": "bad",
                     "auto.offset.reset": "earliest"})
    c.assign([ck.TopicPartition("wt", 0, ck.OFFSET_STORED)])
    m = None
    deadline = time.time() + 20
    while time.time() < deadline and (m is None or m.error()):
        m = c.poll(0.5)
    assert m is not None and not m.error() and m.offset() == 0 and m.value() == b"first"
    c.close()
    conn.close()
    other.close()


def test_heartbeat_after_session_expired(wbroker):
    conn = Conn(wbroker.port)
    res = join_member(conn, 4, "short", session=300)
    assert sync(conn, 4, "short", res["gen"], res["member"], [(res["member"], b"")])[0] == 0
    assert heartbeat(conn, 4, "short", res["gen"], res["member"]) == 0
    time.sleep(1.5)
    assert heartbeat(conn, 4, "short", res["gen"], res["member"]) == 25
    assert commit(conn, 8, "short", res["gen"], res["member"], [(0, 1, None)]) == {0: 25}
    assert describe(conn, 5, "short")["state"] == "Empty"
    conn.close()


def test_thousands_of_members(tmp_path):
    """1 500 members join one group: group.max.size (1 000) of them make generation 1 and the
    rest are refused with GROUP_MAX_SIZE_REACHED; another group is served meanwhile."""
    b = Broker(str(tmp_path / "data"),
               extra=["--set", "group.initial.rebalance.delay.ms=2000"]).start()
    try:
        conns = [Conn(b.port, timeout=60) for _ in range(30)]
        for c in conns:
            frames = b""
            for _ in range(50):
                c.corr += 1
                body = join(c, 3, "crowd", protocols=[("range", b"m")])
                frame = header(JOIN, 3, c.corr, False) + body
                frames += i32(len(frame)) + frame
            c.send_raw(frames)
        # Another group is not held up by the crowd.
        solo = Conn(b.port)
        t0 = time.time()
        r = read_join(req(solo, JOIN, 3, join(solo, 3, "quiet")), 3)
        assert r["err"] == 0 and r["gen"] == 1
        assert time.time() - t0 < 10
        results = []
        for c in conns:
            for _ in range(50):
                rd = Reader(c.recv_frame())
                rd.i32()
                results.append(read_join(rd, 3))
        ok = [r for r in results if r["err"] == 0]
        full = [r for r in results if r["err"] == 81]
        assert len(ok) == 1000 and len(full) == 500
        assert {r["gen"] for r in ok} == {1}
        leader = {r["leader"] for r in ok}
        assert len(leader) == 1
        (lead,) = [r for r in ok if r["member"] == r["leader"]]
        assert len(lead["members"]) == 1000
        assert sorted(m[0] for m in lead["members"]) == sorted(r["member"] for r in ok)
        g = describe(solo, 5, "crowd")
        assert g["state"] == "CompletingRebalance" and len(g["members"]) == 1000
        # All of them leave in one request.
        top, each = leave(solo, 4, "crowd", [r["member"] for r in ok])
        assert top == 0 and {e[2] for e in each} == {0} and len(each) == 1000
        assert describe(solo, 5, "crowd")["state"] == "Empty"
        for c in conns + [solo]:
            c.close()
    finally:
        b.stop()


@pytest.mark.parametrize("key,v,body", [
    (JOIN, 9, string("g", True) + i32(10000)),
    (SYNC, 5, string("g", True) + i32(1)),
    (HEARTBEAT, 4, string("g", True)),
    (LEAVE, 5, string("g", True) + b"\x05"),
    (COMMIT, 8, string("g", True) + i32(1) + string("m", True) + b"\x00" + b"\x02"),
    (FETCH, 8, b"\x03" + string("g", True)),
    (DESCRIBE, 5, b"\x09"),
    (LIST, 4, b"\x05"),
    (DELETE, 2, b"\x7f"),
    (OFFSET_DELETE, 0, string("g") + i32(1)),
    (FIND, 4, i8(0) + b"\x04"),
])
def test_truncated_group_requests(wbroker, key, v, body):
    """A truncated request closes that connection; the broker serves the next one."""
    conn = Conn(wbroker.port)
    frame = header(key, v, 1, flex(key, v)) + body
    conn.send_raw(i32(len(frame)) + frame)
    assert conn.closed_by_peer()
    conn.close()
    again = Conn(wbroker.port)
    assert find(again, 4, "g")[0] == 0
    again.close()
