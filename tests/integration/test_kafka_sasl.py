"""Kafka SASL authentication (docs/security.md#authentication-kafka): SaslHandshake and
SaslAuthenticate with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, raw v0 tokens, re-authentication
(KIP-368), the gate before authentication, and DescribeUserScramCredentials /
AlterUserScramCredentials.

Real clients: confluent-kafka over SASL_SSL with SCRAM-SHA-512 across session lifetimes of 3 s
(librdkafka 2.0 reconnects; it predates KIP-368 support), kafka-python with SASL_PLAINTEXT PLAIN
(SaslHandshake v0 and raw tokens), kcat, kafkajs with SCRAM-SHA-256 (re-authenticating on its
connection) and @platformatic/kafka. Refusals and the SCRAM admin APIs are checked on the
wire (kafkawire.py) with a SCRAM client written here from RFC 5802, so that every error code and
message is seen as a client sees it.
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import time
import urllib.request
import uuid

import pytest

import kafkawire as kw
from conftest import BIN
from test_tls import TlsBroker, make_ca, make_cert

NODE_DIR = os.path.join(os.path.dirname(__file__), "..", "node")
PASSWORDS = {"alice": "alice-Secret-1", "bob": "bob pass 2", "admin": "admin-pw-3"}
REAUTH_MS = 3000
FAILED = ("Authentication failed during authentication due to invalid credentials with SASL "
          "mechanism {}")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("certs"))
    make_ca(d, "ca")
    make_cert(d, "ca", "server", "localhost", 1001)
    return d


class SaslBroker(TlsBroker):
    """kafka.auth=required on the plaintext listener and a SASL_SSL listener (kafka.tls.auth=
    required), users alice (both SCRAM mechanisms), bob (SCRAM-SHA-256 only) and admin (a super
    user), sessions of REAUTH_MS."""

    def __init__(self, data, certs):
        os.makedirs(os.path.dirname(data), exist_ok=True)
        for name, mech in (("alice", None), ("bob", "SCRAM-SHA-256"), ("admin", None)):
            args = [BIN, "user", "add", name, "--password-stdin", "--data", data]
            if mech:
                args += ["--mechanism", mech]
            subprocess.run(args, input=PASSWORDS[name].encode() + b"\n", check=True,
                           capture_output=True, timeout=60)
        # Authentication is what these tests are about: alice and bob may use every topic and
        # group (not the cluster; test_acls.py covers authorization).
        for res in (["--topic", "*"], ["--group", "*"]):
            subprocess.run([BIN, "acl", "add", "--allow-principal", "User:alice",
                            "--allow-principal", "User:bob", "--operation", "All", *res,
                            "--data", data], check=True, capture_output=True, timeout=60)
        super().__init__(data, certs, protos=("kafka",), extra=[
            "--set", "kafka.auth=required", "--set", "kafka.tls.auth=required",
            "--set", f"connections.max.reauth.ms={REAUTH_MS}"])


@pytest.fixture(scope="module")
def sb(tmp_path_factory, certs):
    b = SaslBroker(str(tmp_path_factory.mktemp("sasl") / "data"), certs).start()
    yield b
    if b.proc:
        b.stop()


def tls_port(b):
    return b.tls_port["kafka"]


def metrics(b):
    with urllib.request.urlopen(f"http://127.0.0.1:{b.http_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


# ---------------------------------------------------------------------------------------------
# A SCRAM client from RFC 5802 and the SASL requests, on the wire

H = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


def handshake(c, mech, version=1):
    r = c.request(17, version, kw.string(mech))
    err = r.i16()
    mechs = [r.string() for _ in range(r.i32())]
    return err, mechs


def authenticate(c, token, version=2):
    flex = version >= 2
    r = c.request(36, version, kw.bytes_(token, flex) + kw.tags(flex), flex=flex)
    err = r.i16()
    msg = r.string()
    data = r.bytes()
    life = r.i64() if version >= 1 else None
    return err, msg, data, life


def scram(c, mech, user, password, version=2, nonce=None):
    """A whole SCRAM exchange over SaslAuthenticate; (error, message, session lifetime)."""
    cnonce = nonce or base64.b64encode(os.urandom(18)).decode()
    bare = f"n={user},r={cnonce}"
    err, msg, server_first, _ = authenticate(c, ("n,," + bare).encode(), version)
    if err:
        return err, msg, None
    attrs = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
    assert attrs["r"].startswith(cnonce) and len(attrs["r"]) > len(cnonce)
    h = H[mech]
    salted = hashlib.pbkdf2_hmac(h, password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    without = f"c=biws,r={attrs['r']}"
    auth = f"{bare},{server_first.decode()},{without}".encode()
    ck = hmac.new(salted, b"Client Key", h).digest()
    sig = hmac.new(hashlib.new(h, ck).digest(), auth, h).digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(ck, sig))).decode()
    err, msg, final, life = authenticate(c, f"{without},p={proof}".encode(), version)
    if err == 0:
        sk = hmac.new(salted, b"Server Key", h).digest()
        expect = base64.b64encode(hmac.new(sk, auth, h).digest()).decode()
        assert final.decode() == "v=" + expect  # the server proved it knows the credential
    return err, msg, life


def login(port, mech="SCRAM-SHA-512", user="alice", password=None):
    """A connection authenticated as user."""
    password = password or PASSWORDS[user]
    c = kw.Conn(port)
    assert handshake(c, mech)[0] == 0
    if mech == "PLAIN":
        err, msg, _, _ = authenticate(c, f"\0{user}\0{password}".encode())
    else:
        err, msg, _ = scram(c, mech, user, password)
    assert err == 0, msg
    return c


def metadata_ok(c):
    r = c.request(3, 1, kw.i32(0))
    r.i32()  # brokers
    return True


# ---------------------------------------------------------------------------------------------
# Real clients

def test_confluent_kafka_sasl_ssl_scram512_across_session_lifetimes(sb, certs):
    """librdkafka 2.0 (Debian's) predates its KIP-368 support: it does not re-authenticate, so
    the broker closes each connection at its first request after the session ended (as Kafka
    does) and the client reconnects and authenticates again; nothing produced is lost."""
    import confluent_kafka as ck
    topic = "sasl-ck-" + uuid.uuid4().hex[:6]
    before = metrics(sb)
    conf = {"bootstrap.servers": f"127.0.0.1:{tls_port(sb)}", "security.protocol": "SASL_SSL",
            "ssl.ca.location": os.path.join(certs, "ca.pem"), "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "alice", "sasl.password": PASSWORDS["alice"]}
    p = ck.Producer(conf)
    errors = []
    deadline = time.time() + REAUTH_MS * 1.5 / 1000
    n = 0
    while time.time() < deadline:
        p.produce(topic, f"v{n}".encode(), on_delivery=lambda e, m: e and errors.append(e))
        p.poll(0.1)
        n += 1
    assert p.flush(15) == 0 and not errors, errors
    c = ck.Consumer({**conf, "group.id": "g-" + topic, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = []
    end = time.time() + 20
    while len(got) < n and time.time() < end:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
    c.close()
    assert got == [f"v{i}" for i in range(n)]
    after = metrics(sb)
    ok = 'tidings_auth_successes_total{protocol="kafka",mechanism="SCRAM-SHA-512"}'
    assert after[ok] >= before.get(ok, 0) + 3  # the producer's twice, the consumer's
    assert after["tidings_kafka_expired_sessions_total"] >= \
        before.get("tidings_kafka_expired_sessions_total", 0) + 1


def test_kafkajs_reauthenticates_within_its_session(sb):
    """kafkajs re-authenticates on the same connection before the session's end (KIP-368:
    SaslAuthenticate v1+ tells it the lifetime): producing across three lifetimes, no
    connection is closed for an expired session."""
    before = metrics(sb)
    topic = "sasl-reauth-" + uuid.uuid4().hex[:6]
    p = subprocess.run(["node", "sasl.mjs", "kafkajs", sb.bootstrap, "SCRAM-SHA-256", "bob",
                        PASSWORDS["bob"], topic, "30", str(REAUTH_MS * 2.5 / 1000)],
                       cwd=NODE_DIR, capture_output=True, timeout=90)
    r = json.loads(p.stdout)
    assert r.get("consumed") == [f"kafkajs-{i}" for i in range(30)], r
    after = metrics(sb)
    assert after["tidings_kafka_reauthentications_total"] >= \
        before.get("tidings_kafka_reauthentications_total", 0) + 2
    assert after.get("tidings_kafka_expired_sessions_total", 0) == \
        before.get("tidings_kafka_expired_sessions_total", 0)


def test_kafka_python_sasl_plaintext_plain(sb):
    from kafka import KafkaConsumer, KafkaProducer
    topic = "sasl-kp-" + uuid.uuid4().hex[:6]
    conf = dict(bootstrap_servers=sb.bootstrap, security_protocol="SASL_PLAINTEXT",
                sasl_mechanism="PLAIN", sasl_plain_username="bob",
                sasl_plain_password=PASSWORDS["bob"], api_version_auto_timeout_ms=10000)
    p = KafkaProducer(**conf)
    for i in range(20):
        p.send(topic, f"kp{i}".encode())
    p.flush(15)
    p.close()
    c = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=5000, **conf)
    got = []
    for m in c:
        got.append(m.value.decode())
        if len(got) == 20:
            break
    c.close()
    assert got == [f"kp{i}" for i in range(20)]
    # A wrong password: kafka-python's raw PLAIN exchange is closed without an answer, and
    # the client gives up.
    from kafka.errors import KafkaError
    with pytest.raises(KafkaError):
        KafkaProducer(**{**conf, "sasl_plain_password": "nope", "max_block_ms": 3000,
                         "api_version": (2, 0)}).send(topic, b"x").get(timeout=5)
    assert "authentication failed for 'bob': PLAIN: invalid credentials" in sb.stderr()


def test_kcat_scram(sb):
    topic = "sasl-kcat-" + uuid.uuid4().hex[:6]
    auth = ["-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=SCRAM-SHA-256",
            "-X", "sasl.username=bob", "-X", f"sasl.password={PASSWORDS['bob']}"]
    p = subprocess.run(["kcat", "-b", sb.bootstrap, *auth, "-P", "-t", topic],
                       input=b"one\ntwo\nthree\n", capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    p = subprocess.run(["kcat", "-b", sb.bootstrap, *auth, "-C", "-t", topic, "-e", "-q"],
                       capture_output=True, timeout=30)
    assert p.stdout.decode().split() == ["one", "two", "three"], p.stderr
    bad = [a.replace(PASSWORDS["bob"], "wrong") for a in auth]
    p = subprocess.run(["kcat", "-b", sb.bootstrap, *bad, "-L", "-m", "3"],
                       capture_output=True, timeout=30)
    assert p.returncode != 0
    assert FAILED.format("SCRAM-SHA-256") in p.stderr.decode(), p.stderr


@pytest.mark.parametrize("client,mech,user", [("kafkajs", "SCRAM-SHA-256", "bob"),
                                              ("platformatic", "SCRAM-SHA-512", "alice"),
                                              ("platformatic", "PLAIN", "bob")])
def test_node_clients(sb, client, mech, user):
    topic = f"sasl-node-{client}-{mech.lower()}"
    def run(password):
        p = subprocess.run(["node", "sasl.mjs", client, sb.bootstrap, mech, user, password,
                            topic, "10"], cwd=NODE_DIR, capture_output=True, timeout=90)
        assert p.returncode == 0, p.stderr.decode()[-3000:]
        return json.loads(p.stdout)
    r = run(PASSWORDS[user])
    assert r.get("consumed") == [f"{client}-{i}" for i in range(10)], r
    before = metrics(sb)['tidings_auth_failures_total{protocol="kafka",mechanism="%s"}' % mech]
    r = run("wrong-password")
    assert "error" in r, r
    if client == "kafkajs":
        assert FAILED.format(mech) in r["error"], r
    after = metrics(sb)['tidings_auth_failures_total{protocol="kafka",mechanism="%s"}' % mech]
    assert after > before


# ---------------------------------------------------------------------------------------------
# Refusals, on the wire

def test_api_versions_lists_the_sasl_apis(sb):
    c = kw.Conn(sb.port)
    r = c.request(18, 0, b"")
    assert r.i16() == 0
    ranges = {}
    for _ in range(r.i32()):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        ranges[k] = (lo, hi)
    assert ranges[17] == (0, 1) and ranges[36] == (0, 2)
    assert ranges[50] == (0, 0) and ranges[51] == (0, 0)
    c.close()


def test_requests_before_authentication_close_the_connection(sb):
    before = metrics(sb).get('tidings_security_denied_total{protocol="kafka",reason="unauthenticated"}', 0)
    for key, ver, body in ((3, 1, kw.i32(0)), (19, 0, kw.i32(0) + kw.i32(1000))):
        c = kw.Conn(sb.port)
        with pytest.raises(ConnectionError):
            c.request(key, ver, body)
        c.close()
    # A handshake alone does not authenticate either.
    c = kw.Conn(sb.port)
    assert handshake(c, "PLAIN")[0] == 0
    with pytest.raises(ConnectionError):
        c.request(3, 1, kw.i32(0))
    after = metrics(sb)['tidings_security_denied_total{protocol="kafka",reason="unauthenticated"}']
    assert after == before + 3
    assert "before authenticating" in sb.stderr()


def refusal(sb, mech, user, password):
    """A SCRAM or PLAIN exchange that must fail: (error, message); the connection then closes."""
    c = kw.Conn(sb.port)
    assert handshake(c, mech)[0] == 0
    if mech == "PLAIN":
        err, msg, _, _ = authenticate(c, f"\0{user}\0{password}".encode())
    else:
        err, msg, _ = scram(c, mech, user, password)
    assert c.closed_by_peer()
    c.close()
    return err, msg


@pytest.mark.parametrize("mech", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_wrong_password_unknown_user_and_missing_mechanism_look_alike(sb, mech):
    fails = 'tidings_auth_failures_total{protocol="kafka",mechanism="%s"}' % mech
    before = metrics(sb).get(fails, 0)
    expected = (58, FAILED.format(mech))
    assert refusal(sb, mech, "alice", "not-the-password") == expected
    assert refusal(sb, mech, "nobody", "whatever") == expected
    cases = 2
    if mech == "SCRAM-SHA-512":
        # bob has no SCRAM-SHA-512 credential: refused at the same step, with the same answer.
        assert refusal(sb, mech, "bob", PASSWORDS["bob"]) == expected
        cases += 1
    assert metrics(sb)[fails] == before + cases
    log = sb.stderr()
    assert f"authentication failed for 'nobody': {mech}: " in log
    for pw in ("not-the-password", "whatever"):
        assert pw not in log


def test_unknown_user_gets_a_stable_salt(sb):
    """A stand-in credential: the same salt and count for the same unknown name each time
    (a random one would tell the name does not exist), a different salt for another name."""
    def first(user):
        c = kw.Conn(sb.port)
        handshake(c, "SCRAM-SHA-512")
        _, _, sf, _ = authenticate(c, f"n,,n={user},r=abcdef".encode())
        c.close()
        return dict(kv.split("=", 1) for kv in sf.decode().split(","))
    a, b, other = first("ghost"), first("ghost"), first("ghost2")
    real = first("alice")
    assert a["s"] == b["s"] and a["i"] == b["i"] == real["i"] == "4096"
    assert a["s"] != other["s"] and len(base64.b64decode(a["s"])) == len(base64.b64decode(real["s"]))
    assert a["r"] != b["r"]  # the server nonce is fresh


def test_unsupported_mechanism_and_illegal_states(sb):
    c = kw.Conn(sb.port)
    err, mechs = handshake(c, "GSSAPI")
    assert err == 33 and mechs == ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]
    assert c.closed_by_peer()
    c = kw.Conn(sb.port)
    err, mechs = handshake(c, "scram-sha-512")  # names are case-sensitive, as in Kafka
    assert err == 33
    # SaslAuthenticate without a handshake: ILLEGAL_SASL_STATE, then closed.
    c = kw.Conn(sb.port)
    err, msg, _, _ = authenticate(c, b"\0alice\0x")
    assert err == 34 and c.closed_by_peer()
    # A second handshake in the middle of an exchange.
    c = kw.Conn(sb.port)
    handshake(c, "SCRAM-SHA-256")
    authenticate(c, b"n,,n=alice,r=abc")
    assert handshake(c, "SCRAM-SHA-256")[0] == 34
    assert c.closed_by_peer()
    # Malformed SCRAM messages and authzids for someone else are refused like bad passwords.
    for token in (b"n,a=admin,n=alice,r=abc", b"p=tls-unique,,n=alice,r=abc", b"garbage"):
        c = kw.Conn(sb.port)
        handshake(c, "SCRAM-SHA-512")
        err, msg, _, _ = authenticate(c, token)
        assert (err, msg) == (58, FAILED.format("SCRAM-SHA-512")), token
        assert c.closed_by_peer()
    c = kw.Conn(sb.port)
    handshake(c, "PLAIN")
    err, _, _, _ = authenticate(c, b"admin\0alice\0" + PASSWORDS["alice"].encode())
    assert err == 58 and c.closed_by_peer()
    # The broker still serves everyone.
    c = login(sb.port)
    assert metadata_ok(c)


def test_unauthenticated_frames_are_bounded(sb):
    c = kw.Conn(sb.port)
    c.send_raw(kw.i32(600 * 1024) + b"\0" * 1024)
    assert c.closed_by_peer()


def test_session_lifetime_reauthentication_and_expiry(sb):
    c = kw.Conn(sb.port)
    assert handshake(c, "SCRAM-SHA-256")[0] == 0
    err, msg, life = scram(c, "SCRAM-SHA-256", "bob", PASSWORDS["bob"], version=1)
    assert err == 0 and life == REAUTH_MS
    assert metadata_ok(c)
    # Re-authenticating as the same user renews the session.
    assert handshake(c, "SCRAM-SHA-256")[0] == 0
    err, msg, life = scram(c, "SCRAM-SHA-256", "bob", PASSWORDS["bob"], version=2)
    assert err == 0 and life == REAUTH_MS
    assert metadata_ok(c)
    # As someone else: refused, as Kafka refuses a change of principal, and closed.
    assert handshake(c, "SCRAM-SHA-256")[0] == 0
    err, msg, _ = scram(c, "SCRAM-SHA-256", "alice", PASSWORDS["alice"])
    assert err == 58 and msg == "Cannot change principals during re-authentication from " \
                                "User:bob to User:alice"
    assert c.closed_by_peer()
    # A session that ran out: the next request other than SASL closes the connection.
    before = metrics(sb).get("tidings_kafka_expired_sessions_total", 0)
    c = login(sb.port, "PLAIN", "bob")
    time.sleep(REAUTH_MS / 1000 + 0.3)
    with pytest.raises(ConnectionError):
        c.request(3, 1, kw.i32(0))
    assert metrics(sb)["tidings_kafka_expired_sessions_total"] == before + 1


def test_raw_v0_scram_exchange(sb):
    """SaslHandshake v0, then the SCRAM messages as raw size-prefixed frames (what kafka-python
    2.0 sends), then ordinary requests."""
    c = kw.Conn(sb.port)
    assert handshake(c, "SCRAM-SHA-512", version=0)[0] == 0
    cnonce = "rawnonce123"
    bare = f"n=alice,r={cnonce}"
    c.send_raw(kw.i32(len(bare) + 3) + b"n,," + bare.encode())
    sf = c.recv_frame().decode()
    attrs = dict(kv.split("=", 1) for kv in sf.split(","))
    salted = hashlib.pbkdf2_hmac("sha512", PASSWORDS["alice"].encode(),
                                 base64.b64decode(attrs["s"]), int(attrs["i"]))
    without = f"c=biws,r={attrs['r']}"
    auth = f"{bare},{sf},{without}".encode()
    ck = hmac.new(salted, b"Client Key", "sha512").digest()
    sig = hmac.new(hashlib.sha512(ck).digest(), auth, "sha512").digest()
    final = f"{without},p={base64.b64encode(bytes(a ^ b for a, b in zip(ck, sig))).decode()}"
    c.send_raw(kw.i32(len(final)) + final.encode())
    assert c.recv_frame().startswith(b"v=")
    assert metadata_ok(c)


# ---------------------------------------------------------------------------------------------
# DescribeUserScramCredentials (50) / AlterUserScramCredentials (51), flexible v0

def describe(c, users):
    body = (kw.array([kw.string(u, True) + kw.tags(True) for u in users], True)
            if users is not None else kw.uvarint(0)) + kw.tags(True)
    r = c.request(50, 0, body, flex=True)
    r.i32()
    top = (r.i16(), r.string())
    out = {}
    for _ in range(r.array_len()):
        name, err, msg = r.string(), r.i16(), r.string()
        creds = []
        for _ in range(r.array_len()):
            creds.append((r.i8(), r.i32()))
            r.tags()
        r.tags()
        out[name] = (err, msg, creds)
    return top, out


def alter(c, deletions=(), upsertions=()):
    d = [kw.string(n, True) + kw.i8(m) + kw.tags(True) for n, m in deletions]
    u = [kw.string(n, True) + kw.i8(m) + kw.i32(it) + kw.bytes_(s, True) + kw.bytes_(sp, True)
         + kw.tags(True) for n, m, it, s, sp in upsertions]
    r = c.request(51, 0, kw.array(d, True) + kw.array(u, True) + kw.tags(True), flex=True)
    r.i32()
    out = {}
    for _ in range(r.array_len()):
        name, err, msg = r.string(), r.i16(), r.string()
        r.tags()
        out[name] = (err, msg)
    return out


def salted(mech, password, salt, iterations):
    return hashlib.pbkdf2_hmac(H[mech], password.encode(), salt, iterations)


def test_scram_credentials_admin_apis(sb):
    admin = login(sb.port, user="admin")
    top, res = describe(admin, ["alice", "bob", "nobody", "bob"])
    assert top == (0, None)
    assert res["alice"] == (0, None, [(1, 4096), (2, 4096)])
    assert res["nobody"][0] == 91
    assert res["bob"][0] == 92  # asked twice
    for every in (None, []):  # null or empty: every user
        top, res = describe(admin, every)
        assert set(res) >= {"alice", "bob", "admin"} and res["bob"][2] == [(1, 4096)]

    salt = os.urandom(20)
    user = "carol-" + uuid.uuid4().hex[:4]
    res = alter(admin, upsertions=[(user, 2, 8192, salt, salted("SCRAM-SHA-512", "c-pw", salt, 8192))])
    assert res == {user: (0, None)}
    # The client-made credential works for SCRAM and PLAIN.
    assert metadata_ok(login(sb.port, "SCRAM-SHA-512", user, "c-pw"))
    assert metadata_ok(login(sb.port, "PLAIN", user, "c-pw"))
    assert describe(admin, [user])[1][user] == (0, None, [(2, 8192)])
    # Kafka's per-user errors; a user with any bad alteration keeps its credentials.
    res = alter(admin,
                deletions=[("nobody", 1), (user, 2)],
                upsertions=[("dave", 3, 4096, salt, b"x" * 32),
                            ("erin", 1, 1000, salt, salted("SCRAM-SHA-256", "e", salt, 1000)),
                            ("frank", 1, 99999, salt, b"x" * 32),
                            (user, 2, 4096, salt, salted("SCRAM-SHA-512", "new", salt, 4096)),
                            ("", 1, 4096, salt, b"x" * 32)])
    assert res["nobody"][0] == 91
    assert res[user][0] == 92
    assert res["dave"] == (33, "Unknown SCRAM mechanism")
    assert res["erin"] == (93, "Too few iterations")
    assert res["frank"] == (93, "Too many iterations")
    assert res[""][0] == 93
    assert metadata_ok(login(sb.port, "SCRAM-SHA-512", user, "c-pw"))
    # Deleting the last credential removes the user.
    assert alter(admin, deletions=[(user, 2)]) == {user: (0, None)}
    assert describe(admin, [user])[1][user][0] == 91
    assert refusal(sb, "SCRAM-SHA-512", user, "c-pw")[0] == 58
    assert f"changed users: AlterUserScramCredentials of user '{user}': removed SCRAM-SHA-512" \
        in sb.stderr()


def test_scram_admin_apis_need_cluster_permissions(sb):
    c = login(sb.port, user="alice")  # not a super user, no ACLs
    top, res = describe(c, ["alice"])
    assert top[0] == 31 and res["alice"][0] == 31
    salt = os.urandom(16)
    res = alter(c, upsertions=[("alice", 1, 4096, salt, salted("SCRAM-SHA-256", "x", salt, 4096))])
    assert res["alice"][0] == 31
    assert metadata_ok(login(sb.port, "SCRAM-SHA-256", "alice"))  # unchanged


# ---------------------------------------------------------------------------------------------
# A public address with kafka.auth=required

NETNS_SCRIPT = r"""
set -e
ip link set lo up
ip addr add 192.0.2.1/32 dev lo
printf 'pw-1\n' | "$BIN" user add alice --password-stdin --data "$DATA" >/dev/null
"$BIN" serve --data "$DATA" --loops 1 --kafka 192.0.2.1:0 --http off --redis off \
    --set kafka.auth=required >"$DATA.out" 2>"$DATA.err" &
pid=$!
for i in $(seq 1 300); do
    grep -q '^ready' "$DATA.out" && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
kp=$(sed -n 's/^kafka: listening on 192.0.2.1://p' "$DATA.out")
echo "good: $(kcat -b 192.0.2.1:$kp -X security.protocol=SASL_PLAINTEXT \
    -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=alice -X sasl.password=pw-1 -L -m 5 \
    2>&1 | grep -c ' brokers:')"
echo "anon: $(kcat -b 192.0.2.1:$kp -L -m 3 2>&1 | grep -c ' brokers:')"
set +e
kill -TERM $pid 2>/dev/null
wait $pid
echo "status: $?"
"""


def test_public_bind_with_kafka_auth_required(tmp_path):
    import shutil
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs root, unshare and ip (CI has them)")
    data = str(tmp_path / "data")
    env = dict(os.environ, BIN=BIN, DATA=data)
    p = subprocess.run(["unshare", "-n", "bash", "-c", NETNS_SCRIPT], env=env,
                       capture_output=True, timeout=120)
    out = p.stdout.decode()
    with open(data + ".err") as f:
        err = f.read()
    assert "good: 1" in out, (out, err)
    assert "anon: 0" in out, (out, err)
    assert "status: 0" in out, (out, err)
    assert "not a loopback address" not in err
