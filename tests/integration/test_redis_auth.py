"""Redis authentication and authorization (docs/redis.md#authentication-and-acls): AUTH and
HELLO AUTH by tidings users, -NOAUTH, -WRONGPASS, RESET, the ACL command, -NOPERM on the data
commands for a principal without permissions, KEYS hiding topics, the metrics and log lines.

Where Redis answers the same exchange, the replies are compared byte for byte with a real
redis-server 7 started here (skipped if the machine has none) that has the same users: alice,
whose Redis ACL allows no key, no channel and no @admin command, and admin, allowed
everything; tidings gives the same answers because alice is an ordinary user (denied
everything while no ACL grants her anything) and admin is in super.users.
"""
import os
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import BIN, Broker
from test_tls import make_ca, make_cert

ALICE_PW = "alice-s3cret"
ADMIN_PW = "admin-s3cret"


def add_user(data, name, password):
    subprocess.run([BIN, "user", "add", name, "--data", data, "--password-stdin"],
                   input=(password + "\n").encode(), check=True, capture_output=True,
                   timeout=60)


def broker(tmp_path, *extra, http=False, users=True):
    data = str(tmp_path / "b" / "data")
    os.makedirs(os.path.dirname(data), exist_ok=True)
    if users:
        add_user(data, "admin", ADMIN_PW)
        add_user(data, "alice", ALICE_PW)
    return Broker(data, extra=["--set", "super.users=admin", *extra], http=http,
                  redis=True).start()


def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Conn:
    """A raw RESP connection: send a command, read one whole reply as bytes."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line + b"\r\n"

    def _reply(self):
        line = self._line()
        t = line[:1]
        if t in b"$=" and line[1:3] != b"-1":
            n = int(line[1:-2])
            while len(self.buf) < n + 2:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise EOFError(self.buf)
                self.buf += chunk
            body, self.buf = self.buf[:n + 2], self.buf[n + 2:]
            return line + body
        if t in b"*%~>" and line[1:3] != b"-1":
            n = int(line[1:-2]) * (2 if t == b"%" else 1)
            return line + b"".join(self._reply() for _ in range(n))
        return line

    def __call__(self, *args):
        self.s.sendall(cmd(*args))
        return self._reply()

    def close(self):
        self.s.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def real_redis(tmp_path_factory):
    """redis-server 7 with alice (no keys, no channels, no @admin command) and admin
    (everything); default's password set, so that it asks for authentication as
    redis.auth=required does."""
    exe = shutil.which("redis-server")
    if not exe:
        pytest.skip("no redis-server on this machine to compare with")
    d = str(tmp_path_factory.mktemp("redis"))
    port = free_port()
    p = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", d], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while True:
        try:
            c = Conn(port)
            break
        except OSError:
            assert time.time() < deadline, "redis-server did not start"
            time.sleep(0.05)
    assert c("ACL", "SETUSER", "alice", "on", ">" + ALICE_PW, "resetkeys", "resetchannels",
             "+@all", "-@admin") == b"+OK\r\n"
    assert c("ACL", "SETUSER", "admin", "on", ">" + ADMIN_PW, "~*", "&*", "+@all") == b"+OK\r\n"
    assert c("XADD", "s", "*", "a", "b").startswith(b"$")
    assert c("CONFIG", "SET", "requirepass", "default-pw") == b"+OK\r\n"
    c.close()
    yield port
    p.terminate()
    p.wait(timeout=20)


# The exchanges compared with Redis: (command, what the reply must be like) in one connection.
EXCHANGE = [
    ("PING",),
    ("XADD", "s", "*", "a", "b"),
    ("HELLO", "3"),
    ("AUTH", "alice", "wrong"),
    ("AUTH", "nobody", "whatever"),
    ("AUTH", "not-the-password"),
    ("HELLO", "2", "AUTH", "alice", "wrong"),
    ("AUTH", "alice", ALICE_PW),
    ("ACL", "WHOAMI"),
    ("XADD", "s", "*", "a", "b"),
    ("XREAD", "COUNT", "1", "STREAMS", "s", "0"),
    ("XRANGE", "s", "-", "+"),
    ("XLEN", "s"),
    ("DEL", "s"),
    ("PUBLISH", "ch", "x"),
    ("SUBSCRIBE", "ch"),
    ("ACL", "SETUSER", "bob", "on", ">x"),
    ("ACL", "DELUSER", "bob"),
    ("CONFIG", "SET", "requirepass", "x"),
    ("MULTI",),
    ("XLEN", "s"),
    ("EXEC",),
    ("RESET",),
    ("ACL", "WHOAMI"),
    ("HELLO", "3", "AUTH", "alice", ALICE_PW, "SETNAME", "n1"),
    ("ACL", "WHOAMI"),
    ("CLIENT", "GETNAME"),
    ("ACL", "WHOAMI", "extra"),
    ("ACL", "LOG"),
    ("ACL", "CAT", "nosuch"),
    ("ACL", "NOSUCH"),
    ("AUTH", "admin", ADMIN_PW),
    ("ACL", "WHOAMI"),
    ("ACL", "LOG", "nope"),
    ("ACL", "LOG", "-1"),
    ("ACL", "LOG", "1", "2"),
    ("ACL", "GETUSER", "nosuch"),
    ("ACL", "DELUSER", "default"),
    ("ACL", "DELUSER", "nosuch"),
    ("ACL", "SETUSER", "x", "bogus"),
    ("ACL", "SETUSER", "a b", "on"),
    ("ACL", "SETUSER"),
    ("ACL", "CAT", "stream"),
    ("ACL", "DRYRUN", "alice", "xadd", "s", "*", "a", "b"),
    ("ACL", "DRYRUN", "alice", "publish", "ch", "x"),
    ("ACL", "DRYRUN", "alice", "acl", "setuser", "x"),
    ("ACL", "DRYRUN", "alice", "ping"),
    ("ACL", "DRYRUN", "admin", "xadd", "s", "*", "a", "b"),
    ("ACL", "DRYRUN", "nosuch", "ping"),
    ("ACL", "DRYRUN", "alice", "nosuchcmd"),
    ("ACL", "DRYRUN", "alice", "xadd"),
    ("ACL", "GENPASS", "0"),
    ("ACL", "GENPASS", "x"),
    ("ACL", "LOAD"),
    ("ACL", "SAVE"),
    ("ACL", "HELP"),
    ("QUIT",),
]


def strip_hello(r):
    # HELLO's map names the server's version and the connection's id: only its shape and the
    # proto field must agree.
    return r.split(b"proto")[0][:2] if r.startswith((b"%", b"*")) else r


def test_replies_match_redis(tmp_path, real_redis):
    b = broker(tmp_path, "--set", "redis.auth=required")
    try:
        ours, theirs = Conn(b.redis_port), Conn(real_redis)
        for c in EXCHANGE:
            a, r = ours(*c), theirs(*c)
            if c[0] == "HELLO":
                a, r = strip_hello(a), strip_hello(r)
            if c[:2] == ("ACL", "CAT") and len(c) == 3 and a.startswith(b"*"):
                # Redis lists a category's commands in its hash table's order; tidings has
                # three more stream commands (XGROUP POLICY, XKEYRANGE, XKEYVERSION).
                a = sorted(set(a.split(b"\r\n")[2::2]) -
                           {b"xgroup|policy", b"xkeyrange", b"xkeyversion"})
                r = sorted(r.split(b"\r\n")[2::2])
            assert a == r, (c, a, r)
        ours.close()
        theirs.close()
    finally:
        b.stop()


def test_auth_without_password_configured_matches_redis(tmp_path):
    """A listener that does not authenticate: the default user takes any password, AUTH with
    one argument is Redis's configuration error, anonymous may do everything on loopback."""
    b = broker(tmp_path)
    try:
        c = Conn(b.redis_port)
        assert c("AUTH", "x") == (b"-ERR AUTH <password> called without any password configured "
                                  b"for the default user. Are you sure your configuration is "
                                  b"correct?\r\n")
        assert c("ACL", "WHOAMI") == b"$7\r\ndefault\r\n"
        for bits, chars in ((None, 64), ("5", 2), ("4096", 1024)):  # as Redis's GENPASS
            r = c("ACL", "GENPASS", *([bits] if bits else []))
            head = b"$%d\r\n" % chars
            assert r.startswith(head) and len(r) == len(head) + chars + 2, r
            int(r.split(b"\r\n")[1], 16)  # hex digits
        assert c("AUTH", "default", "anything") == b"+OK\r\n"
        assert c("XADD", "t1", "*", "a", "b").startswith(b"$")
        assert c("ACL", "SETUSER", "carol", "on", ">carol-pw", "~t1", "+@read") == b"+OK\r\n"
        assert c("ACL", "USERS") == (b"*4\r\n$5\r\nadmin\r\n$5\r\nalice\r\n$5\r\ncarol\r\n"
                                     b"$7\r\ndefault\r\n")
        lst = c("ACL", "LIST")
        assert b"user default on nopass ~* &* +@all" in lst, lst
        assert b"user carol on #" in lst, lst
        assert b" ~t1 resetchannels -@all +@read" in lst, lst
        # Users authenticate even where the listener does not require it.
        assert c("AUTH", "carol", "carol-pw") == b"+OK\r\n"
        assert c("ACL", "WHOAMI") == b"$5\r\ncarol\r\n"
        assert c("XLEN", "t1") == b":1\r\n"  # the ACL SETUSER made
        assert c("XADD", "t1", "*", "a", "b") == (b"-NOPERM this user has no permissions to "
                                                  b"access one of the keys used as arguments\r\n")
        c.close()
    finally:
        b.stop()


def test_redis_cli_user_pass(tmp_path):
    b = broker(tmp_path, "--set", "redis.auth=required")

    def cli(*args, user=None, password=None):
        cmdline = ["redis-cli", "--no-auth-warning", "-p", str(b.redis_port)]
        if user:
            cmdline += ["--user", user, "--pass", password]
        p = subprocess.run([*cmdline, *args], capture_output=True, timeout=30)
        return p.stderr + p.stdout  # a failed AUTH is a warning on stderr, then the command

    try:
        assert cli("PING") == b"NOAUTH Authentication required.\n\n"
        assert b"WRONGPASS" in cli("PING", user="alice", password="bad")
        assert b"WRONGPASS" in cli("PING", user="mallory", password=ALICE_PW)
        assert cli("PING", user="alice", password=ALICE_PW) == b"PONG\n"
        assert cli("XADD", "secret", "*", "f", "v", user="admin",
                   password=ADMIN_PW).strip().endswith(b"-0")
        assert cli("XADD", "other", "*", "f", "v", user="admin", password=ADMIN_PW)
        # alice has no permission (no ACL store yet grants her any): refused, topics hidden.
        assert cli("XADD", "secret", "*", "f", "v", user="alice", password=ALICE_PW) == (
            b"NOPERM this user has no permissions to access one of the keys used as "
            b"arguments\n\n")
        assert b"NOPERM" in cli("XREAD", "STREAMS", "secret", "0", user="alice",
                                password=ALICE_PW)
        assert b"NOPERM" in cli("XADD", "newtopic", "*", "f", "v", user="alice",
                                password=ALICE_PW)
        assert cli("KEYS", "*", user="alice", password=ALICE_PW) == b"\n"
        assert cli("SCAN", "0", user="alice", password=ALICE_PW) == b"0\n\n"
        assert cli("DBSIZE", user="alice", password=ALICE_PW) == b"0\n"
        assert sorted(cli("KEYS", "*", user="admin", password=ADMIN_PW).split()) == [
            b"other", b"secret"]
        assert cli("DBSIZE", user="admin", password=ADMIN_PW) == b"2\n"
        # The administrator's commands.
        assert cli("ACL", "SETUSER", "bob", "on", ">bob-pw", user="alice",
                   password=ALICE_PW) == (
            b"NOPERM this user has no permissions to run the 'acl|setuser' command\n\n")
        assert cli("CONFIG", "SET", "requirepass", "x", user="alice", password=ALICE_PW) == (
            b"NOPERM this user has no permissions to run the 'config|set' command\n\n")
        assert cli("ACL", "LOG", "RESET", user="alice", password=ALICE_PW) == (
            b"NOPERM this user has no permissions to run the 'acl|log' command\n\n")
        assert cli("ACL", "SETUSER", "bob", "on", ">bob-pw", "~*", "&*", "+@all", user="admin",
                   password=ADMIN_PW) == b"OK\n"
        assert cli("ACL", "WHOAMI", user="bob", password="bob-pw") == b"bob\n"
        assert cli("ACL", "SETUSER", "bob", ">bob-pw2", user="admin",
                   password=ADMIN_PW) == b"OK\n"
        assert b"WRONGPASS" in cli("PING", user="bob", password="bob-pw")
        assert cli("PING", user="bob", password="bob-pw2") == b"PONG\n"
        assert cli("ACL", "SETUSER", "bob", "~foo?", user="admin", password=ADMIN_PW).startswith(
            b"ERR Error in ACL SETUSER modifier '~foo?': tidings grants topics by exact name, "
            b"by prefix")
        assert cli("ACL", "SETUSER", "bob", "off", user="admin", password=ADMIN_PW).startswith(
            b"ERR Error in ACL SETUSER modifier 'off': tidings users cannot be disabled")
        assert cli("ACL", "SETUSER", "bob", "bogus", user="admin", password=ADMIN_PW) == (
            b"ERR Error in ACL SETUSER modifier 'bogus': Syntax error\n\n")
        assert cli("ACL", "SETUSER", "dave", "on", user="admin", password=ADMIN_PW).startswith(
            b"ERR a new user needs a password")
        assert cli("ACL", "DELUSER", "bob", "nosuch", user="admin", password=ADMIN_PW) == b"1\n"
        assert b"WRONGPASS" in cli("PING", user="bob", password="bob-pw2")
        assert cli("ACL", "DELUSER", "default", user="admin", password=ADMIN_PW) == (
            b"ERR The 'default' user cannot be removed\n\n")
        assert cli("CONFIG", "SET", "requirepass", "pw2", user="admin",
                   password=ADMIN_PW) == b"OK\n"
        # default is now redis.password's.
        assert cli("PING", user="default", password="pw2") == b"PONG\n"
        assert cli("ACL", "WHOAMI", user="default", password="pw2") == b"default\n"
        log = cli("ACL", "LOG", user="admin", password=ADMIN_PW).decode()
        assert "reason\nauth\n" in log and "username\nmallory\n" in log, log
        assert "reason\nkey\n" in log and "object\nsecret\n" in log, log
        assert "object\nacl|setuser\n" in log and "cmd=acl|setuser user=alice" in log, log
        assert cli("ACL", "LOG", "RESET", user="admin", password=ADMIN_PW) == b"OK\n"
        assert cli("ACL", "LOG", user="admin", password=ADMIN_PW) == b"\n"
    finally:
        b.stop()
    err = b.stderr()
    assert "audit: redis: 127.0.0.1:" in err and "authentication failed for 'alice'" in err
    assert "denied alice: key 'secret' (command 'xadd')" in err
    for secret in (ALICE_PW, ADMIN_PW, "bob-pw", "pw2"):
        assert secret not in err


def test_client_kill_user_and_deluser_close_the_users_connections(tmp_path):
    b = broker(tmp_path)
    try:
        admin = Conn(b.redis_port)
        assert admin("AUTH", "admin", ADMIN_PW) == b"+OK\r\n"
        assert admin("ACL", "SETUSER", "eve", "on", ">eve-pw") == b"+OK\r\n"
        eve = Conn(b.redis_port)
        assert eve("AUTH", "eve", "eve-pw") == b"+OK\r\n"
        eve2 = Conn(b.redis_port)
        assert eve2("AUTH", "eve", "eve-pw") == b"+OK\r\n"
        assert admin("CLIENT", "LIST").count(b"user=eve ") == 2
        assert admin("CLIENT", "KILL", "USER", "nosuch") == b"-ERR No such user 'nosuch'\r\n"
        assert admin("CLIENT", "KILL", "USER", "eve", "ID", eve2("CLIENT", "ID")[1:-2]) == (
            b":1\r\n")
        assert admin("ACL", "DELUSER", "eve") == b":1\r\n"
        for c in (eve, eve2):
            with pytest.raises((EOFError, ConnectionResetError)):
                for _ in range(50):  # the close is posted to the connection's loop
                    c("PING")
                    time.sleep(0.05)
        assert admin("PING") == b"+PONG\r\n"
        admin.close()
    finally:
        b.stop()


def test_redis_py_and_metrics(tmp_path):
    import redis
    b = broker(tmp_path, "--set", "redis.auth=required", http=True)
    try:
        # redis-py 4.3 raises WRONGPASS as a ResponseError, as it does against Redis.
        with pytest.raises(redis.exceptions.ResponseError, match="^WRONGPASS"):
            redis.Redis(port=b.redis_port, username="alice", password="bad").ping()
        with pytest.raises(redis.exceptions.ResponseError, match="^WRONGPASS"):
            redis.Redis(port=b.redis_port, username="nobody", password="x").ping()
        with pytest.raises(redis.exceptions.AuthenticationError, match="Authentication required"):
            redis.Redis(port=b.redis_port).ping()  # NOAUTH
        assert Conn(b.redis_port)("HELLO", "3").startswith(b"-NOAUTH HELLO must be called")
        admin = redis.Redis(port=b.redis_port, username="admin", password=ADMIN_PW)
        admin.xadd("s", {"f": "v"})
        assert admin.acl_whoami() == "admin"  # redis-py decodes it
        alice = redis.Redis(port=b.redis_port, username="alice", password=ALICE_PW)
        assert alice.acl_whoami() == "alice"
        with pytest.raises(redis.exceptions.NoPermissionError):
            alice.xrange("s")
        assert alice.keys() == []
        m = urllib.request.urlopen(f"http://127.0.0.1:{b.http_port}/metrics",
                                   timeout=10).read().decode()
        assert 'tidings_auth_failures_total{protocol="redis",mechanism="password"} 2' in m, m
        assert 'tidings_security_denied_total{protocol="redis",reason="acl"} 1' in m
        assert 'tidings_security_denied_total{protocol="redis",reason="unauthenticated"} 2' in m
    finally:
        b.stop()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("certs"))
    make_ca(d, "ca")
    make_cert(d, "ca", "server", "localhost", 1001)
    make_cert(d, "ca", "client", "alice", 3003, server=False)
    return d


def test_client_certificate_is_the_principal(tmp_path, certs):
    """Without AUTH, a verified client certificate's CN is the principal: alice, an ordinary
    user, is refused; AUTH as admin overrides it, RESET goes back to it."""
    import redis
    d = str(tmp_path / "b")
    os.makedirs(d)
    cfg = os.path.join(d, "tls.conf")
    port = free_port()
    with open(cfg, "w") as f:
        f.write(f"redis.tls = 127.0.0.1:{port}\nredis.tls.cert.file = {certs}/server.pem\n"
                f"redis.tls.key.file = {certs}/server.key\nredis.tls.ca.file = {certs}/ca.pem\n"
                f"redis.tls.client.auth = required\n")
    b = broker(tmp_path, "--config", cfg)
    try:
        r = redis.Redis(host="127.0.0.1", port=port, ssl=True,
                        ssl_ca_certs=os.path.join(certs, "ca.pem"), ssl_check_hostname=False,
                        ssl_certfile=os.path.join(certs, "client.pem"),
                        ssl_keyfile=os.path.join(certs, "client.key"), single_connection_client=True)
        assert r.acl_whoami() == "alice"
        assert "user=alice " in r.execute_command("CLIENT", "INFO").decode()
        with pytest.raises(redis.exceptions.NoPermissionError):
            r.xadd("s", {"f": "v"})
        assert r.execute_command("AUTH", "admin", ADMIN_PW)
        assert r.acl_whoami() == "admin"
        assert r.xadd("s", {"f": "v"})
        assert r.execute_command("RESET") in (b"RESET", "RESET")
        assert r.acl_whoami() == "alice"
        r.close()
    finally:
        b.stop()


def test_tls_listener_with_auth_required(tmp_path, certs):
    """redis.tls.auth=required: redis-cli --tls --user --pass and redis-py ssl=True."""
    import redis
    d = str(tmp_path / "b")
    os.makedirs(d)
    cfg = os.path.join(d, "tls.conf")
    port = free_port()
    with open(cfg, "w") as f:
        f.write(f"redis.tls = 127.0.0.1:{port}\nredis.tls.cert.file = {certs}/server.pem\n"
                f"redis.tls.key.file = {certs}/server.key\nredis.tls.auth = required\n")
    b = broker(tmp_path, "--config", cfg)
    try:
        ca = os.path.join(certs, "ca.pem")
        base = ["redis-cli", "--no-auth-warning", "-h", "127.0.0.1", "-p", str(port), "--tls",
                "--cacert", ca, "--sni", "localhost"]

        def run(*a):
            p = subprocess.run([*base, *a], capture_output=True, timeout=30)
            return p.stderr + p.stdout
        assert run("PING") == b"NOAUTH Authentication required.\n\n"
        assert b"WRONGPASS" in run("--user", "alice", "--pass", "bad", "PING")
        assert run("--user", "admin", "--pass", ADMIN_PW, "XADD", "s", "*", "f",
                   "v").strip().endswith(b"-0")
        assert run("--user", "alice", "--pass", ALICE_PW, "XLEN", "s") == (
            b"NOPERM this user has no permissions to access one of the keys used as "
            b"arguments\n\n")
        r = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=ca,
                        ssl_check_hostname=False, username="admin", password=ADMIN_PW)
        assert r.xlen("s") == 1
        r.close()
        with pytest.raises(redis.exceptions.ResponseError, match="^WRONGPASS"):
            redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=ca,
                        ssl_check_hostname=False, username="alice", password="bad").ping()
        # The plaintext listener (redis.auth none) still serves anonymous on loopback.
        assert Conn(b.redis_port)("XLEN", "s") == b":1\r\n"
    finally:
        b.stop()
