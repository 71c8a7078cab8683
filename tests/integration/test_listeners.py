"""Several Kafka listeners, each with its own security protocol, in Kafka's own form
(kafka.listeners = PROTOCOL://HOST:PORT,...; docs/security.md#listeners): every listener
serves, Metadata advertises the port each client came through, DescribeConfigs shows them all,
and the safe defaults apply to each (a public PLAINTEXT listener is refused, a SASL one is
not)."""
import os
import subprocess
import time

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from conftest import BIN
from test_tls import make_ca, make_cert


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("certs"))
    make_ca(d, "ca")
    make_cert(d, "ca", "server", "localhost", 1001)
    return d


def start(tmp_path, listeners, *extra):
    """A broker with kafka.listeners; its process and the port of each listener by name."""
    out = open(tmp_path / "out", "wb")
    err = open(tmp_path / "err", "wb")
    p = subprocess.Popen([BIN, "serve", "--data", str(tmp_path / "data"), "--loops", "1",
                          "--http", "off", "--redis", "off", "--set",
                          f"kafka.listeners={listeners}", *extra], stdout=out, stderr=err)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = (tmp_path / "out").read_text()
        if "ready" in text or p.poll() is not None:
            break
        time.sleep(0.05)
    ports = {}
    for line in (tmp_path / "out").read_text().splitlines():
        if line.startswith("kafka (") and ": listening on " in line:
            name = line[len("kafka ("):line.index(")")]
            ports.setdefault(name, []).append(int(line.rsplit(":", 1)[1]))
    return p, ports


def stop(p):
    p.terminate()
    assert p.wait(30) == 0


def test_listeners_each_with_its_protocol(tmp_path, certs):
    p, ports = start(tmp_path,
                     "PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.2:0,SSL://127.0.0.1:0",
                     "--set", f"kafka.tls.cert.file={certs}/server.pem",
                     "--set", f"kafka.tls.key.file={certs}/server.key")
    try:
        assert len(ports.get("PLAINTEXT", [])) == 2 and len(ports.get("SSL", [])) == 1, ports
        hosts = [f"127.0.0.1:{ports['PLAINTEXT'][0]}", f"127.0.0.2:{ports['PLAINTEXT'][1]}"]
        ssl_port = ports["SSL"][0]
        for bootstrap, port, extra in [
                (hosts[0], ports["PLAINTEXT"][0], {}),
                (hosts[1], ports["PLAINTEXT"][1], {}),
                (f"127.0.0.1:{ssl_port}", ssl_port,
                 {"security.protocol": "ssl", "ssl.ca.location": f"{certs}/ca.pem"})]:
            a = AdminClient({"bootstrap.servers": bootstrap, **extra})
            md = a.list_topics(timeout=20)
            # Metadata names the port of the listener the client came through.
            assert [b.port for b in md.brokers.values()] == [port], (bootstrap, md.brokers)
        a = AdminClient({"bootstrap.servers": hosts[0]})
        res = ConfigResource(ConfigResource.Type.BROKER, "1")
        cfg = list(a.describe_configs([res]).values())[0].result(20)
        listeners = cfg["listeners"].value.split(",")
        assert sorted(listeners) == sorted([
            f"PLAINTEXT://127.0.0.1:{ports['PLAINTEXT'][0]}",
            f"PLAINTEXT://127.0.0.1:{ports['PLAINTEXT'][1]}",
            f"SSL://127.0.0.1:{ssl_port}"]), listeners
        assert cfg["advertised.listeners"].value == cfg["listeners"].value
    finally:
        stop(p)


def test_each_listener_follows_the_safe_defaults(tmp_path):
    p, _ = start(tmp_path, "PLAINTEXT://127.0.0.1:0,PLAINTEXT://0.0.0.0:0")
    assert p.wait(30) == 2
    err = (tmp_path / "err").read_text()
    assert "kafka (PLAINTEXT): 0.0.0.0:0 is not a loopback address" in err, err
    assert "SASL_PLAINTEXT or SASL_SSL" in err
    # A SASL listener authenticates its clients: the check lets a public address through
    # (192.0.2.1 is on no interface here, so the bind itself then fails).
    p, _ = start(tmp_path, "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://192.0.2.1:0")
    rc = p.wait(30)
    err = (tmp_path / "err").read_text()
    assert rc != 0 and "not a loopback address" not in err.split("SASL_PLAINTEXT://")[-1], err


@pytest.mark.parametrize("value,why", [
    ("PLAINTXT://127.0.0.1:0", "unknown security protocol 'PLAINTXT'"),
    ("127.0.0.1:9092", "is not PROTOCOL://HOST:PORT"),
    ("PLAINTEXT://127.0.0.1", "is not HOST:PORT"),
    (",".join(["PLAINTEXT://127.0.0.1:0"] * 9), "at most 8 listeners"),
])
def test_bad_listeners_are_refused(tmp_path, value, why):
    p = subprocess.run([BIN, "serve", "--data", str(tmp_path / "data"), "--set",
                        f"kafka.listeners={value}"], capture_output=True, timeout=30)
    assert p.returncode == 2 and why in p.stderr.decode(), p.stderr.decode()
    assert not os.path.exists(tmp_path / "data")
