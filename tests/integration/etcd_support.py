"""etcd for the cluster tests: a one-member etcd on free loopback ports with its own data
directory, its keys read and written over the v3 JSON gateway (keys and values in base64), and
brokers started against it.

    def test_x(tmp_path, etcd):
        b1, b2, b3 = cluster(tmp_path, etcd)      # broker ids 1..3, a prefix of their own

The `etcd` fixture stops, at the end of the test, the brokers started through `cluster()` or
`start_broker()` that still run (SIGTERM: each must exit 0 with no sanitizer report), then etcd.
etcd missing fails the test (CI installs it: scripts/install-deps.sh --test).
"""
import base64
import concurrent.futures
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import BIN, Broker

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
SESSION_MS = 2000  # cluster.session.timeout.ms in the tests: the brokers' lease TTL


def require_etcd():
    if not os.access(ETCD, os.X_OK):
        pytest.fail("etcd is not installed (the cluster tests need it): "
                    "scripts/install-deps.sh --test installs etcd-server and etcd-client",
                    pytrace=False)


# ---------------------------------------------------------------------------------------------
# The JSON gateway

def b64(v):
    if isinstance(v, str):
        v = v.encode()
    return base64.b64encode(v).decode()


def unb64(s):
    return base64.b64decode(s or "")


def prefix_end(key):
    """The range_end that selects every key starting with key."""
    b = bytearray(key.encode() if isinstance(key, str) else key)
    while b:
        if b[-1] < 0xFF:
            b[-1] += 1
            return bytes(b)
        b.pop()
    return b"\0"


def gateway(client_url, path, body, timeout=5):
    """POSTs body (a dict) to the gateway's path (/v3/kv/range, ...); returns the JSON answer."""
    req = urllib.request.Request(client_url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def _kv(d):
    return {"key": unb64(d.get("key")).decode(errors="replace"),
            "value": unb64(d.get("value")).decode(errors="replace"),
            "create_revision": int(d.get("create_revision", 0)),
            "mod_revision": int(d.get("mod_revision", 0)),
            "version": int(d.get("version", 0)),
            "lease": int(d.get("lease", 0))}


def kv_range(client_url, key, prefix=False):
    """The keys equal to key (or, prefix=True, starting with it): a list of dicts with key and
    value (decoded to str) and create_revision, mod_revision, version, lease (ints)."""
    body = {"key": b64(key)}
    if prefix:
        body["range_end"] = b64(prefix_end(key))
    return [_kv(d) for d in gateway(client_url, "/v3/kv/range", body).get("kvs", [])]


def kv_get(client_url, key):
    kvs = kv_range(client_url, key)
    return kvs[0] if kvs else None


def kv_put(client_url, key, value, lease=0):
    body = {"key": b64(key), "value": b64(value)}
    if lease:
        body["lease"] = str(lease)
    return int(gateway(client_url, "/v3/kv/put", body)["header"]["revision"])


def kv_delete(client_url, key, prefix=False):
    body = {"key": b64(key)}
    if prefix:
        body["range_end"] = b64(prefix_end(key))
    return int(gateway(client_url, "/v3/kv/deleterange", body).get("deleted", 0))


# ---------------------------------------------------------------------------------------------
# etcd

def _local_port_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A port below the ephemeral range (so that no connection's own port takes it while etcd
    is down between stop() and restart()) that binds now."""
    high = _local_port_low() - 1
    while True:
        port = random.randint(15000, high)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()


class Etcd:
    """One etcd member on 127.0.0.1 with its data in dir_/data and its log in dir_/etcd.log."""

    def __init__(self, dir_, name="t"):
        self.dir = dir_
        self.data = os.path.join(dir_, "data")
        self.log_path = os.path.join(dir_, "etcd.log")
        self.name = name
        self.client_port = self.peer_port = None
        self.proc = None
        self.log = None
        self.brokers = []  # started against it through cluster() / start_broker()

    @property
    def client_url(self):
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def url(self):
        """The coordinator's address for the brokers, without the prefix."""
        return f"etcd://127.0.0.1:{self.client_port}"

    def coordinator(self, prefix):
        return self.url + prefix

    def _spawn(self):
        os.makedirs(self.dir, exist_ok=True)
        c = f"http://127.0.0.1:{self.client_port}"
        p = f"http://127.0.0.1:{self.peer_port}"
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [ETCD, "--name", self.name, "--data-dir", self.data,
             "--listen-client-urls", c, "--advertise-client-urls", c,
             "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
             "--initial-cluster", f"{self.name}={p}",
             "--unsafe-no-fsync", "--logger", "zap", "--log-level", "warn"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def _wait_ready(self, timeout):
        """True once /health says so; False if etcd exited (its log says why)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.client_url + "/health", timeout=1) as r:
                    if json.loads(r.read()).get("health") == "true":
                        return True
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"etcd not healthy after {timeout} s: {self.log_text()[-3000:]}")

    def _reap(self):
        if self.proc:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=30)
            self.proc = None
        if self.log:
            self.log.close()
            self.log = None

    def start(self, timeout=20):
        """Starts on two free ports (new ones when a port turns out to be taken)."""
        require_etcd()
        for _ in range(8):
            self.client_port = free_port()
            self.peer_port = free_port()
            if self.peer_port == self.client_port:
                continue
            mark = self._log_size()
            self._spawn()
            if self._wait_ready(timeout):
                return self
            rc = self.proc.returncode
            self._reap()
            if "address already in use" not in self.log_text(mark):
                raise AssertionError(f"etcd exited {rc}: {self.log_text(mark)[-3000:]}")
        raise AssertionError("etcd: no free ports after 8 tries")

    def restart(self, timeout=20):
        """Starts again on the same ports and data directory (after stop() or kill())."""
        assert self.proc is None, "etcd is running"
        deadline = time.time() + timeout
        while True:
            mark = self._log_size()
            self._spawn()
            if self._wait_ready(max(1, deadline - time.time())):
                return self
            rc = self.proc.returncode
            self._reap()
            if "address already in use" not in self.log_text(mark) or time.time() > deadline:
                raise AssertionError(f"etcd restart exited {rc}: {self.log_text(mark)[-3000:]}")
            time.sleep(0.2)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals etcd and waits for it to exit; returns its exit status."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            self._reap()
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_text(self, since=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    # The gateway, on this member.
    def range(self, key, prefix=False):
        return kv_range(self.client_url, key, prefix)

    def get(self, key):
        return kv_get(self.client_url, key)

    def put(self, key, value, lease=0):
        return kv_put(self.client_url, key, value, lease)

    def delete(self, key, prefix=False):
        return kv_delete(self.client_url, key, prefix)

    # Brokers started against it.
    def track(self, broker):
        self.brokers.append(broker)
        return broker

    def stop_brokers(self):
        """Stops every tracked broker still running, side by side (SIGCONT first, for one a
        test left stopped); raises the first failure after trying them all."""
        live = [b for b in self.brokers if b.proc is not None]
        for b in live:
            if b.proc.poll() is None:
                b.proc.send_signal(signal.SIGCONT)
        errors = []

        def stop(b):
            try:
                if b.proc.poll() is not None:  # died by itself: say so if it had started
                    rc = b.proc.returncode
                    b.stop(signal.SIGKILL)
                    if not getattr(b, "ready", False):
                        return
                    raise AssertionError(f"broker {getattr(b, 'broker_id', '?')} had exited "
                                         f"{rc}: {b.stderr()[-3000:]}")
                b.stop()
            except Exception as e:  # noqa: BLE001 - collected and raised below
                errors.append(e)

        with concurrent.futures.ThreadPoolExecutor(max(1, len(live))) as ex:
            list(ex.map(stop, live))
        self.brokers = [b for b in self.brokers if b.proc is not None]
        if errors:
            raise errors[0]


@pytest.fixture
def etcd(tmp_path):
    """A one-member etcd; at the end the brokers started against it are stopped, then it."""
    e = Etcd(str(tmp_path / "etcd")).start()
    try:
        yield e
    finally:
        try:
            e.stop_brokers()
        finally:
            e.stop()


# ---------------------------------------------------------------------------------------------
# Brokers

def new_prefix():
    return "/tidings-test/" + uuid.uuid4().hex[:12]


def cluster_args(coordinator, broker_id=None, rack=None, session_ms=SESSION_MS, extra=()):
    """The serve options of a broker in a cluster (broker_id None: left out)."""
    args = ["--set", f"cluster.coordinator={coordinator}"]
    if broker_id is not None:
        args += ["--set", f"broker.id={broker_id}"]
    if rack is not None:
        args += ["--set", f"broker.rack={rack}"]
    if session_ms is not None:
        args += ["--set", f"cluster.session.timeout.ms={session_ms}"]
    return args + list(extra)


def make_broker(data, etcd, prefix, broker_id, rack=None, session_ms=SESSION_MS, extra=(),
                redis=False, coordinator=None):
    """A Broker (not started) of the cluster etcd + prefix, tracked by etcd's fixture."""
    b = Broker(data, http=True, redis=redis,
               extra=cluster_args(coordinator or etcd.coordinator(prefix), broker_id, rack,
                                  session_ms, extra))
    b.broker_id, b.prefix, b.rack = broker_id, prefix, rack
    return etcd.track(b)


def _start(b):
    """Starts b (waiting for its ready line) and marks it so: the fixture's end reports a
    started broker that exited by itself."""
    b.start()
    b.ready = True
    return b


def start_broker(data, etcd, prefix, broker_id, **kw):
    return _start(make_broker(data, etcd, prefix, broker_id, **kw))


def restart(b, etcd):
    """A new process for a broker that was stopped or killed: same data directory, options."""
    assert b.proc is None, "the broker still runs"
    n = Broker(b.data, http=b.http, redis=b.redis, extra=b.extra, env=b.env)
    n.broker_id, n.prefix, n.rack = b.broker_id, b.prefix, b.rack
    return _start(etcd.track(n))


def start_all(brokers):
    """Starts brokers side by side; returns them."""
    with concurrent.futures.ThreadPoolExecutor(max(1, len(brokers))) as ex:
        for f in [ex.submit(_start, b) for b in brokers]:
            f.result()
    return brokers


def cluster(tmp_path, etcd, n=3, prefix=None, racks=None, session_ms=SESSION_MS, extra=(),
            redis=False):
    """Starts n brokers with ids 1..n (data in tmp_path/b<id>/data) on a prefix of their own
    (given, or a new one); returns them, each with .broker_id, .prefix and .rack."""
    prefix = prefix or new_prefix()
    bs = [make_broker(str(tmp_path / f"b{i}" / "data"), etcd, prefix, i,
                      rack=racks[i - 1] if racks else None, session_ms=session_ms,
                      extra=extra, redis=redis)
          for i in range(1, n + 1)]
    return start_all(bs)


def serve_expect_failure(data, extra, timeout=30):
    """Runs `tidings serve` that must fail to start: returns (exit status, stderr, seconds).
    A process still running after timeout seconds is killed and fails the test."""
    os.makedirs(os.path.dirname(data), exist_ok=True)
    cmd = [BIN, "serve", "--data", data, "--kafka", "127.0.0.1:0", "--http", "off",
           "--redis", "off", "--loops", "2", *extra]
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        err = (e.stderr or b"").decode(errors="replace")
        raise AssertionError(f"{cmd} still running after {timeout} s (it should have refused "
                             f"to start); stderr: {err[-3000:]}") from None
    err = p.stderr.decode(errors="replace")
    # Refusing an option it does not know is never the refusal a test means.
    assert "unknown configuration key" not in err, err
    return p.returncode, err, time.time() - t0
