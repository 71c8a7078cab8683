"""The tidings command in local mode, driven as a user would drive it."""
import base64
import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import BIN, BOTH_MODES


def murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2, written from its definition, as a signed 32-bit int."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(data[i * 4:i * 4 + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length & ~3
    rest = length % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def kafka_partition(key: bytes, n: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % n


def test_murmur2_reference_values():
    # Values from Kafka's Java Utils.murmur2 (librdkafka's unit test lists them).
    assert murmur2(b"kafka") & 0xFFFFFFFF == 0xD067CF64
    assert murmur2(b"giberish123456789") & 0xFFFFFFFF == 0x8F552B0C
    assert murmur2(b"") & 0xFFFFFFFF == 0x106E08D9


@BOTH_MODES
def test_topic_lifecycle(cli):
    assert "created topic orders" in cli.out("topic", "create", "orders", "--partitions", "3",
                                              "--config", "retention.ms=3600000",
                                              "-c", "fsync=interval:50")
    cli.run("topic", "create", "audit")
    topics = json.loads(cli.out("topic", "list", "--json"))["topics"]
    assert [t["name"] for t in topics] == ["audit", "orders"]
    assert topics[1]["partition_count"] == 3
    assert abs(topics[1]["created_ms"] - time.time() * 1000) < 600_000
    orders = json.loads(cli.out("topic", "describe", "orders", "--json"))
    assert orders["config"]["retention.ms"] == "3600000"
    assert orders["config"]["fsync"] == "interval:50"
    audit = json.loads(cli.out("topic", "describe", "audit", "--json"))
    assert audit["config"]["fsync"] == "always"  # the default
    table = cli.out("topic", "list")
    assert re.search(r"^orders\s+3\s+20\d\d-\d\d-\d\dT[\d:]+Z$", table, re.M)
    text = cli.out("topic", "describe", "orders")
    assert re.search(r"^\s+fsync\s+interval:50$", text, re.M)
    assert re.search(r"^2\s+0\s+0\s+0\s+1\s+online$", text, re.M)

    cli.run("topic", "alter", "orders", "--config", "retention.bytes=1048576")
    d = json.loads(cli.out("topic", "describe", "orders", "--json"))
    assert d["config"]["retention.bytes"] == "1048576"
    assert d["config"]["retention.ms"] == "3600000"  # unchanged
    assert [p["partition"] for p in d["partitions"]] == [0, 1, 2]
    assert all(p["high_watermark"] == 0 and not p["offline"] for p in d["partitions"])

    cli.run("topic", "add-partitions", "orders", "--partitions", "5")
    d = json.loads(cli.out("topic", "describe", "orders", "--json"))
    assert d["partition_count"] == 5 and len(d["partitions"]) == 5
    p = cli.run("topic", "add-partitions", "orders", "--partitions", "4", check=False)
    assert p.returncode == 2 and re.search(rb"more than that|never removed", p.stderr)

    assert "deleted topic audit" in cli.out("topic", "delete", "audit")
    assert [t["name"] for t in json.loads(cli.out("topic", "list", "--json"))["topics"]] == \
        ["orders"]
    p = cli.run("topic", "delete", "audit", check=False)
    assert p.returncode == 3 and b"does not exist" in p.stderr
    p = cli.run("topic", "create", "orders", check=False)
    assert p.returncode == 1 and b"already exists" in p.stderr


@BOTH_MODES
@pytest.mark.parametrize("name,rule", [
    ("a/b", "must be escaped as %XX"),
    ("..", "reserved"),
    (".", "reserved"),
    ("x" * 250, "at most 249"),
    ("caf\u00e9", "must be escaped as %XX"),
    ("my key", "must be escaped as %XX"),
    ("a%2fb", "two upper-case hex digits"),
    ("a%41", "writes as itself"),
])
def test_invalid_topic_names(cli, name, rule):
    p = cli.run("topic", "create", name, check=False)
    assert p.returncode == 2
    assert rule in p.stderr.decode()
    assert p.stderr.decode().count("\n") <= 1  # one clear line


@BOTH_MODES
def test_names_of_redis_keys(cli):
    """Topic names hold what Redis keys do (docs/redis.md#keys-and-topics): ':', '{', '?', ';'
    and %XX escapes; the remote mode puts them in URLs escaped, and --topic T:P,P splits at the
    last ':' only before a list of partitions."""
    names = ["user:1:events", "my%20key", "a?b%25c;d&e=f", "{t}:s+1"]
    for n in names:
        cli.run("topic", "create", n)
        cli.run("produce", n, input=n.encode() + b"\n")
        assert cli.out("consume", n, "--from-beginning") == n + "\n"
    listed = cli.out("topic", "list")
    for n in names:
        assert n in listed
    assert "user:1:events" in cli.out("topic", "describe", "user:1:events")
    cli.run("topic", "delete", "a?b%25c;d&e=f")
    assert "a?b%25c;d&e=f" not in cli.out("topic", "list")
    # --topic: the whole name, the name with partitions after its last ':', or a name ending in
    # ':<digits>' given with a trailing ':'.
    for spec, topic in (("user:1:events", "user:1:events"), ("user:1:events:0", "user:1:events"),
                        ("my%20key:", "my%20key")):
        r = json.loads(cli.out("group", "reset", "g", "--to-earliest", "--topic", spec, "--json"))
        assert [(o["topic"], o["partition"]) for o in r["offsets"]] == [(topic, 0)], spec


@BOTH_MODES
def test_longest_valid_name(cli):
    cli.run("topic", "create", "a" * 249)
    cli.run("produce", "a" * 249, input=b"x\n")
    assert cli.out("consume", "a" * 249, "--from-beginning") == "x\n"


@BOTH_MODES
@pytest.mark.parametrize("setting,needle", [
    ("fsync=sometimes", "fsync"),
    ("retention.ms=-5", "retention.ms"),
    ("segment.bytes=12", "segment.bytes"),
    ("cleanup.policy=shred", "cleanup.policy"),
    ("colour=blue", "unknown topic configuration key 'colour'"),
    ("message.timestamp.type=Now", "message.timestamp.type"),
])
def test_invalid_configs(cli, setting, needle):
    p = cli.run("topic", "create", "t", "--config", setting, check=False)
    assert p.returncode == 2
    assert needle in p.stderr.decode()
    assert json.loads(cli.out("topic", "list", "--json")) == {"topics": []}


@BOTH_MODES
def test_produce_consume_text_and_json(cli):
    cli.run("topic", "create", "t", "--partitions", "1")
    lines = b"alpha\nk1:beta\n\nk2:with:colons\nno key here\n"
    cli.run("produce", "t", "--key-separator", ":", "--header", "src=test",
            "--header", "trace=abc", input=lines)
    assert cli.out("consume", "t", "--from-beginning") == \
        "alpha\nbeta\n\nwith:colons\nno key here\n"
    events = [json.loads(l) for l in cli.out("consume", "t", "--from-beginning",
                                             "--format", "json").splitlines()]
    assert [e["offset"] for e in events] == [0, 1, 2, 3, 4]
    assert [e["key"] for e in events] == [None, "k1", None, "k2", None]
    assert [e["value"] for e in events] == ["alpha", "beta", "", "with:colons", "no key here"]
    assert all(e["headers"] == [{"key": "src", "value": "test"},
                                {"key": "trace", "value": "abc"}] for e in events)
    assert all(e["topic"] == "t" and e["partition"] == 0 for e in events)
    now_ms = time.time() * 1000
    assert all(abs(e["timestamp"] - now_ms) < 600_000 for e in events)
    # Without a start option, consume starts at the end.
    assert cli.out("consume", "t") == ""


@BOTH_MODES
def test_binary_and_special_values(cli):
    cli.run("topic", "create", "b")
    data = b"tab\there \"quoted\" back\\slash\n\xff\xfe invalid utf8\n\xe2\x82\xac euro\n"
    cli.run("produce", "b", input=data)
    events = [json.loads(l) for l in cli.out("consume", "b", "--from-beginning",
                                             "--format", "json").splitlines()]
    assert events[0]["value"] == 'tab\there "quoted" back\\slash'
    assert "value" not in events[1]
    assert base64.b64decode(events[1]["value_b64"]) == b"\xff\xfe invalid utf8"
    assert events[2]["value"] == "\u20ac euro"
    assert cli.run("consume", "b", "--from-beginning").stdout == data


@BOTH_MODES
def test_offsets_partitions_max_and_time(cli):
    cli.run("topic", "create", "t", "--partitions", "2")
    cli.run("produce", "t", "--partition", "1",
            input=b"".join(b"e%d\n" % i for i in range(10)))
    assert cli.out("consume", "t", "--partition", "1", "--offset", "7") == "e7\ne8\ne9\n"
    assert cli.out("consume", "t", "--partition", "1", "--offset", "3", "--max", "2") == \
        "e3\ne4\n"
    assert cli.out("consume", "t", "--partition", "0", "--from-beginning") == ""
    p = cli.run("consume", "t", "--partition", "1", "--offset", "11", check=False)
    assert p.returncode == 1 and b"outside" in p.stderr
    p = cli.run("consume", "t", "--offset", "1", check=False)
    assert p.returncode == 2 and b"--partition" in p.stderr
    p = cli.run("consume", "t", "--partition", "2", check=False)
    assert p.returncode == 3
    # By time: everything was written after 2020 and before now + 1 h.
    assert cli.out("consume", "t", "--time", "2020-01-01T00:00:00Z").count("\n") == 10
    future = int(time.time() * 1000) + 3_600_000
    assert cli.out("consume", "t", "--time", str(future)) == ""
    events = [json.loads(l) for l in cli.out("consume", "t", "--partition", "1",
                                             "--from-beginning", "--format", "json")
              .splitlines()]
    ts = events[4]["timestamp"]
    got = cli.out("consume", "t", "--partition", "1", "--time", str(ts), "--format", "json")
    first = json.loads(got.splitlines()[0])
    assert first["timestamp"] >= ts and first["offset"] <= 4


@BOTH_MODES
def test_keys_choose_partitions_like_kafka(cli):
    n = 7
    cli.run("topic", "create", "k", "--partitions", str(n))
    keys = [f"customer-{i}" for i in range(60)]
    cli.run("produce", "k", "-k", "=", input="".join(f"{k}=v-{k}\n" for k in keys).encode())
    for p in range(n):
        got = [json.loads(l)["key"] for l in cli.out("consume", "k", "--partition", str(p),
                                                     "--from-beginning", "--format", "json")
               .splitlines()]
        want = [k for k in keys if kafka_partition(k.encode(), n) == p]
        assert got == want


@BOTH_MODES
def test_large_input_round_trip(cli):
    cli.run("topic", "create", "big", "-c", "segment.bytes=65536")
    lines = [f"event {i} " + "x" * (i % 300) for i in range(20000)]
    cli.run("produce", "big", "--batch", "500", input=("\n".join(lines) + "\n").encode(),
            timeout=120)
    assert cli.out("consume", "big", "--from-beginning", timeout=120).splitlines() == lines
    d = json.loads(cli.out("topic", "describe", "big", "--json"))
    assert d["partitions"][0]["high_watermark"] == 20000
    assert d["partitions"][0]["segments"] > 10
    # A very long line is one event.
    long_value = "y" * 200_000
    cli.run("produce", "big", input=(long_value + "\n").encode())
    assert cli.out("consume", "big", "--offset", "20000") == long_value + "\n"


def test_usage_errors_and_help(cli):
    for verb in (["topic"], ["produce"], ["consume"], ["serve"]):
        p = cli.run(*verb, "--help", data=False)
        assert p.returncode == 0 and b"usage: tidings" in p.stdout
    assert cli.run("--help", data=False).returncode == 0
    assert re.match(rb"tidings \d+\.\d+\.\d+", cli.run("--version", data=False).stdout)
    for args in (["frobnicate"], ["topic", "explode", "x"], ["topic", "create"],
                 ["consume"], ["produce", "t", "--batch", "0"], ["topic", "list", "--bogus"]):
        p = cli.run(*args, check=False, data=False)
        assert p.returncode == 2, args
        assert b"--help" in p.stderr


SERVE_PORTS = ["--kafka", "127.0.0.1:0", "--http", "off", "--redis", "off"]


def start_serve(cli, *extra, env=None):
    p = subprocess.Popen([BIN, "serve", "--data", cli.data, *SERVE_PORTS, *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    lines = []
    while True:
        line = p.stdout.readline().decode()
        assert line, "".join(lines) + p.stderr.read().decode()
        lines.append(line)
        if line.startswith("ready"):
            break
    assert "data directory " + cli.data in lines[0], lines
    p.lines = lines
    return p


def test_serve_holds_the_lock_and_stops_cleanly(cli):
    cli.run("topic", "create", "t")
    cli.run("produce", "t", input=b"before\n")
    srv = start_serve(cli)
    try:
        for args in (["topic", "list"], ["serve", *SERVE_PORTS]):
            p = cli.run(*args, check=False, timeout=30)
            assert p.returncode == 4, args
            assert f"locked by process {srv.pid}".encode() in p.stderr
    finally:
        srv.send_signal(signal.SIGTERM)
        out, err = srv.communicate(timeout=30)
    assert srv.returncode == 0, err
    # Data survives, and the directory is free again.
    cli.run("produce", "t", input=b"after\n")
    assert cli.out("consume", "t", "--from-beginning") == "before\nafter\n"
    srv = start_serve(cli)
    srv.send_signal(signal.SIGINT)
    srv.communicate(timeout=30)
    assert srv.returncode == 0


def test_newer_format_is_refused_untouched(cli):
    cli.run("topic", "create", "t")
    with open(os.path.join(cli.data, "FORMAT"), "w") as f:
        f.write("tidings-data 99\n")
    before = sorted(os.listdir(cli.data))
    p = cli.run("topic", "list", check=False)
    assert p.returncode == 4
    assert b"format version 99" in p.stderr
    assert sorted(os.listdir(cli.data)) == before


def test_serve_port_in_use_is_one_clear_error(cli):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        p = cli.run("serve", "--kafka", f"127.0.0.1:{port}", "--http", "off", "--redis", "off",
                    check=False, timeout=30)
    finally:
        s.close()
    assert p.returncode == 1
    err = p.stderr.decode().strip().splitlines()
    assert f"cannot listen on 127.0.0.1:{port}" in err[-1]
    assert "Address already in use" in err[-1]


def test_serve_bad_settings_exit_2(cli, tmp_path):
    p = cli.run("serve", "--kafka", "nowhere", check=False, timeout=30)
    assert p.returncode == 2
    assert b"kafka: expected HOST:PORT or off" in p.stderr
    conf = tmp_path / "t.conf"
    conf.write_text("# comment\ndefault.partitions = 0\n")
    p = cli.run("serve", "--config", str(conf), check=False, timeout=30)
    assert p.returncode == 2
    assert f"{conf}:2: default.partitions".encode() in p.stderr
    env = dict(os.environ, TIDINGS_LOOPS="many")
    q = subprocess.run([BIN, "serve", "--data", cli.data, *SERVE_PORTS], env=env,
                       capture_output=True, timeout=30)
    assert q.returncode == 2
    assert b"TIDINGS_LOOPS: loops:" in q.stderr


def test_serve_settings_precedence_file_env_flag(cli, tmp_path):
    """The file sets loops 3 and the environment 1; the flag, last, says 2."""
    conf = tmp_path / "t.conf"
    conf.write_text("loops = 3\n")
    srv = start_serve(cli, "--config", str(conf))
    assert "3 event loops" in srv.lines[0]
    srv.send_signal(signal.SIGTERM)
    srv.communicate(timeout=30)
    env = dict(os.environ, TIDINGS_LOOPS="1")
    srv = start_serve(cli, "--config", str(conf), env=env)
    assert "1 event loop\n" in srv.lines[0]
    srv.send_signal(signal.SIGTERM)
    srv.communicate(timeout=30)
    srv = start_serve(cli, "--config", str(conf), "--loops", "2", env=env)
    assert "2 event loops" in srv.lines[0]
    srv.send_signal(signal.SIGTERM)
    srv.communicate(timeout=30)
    assert srv.returncode == 0


def test_commands_without_a_data_directory_say_so(cli, tmp_path):
    """Commands that read (or change what must exist) do not create ./data: they say there is
    none. Run in an empty directory, as a new user would, with the default ./data."""
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("TIDINGS_DATA", "TIDINGS_SERVER")}
    for args in (["topic", "list"], ["topic", "describe", "t"], ["topic", "delete", "t"],
                 ["consume", "t", "--from-beginning"], ["produce", "t"], ["group", "list"],
                 ["group", "describe", "g"], ["queue", "list"], ["queue", "describe", "g"],
                 ["dlq", "list"]):
        p = subprocess.run([BIN, *args], cwd=empty, env=env, input=b"x\n", capture_output=True,
                           timeout=60)
        assert p.returncode == 4, (args, p.stderr)
        assert b"no data directory at ./data" in p.stderr, (args, p.stderr)
        assert b"--server" in p.stderr and b"topic create" in p.stderr
        assert p.stdout == b""
        assert os.listdir(empty) == [], args
    # A directory that exists but holds no tidings data is left alone the same way.
    (empty / "data").mkdir()
    p = subprocess.run([BIN, "topic", "list"], cwd=empty, env=env, capture_output=True,
                       timeout=60)
    assert p.returncode == 4 and b"no tidings data in ./data" in p.stderr, p.stderr
    assert os.listdir(empty / "data") == []
    # Creating a topic creates the directory; then the others work.
    p = subprocess.run([BIN, "topic", "create", "t"], cwd=empty, env=env, capture_output=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([BIN, "topic", "list", "--json"], cwd=empty, env=env, capture_output=True,
                       timeout=60)
    assert [t["name"] for t in json.loads(p.stdout)["topics"]] == ["t"]


def test_a_locked_data_directory_suggests_server(cli):
    cli.run("topic", "create", "t")
    srv = start_serve(cli)
    try:
        p = cli.run("topic", "list", check=False, timeout=30)
        assert p.returncode == 4
        assert f"locked by process {srv.pid}".encode() in p.stderr
        assert b"--server" in p.stderr and b"TIDINGS_SERVER" in p.stderr, p.stderr
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.communicate(timeout=30)


@BOTH_MODES
def test_malformed_delivery_ids_are_usage_errors(cli):
    cli.run("topic", "create", "orders")
    cli.run("queue", "create", "billing", "--topic", "orders")
    for action in ("ack", "nack"):
        for bad in ("notanid", "1.0.0", "1.0.0.1.", "1..0.1", "a.b.c.d", "1.0.0.99999999999"):
            p = cli.run("queue", action, "billing", "1.0.0.1", bad, check=False)
            assert p.returncode == 2, (action, bad, p.stderr)
            assert f"'{bad}' is not a delivery id".encode() in p.stderr, p.stderr
            assert p.stdout == b""
    # A well-formed id the group never gave is an answer (exit 1), not a usage error.
    p = cli.run("queue", "ack", "billing", "1.0.0.1", check=False)
    assert p.returncode == 1 and p.stdout == b"1.0.0.1 unknown\n", p


@BOTH_MODES
def test_json_output_prints_reals_shortest(cli):
    cli.run("topic", "create", "orders")
    cli.run("queue", "create", "billing", "--topic", "orders", "-c", "backoff.multiplier=1.1")
    out = cli.out("queue", "describe", "billing", "--json")
    assert '"multiplier":1.1,' in out and '"jitter":0.1}' in out, out
    assert json.loads(out)["policy"]["backoff"]["jitter"] == 0.1
