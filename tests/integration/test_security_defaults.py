"""Safe network defaults (issue 20, item 6; docs/security.md): without authentication a
listener binds loopback addresses only, unless allow.anonymous says otherwise; the HTTP
listener refuses what a web page could make a browser send it (DNS rebinding through Host,
cross-site requests through Origin, form content types) and answers CORS for listed origins
only."""
import http.client
import os
import json
import subprocess

import pytest

from conftest import BIN, Broker


def serve(tmp_path, *args):
    """Runs `tidings serve` expected to stop by itself; its status and stderr."""
    p = subprocess.run([BIN, "serve", "--data", str(tmp_path / "data"), "--loops", "1", *args],
                       capture_output=True, timeout=60)
    return p.returncode, p.stderr.decode(errors="replace")


@pytest.mark.parametrize("listener", ["kafka", "http", "redis"])
def test_a_public_address_without_authentication_is_refused(tmp_path, listener):
    others = [a for l in ("kafka", "http", "redis") if l != listener
              for a in (f"--{l}", "off")]
    rc, err = serve(tmp_path, f"--{listener}", "0.0.0.0:0", *others)
    assert rc == 2, err
    assert f"{listener}: 0.0.0.0:0 is not a loopback address" in err, err
    assert "allow.anonymous" in err
    rc, err = serve(tmp_path, f"--{listener}", "[::]:0", *others)
    assert rc == 2 and "is not a loopback address" in err, err
    assert not (tmp_path / "data").exists()  # refused before anything was opened


def test_allow_anonymous_warns_and_serves(tmp_path):
    # 192.0.2.1 (TEST-NET-1) is on no interface here: the exposure check lets it through with
    # its warning, and the bind then fails; the tests never listen beyond loopback.
    rc, err = serve(tmp_path, "--kafka", "off", "--redis", "off", "--http", "192.0.2.1:0",
                    "--allow-anonymous", "true")
    assert "http: listening on 192.0.2.1:0 without authentication (allow.anonymous=true)" in err
    assert "not a loopback address" not in err
    assert rc != 0  # the address is not ours
    # Loopback names and addresses need nothing.
    b = Broker(str(tmp_path / "lo" / "data"), http=True, redis=True,
               extra=["--kafka", "localhost:0"]).start()
    assert "without authentication" not in b.stderr()
    b.stop()


def test_redis_with_a_password_may_bind_a_public_address(tmp_path):
    # As Redis's protected mode: a password is authentication for that listener. The listener
    # is asked for 192.0.2.1 so as not to listen beyond loopback: the bind fails after the
    # check passed, without a warning.
    rc, err = serve(tmp_path, "--kafka", "off", "--http", "off", "--redis", "192.0.2.1:0",
                    "--set", "redis.password=s3cret")
    assert "not a loopback address" not in err and "without authentication" not in err, err
    assert rc != 0


@pytest.fixture
def hb(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True,
               extra=["--set", "http.allowed.hosts=broker.internal,.corp.test",
                      "--set", "http.cors.allowed.origins=https://app.corp.test"]).start()
    yield b
    b.stop()


def call(b, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=30)
    c.putrequest(method, path, skip_host="Host" in (headers or {}),
                 skip_accept_encoding=True)
    for k, v in (headers or {}).items():
        c.putheader(k, v)
    data = body.encode() if isinstance(body, str) else body
    if data is not None:
        c.putheader("Content-Length", str(len(data)))
    c.endheaders(data)
    r = c.getresponse()
    raw = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, (json.loads(raw) if raw else None)


def denied(b, reason):
    """tidings_security_denied_total for the HTTP listener and this reason."""
    c = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=30)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    key = f'tidings_security_denied_total{{protocol="http",reason="{reason}"}} '
    return sum(int(l[len(key):]) for l in text.splitlines() if l.startswith(key))


def topics(b):
    return [t["name"] for t in call(b, "GET", "/v1/topics")[2]["topics"]]


def test_dns_rebinding_host_is_refused(hb):
    for host in ["attacker.example", "attacker.example:8080", "127.0.0.1.attacker.example",
                 "internal", "corp.test.evil"]:
        st, _, body = call(hb, "POST", "/v1/topics", '{"name": "rebound"}',
                           {"Host": host, "Content-Type": "application/json"})
        assert st == 403 and body["error"]["code"] == "host_not_allowed", (host, st, body)
        st, _, body = call(hb, "GET", "/v1/topics", headers={"Host": host})
        assert st == 403 and "http.allowed.hosts" in body["error"]["message"]
    assert topics(hb) == []
    for i, host in enumerate(["localhost", f"localhost:{hb.http_port}", "127.0.0.1", "[::1]:1",
                              "dev.localhost", "broker.internal:8080", "corp.test",
                              "a.corp.test"]):
        st, _, body = call(hb, "POST", "/v1/topics", json.dumps({"name": f"ok{i}"}),
                           {"Host": host, "Content-Type": "application/json"})
        assert st == 201, (host, body)
    assert len(topics(hb)) == 8
    assert "refused a request for host 'attacker.example'" in hb.stderr()
    assert denied(hb, "host_not_allowed") == 10


def test_cross_site_requests_are_refused(hb):
    own = f"http://127.0.0.1:{hb.http_port}"
    for method, path, body in [("POST", "/v1/topics", '{"name": "csrf"}'),
                               ("POST", "/v1/topics/t/events", '{"value": 1}'),
                               ("DELETE", "/v1/topics/t", None),
                               ("PATCH", "/v1/topics/t", '{"partitions": 2}'),
                               ("PUT", "/v1/queues/q", '{"topic": "t"}')]:
        for origin in ["https://evil.example", "null", "http://127.0.0.1:1"]:
            st, hdrs, b = call(hb, method, path, body,
                               {"Origin": origin, "Content-Type": "application/json"})
            assert st == 403 and b["error"]["code"] == "origin_not_allowed", (method, origin)
            assert "access-control-allow-origin" not in hdrs
    assert topics(hb) == []
    # Reading is not refused (the browser keeps the answer from a page without CORS headers).
    st, hdrs, _ = call(hb, "GET", "/v1/topics", headers={"Origin": "https://evil.example"})
    assert st == 200 and "access-control-allow-origin" not in hdrs
    # The broker's own origin (a page it served, or a tool that sends Origin) may write.
    st, _, _ = call(hb, "POST", "/v1/topics", '{"name": "t"}',
                    {"Origin": own, "Content-Type": "application/json"})
    assert st == 201
    assert "refused a POST from origin 'https://evil.example'" in hb.stderr()
    assert denied(hb, "origin_not_allowed") == 15


def test_form_content_types_are_refused(hb):
    for ct in ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
               "text/plain", "text/plain;charset=UTF-8"]:
        st, _, b = call(hb, "POST", "/v1/topics", '{"name": "form"}', {"Content-Type": ct})
        assert st == 415 and b["error"]["code"] == "unsupported_media_type", ct
        assert "--json" in b["error"]["message"]
    assert topics(hb) == []
    st, _, _ = call(hb, "POST", "/v1/topics", '{"name": "typed"}',
                    {"Content-Type": "application/json; charset=utf-8"})
    assert st == 201
    st, _, _ = call(hb, "POST", "/v1/topics", '{"name": "untyped"}')  # no type: not a form
    assert st == 201
    # curl -d sends a form type; curl --json is the way.
    base = f"http://127.0.0.1:{hb.http_port}/v1/topics"
    out = subprocess.run(["curl", "-sS", base, "-d", '{"name": "c1"}'], capture_output=True,
                         timeout=30, check=True).stdout
    assert json.loads(out)["error"]["code"] == "unsupported_media_type"
    out = subprocess.run(["curl", "-sS", base, "--json", '{"name": "c2"}'], capture_output=True,
                         timeout=30, check=True).stdout
    assert json.loads(out)["name"] == "c2"
    assert sorted(topics(hb)) == ["c2", "typed", "untyped"]


def test_cors_for_listed_origins_only(hb):
    app = "https://app.corp.test"
    st, hdrs, _ = call(hb, "OPTIONS", "/v1/topics",
                       headers={"Origin": app, "Access-Control-Request-Method": "POST",
                                "Access-Control-Request-Headers": "content-type"})
    assert st == 204
    assert hdrs["access-control-allow-origin"] == app and hdrs["vary"] == "Origin"
    assert "POST" in hdrs["access-control-allow-methods"]
    assert "content-type" in hdrs["access-control-allow-headers"].lower()
    st, hdrs, _ = call(hb, "OPTIONS", "/v1/topics",
                       headers={"Origin": "https://evil.example",
                                "Access-Control-Request-Method": "POST"})
    assert st == 403 and "access-control-allow-origin" not in hdrs
    # The listed origin writes and reads, with the header on every answer, errors too.
    st, hdrs, _ = call(hb, "POST", "/v1/topics", '{"name": "x"}',
                       {"Origin": app, "Content-Type": "application/json"})
    assert st == 201 and hdrs["access-control-allow-origin"] == app
    st, hdrs, _ = call(hb, "GET", "/v1/topics/nope", headers={"Origin": app})
    assert st == 404 and hdrs["access-control-allow-origin"] == app
    # A live subscription (EventSource) from the listed origin gets the header on its stream.
    c = http.client.HTTPConnection("127.0.0.1", hb.http_port, timeout=30)
    c.request("GET", "/v1/subscribe?topics=x&from=earliest", headers={"Origin": app})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Access-Control-Allow-Origin") == app
    c.close()
    # Without an Origin, no CORS header at all.
    st, hdrs, _ = call(hb, "GET", "/v1/topics")
    assert "access-control-allow-origin" not in hdrs


def test_cors_any_origin_is_answered_with_a_star(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True,
               extra=["--set", "http.cors.allowed.origins=*"]).start()
    try:
        st, hdrs, _ = call(b, "POST", "/v1/topics", '{"name": "s"}',
                           {"Origin": "https://anyone.example", "Content-Type": "application/json"})
        assert st == 201 and hdrs["access-control-allow-origin"] == "*"
        assert "vary" not in hdrs
    finally:
        b.stop()


NETNS_SCRIPT = r"""
set -e
ip link set lo up
ip addr add 192.0.2.1/32 dev lo
"$BIN" serve --data "$DATA" --loops 1 --kafka off --http 192.0.2.1:0 --redis 192.0.2.1:0 \
    --set redis.password=s3cret --allow-anonymous "$ANON" >"$DATA.out" 2>"$DATA.err" &
pid=$!
for i in $(seq 1 300); do
    grep -q '^ready' "$DATA.out" && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
hp=$(sed -n 's/^http: listening on 192.0.2.1://p' "$DATA.out")
rp=$(sed -n 's/^redis: listening on 192.0.2.1://p' "$DATA.out")
echo "health: $(curl -s --max-time 5 http://192.0.2.1:$hp/health)"
rc() { redis-cli -h 192.0.2.1 -p "$rp" "$@"; }
echo "noauth: $(rc PING)"
echo "empty: $(rc -a s3cret --no-auth-warning CONFIG SET requirepass '')"
echo "change: $(rc -a s3cret --no-auth-warning CONFIG SET requirepass n3w)"
echo "new: $(rc -a n3w --no-auth-warning PING)"
set +e
kill -TERM $pid 2>/dev/null
wait $pid
echo "status: $?"
"""


def run_in_netns(tmp_path, anon):
    """The broker on 192.0.2.1 in a network namespace of its own (only its loopback device,
    which also carries that address): a public-looking address no one else can reach."""
    import shutil
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs root, unshare and ip (CI has them)")
    data = str(tmp_path / "data")
    env = dict(os.environ, BIN=BIN, DATA=data, ANON=anon)
    p = subprocess.run(["unshare", "-n", "bash", "-c", NETNS_SCRIPT], env=env,
                       capture_output=True, timeout=120)
    with open(data + ".err") as f:
        err = f.read()
    return p.stdout.decode(), err


def test_public_address_with_a_password_and_anonymous_http(tmp_path):
    out, err = run_in_netns(tmp_path, "true")
    # HTTP has no authentication yet: it serves on 192.0.2.1 because allow.anonymous says so,
    # with a warning; Redis serves on the strength of its password, without one.
    assert 'health: {"status":"ok"}' in out, (out, err)
    assert "http: listening on 192.0.2.1:0 without authentication" in err
    assert "redis: listening on 192.0.2.1:0 without" not in err
    assert "noauth: NOAUTH Authentication required." in out, out
    assert "change: OK" in out and "new: PONG" in out, out
    assert "empty: OK" in out  # allow.anonymous: the password may go
    assert "status: 0" in out


def test_a_password_that_opens_a_public_listener_cannot_be_removed(tmp_path):
    import re
    # Without allow.anonymous the HTTP listener may not bind 192.0.2.1 at all: the broker
    # refuses to start, and nothing answers.
    out, err = run_in_netns(tmp_path, "false")
    assert "http: 192.0.2.1:0 is not a loopback address" in err, err
    assert "health: \n" in out
    # Redis alone, on the strength of its password: the password may change, not go.
    script = NETNS_SCRIPT.replace("--http 192.0.2.1:0", "--http off").replace(
        'echo "health: $(curl -s --max-time 5 http://192.0.2.1:$hp/health)"', "")
    env = dict(os.environ, BIN=BIN, DATA=str(tmp_path / "d2"), ANON="false")
    p = subprocess.run(["unshare", "-n", "bash", "-c", script], env=env, capture_output=True,
                       timeout=120)
    out = p.stdout.decode()
    assert re.search(r"empty: ERR CONFIG SET failed .* binds 192\.0\.2\.1, not a loopback", out), out
    assert "change: OK" in out and "new: PONG" in out, out
    assert "status: 0" in out
