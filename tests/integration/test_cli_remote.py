"""The tidings command against a running broker (--server or TIDINGS_SERVER): the server's
address forms and exit codes, `consume --follow` with wildcards (events from Kafka, HTTP and the
command itself, topics created later, resuming across a broker restart), `produce --file` with
its progress display, and `group list|describe|reset|delete` on groups Kafka consumers joined,
remotely and locally. The verbs the two modes share run in both in test_cli.py."""
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import BIN, Broker, Cli


@pytest.fixture
def rb(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True,
               extra=["--set", "group.initial.rebalance.delay.ms=0"]).start()
    yield b
    if b.proc:
        b.stop()


def url(b):
    return f"http://127.0.0.1:{b.http_port}"


def remote(b):
    return Cli(b.data, server=url(b))


def follow(b, *args):
    """A `consume --follow` process, its standard output read line by line."""
    return subprocess.Popen([BIN, "consume", "--follow", "--server", url(b), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_lines(p, n, timeout=20):
    """n lines of p's standard output, failing after timeout seconds."""
    lines, end = [], time.time() + timeout
    fd = p.stdout.fileno()
    buf = b""
    while len(lines) < n:
        left = end - time.time()
        assert left > 0, f"got {lines} and {buf!r}, wanted {n} lines"
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        chunk = os.read(fd, 65536)
        assert chunk, f"the command ended after {lines}: {p.stderr.read().decode()}"
        buf += chunk
        while b"\n" in buf and len(lines) < n:
            line, buf = buf.split(b"\n", 1)
            lines.append(line.decode())
    return lines


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_server_address_forms_and_exit_codes(rb, tmp_path):
    cli = remote(rb)
    # TIDINGS_SERVER, without a scheme: http is meant.
    env = dict(os.environ, TIDINGS_SERVER=f"127.0.0.1:{rb.http_port}")
    p = cli.run("topic", "create", "from-env", data=False, env=env)
    assert p.stdout == b"created topic from-env\n"
    assert "from-env" in cli.out("topic", "list", data=False, env=env)
    # --server wins over the environment; --server '' is local mode (the broker holds the lock).
    bad_env = dict(os.environ, TIDINGS_SERVER="127.0.0.1:1")
    assert "from-env" in cli.out("topic", "list", env=bad_env)
    p = cli.run("topic", "list", "--server", "", "--data", rb.data, data=False, env=env,
                check=False)
    assert p.returncode == 4 and b"locked" in p.stderr
    p = cli.run("topic", "list", "--server", "ftp://127.0.0.1", data=False, check=False)
    assert p.returncode == 2 and b"--server" in p.stderr
    # Nothing listening: exit 5, one line saying where and why.
    port = free_port()
    p = cli.run("topic", "list", "--server", f"127.0.0.1:{port}", data=False, check=False)
    assert p.returncode == 5
    assert f"cannot reach the broker at http://127.0.0.1:{port}".encode() in p.stderr
    assert p.stderr.count(b"\n") == 1
    # The broker's refusals keep the local exit codes.
    assert cli.run("topic", "describe", "nope", check=False).returncode == 3
    assert cli.run("produce", "nope", input=b"x\n", check=False).returncode == 3
    assert cli.run("consume", "nope", "--from-beginning", check=False).returncode == 3
    assert cli.run("topic", "create", "t", "-c", "fsync=maybe", check=False).returncode == 2
    cli.run("topic", "create", "one")
    p = cli.run("produce", "one", "--partition", "1", input=b"x\n", check=False)
    assert p.returncode == 3 and b"no partition 1" in p.stderr
    p = cli.run("consume", "one", "--partition", "0", "--offset", "5", check=False)
    assert p.returncode == 1 and b"outside" in p.stderr


def test_follow_wildcards_all_protocols_and_new_topics(rb):
    cli = remote(rb)
    cli.run("topic", "create", "orders.eu", "--partitions", "2")
    cli.run("topic", "create", "billing.x.y")
    cli.run("topic", "create", "other")
    cli.run("produce", "orders.eu", input=b"before\n")
    p = follow(rb, "orders.*,billing.#", "--from-beginning", "--format", "json", "--max", "5")
    try:
        first = json.loads(read_lines(p, 1)[0])  # the subscription is live from here
        assert (first["topic"], first["value"]) == ("orders.eu", "before")
        subprocess.run(["kcat", "-b", rb.bootstrap, "-P", "-t", "orders.eu", "-K:",
                        "-H", "via=kafka"], input=b"k1:from-kafka\n", check=True, timeout=30)
        cli.run("produce", "other", input=b"not matched\n")
        cli.run("produce", "billing.x.y", "--header", "via=cli", input=b"from-cli\n")
        cli.run("topic", "create", "orders.us")  # created after the subscription started
        cli.run("produce", "orders.us", input=b"new topic\n")
        # A value that is JSON stays the exact bytes sent.
        cli.run("produce", "orders.eu", input=b'{"a":  1}\n')
        rest = [json.loads(line) for line in read_lines(p, 4)]
        assert p.wait(timeout=20) == 0
    finally:
        p.kill()
    got = {(e["topic"], e["value"]) for e in rest}
    assert got == {("orders.eu", "from-kafka"), ("billing.x.y", "from-cli"),
                   ("orders.us", "new topic"), ("orders.eu", '{"a":  1}')}
    kafka = next(e for e in rest if e["value"] == "from-kafka")
    assert kafka["key"] == "k1" and kafka["headers"] == [{"key": "via", "value": "kafka"}]
    assert next(e for e in rest if e["value"] == "from-cli")["headers"] == \
        [{"key": "via", "value": "cli"}]
    # The same events read back by the non-following consume are the same JSON objects.
    again = [json.loads(line) for line in
             cli.out("consume", "orders.eu", "--from-beginning", "--format", "json").splitlines()]
    for e in again:
        assert e in [first] + rest


def test_follow_resumes_across_a_restart_with_nothing_lost_or_twice(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True).start()
    try:
        port = b.http_port
        cli = remote(b)
        cli.run("topic", "create", "t", "--partitions", "3")
        # From the beginning: events written before the subscription is set up count too.
        p = follow(b, "t", "--max", "8", "--from-beginning")
        cli.run("produce", "t", input=b"e1\ne2\n")
        seen = read_lines(p, 2)
        b.stop()
        # While the broker is down, events written locally to its data directory.
        Cli(b.data).run("produce", "t", "--partition", "2", input=b"e3\ne4\n")
        b.extra = ["--http", f"127.0.0.1:{port}"]  # the address the command knows
        b.start()
        cli.run("produce", "t", input=b"e5\ne6\ne7\ne8\n")
        seen += read_lines(p, 6, timeout=30)
        assert p.wait(timeout=20) == 0
        assert sorted(seen) == [f"e{i}" for i in range(1, 9)]  # nothing lost, nothing twice
        assert b"reconnecting" in p.stderr.read()
    finally:
        p.kill()
        if b.proc:
            b.stop()


def test_follow_stops_on_interrupt_and_refuses_bad_requests(rb):
    cli = remote(rb)
    cli.run("topic", "create", "t")
    p = follow(rb, "t")
    cli.run("produce", "t", input=b"one\n")
    time.sleep(0.5)
    cli.run("produce", "t", input=b"two\n")
    assert read_lines(p, 1) in (["one"], ["two"])
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=10) == 0
    for args, needle in ((["ord*"], b"whole segment"),
                         (["t", "--partition", "0"], b"--partition"),
                         (["t", "--offset", "3"], b"--offset")):
        q = cli.run("consume", "--follow", *args, check=False)
        assert q.returncode == 2 and needle in q.stderr, (args, q.stderr)
    env = {k: v for k, v in os.environ.items() if k != "TIDINGS_SERVER"}
    q = cli.run("consume", "t", "--follow", data=False, env=env, check=False)
    assert q.returncode == 2 and b"running broker" in q.stderr
    q = cli.run("consume", "orders.*", "--from-beginning", check=False)
    assert q.returncode == 2 and b"--follow" in q.stderr


def test_produce_file_in_requests_of_bounded_size_with_progress(rb, tmp_path):
    cli = remote(rb)
    cli.run("topic", "create", "f")
    # 30 000 lines, 6 MB: one --batch of 20 000 is split into requests under the body limit.
    lines = [f"{i:05d} " + "z" * (i % 400) for i in range(30000)]
    path = tmp_path / "events.txt"
    path.write_text("\n".join(lines) + "\n")
    p = cli.run("produce", "f", "--file", str(path), "--batch", "20000", "--progress",
                "--verbose", timeout=300)
    offsets = [tuple(map(int, line.split())) for line in p.stdout.decode().splitlines()]
    assert offsets == [(0, i) for i in range(30000)]
    err = p.stderr.decode()
    assert "\r" in err and "events/s" in err
    assert re.search(r"produced 30000 events \([\d.]+ MiB\) in [\d.]+ s", err)
    assert cli.out("consume", "f", "--from-beginning", timeout=300).splitlines() == lines
    # Not a terminal and no --progress: nothing on standard error.
    p = cli.run("produce", "f", "--file", str(path))
    assert p.stderr == b""
    # A missing file is one clear error.
    p = cli.run("produce", "f", "--file", str(tmp_path / "missing"), check=False)
    assert p.returncode == 1 and b"cannot open" in p.stderr


def test_produce_splits_bodies_that_json_makes_long(rb):
    """Control characters take six bytes each in JSON: 4 MB of them would be a 24 MB body, over
    the broker's 8 MiB limit; the command sends it in halves, in order."""
    cli = remote(rb)
    cli.run("topic", "create", "ctl")
    lines = [b"%05d" % i + bytes([1 + i % 8]) * 1000 for i in range(4000)]
    p = cli.run("produce", "ctl", "--batch", "4000", "--verbose", input=b"\n".join(lines) + b"\n",
                timeout=300)
    assert [int(x.split()[1]) for x in p.stdout.decode().splitlines()] == list(range(4000))
    got = cli.run("consume", "ctl", "--from-beginning", timeout=300).stdout
    assert got == b"\n".join(lines) + b"\n"
    # By the bytes' count, requests of 3 924 and 76 events; the first, 23 MB of JSON, goes as
    # four quarters of about 6 MB.
    metrics = urllib.request.urlopen(url(rb) + "/metrics", timeout=10).read().decode()
    posts = re.search(r'^tidings_requests_total\{protocol="http",'
                      r'api="POST /v1/topics/\{topic\}/events"\} (\d+)', metrics, re.M)
    assert posts and int(posts.group(1)) == 5, posts
    assert 'tidings_http_responses_total{code="413"}' not in metrics


def test_progress_bar_on_a_terminal(rb, tmp_path):
    cli = remote(rb)
    cli.run("topic", "create", "tty")
    path = tmp_path / "events.txt"
    path.write_text("".join(f"line {i}\n" for i in range(5000)))
    master, slave = pty.openpty()
    try:
        p = subprocess.run([BIN, "produce", "tty", "--file", str(path), "--batch", "500",
                            "--server", url(rb)], stderr=slave, stdout=subprocess.PIPE,
                           timeout=60)
        os.close(slave)
        slave = None
        out = b""
        while select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    assert p.returncode == 0
    text = out.decode()
    assert "[" in text and "%" in text and "MiB" in text  # the bar, with its share of the file
    assert "produced 5000 events" in text
    assert json.loads(cli.out("topic", "describe", "tty", "--json"))["partitions"][0][
        "high_watermark"] == 5000


def kafka_consumer(b, group):
    return Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                     "client.id": "billing-app", "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, "session.timeout.ms": 6000})


def test_group_verbs_on_kafka_consumer_groups(rb):
    cli = remote(rb)
    cli.run("topic", "create", "orders", "--partitions", "2")
    cli.run("produce", "orders", "--partition", "0", input=b"".join(b"a%d\n" % i for i in range(10)))
    cli.run("produce", "orders", "--partition", "1", input=b"".join(b"b%d\n" % i for i in range(4)))
    assert json.loads(cli.out("group", "list", "--json")) == {"groups": []}
    c = kafka_consumer(rb, "billing")
    try:
        c.subscribe(["orders"])
        got, end = 0, time.time() + 30
        while got < 14 and time.time() < end:
            m = c.poll(0.5)
            got += m is not None and not m.error()
        assert got == 14
        c.commit(offsets=[TopicPartition("orders", 0, 6), TopicPartition("orders", 1, 1)],
                 asynchronous=False)
        groups = json.loads(cli.out("group", "list", "--json"))["groups"]
        assert [(g["group"], g["state"], g["members"], g["lag"]) for g in groups] == \
            [("billing", "Stable", 1, 7)]
        assert re.search(r"^billing\s+Stable\s+1\s+2\s+7$", cli.out("group", "list"), re.M)
        text = cli.out("group", "describe", "billing")
        assert re.search(r"^orders\s+0\s+6\s+10\s+4\s+\S+ \(billing-app, /127\.0\.0\.1\)$",
                         text, re.M), text
        assert re.search(r"^orders\s+1\s+1\s+4\s+3\s", text, re.M)
        d = json.loads(cli.out("group", "describe", "billing", "--json"))
        assert d["lag"] == 7 and d["members"][0]["client_id"] == "billing-app"
        # Members present: reset and delete are refused, nothing changes.
        p = cli.run("group", "reset", "billing", "--to-earliest", check=False)
        assert p.returncode == 1 and b"stop its consumers first" in p.stderr
        p = cli.run("group", "delete", "billing", check=False)
        assert p.returncode == 1 and b"members" in p.stderr
    finally:
        c.close()
    end = time.time() + 20
    while json.loads(cli.out("group", "describe", "billing", "--json"))["state"] != "Empty":
        assert time.time() < end
        time.sleep(0.2)
    p = cli.out("group", "reset", "billing", "--to-earliest", "--dry-run")
    assert "dry run" in p and re.search(r"^orders\s+0\s+6\s+0$", p, re.M)
    assert json.loads(cli.out("group", "describe", "billing", "--json"))["lag"] == 7
    out = cli.out("group", "reset", "billing", "--to-offset", "8", "--topic", "orders:0")
    assert re.search(r"^orders\s+0\s+6\s+8$", out, re.M) and "reset 1 offsets" in out
    r = json.loads(cli.out("group", "reset", "billing", "--to-offset", "99", "--json"))
    assert [(o["partition"], o["offset"]) for o in r["offsets"]] == [(0, 10), (1, 4)]  # clamped
    r = json.loads(cli.out("group", "reset", "billing", "--to-time", "2020-01-01T00:00:00Z",
                           "--json"))
    assert [o["offset"] for o in r["offsets"]] == [0, 0]
    # The consumer starts where the reset put it.
    cli.run("group", "reset", "billing", "--to-offset", "9", "--topic", "orders:0")
    c = kafka_consumer(rb, "billing")
    try:
        c.assign([TopicPartition("orders", 0)])
        m = None
        end = time.time() + 20
        while (m is None or m.error()) and time.time() < end:
            m = c.poll(0.5)
        assert m.value() == b"a9"
    finally:
        c.close()
    assert cli.out("group", "delete", "billing") == "deleted group billing\n"
    assert cli.run("group", "describe", "billing", check=False).returncode == 3
    for args in (["reset", "g"], ["reset", "g", "--to-earliest", "--to-latest"],
                 ["describe"], ["list", "--to-earliest"], ["explode", "g"],
                 ["reset", "g", "--to-latest", "--topic", "bad name"]):
        p = cli.run("group", *args, check=False)
        assert p.returncode == 2 and b"--help" in p.stderr, args


def test_group_verbs_locally(tmp_path):
    """A group reset on a running broker, then read, reset and deleted on its data directory
    with the broker stopped: the same answers, with no members."""
    b = Broker(str(tmp_path / "data"), http=True).start()
    try:
        cli = remote(b)
        cli.run("topic", "create", "t", "--partitions", "2")
        cli.run("produce", "t", "--partition", "1", input=b"x\ny\nz\n")
        # A group that never committed: reset names its topics and creates it.
        p = cli.run("group", "reset", "fresh", "--to-latest", check=False)
        assert p.returncode == 2 and b"no committed offsets" in p.stderr
        cli.run("group", "reset", "fresh", "--to-earliest", "--topic", "t")
        remote_view = json.loads(cli.out("group", "describe", "fresh", "--json"))
    finally:
        b.stop()
    local = Cli(b.data)
    local_view = json.loads(local.out("group", "describe", "fresh", "--json"))
    assert local_view["offsets"] == remote_view["offsets"]
    assert local_view["lag"] == 3 and local_view["state"] == "Empty"
    assert re.search(r"^fresh\s+Empty\s+0\s+2\s+3$", local.out("group", "list"), re.M)
    out = local.out("group", "reset", "fresh", "--to-offset", "2", "--topic", "t:1")
    assert re.search(r"^t\s+1\s+0\s+2$", out, re.M)
    assert json.loads(local.out("group", "describe", "fresh", "--json"))["lag"] == 1
    assert local.out("group", "delete", "fresh") == "deleted group fresh\n"
    p = local.run("group", "describe", "fresh", check=False)
    assert p.returncode == 3 and b"does not exist" in p.stderr
    assert json.loads(local.out("group", "list", "--json")) == {"groups": []}
