"""Protocol-mutation fuzzing of a running broker: seed requests per protocol, mutators, and a
runner that sends mutated requests over many connections while watching the broker.

The seeds are valid requests: for Kafka the frame bodies in tests/fuzz/kafka/corpus (every API
the broker serves, at several versions, written by tests/integration/kafkawire.py or captured
from kcat, librdkafka and kafka-python with `protofuzz.py capture`, below); for Redis and HTTP
the commands and requests built here, which cover every command family and every route, plus the
files of tests/fuzz/resp/corpus and tests/fuzz/http/corpus.

A mutated request is a valid one changed by structure-aware operations (a Kafka header naming
another version or API, a Redis argument or an HTTP header replaced by a boundary value, a length
field set to 0, -1, 2^31-1 or one past the frame) and by byte-level ones (bit flips, inserted,
deleted and repeated bytes, truncation, two requests spliced). An input is one or more requests,
pipelined, sent whole, in random pieces, or dripped a byte at a time, on a new connection that
is then read briefly and closed, reset, or left open with its partial request.

Everything random comes from one seed: each worker draws from random.Random(f"{seed}/{name}/{i}"),
so a seed replays the same inputs in the same order per worker (how far a run gets depends on
time, and which worker's input reached the broker first is up to the scheduler). On a failure the
runner's last inputs are saved as files that `protofuzz.py replay` sends again.

Command line (for reproducing and for refreshing the Kafka seeds):
    protofuzz.py replay kafka|redis|http PORT FILE...
    protofuzz.py capture OUTDIR          (needs a built broker: TIDINGS_BIN)
"""
import json
import os
import random
import re
import socket
import struct
import sys
import threading
import time
from collections import deque

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz")

# ---------------------------------------------------------------------------------------------
# Values at the edges of what the codecs parse.

INT_EDGES = [0, 1, -1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF,
             -0x80000000, 0xFFFFFFFF, 0x7FFFFFFFFFFFFFFF, -0x8000000000000000]

NUMBER_TEXTS = [b"0", b"-1", b"1", b"-0", b"+1", b"00", b"2147483647", b"2147483648",
                b"-2147483649", b"4294967296", b"9223372036854775807", b"9223372036854775808",
                b"-9223372036854775808", b"-9223372036854775809", b"18446744073709551615",
                b"18446744073709551616", b"99999999999999999999999999999", b"", b" 1", b"1 ",
                b"0x10", b"1e3", b"1.5", b"nan", b"inf", b"-"]

HEX_TEXTS = [b"0", b"1", b"f", b"F", b"7fffffff", b"80000000", b"ffffffff", b"100000000",
             b"7fffffffffffffff", b"ffffffffffffffff", b"10000000000000000", b"0000000000001",
             b"-1", b"", b"g", b"1;ext=1", b" 1", b"1 "]

# Unsigned varints that mean 0, huge values, overlong encodings and an unterminated one.
VARINTS = [b"\x00", b"\x01", b"\x7f", b"\x80\x01", b"\xff\xff\xff\xff\x0f", b"\xff\xff\xff\xff\x07",
           b"\x80\x80\x80\x80\x00", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
           b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", b"\x80"]


class Mutator:
    """Byte-level and text-level mutations; every choice is drawn from rng."""

    def __init__(self, rng):
        self.rng = rng

    def int_bytes(self, width, n=None):
        v = self.rng.choice(INT_EDGES) if n is None else n
        return (v & ((1 << (8 * width)) - 1)).to_bytes(width, "big")

    def bytes_level(self, data, ops=None):
        """Applies 1 to 4 random operations; the result may be empty."""
        b = bytearray(data)
        for _ in range(ops or self.rng.randint(1, 4)):
            op = self.rng.randrange(11)
            n = len(b)
            at = self.rng.randrange(n + 1)
            if op == 0 and n:  # flip bits
                for _ in range(self.rng.randint(1, 8)):
                    i = self.rng.randrange(n)
                    b[i] ^= 1 << self.rng.randrange(8)
            elif op == 1 and n:  # an interesting byte
                b[self.rng.randrange(n)] = self.rng.choice([0, 0xFF, 0x7F, 0x80, 0x01, 0x0A,
                                                            0x0D, 0x20, 0x22, 0x5C])
            elif op == 2:  # insert random bytes
                b[at:at] = self.rng.randbytes(self.rng.choice([1, 1, 2, 4, 8, 64]))
            elif op == 3 and n:  # delete a range
                del b[at:at + self.rng.randint(1, 1 + n // 4)]
            elif op == 4 and n:  # repeat a range
                end = min(n, at + self.rng.randint(1, 64))
                b[at:at] = b[at:end] * self.rng.randint(1, 16)
            elif op == 5 and n:  # an integer field at the edge, big-endian
                w = self.rng.choice([1, 2, 4, 4, 8])
                at = self.rng.randrange(n)
                b[at:at + w] = self.int_bytes(w)
            elif op == 6 and n:  # an integer field off by one from its value
                w = self.rng.choice([2, 4])
                at = self.rng.randrange(max(1, n - w + 1))
                if at + w <= n:
                    v = int.from_bytes(b[at:at + w], "big") + self.rng.choice([-1, 1])
                    b[at:at + w] = self.int_bytes(w, v)
            elif op == 7:  # a varint at the edge
                b[at:at + self.rng.randint(0, 2)] = self.rng.choice(VARINTS)
            elif op == 8:  # truncate
                del b[at:]
            elif op == 9 and n:  # copy a range over another place
                src = self.rng.randrange(n)
                piece = b[src:src + self.rng.randint(1, 32)]
                b[at:at + len(piece)] = piece
            elif op == 10:  # line-breaking bytes, which text protocols split on
                b[at:at] = self.rng.choice([b"\r\n", b"\n", b"\r", b"\r\n\r\n", b"\x00", b" "])
        return bytes(b)

    def numbers(self, data, hex_too=False):
        """Replaces one run of digits (and, with hex_too, of hex digits) by an edge value or by
        itself plus or minus one."""
        pat = rb"[0-9A-Fa-f]+" if hex_too else rb"-?[0-9]+"
        spans = [m.span() for m in re.finditer(pat, data)]
        if not spans:
            return self.bytes_level(data, 1)
        s, e = self.rng.choice(spans)
        old = data[s:e]
        r = self.rng.random()
        if r < 0.3 and not hex_too:
            try:
                new = str(int(old) + self.rng.choice([-1, 1, 2, -2])).encode()
            except ValueError:
                new = b"0"
        else:
            new = self.rng.choice(HEX_TEXTS if hex_too else NUMBER_TEXTS)
        return data[:s] + new + data[e:]

    def splice(self, a, b):
        return a[:self.rng.randint(0, len(a))] + b[self.rng.randint(0, len(b)):]


def read_corpus(name):
    """The seed files of tests/fuzz/<name>/corpus, sorted by name."""
    d = os.path.join(CORPUS, name, "corpus")
    out = []
    for f in sorted(os.listdir(d)):
        with open(os.path.join(d, f), "rb") as fh:
            out.append(fh.read())
    return out


# ---------------------------------------------------------------------------------------------
# Kafka: frames are [int32 size][api_key int16][api_version int16][correlation int32][client]...

# Every API key the broker serves and its version range (src/proto/kafka/codec.c).
KAFKA_APIS = {0: (3, 9), 1: (4, 17), 2: (0, 7), 3: (0, 12), 8: (0, 8), 9: (0, 8), 10: (0, 4),
              11: (0, 9), 12: (0, 4), 13: (0, 5), 14: (0, 5), 15: (0, 5), 16: (0, 4),
              18: (0, 3), 19: (0, 7), 20: (0, 6), 21: (0, 2), 22: (0, 4), 32: (0, 4), 42: (0, 2),
              47: (0, 0), 33: (0, 2), 37: (0, 3), 44: (0, 1), 60: (0, 1),
              24: (0, 3), 25: (0, 3), 26: (0, 3), 28: (0, 3), 61: (0, 0), 65: (0, 0), 66: (0, 1)}

# The broker refuses larger frames (kafka.c's limit is 100 MiB): one past it, and past 2^31.
KAFKA_SIZE_EDGES = [0, 1, 4, 7, 8, -1, -0x80000000, 0x7FFFFFFF, 100 * 1024 * 1024,
                    100 * 1024 * 1024 + 1]


class KafkaProto:
    name = "kafka"

    def __init__(self):
        self.seeds = [b for b in read_corpus("kafka") if len(b) >= 8]

    @staticmethod
    def frame(body, size=None):
        return struct.pack(">i", len(body) if size is None else size) + body

    def valid(self, rng):
        body = bytearray(rng.choice(self.seeds))
        body[4:8] = struct.pack(">i", rng.randrange(1 << 31))  # correlation id
        return self.frame(bytes(body))

    def mutated(self, rng, m):
        body = bytearray(rng.choice(self.seeds))
        r = rng.random()
        if r < 0.15:  # the body of one version read as another, or as another API
            if rng.random() < 0.8:
                lo, hi = KAFKA_APIS.get(struct.unpack(">h", body[:2])[0], (0, 12))
                v = rng.choice([rng.randint(lo, hi), lo - 1, hi + 1, -1, 0x7FFF, -0x8000])
                body[2:4] = struct.pack(">h", v)
            else:
                k = rng.choice(list(KAFKA_APIS) + [-1, 4, 5, 6, 7, 17, 36, 50, 0x7FFF])
                body[0:2] = struct.pack(">h", k)
            if rng.random() < 0.5:
                body = bytearray(m.bytes_level(bytes(body), 1))
            return self.frame(bytes(body))
        if r < 0.27:  # the size field at its edges, or just past the body
            size = rng.choice(KAFKA_SIZE_EDGES + [len(body) + 1, len(body) - 1,
                                                  len(body) + 1000])
            return self.frame(bytes(body), size)
        if r < 0.33:  # the client id's length at its edges
            body[8:10] = m.int_bytes(2, rng.choice([-1, 0, 0x7FFF, -2, 1000]))
            return self.frame(bytes(body))
        if r < 0.40:  # two requests spliced
            return self.frame(m.splice(bytes(body), rng.choice(self.seeds)))
        if r < 0.45:  # a whole frame, truncated
            f = self.frame(bytes(body))
            return f[:rng.randrange(len(f))]
        out = m.bytes_level(bytes(body[8:]))  # the header's first 8 bytes stay readable
        return self.frame(bytes(body[:8]) + out)

    def probe(self, port, timeout):
        """ApiVersions v0 on a new connection: True if answered."""
        body = struct.pack(">hhih", 18, 0, 7, 5) + b"probe"
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(self.frame(body))
            size = struct.unpack(">i", recv_exact(s, 4))[0]
            resp = recv_exact(s, size)
            return struct.unpack(">i", resp[:4])[0] == 7


# ---------------------------------------------------------------------------------------------
# Redis: commands as RESP arrays or inline lines.

# Streams named here exist when the fuzzing starts (the test creates them): s (one partition),
# orders (three: orders/0..orders/2).
REDIS_COMMANDS = [
    ["PING"], ["PING", "hello"], ["ECHO", "x"], ["HELLO", "3"], ["HELLO", "2"],
    ["HELLO", "3", "SETNAME", "fz"], ["HELLO", "3", "AUTH", "default", "pw"], ["AUTH", "pw"],
    ["SELECT", "0"], ["SELECT", "1"], ["RESET"], ["CLIENT", "ID"], ["CLIENT", "SETNAME", "a"],
    ["CLIENT", "GETNAME"], ["CLIENT", "INFO"], ["CLIENT", "LIST"], ["CLIENT", "HELP"],
    ["CLIENT", "SETINFO", "LIB-NAME", "x"], ["CLIENT", "NO-EVICT", "on"],
    ["CLIENT", "KILL", "ID", "999999"], ["CLIENT", "KILL", "127.0.0.1:1"],
    ["COMMAND"], ["COMMAND", "COUNT"], ["COMMAND", "LIST"], ["COMMAND", "INFO", "xadd", "get"],
    ["COMMAND", "DOCS", "xread"], ["COMMAND", "GETKEYSANDFLAGS", "XREAD", "STREAMS", "a", "0"],
    ["COMMAND", "LIST", "FILTERBY", "PATTERN", "x*"], ["FUNCTION", "HELP"],
    ["INFO"], ["INFO", "server", "clients", "keyspace"],
    ["CONFIG", "GET", "*"], ["CONFIG", "GET", "maxmemory", "port"],
    ["CONFIG", "SET", "maxmemory", "1"], ["CONFIG", "RESETSTAT"], ["FUNCTION", "LIST"],
    ["DBSIZE"], ["KEYS", "*"], ["KEYS", "o[a-z]*s"], ["TYPE", "s"], ["TYPE", "orders/1"],
    ["EXISTS", "s", "orders", "nope"], ["SCAN", "0"], ["SCAN", "0", "MATCH", "*", "COUNT", "5",
                                                       "TYPE", "stream"],
    ["DEL", "gone"], ["UNLINK", "gone", "gone2"], ["FLUSHALL"], ["FLUSHDB", "ASYNC"],
    ["XADD", "s", "*", "f", "v"], ["XADD", "s", "*", "a", "1", "b", "2"],
    ["XADD", "s", "MAXLEN", "~", "100", "*", "f", "v"],
    ["XADD", "s", "MINID", "=", "0-1", "LIMIT", "10", "*", "f", "v"],
    ["XADD", "s", "NOMKSTREAM", "99999999999-1", "f", "v"], ["XADD", "orders/1", "*", "k", "v"],
    ["XADD", "new", "*", "k", "v"], ["XLEN", "s"], ["XRANGE", "s", "-", "+"],
    ["XADD", "s", "DELAY", "100", "*", "f", "v"],
    ["XADD", "s", "NOMKSTREAM", "DELIVERAT", "1796640000000", "MAXLEN", "5", "*", "f", "v"],
    ["XADD", "es", "*", "tidings-key", "e1", "tidings-expected-version", "no_stream", "a", "1"],
    ["XADD", "es", "*", "tidings-key", "k1", "tidings-expected-version", "exists", "a", "1"],
    ["XADD", "s", "*", "tidings-key", "e1", "tidings-expected-version", "0-1", "a", "1"],
    ["XADD", "orders/2", "*", "tidings-key", "e2", "tidings-expected-version", "exists", "b", "2"],
    ["XKEYRANGE", "es", "k1", "-", "+", "COUNT", "3"], ["XKEYRANGE", "s", "e1", "(0-1", "+"],
    ["XKEYVERSION", "es", "e1"], ["XKEYVERSION", "orders/1", "e2"],
    ["XRANGE", "orders/0", "-", "+"], ["XRANGE", "orders/1", "-", "+", "COUNT", "5"],
    ["XREVRANGE", "orders/2", "+", "-"], ["XINFO", "STREAM", "orders/1", "FULL"],
    ["XRANGE", "s", "(0-1", "+", "COUNT", "3"], ["XREVRANGE", "s", "+", "-", "COUNT", "2"],
    ["XREAD", "COUNT", "2", "STREAMS", "s", "orders/0", "0", "0"],
    ["XREAD", "BLOCK", "20", "STREAMS", "s", "$"],
    ["XTRIM", "s", "MAXLEN", "1000"], ["XTRIM", "s", "MINID", "~", "0-0", "LIMIT", "5"],
    ["XDEL", "s", "0-1", "1-1"], ["XSETID", "s", "99999999999999-0"],
    ["XSETID", "s", "1-1", "ENTRIESADDED", "5", "MAXDELETEDID", "0-1"],
    ["XGROUP", "CREATE", "s", "g", "0"], ["XGROUP", "CREATE", "n2", "g", "$", "MKSTREAM"],
    ["XGROUP", "SETID", "s", "g", "0", "ENTRIESREAD", "3"], ["XGROUP", "DESTROY", "s", "g2"],
    ["XGROUP", "CREATECONSUMER", "s", "g", "c1"], ["XGROUP", "DELCONSUMER", "s", "g", "c1"],
    ["XGROUP", "POLICY", "s", "g"], ["XGROUP", "POLICY", "s", "g", "max.deliveries", "3"],
    ["XGROUP", "POLICY", "s", "g", "NONE"], ["XGROUP", "HELP"],
    ["XREADGROUP", "GROUP", "g", "c1", "COUNT", "5", "STREAMS", "s", ">"],
    ["XREADGROUP", "GROUP", "g", "c2", "BLOCK", "20", "NOACK", "STREAMS", "s", ">"],
    ["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"],
    ["XACK", "s", "g", "0-1", "1-0"], ["XPENDING", "s", "g"],
    ["XPENDING", "s", "g", "IDLE", "0", "-", "+", "10", "c1"],
    ["XCLAIM", "s", "g", "c2", "0", "0-1", "IDLE", "5", "RETRYCOUNT", "2", "FORCE", "JUSTID"],
    ["XAUTOCLAIM", "s", "g", "c2", "0", "0-0", "COUNT", "10", "JUSTID"],
    ["XINFO", "STREAM", "s"], ["XINFO", "STREAM", "s", "FULL", "COUNT", "3"],
    ["XINFO", "GROUPS", "s"], ["XINFO", "CONSUMERS", "s", "g"], ["XINFO", "HELP"],
    ["MULTI"], ["EXEC"], ["DISCARD"], ["WATCH", "s"], ["UNWATCH"],
    ["SUBSCRIBE", "ch", "ch2"], ["PSUBSCRIBE", "c*", "[a-"], ["UNSUBSCRIBE"],
    ["PUNSUBSCRIBE", "c*"], ["PUBLISH", "ch", "msg"], ["PUBSUB", "CHANNELS", "*"],
    ["PUBSUB", "NUMSUB", "ch"], ["PUBSUB", "NUMPAT"], ["GET", "k"], ["SET", "k", "v"],
    ["AUTH", "default", "pw"], ["AUTH", "fz", "pw"], ["HELLO", "2", "AUTH", "fz", "pw"],
    ["ACL", "WHOAMI"], ["ACL", "USERS"], ["ACL", "LIST"], ["ACL", "GETUSER", "fz"],
    ["ACL", "SETUSER", "fz", "on", ">fz-password", "~*", "&*", "+@all"],
    ["ACL", "SETUSER", "fz", "resetpass", ">pw2"], ["ACL", "SETUSER", "fz", "~x*", "off"],
    ["ACL", "DELUSER", "fz", "nope"], ["ACL", "CAT"], ["ACL", "CAT", "stream"],
    ["ACL", "LOG"], ["ACL", "LOG", "2"], ["ACL", "LOG", "RESET"], ["ACL", "HELP"],
    ["QUIT"],
]

# Sequences that only mean something together.
REDIS_SEQUENCES = [
    [["MULTI"], ["XADD", "s", "*", "f", "v"], ["XLEN", "s"], ["EXEC"]],
    [["MULTI"], ["NOPE"], ["EXEC"]],
    [["MULTI"], ["XRANGE", "s", "-", "+", "COUNT", "1"], ["DISCARD"]],
    [["SUBSCRIBE", "ch"], ["PING"], ["PUBLISH", "ch", "x"], ["UNSUBSCRIBE"]],
    [["HELLO", "3"], ["SUBSCRIBE", "ch"], ["PUBLISH", "ch", "y"], ["XLEN", "s"]],
    [["XGROUP", "CREATE", "s", "g", "0"],
     ["XREADGROUP", "GROUP", "g", "c", "COUNT", "2", "STREAMS", "s", ">"],
     ["XPENDING", "s", "g"], ["XACK", "s", "g", "0-0"]],
]

REDIS_ARGS = [b"0", b"-1", b"1", b"-", b"+", b"$", b">", b"*", b"~", b"=", b"(", b"0-0", b"0-1",
              b"(0-0", b"18446744073709551615-18446744073709551615", b"18446744073709551616-0",
              b"9223372036854775807", b"-9223372036854775808", b"1-", b"-1-1", b"1e400",
              b"nan", b"", b"s", b"s/0", b"s/99999999999", b"orders", b"orders/2",
              b"orders/-1", b"orders/3", b"a" * 300, b"x" * 70000, b"\x00", b"\xff\xfe",
              b"'", b'"', b"{", b"\\x41", b"MAXLEN", b"MINID", b"LIMIT", b"COUNT", b"BLOCK",
              b"STREAMS", b"NOACK", b"JUSTID", b"FORCE", b"MKSTREAM", b"FULL", b"GROUP",
              b"IDLE", b"TIME", b"RETRYCOUNT", b"LASTID", b"ENTRIESREAD", b"g", b"c1",
              b"[", b"[^", b"\\", b"*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?x",
              b"on", b"off", b">", b"<", b"#", b"nopass", b"resetpass", b"~*", b"&*",
              b"+@all", b"allkeys", b"default"]


def resp_encode(argv):
    out = b"*%d\r\n" % len(argv)
    for a in argv:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def inline_encode(argv, rng):
    parts = []
    for a in argv:
        if rng.random() < 0.2 or any(c in a for c in b" \"'\t\\"):
            parts.append(b'"' + a.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"')
        else:
            parts.append(a)
    return b" ".join(parts) + rng.choice([b"\r\n", b"\r\n", b"\n"])


class RedisProto:
    name = "redis"

    def __init__(self):
        self.commands = [[a.encode() for a in c] for c in REDIS_COMMANDS]
        self.sequences = [[[a.encode() for a in c] for c in seq] for seq in REDIS_SEQUENCES]
        self.files = read_corpus("resp")

    def encode(self, argv, rng):
        return resp_encode(argv) if rng.random() < 0.75 else inline_encode(argv, rng)

    def valid(self, rng):
        if rng.random() < 0.15:
            return b"".join(resp_encode(c) for c in rng.choice(self.sequences))
        return self.encode(rng.choice(self.commands), rng)

    def mutated(self, rng, m):
        r = rng.random()
        argv = list(rng.choice(self.commands))
        if r < 0.45:  # arguments replaced, dropped, repeated, added
            for _ in range(rng.randint(1, 3)):
                op = rng.randrange(6)
                i = rng.randrange(len(argv))
                if op == 0:
                    argv[i] = rng.choice(REDIS_ARGS)
                elif op == 1 and len(argv) > 1:
                    del argv[i]
                elif op == 2:
                    argv.insert(i, argv[i])
                elif op == 3:
                    argv.insert(rng.randrange(len(argv) + 1), rng.choice(REDIS_ARGS))
                elif op == 4:
                    argv[0] = rng.choice(self.commands)[0]
                else:
                    argv[i] = argv[i].lower() if rng.random() < 0.5 else argv[i] * 2
            return self.encode(argv, rng)
        if r < 0.65:  # a length or count at its edges
            return m.numbers(resp_encode(argv))
        if r < 0.72:  # another RESP type where an array or bulk string belongs
            data = bytearray(resp_encode(argv))
            at = rng.choice([i for i, c in enumerate(data) if c in b"*$"])
            data[at] = rng.choice(b"+-:_,#!=(%~>|$*")
            return bytes(data)
        if r < 0.77:
            return rng.choice(self.files)
        if r < 0.85:
            return m.splice(self.valid(rng), self.valid(rng))
        return m.bytes_level(self.valid(rng))

    def probe(self, port, timeout):
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return recv_until(s, b"\r\n", timeout) == b"+PONG\r\n"


# ---------------------------------------------------------------------------------------------
# HTTP: requests as (method, target, headers, body), framed with Content-Length or chunked.

HTTP_REQUESTS = [
    ("GET", "/health", [], None), ("HEAD", "/health", [], None), ("GET", "/ready", [], None),
    ("GET", "/metrics", [], None), ("GET", "/v1/topics", [], None),
    ("POST", "/v1/topics", [], {"name": "h1", "partitions": 2,
                                "config": {"retention.ms": "60000"}}),
    ("GET", "/v1/topics/orders", [], None),
    ("PATCH", "/v1/topics/orders", [], {"config": {"retention.ms": None}, "partitions": 3}),
    ("DELETE", "/v1/topics/h1", [], None),
    ("POST", "/v1/topics/orders/events", [], {"key": "k", "value": {"a": 1},
                                              "headers": {"h": "v"}}),
    ("POST", "/v1/topics/orders/events", [], [{"value": "x", "partition": 1},
                                              {"key": "k2", "value": [1, 2, 3]}]),
    ("GET", "/v1/topics/orders/events?partition=0&offset=0&limit=5", [], None),
    ("GET", "/v1/topics/orders/events?from=earliest&limit=10&values=string", [], None),
    ("GET", "/v1/topics/orders/events?time=0", [], None),
    ("GET", "/v1/topics/table/keys/k2", [], None),
    ("GET", "/v1/topics/table/keys/k%201%2F?partition=1&values=string", [], None),
    ("GET", "/v1/topics/orders/keys/k2", [], None),
    ("GET", "/v1/topics/es/keys/k2/events?from_version=0&limit=3&values=string", [], None),
    ("GET", "/v1/topics/es/keys/k%201/events?partition=1", [], None),
    ("GET", "/v1/topics/es/tags/course:c1/events?from_version=0&limit=3&partition=0", [], None),
    ("POST", "/v1/topics/es/events", [], [{"key": "k2", "value": 1, "expected_version": 1},
                                          {"key": "k3", "value": 2, "expected_version": "exists"},
                                          {"key": "n", "value": 3,
                                           "expected_version": "no_stream"}]),
    ("POST", "/v1/topics/es/events", [], {"events": [{"key": "k2", "value": 1},
                                                     {"key": "k3", "value": 2,
                                                      "expected_version": "any"}],
                                          "condition": {"keys": ["k2", "k3"], "after": 4,
                                                        "partition": 0}}),
    ("POST", "/v1/topics/es/events", [], {"events": [{"key": "k2", "value": 1,
                                                      "tags": ["course:c1", "student:s1"]}],
                                          "condition": {"tags": ["course:c1"], "keys": ["k2"],
                                                        "after": 4}}),
    ("GET", "/v1/subscribe?topics=orders,t.%23&from=earliest", [], None),
    ("GET", "/v1/subscribe?topics=*", [("Last-Event-ID", "orders:0:1")], None),
    ("GET", "/v1/groups", [], None), ("GET", "/v1/groups/seed", [], None),
    ("POST", "/v1/groups/seed/reset", [], {"to": "earliest", "dry_run": True}),
    ("POST", "/v1/groups/seed/reset", [], {"to": "offset", "offset": 1, "topics": [
        "orders", {"topic": "t", "partitions": [0]}]}),
    ("POST", "/v1/groups/seed/reset", [], {"to": "time", "time": "2026-11-25T08:00:00.123+01:00",
                                           "topics": ["orders"], "dry_run": True}),
    ("POST", "/v1/groups/new/reset", [], {"to": "latest", "topics": [{"topic": "orders",
                                                                      "partitions": [0, 2]}]}),
    ("DELETE", "/v1/groups/nogroup", [], None),
    ("PUT", "/v1/queues/q", [], {"topic": "orders", "ack_timeout_ms": 1000, "max_deliveries": 1}),
    ("PUT", "/v1/queues/w", [], {"topic": "orders.#", "max_deliveries": "3", "backoff": {
        "initial_ms": 10, "multiplier": 2, "max_ms": 100, "jitter": 0.1}, "ordering": "key",
        "max_in_flight": 10, "max_in_flight_per_consumer": 2, "start": "earliest",
        "dead_letter_topic": "dead"}),
    ("PUT", "/v1/queues/f", [], {"topic": "orders", "forward_to": "orders.due"}),
    ("PUT", "/v1/queues/c", [], {"topic": "orders", "circuit_breaker": {
        "failure_rate": 50, "window_ms": 1000, "min_calls": 2, "open_ms": 100,
        "half_open_trials": 1}}),
    ("POST", "/v1/topics/orders/events", [], [{"key": "d1", "value": 1, "delay_ms": 50},
                                              {"value": 2, "deliver_at": "2026-12-07T12:00:00Z"},
                                              {"value": 3, "deliver_at": 1796640000000,
                                               "headers": {"tidings-delay-ms": "7"}}]),
    ("POST", "/v1/topics/orders/requests", [], {"value": {"n": 1}, "reply_to": "t",
                                                "timeout_ms": 20, "headers": {"h": "v"}}),
    ("GET", "/v1/queues", [], None), ("GET", "/v1/queues/q", [], None),
    ("POST", "/v1/queues/q/receive", [], {"max": 5, "wait_ms": 20, "consumer": "c"}),
    ("POST", "/v1/queues/q/ack", [], {"ids": ["1.0.0.1"]}),
    ("POST", "/v1/queues/q/nack", [], {"ids": ["1.0.0.1"], "delay_ms": 10, "error": "e"}),
    ("POST", "/v1/queues/q/extend", [], {"ids": ["1.0.0.1"], "ms": 100}),
    ("POST", "/v1/queues/q/receive", [], {"max": 50, "values": "base64"}),
    ("POST", "/v1/queues/q/ack", [], {"ids": ["1.0.0-9.1", "1.1.3.1"], "results": "failed"}),
    ("POST", "/v1/queues/q/nack", [], {"ids": ["1.0.10-19.1"], "delay_ms": 0,
                                       "results": "all"}),
    ("DELETE", "/v1/queues/q2", [], None),
    ("POST", "/v1/topics/orders.dlq/redrive", [], None),
    ("POST", "/v1/topics/orders.dlq/redrive", [], {"to_topic": "t", "partition": 0,
                                                   "from_offset": 0, "to_offset": 2,
                                                   "since": "2026-01-01T00:00:00Z",
                                                   "until": 99999999999999, "keep": True}),
    ("GET", "/v1/redrives", [], None), ("GET", "/v1/redrives/1", [], None),
    ("OPTIONS", "*", [], None), ("GET", "http://x/health", [], None),
]

HTTP_METHODS = [b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"HEAD", b"OPTIONS", b"CONNECT",
                b"TRACE", b"get", b"G\x00T", b"", b"X" * 200]
HTTP_VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.10", b"HTTP/0.9", b"http/1.1",
                 b"HTTP/1", b""]
HTTP_HEADERS = [(b"Content-Length", b"0"), (b"Content-Length", b"-1"),
                (b"Content-Length", b"99999999999999999999"), (b"Content-Length", b"1, 2"),
                (b"Transfer-Encoding", b"chunked"), (b"Transfer-Encoding", b"gzip, chunked"),
                (b"Transfer-Encoding", b"identity"), (b"Expect", b"100-continue"),
                (b"Connection", b"close"), (b"Connection", b"keep-alive, Upgrade"),
                (b"Upgrade", b"websocket"), (b"Last-Event-ID", b"orders:0:99999999999999999999"),
                (b"Last-Event-ID", b"\xff"), (b"Accept", b"text/event-stream"),
                (b"Content-Type", b"application/x-www-form-urlencoded"), (b"Host", b""),
                (b" Host", b"x"), (b"Host ", b"x"), (b"X", b"a" * 9000), (b"", b"empty-name"),
                (b"X-Fold", b"a\r\n b"), (b"Bad\x00Name", b"v"), (b"Host", b"evil.example"),
                (b"Host", b"[::1"), (b"Host", b"localhost:"), (b"Origin", b"http://evil.example"),
                (b"Origin", b"null"), (b"Origin", b"http://"), (b"Content-Type", b"text/plain"),
                (b"Content-Type", b"application/json; charset=utf-8"),
                (b"Access-Control-Request-Method", b"POST")]
HTTP_TARGET_BITS = [b"%00", b"%zz", b"%", b"/..", b"//", b"?", b"&", b"=", b"#", b"%2F",
                    b"limit=-1", b"limit=0", b"limit=99999999999999999999", b"offset=-1",
                    b"offset=9223372036854775808", b"partition=-1", b"partition=2147483648",
                    b"time=-9223372036854775808", b"from=bogus", b"topics=%23.%23.*",
                    b"topics=", b"values=xml", b"wait_ms=-1", b"a" * 5000]


def http_encode(method, target, headers, body, rng, chunked=None):
    """One request; body (bytes or None) framed with Content-Length, or chunked in random
    pieces."""
    if chunked is None:
        chunked = body is not None and rng.random() < 0.3
    lines = [b"%s %s HTTP/1.1" % (method, target), b"Host: localhost"]
    lines += [k + b": " + v for k, v in headers]
    payload = b""
    if body is not None and chunked:
        lines.append(b"Transfer-Encoding: chunked")
        i = 0
        while i < len(body):
            n = rng.randint(1, max(1, len(body) - i))
            ext = rng.choice([b"", b"", b";x=1"])
            payload += b"%x%s\r\n%s\r\n" % (n, ext, body[i:i + n])
            i += n
        payload += b"0\r\n" + rng.choice([b"", b"Trailer: v\r\n"]) + b"\r\n"
    elif body is not None:
        lines.append(b"Content-Type: application/json")
        lines.append(b"Content-Length: %d" % len(body))
        payload = body
    return b"\r\n".join(lines) + b"\r\n\r\n" + payload


def json_mutate(body, rng, m):
    """A JSON body changed where its parser and the routes' checks look."""
    r = rng.random()
    if r < 0.3:
        return m.numbers(body)
    if r < 0.4:
        return b"[" * 100000 + b"]" * 100000  # deep nesting
    if r < 0.5:
        return body[:rng.randrange(len(body) + 1)]
    if r < 0.6:
        return rng.choice([b"null", b"[]", b"{}", b"\"\\ud800\"", b"1e99999", b"-0", b"{\"a\":",
                           b"\xff\xfe", b"{\"name\":\"\\u0000\"}", b"[" + b"{}," * 20000 + b"{}]"])
    if r < 0.8:
        try:
            obj = json.loads(body)
        except (ValueError, RecursionError):  # an earlier mutation left no JSON
            return m.bytes_level(body)
        vals = [None, True, -1, 0, 2 ** 63, -2 ** 63 - 1, 1.5e308, "", "x" * 300, [], {},
                "orders", "../x", "\u0000", 10 ** 30]
        if isinstance(obj, dict) and obj:
            obj[rng.choice(list(obj))] = rng.choice(vals)
        elif isinstance(obj, list):  # up to 20 000 events, twice the most a request may hold
            obj = obj * min(rng.choice([1, 100, 20000]), 1 + 20000 // max(1, len(obj)))
        return json.dumps(obj).encode()
    return m.bytes_level(body)


class HttpProto:
    name = "http"

    def __init__(self):
        self.requests = [(m.encode(), t.encode(), [(k.encode(), v.encode()) for k, v in h],
                          None if b is None else json.dumps(b).encode())
                         for m, t, h, b in HTTP_REQUESTS]
        self.files = read_corpus("http")

    def valid(self, rng):
        return http_encode(*rng.choice(self.requests), rng)

    def mutated(self, rng, m):
        method, target, headers, body = rng.choice(self.requests)
        headers = list(headers)
        r = rng.random()
        if r < 0.5:  # structure: method, target, version, headers, body
            version = b"HTTP/1.1"
            chunked = body is not None and rng.random() < 0.3
            for _ in range(rng.randint(1, 3)):
                op = rng.randrange(6)
                if op == 0:
                    method = rng.choice(HTTP_METHODS)
                elif op == 1:
                    at = rng.randrange(len(target) + 1)
                    target = target[:at] + rng.choice(HTTP_TARGET_BITS) + target[at:]
                elif op == 2:
                    version = rng.choice(HTTP_VERSIONS)
                elif op == 3:
                    headers.append(rng.choice(HTTP_HEADERS))
                elif op == 4:
                    body = json_mutate(body or b"{}", rng, m)
                else:
                    chunked = not chunked
            req = http_encode(method, target, headers, body, rng, chunked)
            return req.replace(b"HTTP/1.1\r\n", version + b"\r\n", 1)
        req = self.valid(rng) if body is None else http_encode(method, target, headers, body,
                                                              rng)
        if r < 0.7:  # a Content-Length or a chunk size at its edges
            return m.numbers(req, hex_too=b"chunked" in req and rng.random() < 0.5)
        if r < 0.75:
            return rng.choice(self.files)
        if r < 0.82:
            return m.splice(req, self.valid(rng))
        return m.bytes_level(req)

    def probe(self, port, timeout):
        return http_get(port, "/health", timeout)[0] == 200


def http_get(port, path, timeout):
    """(status, body) of one GET on a new connection that asks to be closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def recv_until(s, want, timeout):
    end = time.monotonic() + timeout
    buf = b""
    while want not in buf and time.monotonic() < end:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


PROTOCOLS = {"kafka": KafkaProto, "redis": RedisProto, "http": HttpProto}

# ---------------------------------------------------------------------------------------------
# The runner.


class Input:
    """What one connection sends: pieces (sent with `pause` seconds between them) and how it
    ends: 'read' (read briefly, then close), 'reset' (close with RST), 'half' (shut down
    writing, then read), 'keep' (left open, partial request and all, until the run ends)."""

    def __init__(self, pieces, pause, end):
        self.pieces, self.pause, self.end = pieces, pause, end

    def data(self):
        return b"".join(self.pieces)

    def describe(self):
        return (f"{len(self.pieces)} piece(s), {len(self.data())} bytes, pause {self.pause}s, "
                f"end {self.end}: {self.data()[:300]!r}")


class Fuzzer:
    """Runs `workers` threads that each open connection after connection to port until
    `seconds` have passed, while the main thread probes every listener once a second. failure
    is None while all is well, else a sentence; history keeps each worker's last inputs."""

    READ_QUIET = 0.03  # how long a reply may pause before we stop reading it
    READ_MAX = 0.25  # the longest we read one connection's replies
    PROBE_TIMEOUT = 20.0  # a listener that cannot answer a probe this long is stuck
    KEEP_MAX = 32  # connections left open with partial requests, per worker
    INPUT_MAX = 4 << 20  # bytes one connection sends at most

    STALL_AFTER = 5.0  # a probe slower than this calls on_stall (at most 3 times a run)

    def __init__(self, proto, port, seed, seconds, alive, probes, workers=3, on_stall=None):
        self.proto, self.port, self.seed, self.seconds = proto, port, seed, seconds
        self.alive, self.probes, self.workers = alive, probes, workers
        self.on_stall, self.stalls = on_stall, 0
        self.failure = None
        self.stop = threading.Event()
        self.history = [deque(maxlen=25) for _ in range(workers)]
        self.sent = [0] * workers
        self.lock = threading.Lock()
        self.slowest = (0.0, None)  # the input that took longest to send and read
        self.slowest_probe = 0.0

    def fail(self, why):
        with self.lock:
            if self.failure is None:
                self.failure = why
        self.stop.set()

    def make_input(self, rng, m):
        n = rng.choice([1] * 12 + [2, 3, 5, 8] * 2 + [rng.randint(10, 100)])
        if rng.random() < 0.05:  # one request repeated
            msg = self.proto.mutated(rng, m)
            msgs = [msg] * min(rng.randint(2, 200), 1 + self.INPUT_MAX // max(1, len(msg)))
        else:
            msgs, size = [], 0
            while len(msgs) < n and size < self.INPUT_MAX:
                msgs.append(self.proto.valid(rng) if rng.random() < 0.2
                            else self.proto.mutated(rng, m))
                size += len(msgs[-1])
        data = b"".join(msgs)[:self.INPUT_MAX]
        if rng.random() < 0.05:
            data = data[:rng.randrange(len(data) + 1)]
        r = rng.random()
        if r < 0.65 or not data:
            pieces, pause = [data], 0
        elif r < 0.9:  # random pieces
            cuts = sorted(rng.randrange(len(data)) for _ in range(rng.randint(1, 8)))
            pieces = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
            pause = rng.choice([0, 0.001, 0.005])
        else:  # slow drip: the first bytes one at a time
            k = min(len(data), rng.randint(1, 48))
            pieces = [data[i:i + 1] for i in range(k)] + [data[k:]]
            pause = 0.002
        end = rng.choices(["read", "reset", "half", "keep"], [80, 8, 7, 5])[0]
        return Input([p for p in pieces if p], pause, end)

    def connect(self):
        for attempt in range(50):
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                s.settimeout(self.READ_QUIET)
                return s
            except OSError:
                if not self.alive():
                    return None
                time.sleep(0.02 * (attempt + 1))
        self.fail(f"{self.proto.name}: cannot connect to port {self.port} for 10 s or more")
        return None

    def drain(self, s):
        end = time.monotonic() + self.READ_MAX
        try:
            while time.monotonic() < end:
                if not s.recv(1 << 16):
                    return
        except OSError:
            return

    def send(self, inp, keep):
        s = self.connect()
        if s is None:
            return
        try:
            for i, p in enumerate(inp.pieces):
                if i and inp.pause:
                    time.sleep(inp.pause)
                s.sendall(p)
        except OSError:
            pass  # the broker closed the connection: refusing bad input is its right
        if inp.end == "keep":
            keep.append(s)
            if len(keep) > self.KEEP_MAX:
                keep.popleft().close()
            return
        try:
            if inp.end == "reset":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                if inp.end == "half":
                    s.shutdown(socket.SHUT_WR)
                self.drain(s)
        except OSError:
            pass
        s.close()

    def worker(self, i, deadline):
        rng = random.Random(f"{self.seed}/{self.proto.name}/{i}")
        m = Mutator(rng)
        keep = deque()
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                inp = self.make_input(rng, m)
                self.history[i].append(inp)
                t = time.monotonic()
                self.send(inp, keep)
                t = time.monotonic() - t
                if t > self.slowest[0]:
                    self.slowest = (t, inp)
                self.sent[i] += 1
                if not self.alive():
                    self.fail(f"{self.proto.name}: the broker died")
        except Exception as e:  # a bug in the fuzzer itself must not pass silently
            self.fail(f"{self.proto.name}: worker {i} raised {e!r}")
        finally:
            for s in keep:
                s.close()

    def run(self):
        deadline = time.monotonic() + self.seconds
        threads = [threading.Thread(target=self.worker, args=(i, deadline), daemon=True)
                   for i in range(self.workers)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=1.0 / len(threads))
            if not self.alive():
                self.fail(f"{self.proto.name}: the broker died")
            elif not self.stop.is_set():
                self.probe_all()
        return self.failure

    def probe_all(self):
        for name, (proto, port) in self.probes.items():
            t = time.monotonic()
            timer = None
            if self.on_stall and self.stalls < 3:  # while it is stalled: where is the broker?
                timer = threading.Timer(self.STALL_AFTER, self.stalled, args=(name,))
                timer.start()
            try:
                ok = proto.probe(port, self.PROBE_TIMEOUT)
            except OSError as e:
                ok = e
            if timer:
                timer.cancel()
            self.slowest_probe = max(self.slowest_probe, time.monotonic() - t)
            if ok is not True:
                if self.alive():
                    self.fail(f"{self.proto.name}: the {name} listener did not answer a probe "
                              f"within {self.PROBE_TIMEOUT} s ({ok})")
                return

    def stalled(self, name):
        self.stalls += 1
        self.on_stall(f"{self.proto.name}: the {name} probe has waited {self.STALL_AFTER} s")

    def save(self, outdir):
        """Writes each worker's last inputs (oldest first) as NNN-wW.bin, with what each was in
        inputs.txt; returns the directory."""
        os.makedirs(outdir, exist_ok=True)
        with open(os.path.join(outdir, "inputs.txt"), "w") as idx:
            idx.write(f"seed {self.seed}, protocol {self.proto.name}, failure: {self.failure}\n")
            for w, hist in enumerate(self.history):
                for k, inp in enumerate(hist):
                    name = f"{k:03d}-w{w}.bin"
                    with open(os.path.join(outdir, name), "wb") as f:
                        f.write(inp.data())
                    idx.write(f"{name}: {inp.describe()}\n")
        return outdir

    def last_inputs(self, n=5):
        out = []
        for w, hist in enumerate(self.history):
            for inp in list(hist)[-n:]:
                out.append(f"worker {w}: {inp.describe()}")
        return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Command line: replay saved inputs; capture real clients' Kafka requests as seeds.


def replay(proto, port, files):
    """Sends each file on its own connection, reads the replies, and says whether the port still
    answers a probe afterwards."""
    p = PROTOCOLS[proto]()
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(data)
                s.settimeout(0.5)
                got = s.recv(1 << 16)
        except OSError as e:
            got = repr(e).encode()
        print(f"{f}: sent {len(data)} bytes, got {got[:200]!r}")
    print("probe:", p.probe(port, 10))


class _Capture:
    """A proxy on 127.0.0.2:port in front of a broker on 127.0.0.1:port (which advertises
    127.0.0.2, so that clients come back through the proxy) keeping every request body."""

    def __init__(self, port):
        self.port, self.bodies = port, []
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.2", port))
        self.ls.listen(64)
        self.client = "?"
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            c, _ = self.ls.accept()
            b = socket.create_connection(("127.0.0.1", self.port))
            tag = self.client
            threading.Thread(target=self.pipe, args=(c, b, tag), daemon=True).start()
            threading.Thread(target=self.pipe, args=(b, c, None), daemon=True).start()

    def pipe(self, src, dst, tag):
        buf = b""
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                dst.sendall(chunk)
                if tag is None:
                    continue
                buf += chunk
                while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">i", buf[:4])[0]:
                    n = struct.unpack(">i", buf[:4])[0]
                    self.bodies.append((tag, buf[4:4 + n]))
                    buf = buf[4 + n:]
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def capture(outdir):
    """Runs kcat, librdkafka (confluent-kafka) and kafka-python through a recording proxy and
    writes one file per (client, API, version) into outdir."""
    import subprocess
    import tempfile
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from conftest import Broker
    tmp = tempfile.mkdtemp(prefix="tidings-capture-")
    b = Broker(os.path.join(tmp, "data"), extra=["--advertised-host", "127.0.0.2"]).start()
    cap = _Capture(b.port)
    boot = f"127.0.0.2:{b.port}"
    try:
        _capture_clients(cap, boot, subprocess)
    finally:
        b.stop()
    names = {0: "produce", 1: "fetch", 2: "listoffsets", 3: "metadata", 8: "offsetcommit",
             9: "offsetfetch", 10: "findcoordinator", 11: "joingroup", 12: "heartbeat",
             13: "leavegroup", 14: "syncgroup", 15: "describegroups", 16: "listgroups",
             18: "apiversions", 19: "createtopics", 20: "deletetopics", 21: "deleterecords",
             22: "initproducerid", 32: "describeconfigs", 33: "alterconfigs",
             37: "createpartitions", 42: "deletegroups", 44: "incrementalalterconfigs",
             47: "offsetdelete", 60: "describecluster"}
    seen = set()
    os.makedirs(outdir, exist_ok=True)
    for tag, body in cap.bodies:
        key, ver = struct.unpack(">hh", body[:4])
        name = f"{tag}-{names.get(key, f'api{key}')}{ver}"
        if name in seen or key not in names:
            continue
        seen.add(name)
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(body)
    print(f"{len(seen)} seeds from {len(cap.bodies)} requests in {outdir}")


def _capture_clients(cap, boot, subprocess):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import (AdminClient, ConfigResource, NewPartitions, NewTopic)
    import kafka
    import kafka.admin
    cap.client = "rdkafka"
    admin = AdminClient({"bootstrap.servers": boot})
    for f in admin.create_topics([NewTopic("orders", 3, 1), NewTopic("t", 1, 1)]).values():
        f.result(20)
    p = Producer({"bootstrap.servers": boot, "enable.idempotence": True,
                  "compression.type": "lz4", "linger.ms": 5})
    for i in range(20):
        p.produce("orders", key=b"k%d" % i, value=b"v%d" % i, headers=[("h", b"v")])
    p.flush(20)
    c = Consumer({"bootstrap.servers": boot, "group.id": "seed", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe(["orders"])
    got, end = 0, time.time() + 30
    while got < 5 and time.time() < end:
        msg = c.poll(0.5)
        if msg is not None and not msg.error():
            got += 1
            c.commit(msg, asynchronous=False)
    c.offsets_for_times([TopicPartition("orders", 0, 0)], timeout=10)
    c.get_watermark_offsets(TopicPartition("orders", 0), timeout=10)
    c.close()
    res = ConfigResource(ConfigResource.Type.TOPIC, "orders")
    for f in admin.describe_configs([res]).values():
        f.result(20)
    res.set_config("retention.ms", "3600000")
    for f in admin.alter_configs([res]).values():
        f.result(20)
    for f in admin.create_partitions([NewPartitions("t", 2)]).values():
        f.result(20)
    admin.list_groups(timeout=10)
    for f in admin.delete_topics(["t"]).values():
        f.result(20)
    cap.client = "kcat"
    subprocess.run(["kcat", "-P", "-b", boot, "-t", "orders", "-z", "snappy"], input=b"a\nb\n",
                   check=True, timeout=30)
    subprocess.run(["kcat", "-C", "-b", boot, "-t", "orders", "-o", "beginning", "-c", "2",
                    "-e", "-q"], check=True, timeout=30, capture_output=True)
    subprocess.run(["kcat", "-L", "-b", boot], check=True, timeout=30, capture_output=True)
    cap.client = "kafkapython"
    kp = kafka.KafkaProducer(bootstrap_servers=boot, compression_type="gzip")
    for i in range(5):
        kp.send("orders", key=b"k", value=b"x%d" % i)
    kp.flush()
    kp.close()
    kc = kafka.KafkaConsumer("orders", bootstrap_servers=boot, group_id="seed2",
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    for i, _ in enumerate(kc):
        if i >= 3:
            break
    kc.commit()
    kc.close()
    ka = kafka.admin.KafkaAdminClient(bootstrap_servers=boot)
    ka.create_topics([kafka.admin.NewTopic("t2", 1, 1)])
    ka.describe_configs([kafka.admin.ConfigResource(kafka.admin.ConfigResourceType.TOPIC, "t2")])
    ka.list_consumer_groups()
    ka.describe_consumer_groups(["seed2"])
    ka.list_consumer_group_offsets("seed2")
    ka.delete_consumer_groups(["seed2"])
    ka.delete_topics(["t2"])
    ka.close()


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "replay":
        replay(sys.argv[2], int(sys.argv[3]), sys.argv[4:])
    elif len(sys.argv) == 3 and sys.argv[1] == "capture":
        capture(sys.argv[2])
    else:
        sys.exit(__doc__)
