"""HTTP authentication and authorization (docs/security.md#authentication-http, #api-tokens):
curl with Basic (-u) and bearer tokens, over plaintext and over HTTPS (--cacert) on listeners
with http.auth=required / http.tls.auth=required; the tidings command remotely (tidings user
--server, tidings token, --user/--password-file/--token-file); 401 with its challenges, 403 and
404 for a user without permissions, a super user allowed; SSE with credentials (header and
?access_token=); /health open; tokens expiring, revoked, surviving a restart and removed with
their user; a public address served with http.auth=required.

Certificates are made with the openssl command, as test_tls.py does. Users: "admin" (the first
administrator, a super user) and "bob", who has no permission (no ACL exists).
"""
import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

from conftest import BIN, Broker

ADMIN_PW = "admin-Secret-1"
BOB_PW = "bob-Secret-2"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("certs"))
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", "/CN=ca", "-keyout", "ca.key", "-out", "ca.pem",
            cwd=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-set_serial", "7", "-days", "2", "-extfile", "server.ext", "-out", "server.pem",
            cwd=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", "/CN=admin", "-keyout", "client.key", "-out", "client.csr", cwd=d)
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-set_serial", "8", "-days", "2", "-extfile", "client.ext", "-out", "client.pem",
            cwd=d)
    return d


class AuthBroker(Broker):
    """A broker whose HTTP listeners require authentication: plaintext on 127.0.0.1 and TLS;
    the first administrator from TIDINGS_ADMIN_PASSWORD."""

    def __init__(self, data, certs, auth="required"):
        cfg = data + ".conf"
        os.makedirs(os.path.dirname(data), exist_ok=True)
        with open(cfg, "w") as f:
            f.write(f"http.auth = {auth}\nhttp.tls = 127.0.0.1:0\n"
                    f"http.tls.cert.file = {certs}/server.pem\n"
                    f"http.tls.key.file = {certs}/server.key\nhttp.tls.auth = required\n"
                    f"http.tls.ca.file = {certs}/ca.pem\nhttp.tls.client.auth = requested\n")
        super().__init__(data, http=True, extra=["--config", cfg, "--kafka", "off"],
                         env=dict(os.environ, TIDINGS_ADMIN_PASSWORD=ADMIN_PW))
        self.tls_port = None


def start_broker(data, certs, auth="required"):
    """The broker, and its HTTPS port (read from its stdout, which Broker.start consumes: the
    TLS listener's line comes before 'ready', so it is parsed here instead)."""
    b = AuthBroker(data, certs, auth)
    os.makedirs(os.path.dirname(data), exist_ok=True)
    b.err = open(b.stderr_path, "ab")
    b.proc = subprocess.Popen(
        [BIN, "serve", "--data", data, "--kafka", "off", "--http", "127.0.0.1:0", "--redis",
         "off", "--loops", "2", *b.extra[:2]],
        stdout=subprocess.PIPE, stderr=b.err, env=b.env)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = b.proc.stdout.readline().decode()
        if not line:
            break
        if line.startswith("http: listening on "):
            b.http_port = int(line.rsplit(":", 1)[1])
        if line.startswith("http.tls: listening on "):
            b.tls_port = int(line.rsplit(":", 1)[1])
        if line.startswith("ready"):
            return b
    raise AssertionError("broker did not start: " + b.stderr())


@pytest.fixture(scope="module")
def ab(tmp_path_factory, certs):
    d = tmp_path_factory.mktemp("auth")
    b = start_broker(str(d / "data"), certs)
    # bob: a user without any permission.
    r = curl(b, "POST", "/v1/users", ("admin", ADMIN_PW), {"name": "bob", "password": BOB_PW})
    assert r[0] == 201, r
    yield b
    assert b.stop() == 0


def curl(b, method, path, auth=None, body=None, headers=(), tls=False, certs=None):
    """(status, headers as a list of (name, value) lowercase names, body) through curl."""
    url = (f"https://127.0.0.1:{b.tls_port}" if tls else f"http://127.0.0.1:{b.http_port}") + path
    cmd = ["curl", "-sS", "-i", "-X", method, "--max-time", "20"]
    if tls:
        cmd += ["--cacert", os.path.join(certs, "ca.pem")]
    if isinstance(auth, tuple):
        cmd += ["-u", f"{auth[0]}:{auth[1]}"]
    elif auth:
        cmd += ["-H", f"Authorization: Bearer {auth}"]
    for h in headers:
        cmd += ["-H", h]
    if body is not None:
        cmd += ["--json", json.dumps(body)]
    p = subprocess.run(cmd + [url], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    head, _, text = p.stdout.decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = [(k.strip().lower(), v.strip()) for k, _, v in (l.partition(":") for l in lines[1:])]
    return status, hdrs, json.loads(text) if text.strip().startswith("{") else text


def header_values(hdrs, name):
    return [v for k, v in hdrs if k == name]


def metric(b, line_prefix):
    st, _, text = curl(b, "GET", "/metrics", ("admin", ADMIN_PW))
    assert st == 200
    for line in text.splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.split()[-1])
    return 0.0


def run_cli(b, *args, env=None, input=None, tls=False):
    server = f"http://127.0.0.1:{b.http_port}"
    e = dict(os.environ)
    e.pop("TIDINGS_PASSWORD", None)
    e.pop("TIDINGS_TOKEN", None)
    e.update(env or {})
    return subprocess.run([BIN, *args, "--server", server], capture_output=True, timeout=60,
                          env=e, input=input)


def test_unauthenticated_requests_get_401_with_challenges(ab):
    before = metric(ab, 'tidings_security_denied_total{protocol="http",reason="unauthenticated"}')
    st, hdrs, body = curl(ab, "GET", "/v1/topics")
    assert st == 401
    assert header_values(hdrs, "www-authenticate") == [
        'Basic realm="tidings", charset="UTF-8"', 'Bearer realm="tidings"']
    assert body["error"]["code"] == "unauthenticated" and body["error"]["status"] == 401
    # Probes stay open; /metrics does not.
    assert curl(ab, "GET", "/health")[0] == 200
    assert curl(ab, "GET", "/ready")[0] == 200
    assert curl(ab, "GET", "/metrics")[0] == 401
    after = metric(ab, 'tidings_security_denied_total{protocol="http",reason="unauthenticated"}')
    assert after >= before + 2
    # Malformed credentials: 401 too, the connection goes on serving.
    st, _, body = curl(ab, "GET", "/v1/topics", headers=["Authorization: Basic !!!"])
    assert st == 401 and "base64" in body["error"]["message"]
    st, _, body = curl(ab, "GET", "/v1/topics", headers=["Authorization: Negotiate abc"])
    assert st == 401


def test_wrong_password_and_unknown_user(ab):
    key = 'tidings_auth_failures_total{protocol="http",mechanism="basic"}'
    before = metric(ab, key)
    st, hdrs, wrong = curl(ab, "GET", "/v1/topics", ("admin", "not-it"))
    assert st == 401 and wrong["error"]["code"] == "invalid_credentials"
    assert header_values(hdrs, "www-authenticate")[0].startswith("Basic realm=")
    st, _, unknown = curl(ab, "GET", "/v1/topics", ("nobody", "x"))
    assert st == 401 and unknown == wrong  # the same answer: names are not told
    assert metric(ab, key) == before + 2
    assert "authentication failed for 'nobody': basic: wrong password" in ab.stderr()
    assert "not-it" not in ab.stderr()
    assert curl(ab, "GET", "/v1/topics", ("admin", ADMIN_PW))[0] == 200


def test_a_password_change_or_removal_takes_effect_at_once(ab):
    """Verified passwords are cached (docs/operations.md#http-authentication): the cache must
    forget them when the user changes, not after its time to live."""
    adm = ("admin", ADMIN_PW)
    assert curl(ab, "POST", "/v1/users", adm, {"name": "dave", "password": "pw-1"})[0] == 201
    for _ in range(3):  # cached after the first
        assert curl(ab, "GET", "/v1/tokens", ("dave", "pw-1"))[0] == 200
    assert curl(ab, "PUT", "/v1/users/dave/password", ("dave", "pw-1"), {"password": "pw-2"})[0] == 200
    assert curl(ab, "GET", "/v1/tokens", ("dave", "pw-1"))[0] == 401
    assert curl(ab, "GET", "/v1/tokens", ("dave", "pw-2"))[0] == 200
    assert curl(ab, "DELETE", "/v1/users/dave", adm)[0] == 204
    assert curl(ab, "GET", "/v1/tokens", ("dave", "pw-2"))[0] == 401


def test_super_user_allowed_and_user_without_permissions_denied(ab):
    topic = "t-" + uuid.uuid4().hex[:8]
    adm, bob = ("admin", ADMIN_PW), ("bob", BOB_PW)
    assert curl(ab, "POST", "/v1/topics", adm, {"name": topic})[0] == 201
    assert curl(ab, "POST", f"/v1/topics/{topic}/events", adm, {"value": "v1"})[0] == 200
    st, _, body = curl(ab, "GET", f"/v1/topics/{topic}/events?from=earliest", adm)
    assert st == 200 and body["events"][0]["value"] == "v1"
    before = metric(ab, 'tidings_security_denied_total{protocol="http",reason="acl"}')
    # bob may not even see the topic: listings hide it, and it answers as a missing one.
    st, _, body = curl(ab, "GET", "/v1/topics", bob)
    assert st == 200 and topic not in [t["name"] for t in body["topics"]]
    for method, path, b in (("GET", f"/v1/topics/{topic}", None),
                            ("GET", f"/v1/topics/{topic}/events", None),
                            ("POST", f"/v1/topics/{topic}/events", {"value": "x"}),
                            ("DELETE", f"/v1/topics/{topic}", None)):
        st, _, body = curl(ab, method, path, bob, b)
        assert st == 404, (method, path, body)
        assert body["error"]["message"] == f"topic '{topic}' does not exist"
    assert curl(ab, "GET", "/v1/topics/no-such-topic", bob)[2] == curl(
        ab, "GET", "/v1/topics/no-such-topic", adm)[2]
    # Creating a topic, the cluster's metrics and user management: 403 naming what.
    st, _, body = curl(ab, "POST", "/v1/topics", bob, {"name": "bobs"})
    assert st == 403 and body["error"]["operation"] == "Create"
    assert body["error"]["resource_type"] == "topic" and body["error"]["resource"] == "bobs"
    st, _, body = curl(ab, "GET", "/metrics", bob)
    assert st == 403 and body["error"]["code"] == "forbidden"
    assert body["error"]["message"] == "user bob may not Describe cluster 'kafka-cluster'"
    assert curl(ab, "GET", "/v1/users", bob)[0] == 403
    assert curl(ab, "POST", "/v1/users", bob, {"name": "eve", "password": "x"})[0] == 403
    assert curl(ab, "PUT", "/v1/queues/q1", bob, {"topic": topic})[0] == 403
    # Queue groups, redrives and topic changes.
    q = "q-" + topic
    assert curl(ab, "PUT", f"/v1/queues/{q}", adm, {"topic": topic})[0] == 201
    st, _, body = curl(ab, "POST", f"/v1/queues/{q}/receive", bob, {"max": 1})
    assert st == 403 and body["error"]["resource_type"] == "group"
    assert curl(ab, "GET", "/v1/queues", bob)[2] == {"queues": []}
    assert curl(ab, "DELETE", f"/v1/queues/{q}", bob)[0] == 403
    assert curl(ab, "GET", "/v1/redrives", bob)[0] == 403
    assert curl(ab, "POST", f"/v1/topics/{topic}/redrive", bob, {})[0] == 404
    assert curl(ab, "PATCH", f"/v1/topics/{topic}", bob, {"config": {"retention.ms": "1"}})[0] == 404
    st, _, body = curl(ab, "POST", f"/v1/queues/{q}/receive", adm, {"max": 1})
    assert st == 200 and body["events"][0]["value"] == "v1"
    assert q in [g["group"] for g in curl(ab, "GET", "/v1/queues", adm)[2]["queues"]]
    assert curl(ab, "GET", "/v1/groups", bob)[2] == {"groups": []}
    assert metric(ab, 'tidings_security_denied_total{protocol="http",reason="acl"}') >= before + 14
    assert "denied bob: Create on Topic 'bobs' (POST /v1/topics)" in ab.stderr()
    # The topic is untouched by bob's attempts.
    st, _, body = curl(ab, "GET", f"/v1/topics/{topic}", adm)
    assert st == 200 and body["partitions"][0]["high_watermark"] == 1


def test_bearer_tokens_expired_and_revoked(ab):
    adm = ("admin", ADMIN_PW)
    st, hdrs, tok = curl(ab, "POST", "/v1/tokens", adm, {"description": "ci", "expires_in_ms": 600000})
    assert st == 201 and tok["user"] == "admin" and tok["description"] == "ci"
    assert tok["token"].startswith(f"tdk_{tok['id']}_") and len(tok["token"]) == 64
    assert "no-store" in header_values(hdrs, "cache-control")
    assert curl(ab, "GET", "/v1/topics", tok["token"])[0] == 200
    # Listings never show the secret.
    st, _, body = curl(ab, "GET", "/v1/tokens", adm)
    mine = [t for t in body["tokens"] if t["id"] == tok["id"]]
    assert len(mine) == 1 and "token" not in mine[0] and tok["token"] not in json.dumps(body)
    # A wrong secret: invalid_token.
    bad = tok["token"][:-1] + ("A" if tok["token"][-1] != "A" else "B")
    st, hdrs, body = curl(ab, "GET", "/v1/topics", bad)
    assert st == 401 and 'Bearer realm="tidings", error="invalid_token"' in \
        header_values(hdrs, "www-authenticate")[1]
    # Expired: RFC 6750's error and description.
    st, _, short = curl(ab, "POST", "/v1/tokens", adm, {"expires_in_ms": 300})
    assert st == 201 and curl(ab, "GET", "/v1/topics", short["token"])[0] == 200
    time.sleep(0.5)
    st, hdrs, body = curl(ab, "GET", "/v1/topics", short["token"])
    assert st == 401 and body["error"]["code"] == "token_expired"
    assert header_values(hdrs, "www-authenticate")[1] == (
        'Bearer realm="tidings", error="invalid_token", '
        'error_description="The access token expired"')
    # Revoked.
    assert curl(ab, "DELETE", f"/v1/tokens/{tok['id']}", adm)[0] == 204
    st, _, body = curl(ab, "GET", "/v1/topics", tok["token"])
    assert st == 401 and body["error"]["code"] == "invalid_credentials"
    assert tok["token"] not in ab.stderr()
    assert metric(ab, 'tidings_auth_failures_total{protocol="http",mechanism="bearer"}') >= 3


def test_users_manage_their_own_tokens_only(ab):
    bob = ("bob", BOB_PW)
    st, _, t = curl(ab, "POST", "/v1/tokens", bob, {})
    assert st == 201 and t["user"] == "bob"
    st, _, body = curl(ab, "GET", "/v1/tokens", t["token"])
    assert st == 200 and [x["id"] for x in body["tokens"]] == [t["id"]]
    assert curl(ab, "GET", "/v1/tokens?user=admin", bob)[0] == 403
    assert curl(ab, "GET", "/v1/tokens?all=true", bob)[0] == 403
    assert curl(ab, "POST", "/v1/tokens", bob, {"user": "admin"})[0] == 403
    st, _, at = curl(ab, "POST", "/v1/tokens", ("admin", ADMIN_PW), {})
    assert curl(ab, "DELETE", f"/v1/tokens/{at['id']}", bob)[0] == 404  # not bob's
    assert curl(ab, "GET", "/v1/topics", at["token"])[0] == 200
    assert curl(ab, "DELETE", f"/v1/tokens/{t['id']}", bob)[0] == 204
    # bob changes his own password, not admin's.
    assert curl(ab, "PUT", "/v1/users/admin/password", bob, {"password": "x"})[0] == 403
    assert curl(ab, "PUT", "/v1/users/bob/password", bob, {"password": BOB_PW})[0] == 200


def test_sse_with_credentials(ab):
    adm = ("admin", ADMIN_PW)
    topic = "sse." + uuid.uuid4().hex[:8]
    assert curl(ab, "POST", "/v1/topics", adm, {"name": topic})[0] == 201
    assert curl(ab, "POST", f"/v1/topics/{topic}/events", adm, {"value": "hello"})[0] == 200
    st, _, tok = curl(ab, "POST", "/v1/tokens", adm, {})
    base = f"http://127.0.0.1:{ab.http_port}/v1/subscribe?from=earliest&topics="

    def first_event(args, url, want=b"hello"):
        p = subprocess.Popen(["curl", "-sSN", "--max-time", "20", *args, url],
                             stdout=subprocess.PIPE)
        out = b""
        while want not in out:
            chunk = p.stdout.read1(4096)
            if not chunk:
                break
            out += chunk
        p.kill()
        p.communicate(timeout=30)
        return out

    assert b"hello" in first_event(["-u", f"admin:{ADMIN_PW}"], base + topic)
    # EventSource cannot send headers: ?access_token= on a live subscription.
    assert b"hello" in first_event([], base + topic + "&access_token=" + tok["token"])
    # It is accepted there only, and never logged.
    assert curl(ab, "GET", "/v1/topics?access_token=" + tok["token"])[0] == 401
    assert tok["token"] not in ab.stderr()
    # bob: a topic named outright is refused (it is not even visible), a pattern matches none.
    assert b'"code":"not_found"' in first_event(["-u", f"bob:{BOB_PW}"], base + topic,
                                                  want=b"not_found")
    out = first_event(["-u", f"bob:{BOB_PW}"], base + "sse.*", want=b"event: subscribed")
    assert b'"partitions":0' in out, out
    assert b"hello" in first_event(["-u", f"admin:{ADMIN_PW}"], base + "sse.*")
    assert first_event([], base + topic, want=b"401").startswith(b'{"error":{"code":"unauth')


def test_https_with_tls_auth_required(ab, certs):
    st, _, body = curl(ab, "GET", "/v1/topics", tls=True, certs=certs)
    assert st == 401 and body["error"]["code"] == "unauthenticated"
    assert curl(ab, "GET", "/v1/topics", ("admin", ADMIN_PW), tls=True, certs=certs)[0] == 200
    assert curl(ab, "GET", "/health", tls=True, certs=certs)[0] == 200
    # A verified client certificate authenticates too: its CN (here the super user's name) is
    # the principal.
    cert = ["--cert", os.path.join(certs, "client.pem"), "--key", os.path.join(certs, "client.key")]
    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                        os.path.join(certs, "ca.pem"), *cert,
                        f"https://127.0.0.1:{ab.tls_port}/metrics"], capture_output=True,
                       timeout=30)
    assert p.stdout == b"200", p


def test_cli_remote_users_and_tokens(ab, tmp_path):
    pw = tmp_path / "admin-pw"
    pw.write_text(ADMIN_PW + "\n")
    admin = ["--user", "admin", "--password-file", str(pw)]
    # Without credentials: exit 6 and what to give.
    p = run_cli(ab, "topic", "list")
    assert p.returncode == 6 and b"--password-file" in p.stderr, p.stderr
    p = run_cli(ab, "topic", "list", "--user", "admin")
    assert p.returncode == 2 and b"needs a password" in p.stderr
    # user add through the broker: the new user's password on stdin, the administrator's from
    # TIDINGS_PASSWORD.
    p = run_cli(ab, "user", "add", "carol", "--password-stdin", "--user", "admin",
                env={"TIDINGS_PASSWORD": ADMIN_PW}, input=b"carol-pw\n")
    assert p.returncode == 0 and p.stdout == b"added user carol\n", p.stderr
    p = run_cli(ab, "user", "list", *admin)
    assert p.returncode == 0 and b"carol " in p.stdout
    assert b"carol-pw" not in p.stdout + p.stderr
    # carol makes a token for herself; it lists her own.
    cpw = tmp_path / "carol-pw"
    cpw.write_text("carol-pw\n")
    p = run_cli(ab, "token", "create", "--user", "carol", "--password-file", str(cpw),
                "--expires", "1h", "--description", "laptop")
    assert p.returncode == 0, p.stderr
    token = p.stdout.decode().strip()
    assert token.startswith("tdk_") and b"not shown again" in p.stderr
    tf = tmp_path / "token"
    tf.write_text(token + "\n")
    p = run_cli(ab, "token", "list", "--json", "--token-file", str(tf))
    listed = json.loads(p.stdout)["tokens"]
    assert [t["description"] for t in listed] == ["laptop"] and token not in p.stdout.decode()
    assert run_cli(ab, "topic", "list", env={"TIDINGS_TOKEN": token}).returncode == 0
    # carol is not an administrator: clear refusal, exit 6.
    p = run_cli(ab, "user", "list", "--token-file", str(tf))
    assert p.returncode == 6 and b"may not Alter cluster" in p.stderr, p.stderr
    assert b"permission denied" in p.stderr
    # Wrong password: 401, exit 6.
    bad = tmp_path / "bad"
    bad.write_text("nope\n")
    p = run_cli(ab, "topic", "list", "--user", "admin", "--password-file", str(bad))
    assert p.returncode == 6 and b"wrong user name or password" in p.stderr
    # Removing carol removes her token.
    assert run_cli(ab, "user", "remove", "carol", *admin).returncode == 0
    assert run_cli(ab, "topic", "list", "--token-file", str(tf)).returncode == 6
    p = run_cli(ab, "token", "list", "--all", "--json", *admin)
    assert p.returncode == 0 and "carol" not in p.stdout.decode()
    assert "admin changed users: removed (with its API tokens) user 'carol'" in ab.stderr()


def test_tokens_survive_a_restart_and_credentials_count_on_any_listener(tmp_path, certs):
    """On a listener without http.auth (loopback), anonymous is allowed everything
    (anonymous.access=all), but credentials still make the request that user's: bob is denied.
    Tokens are in the catalog: they work after a restart; revocations stay."""
    data = str(tmp_path / "b" / "data")
    b = start_broker(data, certs, auth="none")
    try:
        assert curl(b, "POST", "/v1/topics", None, {"name": "anon"})[0] == 201
        assert curl(b, "POST", "/v1/users", None, {"name": "bob", "password": BOB_PW})[0] == 201
        assert curl(b, "GET", "/v1/topics/anon", ("bob", BOB_PW))[0] == 404
        assert curl(b, "GET", "/v1/topics/anon", ("bob", "wrong"))[0] == 401
        st, _, keep = curl(b, "POST", "/v1/tokens", ("admin", ADMIN_PW), {})
        st, _, gone = curl(b, "POST", "/v1/tokens", None, {"user": "admin"})
        assert st == 201
        assert curl(b, "DELETE", f"/v1/tokens/{gone['id']}", None)[0] == 204
    finally:
        assert b.stop() == 0
    b = start_broker(data, certs, auth="required")
    try:
        assert curl(b, "GET", "/v1/topics/anon", keep["token"])[0] == 200
        assert curl(b, "GET", "/v1/topics/anon", gone["token"])[0] == 401
        assert curl(b, "GET", "/v1/topics/anon")[0] == 401
    finally:
        assert b.stop() == 0


NETNS_SCRIPT = r"""
set -e
ip link set lo up
ip addr add 192.0.2.1/32 dev lo
TIDINGS_ADMIN_PASSWORD="$PW" "$BIN" serve --data "$DATA" --loops 1 --kafka off --redis off \
    --http 192.0.2.1:0 --set http.auth=required >"$DATA.out" 2>"$DATA.err" &
pid=$!
for i in $(seq 1 300); do
    grep -q '^ready' "$DATA.out" && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
hp=$(sed -n 's/^http: listening on 192.0.2.1://p' "$DATA.out")
u=http://192.0.2.1:$hp
echo "health: $(curl -s --max-time 5 $u/health)"
echo "anonymous: $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 $u/v1/topics)"
echo "admin: $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -u "admin:$PW" $u/v1/topics)"
set +e
kill -TERM $pid 2>/dev/null
wait $pid
echo "status: $?"
"""


def test_public_address_with_http_auth_required(tmp_path):
    """http.auth=required authenticates the listener: it may bind a public address without
    allow.anonymous (in a network namespace of its own, on 192.0.2.1, as
    test_security_defaults.py does), and it serves only authenticated clients."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs root, unshare and ip (CI has them)")
    data = str(tmp_path / "data")
    env = dict(os.environ, BIN=BIN, DATA=data, PW=ADMIN_PW)
    p = subprocess.run(["unshare", "-n", "bash", "-c", NETNS_SCRIPT], env=env,
                       capture_output=True, timeout=120)
    out = p.stdout.decode()
    with open(data + ".err") as f:
        err = f.read()
    assert 'health: {"status":"ok"}' in out, (out, err)
    assert "anonymous: 401" in out and "admin: 200" in out, (out, err)
    assert "without authentication" not in err and "not a loopback" not in err
    assert "status: 0" in out


def test_cli_local_tokens(tmp_path, certs):
    """tidings token on a data directory no broker holds: the owner is --user; the token then
    works against the broker, and a revoked one does not."""
    data = str(tmp_path / "b" / "data")

    def tok(*args, input=None):
        return subprocess.run([BIN, *args, "--data", data], capture_output=True, timeout=60,
                              input=input)
    assert tok("user", "add", "erin", "--password-stdin", input=b"erin-pw\n").returncode == 0
    p = tok("token", "create", "--description", "x")
    assert p.returncode == 2 and b"--user U" in p.stderr
    assert tok("token", "create", "--user", "nobody").returncode == 3
    p = tok("token", "create", "--user", "erin", "--expires", "2h", "--json")
    assert p.returncode == 0, p.stderr
    made = json.loads(p.stdout)
    assert made["user"] == "erin" and made["token"].startswith("tdk_" + made["id"])
    # The command reads the clock for the expiry, the engine for the creation: a tick apart.
    assert abs(made["expires_ms"] - made["created_ms"] - 2 * 3600 * 1000) <= 1000
    p = tok("token", "create", "--user", "erin")
    second = p.stdout.decode().strip()
    listing = tok("token", "list").stdout.decode()
    assert made["id"] in listing and second[4:20] in listing and made["token"] not in listing
    assert tok("token", "revoke", second[4:20]).stdout == f"revoked token {second[4:20]}\n".encode()
    assert tok("token", "revoke", second[4:20]).returncode == 3
    assert tok("token", "create", "--user", "erin", "--expires", "soon").returncode == 2
    b = start_broker(data, certs)
    try:
        assert curl(b, "GET", "/v1/tokens", made["token"])[0] == 200
        assert curl(b, "GET", "/v1/tokens", second)[0] == 401
    finally:
        assert b.stop() == 0


def test_key_reads_need_read_on_the_topic(ab):
    """GET /v1/topics/{t}/keys/{key} is authorized as consuming: Read on the topic; without
    Describe the topic answers as a missing one, with Describe only 403 naming Read."""
    topic = "kt-" + uuid.uuid4().hex[:8]
    adm, bob = ("admin", ADMIN_PW), ("bob", BOB_PW)
    st, _, body = curl(ab, "POST", "/v1/topics", adm,
                       {"name": topic, "config": {"cleanup.policy": "compact"}})
    assert st == 201, body
    assert curl(ab, "POST", f"/v1/topics/{topic}/events", adm, {"key": "k", "value": 7})[0] == 200
    path = f"/v1/topics/{topic}/keys/k"
    st, _, body = curl(ab, "GET", path, adm)
    assert st == 200 and body["value"] == 7, body
    st, _, body = curl(ab, "GET", path, bob)
    assert st == 404 and body["error"]["message"] == f"topic '{topic}' does not exist"
    acl = {"principal": "User:bob", "resource_type": "Topic", "name": topic,
           "operation": "Describe", "permission": "Allow"}
    assert curl(ab, "POST", "/v1/acls", adm, acl)[0] == 201
    st, _, body = curl(ab, "GET", path, bob)
    assert st == 403 and body["error"]["operation"] == "Read", body
    acl["operation"] = "Read"
    assert curl(ab, "POST", "/v1/acls", adm, acl)[0] == 201
    st, _, body = curl(ab, "GET", path, bob)
    assert st == 200 and body["value"] == 7, body
    assert curl(ab, "DELETE", f"/v1/acls?principal=User:bob&name={topic}", adm)[0] == 200


def test_a_forwarding_group_needs_write_on_its_view(ab):
    """forward_to and dead_letter_topic make the broker write for whoever set them: Write on
    that topic, beside what a queue group needs (Read on the group and its topic)."""
    topic, view, group = ("ft-" + uuid.uuid4().hex[:8], "fv-" + uuid.uuid4().hex[:8],
                          "fg-" + uuid.uuid4().hex[:8])
    adm, bob = ("admin", ADMIN_PW), ("bob", BOB_PW)
    for t in (topic, view):
        assert curl(ab, "POST", "/v1/topics", adm, {"name": t})[0] == 201

    def allow(rtype, name, op):
        assert curl(ab, "POST", "/v1/acls", adm, {"principal": "User:bob", "resource_type": rtype,
                                                  "name": name, "operation": op,
                                                  "permission": "Allow"})[0] == 201
    allow("Topic", topic, "Read")
    allow("Group", group, "Read")
    # A view bob may not see answers as a missing topic, as everywhere; one he may see, 403.
    st, _, body = curl(ab, "PUT", f"/v1/queues/{group}", bob, {"topic": topic,
                                                                "forward_to": view})
    assert st == 404 and body["error"]["message"] == f"topic '{view}' does not exist", body
    allow("Topic", view, "Describe")
    st, _, body = curl(ab, "PUT", f"/v1/queues/{group}", bob, {"topic": topic,
                                                                "forward_to": view})
    assert st == 403 and body["error"]["operation"] == "Write", body
    assert body["error"]["resource"] == view
    assert curl(ab, "PUT", f"/v1/queues/{group}", bob, {"topic": topic})[0] == 201
    assert curl(ab, "PUT", f"/v1/queues/{group}", bob, {"forward_to": view})[0] == 403
    allow("Topic", view, "Write")
    st, _, body = curl(ab, "PUT", f"/v1/queues/{group}", bob, {"forward_to": view})
    assert st == 200 and body["policy"]["forward_to"] == view, body
    # The same for a dead-letter topic named outright (bob may Describe the topic, not Write).
    st, _, body = curl(ab, "PUT", f"/v1/queues/{group}", bob, {"dead_letter_topic": topic})
    assert st == 403 and body["error"]["operation"] == "Write", body
    assert curl(ab, "PUT", f"/v1/queues/{group}", bob, {"max_deliveries": 3})[0] == 200
    # A topic named by a number is a topic name all the same.
    st, _, body = curl(ab, "PUT", f"/v1/queues/{group}", bob, {"forward_to": 123})
    assert st == 404 and body["error"]["message"] == "topic '123' does not exist", body
    for name in (topic, group, view):
        assert curl(ab, "DELETE", f"/v1/acls?principal=User:bob&name={name}", adm)[0] == 200
