"""Comparing tidings with a real Redis (issue 23): the same commands sent to a tidings broker and
to Debian's redis-server 7 started here, and their replies compared byte for byte.

    from redis_peer import peer, pair  # noqa: F401 (fixtures)

    def test_something(pair):
        ours, theirs = pair            # two raw connections (redis_peer.Conn)
        pair.same("XADD", "s", "1-1", "a", "b")     # asserts equal replies, returns ours
        a, b = pair.both("XINFO", "STREAM", "s")    # both replies, to compare by hand

`peer` is a redis-server for the whole module (FLUSHALL and CONFIG RESETSTAT before each test
that uses `pair`, and the settings a test changed set back); `pair` gives a fresh tidings broker
(HTTP and Redis listeners) and one connection to each. Replies are raw RESP bytes, so RESP2 and
RESP3 shapes, error texts and the order of fields are all compared. Where Redis is not
deterministic (generated IDs, times) the test compares what is (normalize() or by hand).
"""
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import Broker

# The settings a test may change on the peer, with Redis 7's defaults, set back after each test.
PEER_DEFAULTS = {
    "stream-node-max-entries": "100",
    "stream-node-max-bytes": "4096",
    "notify-keyspace-events": "",
}


def encode(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Conn:
    """A raw RESP connection: send a command, read one whole reply as its bytes."""

    def __init__(self, port, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError(self.buf)
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line + b"\r\n"

    def reply(self):
        """One whole reply (aggregates with their elements) as bytes."""
        line = self._line()
        t = line[:1]
        if t in b"$=!" and line[1:3] != b"-1" and line[1:2] != b"?":
            n = int(line[1:-2])
            while len(self.buf) < n + 2:
                self._fill()
            body, self.buf = self.buf[:n + 2], self.buf[n + 2:]
            return line + body
        if t in b"*%~>|" and line[1:3] != b"-1":
            n = int(line[1:-2]) * (2 if t in b"%|" else 1)
            out = line + b"".join(self.reply() for _ in range(n))
            if t == b"|":  # an attribute comes before the reply it describes
                out += self.reply()
            return out
        return line

    def send(self, *args):
        self.s.sendall(encode(*args))

    def __call__(self, *args):
        self.send(*args)
        return self.reply()

    def close(self):
        self.s.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    """The port of a redis-server 7 (Debian's) for the module's tests."""
    exe = shutil.which("redis-server")
    if not exe:
        pytest.fail("redis-server is missing: scripts/install-deps.sh --test installs it")
    d = str(tmp_path_factory.mktemp("redis-peer"))
    port = free_port()
    p = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", d], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while True:
        try:
            Conn(port).close()
            break
        except OSError:
            assert time.time() < deadline, "redis-server did not start"
            time.sleep(0.05)
    yield port
    p.terminate()
    p.wait(timeout=20)


class Pair:
    """A connection to tidings and one to the peer."""

    def __init__(self, broker, peer_port):
        self.broker = broker
        self.peer_port = peer_port
        self.ours = Conn(broker.redis_port)
        self.theirs = Conn(peer_port)

    def __iter__(self):
        return iter((self.ours, self.theirs))

    def both(self, *args):
        return self.ours(*args), self.theirs(*args)

    def same(self, *args):
        a, b = self.both(*args)
        assert a == b, f"{args}:\n tidings: {a!r}\n redis:   {b!r}"
        return a

    def connect(self):
        """Another pair of connections to the same two servers."""
        return Conn(self.broker.redis_port), Conn(self.peer_port)


@pytest.fixture
def pair(tmp_path, peer):
    c = Conn(peer)
    assert c("FLUSHALL") == b"+OK\r\n"
    c("CONFIG", "RESETSTAT")
    c.close()
    b = Broker(str(tmp_path / "data"), http=True, redis=True,
               extra=["--set", "redis.allow.flush=true"]).start()
    p = Pair(b, peer)
    yield p
    p.ours.close()
    p.theirs.close()
    c = Conn(peer)
    for k, v in PEER_DEFAULTS.items():
        c("CONFIG", "SET", k, v)
    c.close()
    b.stop()


ID_RE = re.compile(rb"(?:\$\d+\r\n)?\b\d{13}-\d+\b")


def normalize(reply, ids=True):
    """Masks what differs between two servers by design: generated stream IDs (ms-seq with a
    13-digit ms, a clock time), with the length line of their bulk string, become <id>."""
    if ids:
        reply = ID_RE.sub(b"<id>", reply)
    return reply


def peer_version(port):
    c = Conn(port)
    info = c("INFO", "server")
    c.close()
    m = re.search(rb"redis_version:(\S+)", info)
    return m.group(1).decode() if m else None


__all__ = ["Conn", "Pair", "encode", "normalize", "pair", "peer", "peer_version"]
