"""TLS listeners (docs/security.md): Kafka over SSL with confluent-kafka, kafka-python and kcat,
HTTPS with curl (also an SSE subscription), Redis with redis-cli --tls and redis-py; client
certificates (mTLS) required; plaintext sent to a TLS port; certificates reloaded on SIGHUP.

Certificates are made here with the openssl command: a CA, a server certificate for 127.0.0.1
and localhost, a client certificate (CN "alice") and one from another CA.
"""
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import uuid

import pytest

from conftest import BIN, Broker


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.pem", cwd=d)


def make_cert(d, ca, name, cn, serial, server=True):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", f"/CN={cn}", "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
    ext = os.path.join(d, f"{name}.ext")
    with open(ext, "w") as f:
        if server:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        else:
            f.write("extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-set_serial", str(serial), "-days", "2", "-extfile", ext, "-out", f"{name}.pem",
            cwd=d)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("certs"))
    make_ca(d, "ca")
    make_ca(d, "otherca")
    make_cert(d, "ca", "server", "localhost", 1001)
    make_cert(d, "ca", "server2", "localhost", 2002)
    make_cert(d, "ca", "client", "alice", 3003, server=False)
    make_cert(d, "otherca", "stranger", "mallory", 4004, server=False)
    return d


class TlsBroker(Broker):
    """A broker with TLS listeners; tls_port[proto] from its "<proto>.tls: listening" lines."""

    def __init__(self, data, certs, protos=("kafka", "http", "redis"), client_auth="none",
                 extra=()):
        cfg = data + ".conf"
        os.makedirs(os.path.dirname(data), exist_ok=True)
        self.cert = os.path.join(os.path.dirname(data), "server.pem")
        self.key = os.path.join(os.path.dirname(data), "server.key")
        for src, dst in (("server.pem", self.cert), ("server.key", self.key)):
            with open(os.path.join(certs, src), "rb") as f, open(dst, "wb") as g:
                g.write(f.read())
        with open(cfg, "w") as f:
            for p in protos:
                f.write(f"{p}.tls = 127.0.0.1:0\n{p}.tls.cert.file = {self.cert}\n"
                        f"{p}.tls.key.file = {self.key}\n"
                        f"{p}.tls.ca.file = {os.path.join(certs, 'ca.pem')}\n"
                        f"{p}.tls.client.auth = {client_auth}\n")
        super().__init__(data, extra=["--config", cfg, *extra], http=True, redis=True)
        self.tls_port = {}

    def start(self):
        # Broker.start reads stdout up to "ready"; the TLS lines come before it.
        orig = self.proc
        assert orig is None
        os.makedirs(os.path.dirname(self.data), exist_ok=True)
        self.err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--data", self.data, "--kafka", "127.0.0.1:0", "--http",
             "127.0.0.1:0", "--redis", "127.0.0.1:0", "--loops", "2", *self.extra],
            stdout=subprocess.PIPE, stderr=self.err, env=self.env)
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                break
            name, _, rest = line.partition(": listening on ")
            if rest:
                port = int(rest.rsplit(":", 1)[1])
                if name.endswith(".tls"):
                    self.tls_port[name[:-4]] = port
                else:
                    setattr(self, {"kafka": "port", "http": "http_port",
                                   "redis": "redis_port"}[name], port)
            if line.startswith("ready"):
                return self
        raise AssertionError("broker did not start: " + self.stderr())


@pytest.fixture
def tb(tmp_path, certs):
    b = TlsBroker(str(tmp_path / "b" / "data"), certs).start()
    yield b
    if b.proc:
        b.stop()


def ctx(certs, client=None):
    c = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
    if client:
        c.load_cert_chain(os.path.join(certs, f"{client}.pem"), os.path.join(certs, f"{client}.key"))
    return c


def peer_serial(port, certs):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx(certs).wrap_socket(s, server_hostname="localhost") as t:
            der = t.getpeercert(binary_form=True)
    p = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                       capture_output=True, check=True)
    return int(p.stdout.decode().strip().split("=")[1], 16)


def ck_conf(b, certs, **kw):
    c = {"bootstrap.servers": f"127.0.0.1:{b.tls_port['kafka']}", "security.protocol": "SSL",
         "ssl.ca.location": os.path.join(certs, "ca.pem")}
    c.update(kw)
    return c


def test_confluent_kafka_ssl_produce_consume_large_fetch(tb, certs):
    from confluent_kafka import Consumer, Producer
    topic = "tls-" + uuid.uuid4().hex[:8]
    p = Producer(ck_conf(tb, certs, **{"linger.ms": 5}))
    payload = os.urandom(1024)
    n = 20 * 1024  # 20 MiB: fetches go out through the file-range path
    for i in range(n):
        while True:
            try:
                p.produce(topic, payload, key=str(i).encode())
                break
            except BufferError:
                p.poll(0.1)
    assert p.flush(60) == 0
    c = Consumer(ck_conf(tb, certs, **{"group.id": "g", "auto.offset.reset": "earliest",
                                       "fetch.max.bytes": 8 << 20,
                                       "max.partition.fetch.bytes": 8 << 20}))
    c.subscribe([topic])
    got = 0
    deadline = time.time() + 60
    while got < n and time.time() < deadline:
        for m in c.consume(1000, 1.0):
            assert m.error() is None, m.error()
            assert m.value() == payload
            assert int(m.key()) == got
            got += 1
    c.close()
    assert got == n
    # The consumer was told the TLS port (metadata names the listener it came through).
    from confluent_kafka.admin import AdminClient
    md = AdminClient(ck_conf(tb, certs)).list_topics(timeout=10)
    assert [b.port for b in md.brokers.values()] == [tb.tls_port["kafka"]]


def test_kafka_python_and_kcat_over_ssl(tb, certs):
    from kafka import KafkaConsumer, KafkaProducer
    topic = "kp-" + uuid.uuid4().hex[:8]
    kw = dict(bootstrap_servers=f"127.0.0.1:{tb.tls_port['kafka']}", security_protocol="SSL",
              ssl_cafile=os.path.join(certs, "ca.pem"))
    p = KafkaProducer(**kw)
    for i in range(50):
        p.send(topic, f"v{i}".encode())
    p.flush(30)
    p.close()
    c = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=10000, **kw)
    vals = []
    for m in c:  # stops at the 50th event, or after 10 s without one
        vals.append(m.value)
        if len(vals) == 50:
            break
    c.close()
    assert vals == [f"v{i}".encode() for i in range(50)]
    kc = ["kcat", "-b", f"127.0.0.1:{tb.tls_port['kafka']}", "-X", "security.protocol=ssl",
          "-X", f"ssl.ca.location={os.path.join(certs, 'ca.pem')}"]
    subprocess.run(kc + ["-P", "-t", topic], input=b"from-kcat\n", check=True, timeout=30)
    out = subprocess.run(kc + ["-C", "-t", topic, "-o", "beginning", "-e", "-q"],
                         capture_output=True, check=True, timeout=30).stdout.decode()
    assert out.split("\n")[:51] == [f"v{i}" for i in range(50)] + ["from-kcat"]


def test_https_and_sse(tb, certs):
    ca = os.path.join(certs, "ca.pem")
    base = f"https://localhost:{tb.tls_port['http']}"
    topic = "h-" + uuid.uuid4().hex[:8]
    r = subprocess.run(["curl", "-sS", "--cacert", ca, "-w", "%{http_code}", "--json",
                        json.dumps({"name": topic}), f"{base}/v1/topics"],
                       capture_output=True, timeout=30)
    assert r.stdout.decode().endswith("201"), r
    r = subprocess.run(["curl", "-sS", "--cacert", ca, "-w", "%{http_code}", "--json",
                        json.dumps({"value": "hello"}), f"{base}/v1/topics/{topic}/events"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().endswith("200"), r.stdout
    # An SSE subscription over TLS gets the event.
    sse = subprocess.Popen(["curl", "-sSN", "--cacert", ca, "--max-time", "20",
                            f"{base}/v1/subscribe?topics={topic}&from=earliest",
                            "-H", "Accept: text/event-stream"], stdout=subprocess.PIPE)
    out = b""
    while b"hello" not in out:  # read until the event arrives (curl ends after 20 s at most)
        chunk = sse.stdout.read1(4096)
        if not chunk:
            break
        out += chunk
    sse.kill()
    sse.communicate(timeout=30)
    assert b"hello" in out, out
    # Without the CA, curl refuses the certificate: it really is TLS with our certificate.
    r = subprocess.run(["curl", "-sS", f"{base}/health"], capture_output=True, timeout=30)
    assert r.returncode == 60, r


def test_redis_cli_and_redis_py_tls(tb, certs):
    import redis
    ca = os.path.join(certs, "ca.pem")
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(tb.tls_port["redis"]),
                          "--tls", "--cacert", ca, "--sni", "localhost", "XADD", "s", "*", "f",
                          "v"], capture_output=True, timeout=30)
    assert out.returncode == 0 and b"-" in out.stdout, out
    r = redis.Redis(host="127.0.0.1", port=tb.tls_port["redis"], ssl=True, ssl_ca_certs=ca,
                    ssl_check_hostname=False)
    assert r.ping()
    assert r.xlen("s") == 1
    big = os.urandom(900 << 10)  # many records each way; reads drain what OpenSSL holds
    for _ in range(3):
        r.xadd("big", {"f": big})
    got = r.xrange("big")
    assert [e[1][b"f"] for e in got] == [big] * 3
    r.close()


def test_plaintext_to_tls_port_is_closed_and_others_served(tb, certs):
    for payload in (b"\x00\x00\x00\x10" + b"\x00" * 16, b"GET / HTTP/1.1\r\n\r\n",
                    b"*1\r\n$4\r\nPING\r\n"):
        with socket.create_connection(("127.0.0.1", tb.tls_port["kafka"]), timeout=10) as s:
            s.sendall(payload)
            data = b""
            while True:  # a TLS alert at most, then the close (a reset: bytes were unread)
                try:
                    chunk = s.recv(4096)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                data += chunk
            assert len(data) < 64
    assert "TLS handshake with 127.0.0.1:" in tb.stderr()
    # An old protocol version is refused too.
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    c.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", tb.tls_port["http"]), timeout=10) as s:
        with pytest.raises(ssl.SSLError):
            c.wrap_socket(s)
    assert peer_serial(tb.tls_port["http"], certs) == 1001
    assert tb.alive()


def test_mtls_required(tmp_path, certs):
    b = TlsBroker(str(tmp_path / "m" / "data"), certs, client_auth="required",
                  extra=["--log-level", "debug"]).start()
    try:
        port = b.tls_port["redis"]

        def ping(client):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                with ctx(certs, client).wrap_socket(s, server_hostname="localhost") as t:
                    t.sendall(b"PING\r\n")
                    return t.recv(100)

        assert ping("client") == b"+PONG\r\n"
        for who in (None, "stranger"):
            with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
                r = ping(who)
                # TLS 1.3: the refusal can arrive after the client's handshake returned.
                if r == b"":
                    raise ssl.SSLError("closed")
        from confluent_kafka import Producer
        p = Producer(ck_conf(b, certs, **{
            "ssl.certificate.location": os.path.join(certs, "client.pem"),
            "ssl.key.location": os.path.join(certs, "client.key")}))
        p.produce("mtls", b"x")
        assert p.flush(30) == 0
        err = b.stderr()
        assert "principal alice" in err
        assert "TLS handshake with 127.0.0.1:" in err
    finally:
        b.stop()


def test_public_bind_needs_client_certificates(tmp_path, certs):
    """A non-loopback TLS listener without client.auth=required is refused at start; with it,
    check_exposure lets it through. 192.0.2.1 (TEST-NET-1) is on no interface here: the
    allowed listener then fails to bind, so nothing listens beyond loopback."""
    def run(auth):
        b = TlsBroker(str(tmp_path / auth / "data"), certs, protos=("kafka",),
                      client_auth=auth)
        with open(b.data + ".conf", "a") as f:
            f.write("kafka.tls = 192.0.2.1:0\n")
        with pytest.raises(AssertionError):
            b.start()
        b.proc.wait(timeout=30)
        b.err.close()
        return b.stderr()
    err = run("requested")
    assert "kafka.tls: 192.0.2.1:0 is not a loopback address" in err
    assert "client.auth=required" in err
    err = run("required")
    assert "is not a loopback address" not in err
    assert "cannot listen on 192.0.2.1:0" in err


def test_reload_on_sighup(tb, certs):
    port = tb.tls_port["kafka"]
    assert peer_serial(port, certs) == 1001
    import redis
    r = redis.Redis(host="127.0.0.1", port=tb.tls_port["redis"], ssl=True,
                    ssl_ca_certs=os.path.join(certs, "ca.pem"), ssl_check_hostname=False)
    assert r.xadd("a", {"f": "1"})
    # A broken file: the reload fails, the old certificate stays.
    with open(tb.cert, "w") as f:
        f.write("not a certificate\n")
    tb.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while "reload failed" not in tb.stderr() and time.time() < deadline:
        time.sleep(0.1)
    assert "kafka.tls: reload failed" in tb.stderr()
    assert peer_serial(port, certs) == 1001
    for src, dst in (("server2.pem", tb.cert), ("server2.key", tb.key)):
        with open(os.path.join(certs, src), "rb") as f, open(dst, "wb") as g:
            g.write(f.read())
    tb.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while peer_serial(port, certs) != 2002 and time.time() < deadline:
        time.sleep(0.1)
    assert peer_serial(port, certs) == 2002
    assert peer_serial(tb.tls_port["http"], certs) == 2002
    # The connection opened before keeps working.
    assert r.xlen("a") == 1
    r.close()
