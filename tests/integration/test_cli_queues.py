"""`tidings queue` and `tidings dlq`, locally and against a running broker (both modes see the
same): a queue group created and described, events received, acked and nacked until they are
dead-lettered, the dead letters listed and shown, then redriven back with a progress bar and
processed; usage errors and exit codes."""
import json
import os
import pty
import re
import select
import subprocess
import time

from conftest import BIN, BOTH_MODES


def lines(cli, *args):
    return cli.out(*args).splitlines()


@BOTH_MODES
def test_queue_and_dlq_round_trip(cli):
    cli.run("topic", "create", "jobs", "--partitions", "2")
    cli.run("produce", "jobs", "--partition", "0", input=b"a\nb\nc\nd\n")
    assert cli.out("queue", "create", "w", "--topic", "jobs", "-c", "max.deliveries=2",
                   "-c", "backoff.initial.ms=0", "-c", "ack.timeout.ms=60000") == \
        "created queue group w\n"
    d = json.loads(cli.out("queue", "describe", "w", "--json"))
    assert d["depth"] == 4 and d["policy"]["max_deliveries"] == 2
    assert d["policy"]["dead_letter_topic"] == "jobs.dlq"
    assert re.search(r"^w\s+jobs\s+4\s+0\s+0\s+0$", cli.out("queue", "list"), re.M)
    assert "max.deliveries              2" in cli.out("queue", "describe", "w")
    # Receive three, ack one, nack two (twice: then they are dead-lettered).
    got = [l.split("\t") for l in lines(cli, "queue", "receive", "w", "--max", "3")]
    assert [v for _, v in got] == ["a", "b", "c"]
    assert cli.out("queue", "ack", "w", got[0][0]) == f"{got[0][0]} ok\n"
    p = cli.run("queue", "ack", "w", got[0][0], check=False)
    assert p.returncode == 1 and p.stdout == f"{got[0][0]} stale\n".encode()
    cli.run("queue", "nack", "w", got[1][0], got[2][0], "--error", "first")
    again = [json.loads(l) for l in lines(cli, "queue", "receive", "w", "--max", "3",
                                          "--format", "json")]
    assert [(e["value"], e["deliveries"]) for e in again] == [("b", 2), ("c", 2), ("d", 1)]
    cli.run("queue", "nack", "w", again[0]["id"], again[1]["id"], "--error", "card declined")
    cli.run("queue", "ack", "w", again[2]["id"])
    end = time.time() + 20
    while json.loads(cli.out("dlq", "list", "--json"))["dead_letter_topics"][0]["events"] < 2:
        assert time.time() < end
        time.sleep(0.1)
    dl = json.loads(cli.out("dlq", "list", "--json"))["dead_letter_topics"]
    assert dl == [{"topic": "jobs.dlq", "events": 2, "groups": ["w"], "exists": True}]
    table = cli.out("dlq", "show", "jobs.dlq")
    assert re.search(r"^0\s+0\s+jobs/0@1\s+2\s+\S+Z\s+card declined\s+b$", table, re.M), table
    assert re.search(r"^0\s+1\s+jobs/0@2\s+2\s+\S+Z\s+card declined\s+c$", table, re.M)
    shown = [json.loads(l) for l in lines(cli, "dlq", "show", "jobs.dlq", "--json")]
    assert [e["value"] for e in shown] == ["b", "c"]
    # Redrive with a progress bar: back in jobs, removed from jobs.dlq, delivered anew.
    p = cli.run("dlq", "redrive", "jobs.dlq", "--progress")
    assert p.stdout == b"moved 2 events from jobs.dlq (0 skipped; 2 removed from it)\n"
    assert b"100%" in p.stderr and b"2/2 events" in p.stderr
    assert json.loads(cli.out("dlq", "list", "--json"))["dead_letter_topics"][0]["events"] == 0
    back = [json.loads(l) for l in lines(cli, "queue", "receive", "w", "--max", "10", "--ack",
                                         "--format", "json")]
    assert [(e["value"], e["deliveries"]) for e in back] == [("b", 1), ("c", 1)]
    # No x-dlq-* headers; the dead letter each came from (docs/tracing.md).
    assert [e["headers"] for e in back] == [
        [{"key": "x-causation-id", "value": "jobs.dlq/0/%d" % i}] for i in (0, 1)]
    assert json.loads(cli.out("queue", "describe", "w", "--json"))["depth"] == 0
    assert cli.out("queue", "delete", "w") == "deleted queue group w\n"
    assert cli.run("queue", "describe", "w", check=False).returncode == 3


@BOTH_MODES
def test_wildcard_group_and_its_dead_letter_topics(cli):
    cli.run("topic", "create", "orders.eu")
    cli.run("topic", "create", "orders.us")
    cli.run("produce", "orders.eu", input=b"e1\n")
    cli.run("produce", "orders.us", input=b"u1\n")
    cli.run("queue", "create", "all", "--topic", "orders.*", "-c", "max.deliveries=1")
    assert re.search(r"^topic\s+orders\.\* \(2 topics\)$", cli.out("queue", "describe", "all"),
                     re.M)
    got = sorted(lines(cli, "queue", "receive", "all", "--max", "10", "--format", "json"))
    evs = sorted((json.loads(l) for l in got), key=lambda e: e["topic"])
    assert [(e["topic"], e["value"]) for e in evs] == [("orders.eu", "e1"), ("orders.us", "u1")]
    cli.run("queue", "nack", "all", evs[0]["id"], evs[1]["id"], "--error", "no")
    end = time.time() + 20
    while True:
        dl = json.loads(cli.out("dlq", "list", "--json"))["dead_letter_topics"]
        if sum(d["events"] for d in dl) == 2:
            break
        assert time.time() < end
        time.sleep(0.1)
    # The group's pattern "orders.*.dlq" is shown as the topics it names.
    assert sorted((d["topic"], d["groups"]) for d in dl) == \
        [("orders.eu.dlq", ["all"]), ("orders.us.dlq", ["all"])]


@BOTH_MODES
def test_queue_usage_errors(cli):
    cli.run("topic", "create", "t")
    for args, needle in [
        (["queue"], b"needs an action"),
        (["queue", "explode", "g"], b"unknown queue action"),
        (["queue", "create", "g"], b"--topic"),
        (["queue", "configure", "g"], b"--config"),
        (["queue", "ack", "g"], b"delivery ids"),
        (["queue", "receive", "g", "--max", "0"], b"--max"),
        (["queue", "create", "bad name", "--topic", "t"], b"group name"),
        (["dlq"], b"needs an action"),
        (["dlq", "redrive"], b"dead-letter topic"),
        (["dlq", "redrive", "t.dlq", "--since", "yesterday"], b"--since"),
    ]:
        p = cli.run(*args, check=False)
        assert p.returncode == 2 and needle in p.stderr, (args, p.stderr)
    p = cli.run("queue", "create", "g", "--topic", "t", "-c", "ordering=fifo", check=False)
    assert p.returncode == 2 and b"ordering" in p.stderr
    p = cli.run("queue", "create", "g", "--topic", "nope", check=False)
    assert p.returncode == 3
    assert cli.run("queue", "receive", "nope", check=False).returncode == 3
    assert cli.run("dlq", "show", "nope.dlq", check=False).returncode == 3
    cli.run("queue", "create", "g", "--topic", "t")
    assert cli.run("queue", "create", "g", "--topic", "t", check=False).returncode == 1
    cli.run("queue", "configure", "g", "-c", "max.in.flight=5")
    assert json.loads(cli.out("queue", "describe", "g", "--json"))["policy"]["max_in_flight"] == 5


def test_receive_waits_for_events_on_a_broker(tmp_path):
    from conftest import Broker, Cli
    b = Broker(str(tmp_path / "data"), http=True).start()
    try:
        cli = Cli(b.data, server=f"http://127.0.0.1:{b.http_port}")
        cli.run("topic", "create", "t")
        cli.run("queue", "create", "g", "--topic", "t")
        p = subprocess.Popen([BIN, "queue", "receive", "g", "--wait", "10000", "--ack",
                              "--server", cli.server], stdout=subprocess.PIPE)
        time.sleep(0.3)
        cli.run("produce", "t", input=b"late\n")
        out, _ = p.communicate(timeout=20)
        assert p.returncode == 0 and out.decode().split("\t")[1] == "late\n"
        assert json.loads(cli.out("queue", "describe", "g", "--json"))["acked"] == 1
        # Locally there is no broker to wait on.
        q = Cli(b.data).run("queue", "receive", "g", "--wait", "100", "--server", "",
                            check=False)
        assert q.returncode == 2 and b"--wait" in q.stderr
    finally:
        b.stop()
