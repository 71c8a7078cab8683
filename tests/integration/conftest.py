"""Shared fixtures for the integration tests: the command line, and a running broker.

TIDINGS_BIN names the tidings binary under test (the Makefile passes the ASan build);
by default ./build/debug/tidings.
"""
import os
import signal
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("TIDINGS_BIN", os.path.join(ROOT, "build", "debug", "tidings"))


class Cli:
    """The tidings command, local on a data directory, or (server=URL) against a running
    broker: `data=True` adds --data DIR or --server URL."""

    def __init__(self, data, server=None):
        self.data = data
        self.server = server

    def run(self, *args, input=None, check=True, timeout=60, data=True, env=None):
        cmd = [BIN, *args]
        if data:
            cmd += ["--server", self.server] if self.server else ["--data", self.data]
        p = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=env)
        if check and p.returncode != 0:
            raise AssertionError(
                f"{cmd} exited {p.returncode}: {p.stderr.decode(errors='replace')}")
        return p

    def out(self, *args, **kw):
        return self.run(*args, **kw).stdout.decode()


@pytest.fixture
def cli(request, tmp_path):
    """The command on a data directory; with BOTH_MODES on a test, once so and once against a
    broker over HTTP (--server), and the test must see the same."""
    if getattr(request, "param", "local") == "local":
        yield Cli(str(tmp_path / "data"))
        return
    b = Broker(str(tmp_path / "broker" / "data"), http=True).start()
    yield Cli(b.data, server=f"http://127.0.0.1:{b.http_port}")
    b.stop()


# Runs a test that takes `cli` in local and in remote mode.
BOTH_MODES = pytest.mark.parametrize("cli", ["local", "remote"], indirect=True)


class Broker:
    """A `tidings serve` process on an ephemeral 127.0.0.1 port (and one for HTTP with
    http=True, one for the Redis protocol with redis=True)."""

    def __init__(self, data, extra=(), http=False, redis=False, env=None):
        self.data = data
        self.extra = list(extra)
        self.env = env  # the process's environment (default: the test's)
        self.http = http
        self.redis = redis
        self.proc = None
        self.port = None
        self.http_port = None
        self.redis_port = None
        self.stderr_path = data + ".stderr"

    def start(self):
        os.makedirs(os.path.dirname(self.data), exist_ok=True)
        self.err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--data", self.data, "--kafka", "127.0.0.1:0",
             "--http", "127.0.0.1:0" if self.http else "off",
             "--redis", "127.0.0.1:0" if self.redis else "off", "--loops", "2", *self.extra],
            stdout=subprocess.PIPE, stderr=self.err, env=self.env)
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                break
            if line.startswith("kafka: listening on "):
                self.port = int(line.rsplit(":", 1)[1])
            if line.startswith("http: listening on "):
                self.http_port = int(line.rsplit(":", 1)[1])
            if line.startswith("redis: listening on "):
                self.redis_port = int(line.rsplit(":", 1)[1])
            if line.startswith("ready"):
                return self
        raise AssertionError("broker did not start: " + self.stderr())

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM):
        """Stops the broker; a graceful stop must exit 0 with no sanitizer report."""
        if not self.proc:
            return None
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=60)
        self.proc.stdout.close()
        self.err.close()
        self.proc = None
        if sig in (signal.SIGTERM, signal.SIGINT):
            err = self.stderr()
            assert rc == 0, f"broker exited {rc}: {err[-3000:]}"
            assert "Sanitizer" not in err, err[-5000:]
        return rc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture
def broker(tmp_path):
    b = Broker(str(tmp_path / "data")).start()
    yield b
    if b.proc:
        b.stop()


# The broker's internal state topics (docs/storage.md#state-topics), created at every start.
# The system topics of health events (docs/health.md), created at every start unless
# health.events=false; Kafka's Metadata lists them (not as internal).
SYSTEM_TOPICS = frozenset({"$sys.groups", "$sys.lag", "$sys.queues", "$sys.storage",
                           "$sys.clients", "$sys.cluster"})
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__cluster_state", "__queue_state",
                             "__xgroup_state", "__schemas", "__transaction_state"})
