"""The flags that `topic`, `group`, `queue` and `dlq` share through one skeleton (src/cli/
command.c): --help, --data and $TIDINGS_DATA, --server and $TIDINGS_SERVER, --json before or
after the action, and the usage errors of a missing or unknown action or option. Each check runs
on all four commands, so that none of them drifts from the others."""
import json
import os
import socket
import subprocess

import pytest

from conftest import BIN, Broker, Cli

# Each command, and the key of its `list --json` answer.
COMMANDS = [("topic", "topics"), ("group", "groups"), ("queue", "queues"),
            ("dlq", "dead_letter_topics")]
NAMES = [c for c, _ in COMMANDS]


def run(*args, env=None):
    e = dict(os.environ)
    e.pop("TIDINGS_DATA", None)
    e.pop("TIDINGS_SERVER", None)
    e.update(env or {})
    return subprocess.run([BIN, *args], capture_output=True, timeout=60, env=e)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A data directory with one topic and one queue group (and so a dead-letter topic)."""
    d = str(tmp_path_factory.mktemp("common") / "data")
    cli = Cli(d)
    cli.run("topic", "create", "orders")
    cli.run("queue", "create", "workers", "--topic", "orders", "--config",
            "dead.letter.topic=orders.dlq")
    return d


def free_port():
    """A port nothing listens on: bound, then closed."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("cmd", NAMES)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(cmd, flag):
    p = run(cmd, flag)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert out.startswith(f"usage: tidings {cmd} <action>"), out
    for common in ("--data DIR", "--server URL", "--json", "--help"):
        assert common in out, (cmd, common)
    # --help wins over the rest of the line, even an action that would fail.
    p = run(cmd, "no-such-action", flag)
    assert p.returncode == 0 and p.stdout.decode() == out


@pytest.mark.parametrize("cmd", NAMES)
def test_action_errors(cmd):
    p = run(cmd)
    assert p.returncode == 2
    assert f"{cmd} needs an action: ".encode() in p.stderr, p.stderr
    p = run(cmd, "frobnicate")
    assert p.returncode == 2
    assert f"unknown {cmd} action 'frobnicate'".encode() in p.stderr, p.stderr
    p = run(cmd, "list", "--no-such-flag")
    assert p.returncode == 2
    assert b"unknown or incomplete option '--no-such-flag'" in p.stderr, p.stderr
    p = run(cmd, "list", "--data")  # a flag without its value
    assert p.returncode == 2
    assert b"unknown or incomplete option" in p.stderr, p.stderr


@pytest.mark.parametrize("cmd,key", COMMANDS)
def test_data_flag_and_env(cmd, key, data):
    """--data and $TIDINGS_DATA name the same directory; --json goes anywhere on the line."""
    answers = [run(cmd, "list", "--json", "--data", data),
               run(cmd, "--json", "list", "-d", data),
               run(cmd, "list", "--json", env={"TIDINGS_DATA": data})]
    parsed = []
    for p in answers:
        assert p.returncode == 0, p.stderr
        parsed.append(json.loads(p.stdout))
    assert parsed[0] == parsed[1] == parsed[2]
    assert key in parsed[0]
    # Without --json the same command prints text, not JSON.
    p = run(cmd, "list", "--data", data)
    assert p.returncode == 0
    with pytest.raises(ValueError):
        json.loads(p.stdout)
    # --server '' forces local mode whatever $TIDINGS_SERVER says.
    p = run(cmd, "list", "--json", "--server", "", "--data", data,
            env={"TIDINGS_SERVER": f"http://127.0.0.1:{free_port()}"})
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == parsed[0]
    # --data wins over $TIDINGS_DATA; a directory without data is exit code 4.
    p = run(cmd, "list", "--data", data + "-missing", env={"TIDINGS_DATA": data})
    assert p.returncode == 4, p.stderr
    assert b"data-missing" in p.stderr, p.stderr


@pytest.mark.parametrize("cmd", NAMES)
def test_server_unreachable_and_invalid(cmd):
    port = free_port()
    for args, env in [(["--server", f"127.0.0.1:{port}"], None),
                      ([], {"TIDINGS_SERVER": f"http://127.0.0.1:{port}"})]:
        p = run(cmd, "list", *args, env=env)
        assert p.returncode == 5, (args, env, p.stderr)
    p = run(cmd, "list", "--server", "ftp://127.0.0.1:1")
    assert p.returncode == 2, p.stderr
    # A usage error comes before any use of the address.
    p = run(cmd, "list", "extra", "--server", "ftp://127.0.0.1:1")
    assert p.returncode == 2 and b"unexpected argument 'extra'" in p.stderr, p.stderr


def test_server_flag_and_env_match_local(tmp_path):
    """The four commands answer `list --json` the same over --server, $TIDINGS_SERVER and,
    once the broker is stopped, the data directory itself."""
    b = Broker(str(tmp_path / "data"), http=True).start()
    try:
        local = Cli(b.data, server=f"http://127.0.0.1:{b.http_port}")
        local.run("topic", "create", "orders")
        local.run("queue", "create", "workers", "--topic", "orders", "--config",
                  "dead.letter.topic=orders.dlq")
        url = f"http://127.0.0.1:{b.http_port}"
        remote = {}
        for cmd, key in COMMANDS:
            p = run(cmd, "list", "--json", "--server", url)
            q = run(cmd, "--json", "list", env={"TIDINGS_SERVER": url})
            assert p.returncode == 0 and q.returncode == 0, (p.stderr, q.stderr)
            remote[cmd] = json.loads(p.stdout)
            assert json.loads(q.stdout) == remote[cmd]
            assert key in remote[cmd]
        # --server wins over --data: the directory is the broker's, locked while it runs.
        p = run("topic", "list", "--json", "--server", url, "--data", b.data)
        assert p.returncode == 0 and json.loads(p.stdout) == remote["topic"]
    finally:
        b.stop()
    names = [t["name"] for t in remote["topic"]["topics"]]
    assert names == ["orders"]
    assert [q["group"] for q in remote["queue"]["queues"]] == ["workers"]
    assert [d["topic"] for d in remote["dlq"]["dead_letter_topics"]] == ["orders.dlq"]
    p = run("topic", "list", "--json", "--data", b.data)
    assert p.returncode == 0 and [t["name"] for t in json.loads(p.stdout)["topics"]] == names
