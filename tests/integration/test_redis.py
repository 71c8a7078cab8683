"""The Redis protocol listener with redis-py, redis-cli and raw sockets: connection and server
commands in RESP2 and RESP3, Redis's error texts, pipelines of 10 000 commands, MULTI/EXEC,
authentication, CLIENT, the keyspace (a stream key is a topic), and malformed input that is
answered with Redis's protocol error while every other client goes on."""
import socket
import subprocess
import threading
import time

import pytest
import redis

from conftest import Broker
from test_http import call


@pytest.fixture
def rb(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True, redis=True).start()
    yield b
    if b.proc:
        b.stop()


def client(b, **kw):
    return redis.Redis(host="127.0.0.1", port=b.redis_port, socket_timeout=10, **kw)


class Raw:
    """A socket that sends bytes and reads replies as they come."""

    def __init__(self, b):
        self.s = socket.create_connection(("127.0.0.1", b.redis_port), timeout=10)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.send(out)

    def read_until(self, want, timeout=10):
        end = time.time() + timeout
        while want not in self.buf:
            assert time.time() < end, self.buf
            chunk = self.s.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        assert want in self.buf, self.buf
        i = self.buf.index(want) + len(want)
        got, self.buf = self.buf[:i], self.buf[i:]
        return got

    def closed(self, timeout=10):
        """Whether the server closed the connection (after what it sent)."""
        self.s.settimeout(timeout)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


def test_connection_commands_resp2_and_resp3(rb):
    r = client(rb)
    assert r.ping() is True
    assert r.echo("hi") == b"hi"
    raw = Raw(rb)
    raw.send(b"PING\r\n")  # inline
    assert raw.read_until(b"\r\n") == b"+PONG\r\n"
    raw.send(b"PING 'a b'\r\n")
    assert raw.read_until(b"a b\r\n") == b"$3\r\na b\r\n"
    raw.cmd("HELLO", "3")
    hello = raw.read_until(b"modules\r\n*0\r\n")
    assert hello.startswith(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n")
    assert b"$5\r\nproto\r\n:3\r\n" in hello
    raw.cmd("CLIENT", "GETNAME")
    assert raw.read_until(b"\r\n") == b"_\r\n"  # RESP3 null
    raw.cmd("HELLO", "2", "SETNAME", "raw-1")
    assert b"proto" in raw.read_until(b"modules\r\n*0\r\n")
    raw.cmd("CLIENT", "GETNAME")
    assert raw.read_until(b"raw-1\r\n") == b"$5\r\nraw-1\r\n"
    raw.cmd("HELLO", "4")
    assert raw.read_until(b"\r\n") == b"-NOPROTO unsupported protocol version\r\n"
    raw.cmd("RESET")
    assert raw.read_until(b"\r\n") == b"+RESET\r\n"
    raw.cmd("CLIENT", "GETNAME")
    assert raw.read_until(b"\r\n") == b"$-1\r\n"  # RESP2 again, name gone
    raw.cmd("QUIT")
    assert raw.read_until(b"\r\n") == b"+OK\r\n"
    assert raw.closed()
    # redis-cli, in RESP2 and RESP3.
    cli = ["redis-cli", "-p", str(rb.redis_port)]
    assert subprocess.run(cli + ["PING"], capture_output=True, timeout=30).stdout == b"PONG\n"
    out = subprocess.run(cli + ["-3", "HELLO", "3"], capture_output=True, timeout=30).stdout
    assert b"proto" in out and b"3" in out


def test_error_texts(rb):
    r = client(rb)
    cases = [
        (("FOO", "a", "b"), "unknown command 'FOO', with args beginning with: 'a' 'b' "),
        (("GET", "k"), "unknown command 'GET', with args beginning with: 'k' "),
        (("ECHO",), "wrong number of arguments for 'echo' command"),
        (("CLIENT", "SETNAME"), "wrong number of arguments for 'client|setname' command"),
        (("CLIENT", "NOPE"), "unknown subcommand 'NOPE'. Try CLIENT HELP."),
        (("SELECT", "1"), "DB index is out of range"),
        (("SELECT", "x"), "value is not an integer or out of range"),
        (("CLIENT", "SETNAME", "a b"),
         "Client names cannot contain spaces, newlines or special characters."),
        (("AUTH", "pw"), "AUTH <password> called without any password configured for the "
                         "default user. Are you sure your configuration is correct?"),
        (("EXEC",), "EXEC without MULTI"),
        (("DISCARD",), "DISCARD without MULTI"),
        (("FLUSHALL",), "FLUSHALL is disabled on this broker: it deletes every topic. Set "
                        "redis.allow.flush=true in its configuration to allow it"),
        (("CONFIG", "SET", "databases", "4"),
         "CONFIG SET failed (possibly related to argument 'databases') - can't set immutable "
         "config"),
        (("CONFIG", "SET", "nope", "1"),
         "Unknown option or number of arguments for CONFIG SET - 'nope'"),
    ]
    for args, text in cases:
        with pytest.raises(redis.ResponseError) as e:
            r.execute_command(*args)
        assert str(e.value) == text, args
    assert r.select(0) is True
    assert r.ping() is True  # the connection goes on after errors


def test_pipeline_of_ten_thousand(rb):
    r = client(rb)
    p = r.pipeline(transaction=False)
    for i in range(10000):
        p.echo(str(i))
    assert p.execute() == [str(i).encode() for i in range(10000)]
    # The same as one write of inline commands.
    raw = Raw(rb)
    raw.send(b"PING\r\n" * 10000)
    got = raw.read_until(b"+PONG\r\n" * 10000)
    assert got.count(b"+PONG\r\n") == 10000


def test_multi_exec(rb):
    r = client(rb)
    p = r.pipeline(transaction=True)
    p.echo("a").ping().echo("b")
    assert p.execute() == [b"a", True, b"b"]
    raw = Raw(rb)
    raw.cmd("MULTI")
    raw.cmd("ECHO", "x")
    raw.cmd("MULTI")
    raw.cmd("EXEC")
    got = raw.read_until(b"*1\r\n$1\r\nx\r\n")
    assert got == (b"+OK\r\n+QUEUED\r\n-ERR MULTI calls can not be nested\r\n"
                   b"*1\r\n$1\r\nx\r\n")
    # A command refused while queueing aborts the transaction.
    raw.cmd("MULTI")
    raw.cmd("NOSUCH")
    raw.cmd("ECHO", "y")
    raw.cmd("EXEC")
    got = raw.read_until(b"previous errors.\r\n")
    assert got == (b"+OK\r\n-ERR unknown command 'NOSUCH', with args beginning with: \r\n"
                   b"+QUEUED\r\n-EXECABORT Transaction discarded because of previous errors.\r\n")
    raw.cmd("MULTI")
    raw.cmd("ECHO", "z")
    raw.cmd("DISCARD")
    raw.cmd("ECHO", "after")
    assert raw.read_until(b"after\r\n") == b"+OK\r\n+QUEUED\r\n+OK\r\n$5\r\nafter\r\n"
    # Errors at run time are replies inside the array, as in Redis.
    raw.cmd("MULTI")
    raw.cmd("SELECT", "9")
    raw.cmd("ECHO", "ok")
    raw.cmd("EXEC")
    got = raw.read_until(b"$2\r\nok\r\n")
    assert got.endswith(b"*2\r\n-ERR DB index is out of range\r\n$2\r\nok\r\n")


def test_auth(tmp_path):
    b = Broker(str(tmp_path / "data"), redis=True,
               extra=["--set", "redis.password=s3cret"]).start()
    try:
        r = client(b)
        with pytest.raises(redis.AuthenticationError):
            r.ping()
        raw = Raw(b)
        raw.cmd("PING")
        assert raw.read_until(b"\r\n") == b"-NOAUTH Authentication required.\r\n"
        raw.cmd("AUTH", "wrong")
        assert raw.read_until(b"\r\n") == \
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        raw.cmd("HELLO", "3")
        assert raw.read_until(b"\r\n").startswith(b"-NOAUTH HELLO must be called")
        raw.cmd("HELLO", "3", "AUTH", "default", "s3cret")
        assert b"proto" in raw.read_until(b"modules\r\n*0\r\n")
        raw.cmd("PING")
        assert raw.read_until(b"\r\n") == b"+PONG\r\n"
        ok = client(b, password="s3cret")
        assert ok.ping() is True
        assert client(b, username="default", password="s3cret").ping() is True
        assert ok.config_get("requirepass") == {"requirepass": "s3cret"}
    finally:
        b.stop()


def test_client_list_and_kill(rb):
    a = client(rb)
    a.client_setname("alpha")
    victim = Raw(rb)
    victim.cmd("CLIENT", "SETNAME", "victim")
    assert victim.read_until(b"\r\n") == b"+OK\r\n"
    victim.cmd("CLIENT", "ID")
    vid = int(victim.read_until(b"\r\n")[1:-2])
    clients = {c["name"]: c for c in a.client_list()}
    assert clients["victim"]["id"] == str(vid)
    assert clients["alpha"]["cmd"] == "client|list"
    assert a.client_id() != vid
    assert a.execute_command("CLIENT", "KILL", "ID", vid) == 1
    assert victim.closed()
    assert "victim" not in {c["name"] for c in a.client_list()}
    info = a.client_info()
    assert info["name"] == "alpha"
    # The old form, by address.
    other = Raw(rb)
    other.cmd("CLIENT", "INFO")
    line = other.read_until(b"\n\r\n").decode()
    addr = line.split(" addr=")[1].split()[0]
    assert a.execute_command("CLIENT", "KILL", addr) == b"OK"
    assert other.closed()
    with pytest.raises(redis.ResponseError, match="No such client"):
        a.execute_command("CLIENT", "KILL", "1.2.3.4:5")


def test_keyspace_is_the_topics(rb):
    for name in ("orders.eu", "orders.us", "billing"):
        assert call(rb, "POST", "/v1/topics", {"name": name})[0] == 201
    r = client(rb)
    assert r.dbsize() == 3
    assert sorted(r.keys("*")) == [b"billing", b"orders.eu", b"orders.us"]
    assert sorted(r.keys("orders.*")) == [b"orders.eu", b"orders.us"]
    assert r.keys("o?ders.[e]u") == [b"orders.eu"]
    assert r.type("billing") == b"stream" and r.type("nope") == b"none"
    assert r.exists("billing", "nope", "billing") == 2
    assert sorted(r.scan_iter(count=1)) == [b"billing", b"orders.eu", b"orders.us"]
    assert sorted(r.scan_iter(match="orders.*")) == [b"orders.eu", b"orders.us"]
    assert list(r.scan_iter(_type="hash")) == []
    cursor, keys = r.scan(0, count=1000)
    assert cursor == 0 and len(keys) == 3
    assert r.info("keyspace") == {"db0": {"keys": 3, "expires": 0, "avg_ttl": 0}}
    assert r.exists(b"billing\x00x") == 0 and r.type(b"billing\x00x") == b"none"
    assert r.delete(b"billing\x00x", "nope") == 0  # a NUL ends no key early
    assert r.delete("billing", "nope") == 1
    assert r.unlink("orders.us") == 1
    assert call(rb, "GET", "/v1/topics/billing")[0] == 404
    assert r.keys("*") == [b"orders.eu"]


def test_flushall_when_allowed(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True, redis=True,
               extra=["--set", "redis.allow.flush=true"]).start()
    try:
        for name in ("a", "b"):
            assert call(b, "POST", "/v1/topics", {"name": name})[0] == 201
        r = client(b)
        assert r.flushall() is True
        assert r.dbsize() == 0
    finally:
        b.stop()


def test_server_commands(rb):
    r = client(rb)
    info = r.info()
    assert info["redis_version"] == "7.0.0" and info["connected_clients"] >= 1
    assert "total_commands_processed" in r.info("stats")
    assert set(r.info("server")) >= {"redis_version", "tcp_port", "uptime_in_seconds"}
    assert r.info("server")["tcp_port"] == rb.redis_port
    assert r.config_get("maxmemory") == {"maxmemory": "0"}
    assert r.config_get("port") == {"port": str(rb.redis_port)}
    assert r.config_resetstat() is True
    # redis-py parses a reply by the command's first word: "COMMAND X" keeps them raw.
    n = r.execute_command("COMMAND COUNT")
    listed = r.execute_command("COMMAND LIST")  # commands and subcommands, as Redis 7
    assert n == r.command_count() == len([c for c in listed if b"|" not in c]) and n > 20
    assert b"client|setname" in listed
    cmds = r.command()
    assert cmds["ping"]["arity"] == -1 and "fast" in cmds["ping"]["flags"]
    info = r.execute_command("COMMAND INFO", "ping", "client|setname", "nosuch")
    assert info[0][0] == b"ping" and info[0][1] == -1
    assert info[1][0] == b"client|setname" and info[1][1] == 3
    assert info[2] is None
    docs = r.execute_command("COMMAND DOCS", "echo")
    assert docs[0] == b"echo" and b"summary" in docs[1]
    assert r.execute_command("FUNCTION", "FLUSH") == b"OK"
    assert r.execute_command("UNWATCH") is True
    assert r.execute_command("WATCH", "k") is True  # test_redis_watch.py tests what it does
    # Commands are counted per command in the broker's metrics.
    for _ in range(3):
        r.echo("m")
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{rb.http_port}/metrics", timeout=10).read()
    line = [l for l in text.decode().splitlines()
            if l.startswith('tidings_requests_total{protocol="redis",api="echo"}')]
    assert line and float(line[0].split()[-1]) >= 3


@pytest.mark.parametrize("garbage,error", [
    (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*1\r\n+PING\r\n", b"-ERR Protocol error: expected '$', got '+'\r\n"),
    (b"*1\r\n$-7\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*99999999\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*1\r\n$999999999999\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"SET \"a\r\n", b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    (b"x" * 70000, b"-ERR Protocol error: too big inline request\r\n"),
])
def test_malformed_input_is_answered_and_others_go_on(rb, garbage, error):
    other = client(rb)
    assert other.ping() is True
    raw = Raw(rb)
    raw.send(garbage)
    assert raw.read_until(b"\r\n") == error
    assert raw.closed()
    assert other.echo("still here") == b"still here"


def test_binary_garbage_and_many_clients(rb):
    """Random bytes from several connections at once: each is answered or closed, and the
    broker serves a well-behaved client throughout."""
    import random
    rnd = random.Random(7)
    good = client(rb)

    def spray(seed):
        g = random.Random(seed)
        for _ in range(20):
            try:
                s = socket.create_connection(("127.0.0.1", rb.redis_port), timeout=5)
                s.sendall(bytes(g.randrange(256) for _ in range(g.randrange(1, 400))))
                s.settimeout(0.2)
                try:
                    s.recv(4096)
                except (socket.timeout, ConnectionResetError):
                    pass
                s.close()
            except OSError:
                pass

    threads = [threading.Thread(target=spray, args=(rnd.random(),)) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(50):
        assert good.echo(str(i)) == str(i).encode()
    for t in threads:
        t.join(60)
    assert rb.alive()


def test_pubsub(rb):
    pub = client(rb)
    sub = client(rb).pubsub()
    sub.subscribe("news")
    sub.psubscribe("n*")
    assert sub.get_message(timeout=5)["type"] == "subscribe"
    assert sub.get_message(timeout=5)["type"] == "psubscribe"
    assert pub.publish("news", "hello") == 2
    assert pub.publish("other", "nobody") == 0
    got = [sub.get_message(timeout=5) for _ in range(2)]
    kinds = sorted((m["type"], m["channel"], m["data"]) for m in got)
    assert kinds == [("message", b"news", b"hello"), ("pmessage", b"news", b"hello")]
    assert pub.pubsub_channels() == [b"news"]
    assert pub.pubsub_channels("x*") == []
    assert pub.pubsub_numsub("news", "other") == [(b"news", 1), (b"other", 0)]
    assert pub.pubsub_numpat() == 1
    assert pub.info("stats")["pubsub_channels"] == 1
    sub.unsubscribe()
    sub.punsubscribe()
    end = time.time() + 5
    while pub.pubsub_numsub("news")[0][1] and time.time() < end:
        time.sleep(0.02)
    assert pub.pubsub_numsub("news") == [(b"news", 0)] and pub.pubsub_numpat() == 0


def test_subscribed_mode_rules_resp2_and_pushes_resp3(rb):
    raw = Raw(rb)
    raw.cmd("SUBSCRIBE", "a", "b")
    assert raw.read_until(b"$1\r\nb\r\n:2\r\n") == \
        b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
    raw.cmd("ECHO", "x")
    assert raw.read_until(b"\r\n") == (
        b"-ERR Can't execute 'echo': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
        b"RESET are allowed in this context\r\n")
    raw.cmd("PING")
    assert raw.read_until(b"$0\r\n\r\n") == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    raw.cmd("UNSUBSCRIBE")
    got = raw.read_until(b":0\r\n")
    assert got.count(b"unsubscribe") == 2 and got.endswith(b":0\r\n")
    raw.cmd("UNSUBSCRIBE")  # none left: one reply with a null channel
    assert raw.read_until(b":0\r\n") == b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
    raw.cmd("ECHO", "free again")
    assert raw.read_until(b"again\r\n") == b"$10\r\nfree again\r\n"
    # RESP3: pushes, and every command still allowed while subscribed.
    r3 = Raw(rb)
    r3.cmd("HELLO", "3")
    r3.read_until(b"modules\r\n*0\r\n")
    r3.cmd("SUBSCRIBE", "c")
    assert r3.read_until(b":1\r\n") == b">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"
    r3.cmd("ECHO", "y")
    assert r3.read_until(b"y\r\n") == b"$1\r\ny\r\n"
    assert client(rb).publish("c", "m") == 1
    assert r3.read_until(b"$1\r\nm\r\n") == b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"
    # RESET leaves subscribed mode.
    raw.cmd("SUBSCRIBE", "z")
    raw.read_until(b":1\r\n")
    raw.cmd("RESET")
    assert raw.read_until(b"+RESET\r\n").endswith(b"+RESET\r\n")
    assert client(rb).pubsub_numsub("z") == [(b"z", 0)]


def test_slow_subscriber_is_disconnected(rb):
    slow = Raw(rb)
    slow.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.cmd("SUBSCRIBE", "firehose")
    slow.read_until(b":1\r\n")
    pub = client(rb)
    payload = b"x" * (1 << 20)
    for _ in range(120):  # 120 MiB, never read: past the 32 MiB limit
        if pub.publish("firehose", payload) == 0:
            break
    end = time.time() + 30
    while pub.pubsub_numsub("firehose")[0][1] and time.time() < end:
        time.sleep(0.05)
    assert pub.pubsub_numsub("firehose") == [(b"firehose", 0)]
    assert pub.echo("alive") == b"alive"
    assert "bytes of messages unread" in rb.stderr()


def test_binary_channel_names(rb):
    """Channel names are binary-safe: one with a NUL is listed whole and forgotten when its
    subscriber leaves."""
    raw = Raw(rb)
    raw.cmd("SUBSCRIBE", b"a\x00b")
    assert raw.read_until(b":1\r\n") == b"*3\r\n$9\r\nsubscribe\r\n$3\r\na\x00b\r\n:1\r\n"
    pub = client(rb)
    assert pub.pubsub_channels() == [b"a\x00b"]
    assert pub.publish(b"a\x00b", "m") == 1
    assert pub.publish("a", "m") == 0
    raw.cmd("QUIT")
    raw.closed()
    end = time.time() + 10
    while pub.pubsub_channels() and time.time() < end:
        time.sleep(0.02)
    assert pub.pubsub_channels() == []
    assert pub.publish(b"a\x00b", "m") == 0
    assert pub.ping() is True
