"""The audit trail (docs/security.md#audit): on one broker requiring authentication on Kafka,
Redis and HTTP, each protocol's failed authentication, refusal, unauthenticated request and
changes (users, ACLs, tokens) are logged once, as `audit:` lines naming the protocol, the peer,
the principal and what was done or refused, and counted in
tidings_audit_events_total{event,protocol,principal}; no password or token secret reaches the
log. Then the log's rate limit: a flood of one kind of event is cut to the limit in the log but
counted whole, and does not hide another kind.

Clients: kafka-python (PLAIN) for the Kafka ACL APIs, the SCRAM exchange and
AlterUserScramCredentials on the wire (kafkawire.py, as test_kafka_sasl.py), redis-py, curl.
"""
import base64
import os
import re
import subprocess
import time
import urllib.request

import pytest

import kafkawire as kw
from conftest import BIN, Broker
from test_http_auth import curl
from test_kafka_sasl import alter, handshake, login, salted, scram

PW = {"admin": "admin-Audit-pw1", "alice": "alice-Audit-pw2"}
WRONG = "wrong-Audit-pw9"


def setup_data(data):
    os.makedirs(os.path.dirname(data), exist_ok=True)
    for name, pw in PW.items():
        subprocess.run([BIN, "user", "add", name, "--password-stdin", "--data", data],
                       input=(pw + "\n").encode(), check=True, capture_output=True, timeout=60)
    subprocess.run([BIN, "acl", "add", "--allow-principal", "User:alice", "--operation", "All",
                    "--topic", "open", "--data", data], check=True, capture_output=True,
                   timeout=60)


def metrics(b):
    req = urllib.request.Request(f"http://127.0.0.1:{b.http_port}/metrics")
    token = base64.b64encode(f"admin:{PW['admin']}".encode()).decode()
    req.add_header("Authorization", "Basic " + token)
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def audit(m, event, protocol, principal):
    return m.get('tidings_audit_events_total{event="%s",protocol="%s",principal="%s"}'
                 % (event, protocol, principal), 0)


def audit_lines(b):
    return [l for l in b.stderr().splitlines() if " audit: " in l]


def one_line(lines, *parts):
    """The one audit line holding every part (the event logged once, not twice)."""
    found = [l for l in lines if all(p in l for p in parts)]
    assert len(found) == 1, (parts, found or lines[-30:])
    return found[0]


@pytest.fixture(scope="module")
def ab(tmp_path_factory):
    data = str(tmp_path_factory.mktemp("audit") / "data")
    setup_data(data)
    # The log's limit raised: clients retrying must not push the lines checked here out of it
    # (test_rate_limit checks the default).
    b = Broker(data, http=True, redis=True, extra=[
        "--set", "kafka.auth=required", "--set", "http.auth=required",
        "--set", "redis.auth=required", "--set", "super.users=admin",
        "--set", "log.rate.limit=1000"]).start()
    yield b
    if b.proc:
        b.stop()


def kp_admin(b, user):
    from kafka.admin import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=b.bootstrap, security_protocol="SASL_PLAINTEXT",
                            sasl_mechanism="PLAIN", sasl_plain_username=user,
                            sasl_plain_password=PW[user], request_timeout_ms=10000)


def kacl(principal, op, name):
    from kafka.admin import (ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             ResourcePattern, ResourceType)
    return ACL(principal=principal, host="*", operation=getattr(ACLOperation, op),
               permission_type=ACLPermissionType.ALLOW,
               resource_pattern=ResourcePattern(ResourceType.TOPIC, name,
                                                ACLResourcePatternType.LITERAL))


def test_kafka_audit(ab):
    from kafka.admin import ACLFilter, ResourcePatternFilter, ResourceType, \
        ACLOperation, ACLPermissionType, ACLResourcePatternType
    before = metrics(ab)
    # A failed authentication: SCRAM with a wrong password (the name is logged, not counted).
    c = kw.Conn(ab.port)
    assert handshake(c, "SCRAM-SHA-512")[0] == 0
    assert scram(c, "SCRAM-SHA-512", "alice", WRONG)[0] == 58
    c.close()
    # A request before authenticating: refused, the connection closed.
    c = kw.Conn(ab.port)
    with pytest.raises(ConnectionError):
        c.request(3, 1, kw.i32(0))
    c.close()
    # A refusal: alice may not change ACLs (Alter on the cluster).
    from kafka.errors import ClusterAuthorizationFailedError
    a = kp_admin(ab, "alice")
    try:
        r = a.create_acls([kacl("User:alice", "READ", "audit-x")])
        assert [e for _, e in r["failed"]] == [ClusterAuthorizationFailedError], r
    finally:
        a.close()
    # Changes: an ACL added and removed by admin, a SCRAM credential set.
    a = kp_admin(ab, "admin")
    try:
        r = a.create_acls([kacl("User:alice", "READ", "audit-granted")])
        assert r["failed"] == [], r
        f = ACLFilter(principal="User:alice", host="*", operation=ACLOperation.READ,
                      permission_type=ACLPermissionType.ALLOW,
                      resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, "audit-granted",
                                                             ACLResourcePatternType.LITERAL))
        res = a.delete_acls([f])
        assert len(res[0][1]) == 1, res
    finally:
        a.close()
    adm = login(ab.port, "SCRAM-SHA-256", "admin", PW["admin"])
    salt = os.urandom(16)
    sp = salted("SCRAM-SHA-256", "carol-Audit-pw3", salt, 4096)
    assert alter(adm, upsertions=[("carol", 1, 4096, salt, sp)]) == {"carol": (0, None)}
    adm.close()

    lines = audit_lines(ab)
    line = one_line(lines, "WARN audit: kafka: 127.0.0.1:",
                    "authentication failed for 'alice': SCRAM-SHA-512: ")
    assert re.search(r"audit: kafka: 127\.0\.0\.1:\d+: authentication failed", line), line
    one_line(lines, "WARN audit: kafka: 127.0.0.1:", "refused ANONYMOUS before authentication: "
             "Metadata (API 3) sent before authenticating")
    one_line(lines, "WARN audit: kafka: ",
             "denied alice: Alter on Cluster 'kafka-cluster' (CreateAcls)")
    one_line(lines, "INFO audit: kafka: ", "admin changed ACLs: added ACL ",
             "User:alice Read from * on Topic ", "'audit-granted'")
    one_line(lines, "INFO audit: kafka: ", "admin changed ACLs: removed ACL ", "'audit-granted'")
    one_line(lines, "INFO audit: kafka: ", "admin changed users: AlterUserScramCredentials of "
             "user 'carol': set SCRAM-SHA-256")

    after = metrics(ab)
    for event, principal, n in (("auth_failed", "", 1), ("unauthenticated", "ANONYMOUS", 1),
                                ("denied", "alice", 1), ("acl_change", "admin", 2),
                                ("user_change", "admin", 1)):
        assert audit(after, event, "kafka", principal) == \
            audit(before, event, "kafka", principal) + n, (event, principal)
    # The failed name is in the log line, not in a label.
    assert audit(after, "auth_failed", "kafka", "alice") == 0
    # The protocol's own counters go on counting.
    assert after['tidings_auth_failures_total{protocol="kafka",mechanism="SCRAM-SHA-512"}'] == \
        before.get('tidings_auth_failures_total{protocol="kafka",mechanism="SCRAM-SHA-512"}',
                   0) + 1
    assert after['tidings_security_denied_total{protocol="kafka",reason="acl"}'] == \
        before.get('tidings_security_denied_total{protocol="kafka",reason="acl"}', 0) + 1


def test_redis_audit(ab):
    import redis
    before = metrics(ab)
    with pytest.raises(redis.exceptions.RedisError, match="WRONGPASS"):
        redis.Redis(port=ab.redis_port, username="alice", password=WRONG,
                    socket_timeout=10).ping()
    anon = redis.Redis(port=ab.redis_port, socket_timeout=10)
    with pytest.raises(redis.exceptions.RedisError, match="NOAUTH|uthentication required"):
        anon.xlen("open")
    alice = redis.Redis(port=ab.redis_port, username="alice", password=PW["alice"],
                        socket_timeout=10)
    alice.xadd("open", {"k": "v"})
    with pytest.raises(redis.exceptions.NoPermissionError):
        alice.xadd("closed\nFORGED audit line", {"k": "v"})
    admin = redis.Redis(port=ab.redis_port, username="admin", password=PW["admin"],
                        socket_timeout=10)
    assert admin.execute_command("ACL", "SETUSER", "dave", "on", ">dave-Audit-pw4")
    assert admin.execute_command("ACL", "SETUSER", "dave", ">dave-Audit-pw5")
    assert admin.execute_command("ACL", "DELUSER", "dave") == 1
    for c in (anon, alice, admin):
        c.close()

    lines = audit_lines(ab)
    one_line(lines, "WARN audit: redis: 127.0.0.1:", "authentication failed for 'alice': "
             "password: wrong password or no such user")
    one_line(lines, "WARN audit: redis: ", "refused ANONYMOUS before authentication: command "
             "'xlen' (NOAUTH)")
    # The client's newline is not a line of its own in the log.
    one_line(lines, "WARN audit: redis: ", "denied alice: key 'closed?FORGED audit line' "
             "(command 'xadd')")
    assert not any(l.startswith("FORGED") for l in ab.stderr().splitlines())
    one_line(lines, "INFO audit: redis: ", "admin changed users: ACL SETUSER: added user 'dave'")
    one_line(lines, "INFO audit: redis: ",
             "admin changed users: ACL SETUSER: changed the password of user 'dave'")
    one_line(lines, "INFO audit: redis: ",
             "admin changed users: ACL DELUSER: removed user 'dave' (0 connections closed)")

    after = metrics(ab)
    for event, principal, n in (("auth_failed", "", 1), ("unauthenticated", "ANONYMOUS", 1),
                                ("denied", "alice", 1), ("user_change", "admin", 3)):
        assert audit(after, event, "redis", principal) == \
            audit(before, event, "redis", principal) + n, (event, principal)
    assert after['tidings_auth_failures_total{protocol="redis",mechanism="password"}'] == \
        before.get('tidings_auth_failures_total{protocol="redis",mechanism="password"}', 0) + 1


def test_http_audit(ab):
    before = metrics(ab)
    admin = ("admin", PW["admin"])
    assert curl(ab, "GET", "/v1/topics", ("alice", WRONG))[0] == 401
    assert curl(ab, "GET", "/v1/topics", "tdk_0000000000000000_bogus")[0] == 401
    assert curl(ab, "GET", "/v1/topics")[0] == 401
    st, _, body = curl(ab, "GET", "/v1/users", ("alice", PW["alice"]))
    assert st == 403, body
    st, _, body = curl(ab, "POST", "/v1/users", admin, {"name": "erin",
                                                        "password": "erin-Audit-pw6"})
    assert st == 201, body
    st, _, tok = curl(ab, "POST", "/v1/tokens", admin, {"user": "erin"})
    assert st == 201, tok
    assert curl(ab, "DELETE", f"/v1/tokens/{tok['id']}", admin)[0] == 204
    acl = {"principal": "User:erin", "resource_type": "Topic", "name": "audit-h",
           "operation": "Read", "permission": "Allow"}
    st, _, body = curl(ab, "POST", "/v1/acls", admin, acl)
    assert st == 201, body
    st, _, body = curl(ab, "DELETE", "/v1/acls?principal=User:erin", admin)
    assert st == 200 and len(body["removed"]) == 1, body
    assert curl(ab, "DELETE", "/v1/users/erin", admin)[0] == 204

    lines = audit_lines(ab)
    one_line(lines, "WARN audit: http: 127.0.0.1:", "authentication failed for 'alice': basic: "
             "wrong password or no such user")
    one_line(lines, "WARN audit: http: ", "authentication failed for '': bearer: not a valid "
             "API token")
    one_line(lines, "WARN audit: http: ", "refused ANONYMOUS before authentication: GET "
             "/v1/topics without credentials")
    one_line(lines, "WARN audit: http: ",
             "denied alice: Alter on Cluster 'kafka-cluster' (GET /v1/users)")
    one_line(lines, "INFO audit: http: ", "admin changed users: added user 'erin'")
    one_line(lines, "INFO audit: http: ",
             f"admin changed tokens: created API token {tok['id']} for user 'erin'")
    one_line(lines, "INFO audit: http: ", f"admin changed tokens: revoked API token '{tok['id']}'")
    one_line(lines, "INFO audit: http: ", "admin changed ACLs: added ACL ", "User:erin Read",
             "'audit-h'")
    one_line(lines, "INFO audit: http: ", "admin changed ACLs: removed ACL ", "'audit-h'")
    one_line(lines, "INFO audit: http: ",
             "admin changed users: removed (with its API tokens) user 'erin'")

    after = metrics(ab)
    for event, principal, n in (("auth_failed", "", 2), ("unauthenticated", "ANONYMOUS", 1),
                                ("denied", "alice", 1), ("user_change", "admin", 2),
                                ("token_change", "admin", 2), ("acl_change", "admin", 2)):
        assert audit(after, event, "http", principal) == \
            audit(before, event, "http", principal) + n, (event, principal)
    assert after['tidings_auth_failures_total{protocol="http",mechanism="basic"}'] == \
        before.get('tidings_auth_failures_total{protocol="http",mechanism="basic"}', 0) + 1

    # No secret anywhere in the log: passwords tried or set, the token's text and its secret
    # part (tdk_<id>_<secret>: the secret, base64url, may itself hold '_').
    err = ab.stderr()
    for secret in (*PW.values(), WRONG, "carol-Audit-pw3", "dave-Audit-pw4", "dave-Audit-pw5",
                   "erin-Audit-pw6", tok["token"], tok["token"].split("_", 2)[2]):
        assert secret not in err, secret


def test_rate_limit_keeps_kinds_apart(tmp_path):
    """With log.rate.limit=2 (lines of a kind per 5 s): 15 failed logins give at most 2 lines
    per 5-second interval they span, a count of 15, and summaries of the lines left out that
    add up to the rest; a refusal of another kind right after is still logged. (Under a
    sanitizer on a loaded machine the logins may span several intervals: at 2 lines each, 15
    logins would need 8 of them, 40 s, to go unlimited.)"""
    data = str(tmp_path / "data")
    setup_data(data)
    b = Broker(data, http=True, redis=True, extra=[
        "--set", "redis.auth=required", "--set", "super.users=admin",
        "--set", "log.rate.limit=2"]).start()
    try:
        import redis
        t0 = time.monotonic()
        for i in range(15):
            r = redis.Redis(port=b.redis_port, username="alice", password=f"{WRONG}{i}",
                            socket_timeout=10)
            with pytest.raises(redis.exceptions.RedisError, match="WRONGPASS"):
                r.ping()
            r.close()
        spans = int((time.monotonic() - t0) // 5) + 2  # the intervals the logins can touch
        anon = redis.Redis(port=b.redis_port, socket_timeout=10)
        with pytest.raises(redis.exceptions.RedisError, match="NOAUTH|uthentication required"):
            anon.xlen("open")
        anon.close()
        m = metrics(b)
        assert audit(m, "auth_failed", "redis", "") == 15
        assert audit(m, "unauthenticated", "redis", "ANONYMOUS") == 1
        lines = audit_lines(b)
        failed = [l for l in lines if "authentication failed for 'alice'" in l]
        assert 2 <= len(failed) <= min(2 * spans, 14), (spans, failed)
        one_line(lines, "refused ANONYMOUS before authentication: command 'xlen'")
    finally:
        b.stop()
    # The summaries of what was left out, at the latest at shutdown, count the rest.
    left = [int(n) for n in re.findall(r"(\d+) more lines? like .*authentication failed for",
                                       b.stderr())]
    assert sum(left) == 15 - len(failed), b.stderr()[-2000:]
