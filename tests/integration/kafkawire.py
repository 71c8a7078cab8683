"""A small hand-written Kafka wire client for tests that real clients cannot express:
malformed frames, exact versions (including flexible ones), raw record batches.

Encoders take `flex` to switch between classic and compact (KIP-482) encodings.
"""
import socket
import struct

from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.util import calc_crc32c


def i8(v): return struct.pack(">b", v)
def i16(v): return struct.pack(">h", v)
def i32(v): return struct.pack(">i", v)
def i64(v): return struct.pack(">q", v)


def uvarint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def string(s, flex=False):
    if s is None:
        return uvarint(0) if flex else i16(-1)
    b = s.encode()
    return (uvarint(len(b) + 1) if flex else i16(len(b))) + b


def bytes_(b, flex=False):
    if b is None:
        return uvarint(0) if flex else i32(-1)
    return (uvarint(len(b) + 1) if flex else i32(len(b))) + b


def array(items, flex=False):
    if items is None:
        return uvarint(0) if flex else i32(-1)
    return (uvarint(len(items) + 1) if flex else i32(len(items))) + b"".join(items)


def tags(flex):
    return uvarint(0) if flex else b""


def header(key, version, corr, flex, client="wire-test"):
    h = i16(key) + i16(version) + i32(corr) + string(client)
    return h + (uvarint(0) if flex else b"")


class Reader:
    def __init__(self, b, flex=False):
        self.b, self.o, self.flex = b, 0, flex

    def take(self, n):
        assert self.o + n <= len(self.b), "response truncated"
        v = self.b[self.o:self.o + n]
        self.o += n
        return v

    def i8(self): return struct.unpack(">b", self.take(1))[0]
    def i16(self): return struct.unpack(">h", self.take(2))[0]
    def i32(self): return struct.unpack(">i", self.take(4))[0]
    def i64(self): return struct.unpack(">q", self.take(8))[0]

    def uvarint(self):
        v = s = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << s
            s += 7
            if not b & 0x80:
                return v

    def string(self):
        n = self.uvarint() - 1 if self.flex else self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes(self):
        n = self.uvarint() - 1 if self.flex else self.i32()
        return None if n < 0 else self.take(n)

    def array_len(self):
        return self.uvarint() - 1 if self.flex else self.i32()

    def tags(self):
        if self.flex:
            for _ in range(self.uvarint()):
                self.uvarint()
                self.take(self.uvarint())

    def done(self):
        return self.o == len(self.b)


class Conn:
    def __init__(self, port, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.corr = 0

    def close(self):
        self.s.close()

    def send_raw(self, data):
        self.s.sendall(data)

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by the broker")
            buf += chunk
        return buf

    def recv_frame(self):
        size = struct.unpack(">i", self.recv_exact(4))[0]
        return self.recv_exact(size)

    def request(self, key, version, body, flex=False, resp_flex_header=None):
        """Sends one request; returns (correlation id, Reader over the body)."""
        self.corr += 1
        frame = header(key, version, self.corr, flex) + body
        self.s.sendall(i32(len(frame)) + frame)
        resp = self.recv_frame()
        r = Reader(resp, flex)
        corr = r.i32()
        assert corr == self.corr, (corr, self.corr)
        if resp_flex_header if resp_flex_header is not None else flex:
            r.tags()
        return r

    def closed_by_peer(self, timeout=5):
        self.s.settimeout(timeout)
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True


def make_batch(values, keys=None, compression=0):
    """A record batch v2 built by kafka-python's own encoder."""
    b = DefaultRecordBatchBuilder(magic=2, compression_type=compression, is_transactional=False,
                                  producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                  batch_size=1 << 20)
    for i, v in enumerate(values):
        b.append(i, timestamp=1700000000000 + i, key=keys[i] if keys else None, value=v,
                 headers=[])
    return bytes(b.build())


def fix_crc(batch):
    """Recomputes the CRC32C of a batch whose bytes after the CRC were changed."""
    b = bytearray(batch)
    b[17:21] = struct.pack(">I", calc_crc32c(bytes(b[21:])))
    return bytes(b)


def produce_body(topic, partition, records, acks=-1, flex=False, timeout=10000):
    part = i32(partition) + bytes_(records, flex) + tags(flex)
    t = string(topic, flex) + array([part], flex) + tags(flex)
    return string(None, flex) + i16(acks) + i32(timeout) + array([t], flex) + tags(flex)


def read_produce(r, version):
    """Returns [(topic, partition, error, base_offset)]."""
    out = []
    for _ in range(r.array_len()):
        name = r.string()
        for _ in range(r.array_len()):
            idx, err, base = r.i32(), r.i16(), r.i64()
            r.i64()
            if version >= 5:
                r.i64()
            if version >= 8:
                for _ in range(r.array_len()):
                    r.i32()
                    r.string()
                    r.tags()
                r.string()
            r.tags()
            out.append((name, idx, err, base))
        r.tags()
    r.i32()
    r.tags()
    return out
