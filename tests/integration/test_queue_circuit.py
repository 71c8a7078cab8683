"""The circuit breaker of queue groups (docs/queues.md#circuit-breaker), over HTTP: a consumer
whose dependency is down nacks (or lets its acks time out) until the failure rate opens the
circuit; deliveries stop at once, nothing is dead-lettered or counted against max_deliveries
during the outage, a failed trial opens it again, acked trials close it, and deliveries resume
until every event is acked. Each transition is in GET /v1/queues/{g}, the metrics, the CLI and
the health events on $sys.queues.
"""
import json
import time

import pytest

from conftest import BIN, Broker
from test_http import assert_error, call
from test_health import events, metrics_text

BREAKER = {"failure_rate": 50, "min_calls": 5, "window_ms": 60000, "open_ms": 1000,
           "half_open_trials": 2}


@pytest.fixture
def qb(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True,
               extra=["--set", "health.check.interval.ms=200"]).start()
    yield b
    if b.proc:
        b.stop()


def setup_group(b, n, **policy):
    call(b, "POST", "/v1/topics", {"name": "jobs"})
    st, _, g = call(b, "PUT", "/v1/queues/work", {"topic": "jobs", **policy})
    assert st == 201, g
    st, _, body = call(b, "POST", "/v1/topics/jobs/events",
                       [{"key": f"k{i}", "value": {"n": i}} for i in range(n)])
    assert st == 200, body
    return g


def receive(b, n, wait_ms=0):
    st, _, body = call(b, "POST", "/v1/queues/work/receive",
                       {"max": n, "wait_ms": wait_ms, "consumer": "c1"})
    assert st == 200, body
    return body["events"]


def outcome(b, op, evs, **kw):
    st, _, body = call(b, "POST", f"/v1/queues/work/{op}", {"ids": [e["id"] for e in evs], **kw})
    assert st == 200 and body["ok"] == len(evs), body


def describe(b):
    st, _, g = call(b, "GET", "/v1/queues/work")
    assert st == 200
    return g


def wait_state(b, state, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        g = describe(b)
        if g["circuit"]["state"] == state:
            return g
        time.sleep(0.05)
    raise AssertionError(f"circuit not {state}: {describe(b)['circuit']}")


def test_outage_opens_trials_and_recovery(qb):
    g = setup_group(qb, 30, max_deliveries=2, backoff={"initial_ms": 0, "max_ms": 0},
                    circuit_breaker=BREAKER)
    assert g["policy"]["circuit_breaker"] == BREAKER
    assert g["circuit"] == {"state": "closed", "calls": 0, "failures": 0, "opened": 0,
                            "since_ms": None, "open_until_ms": None}
    # The dependency is down: every delivery fails. The 5th failure (5 of 5 >= 50 %) opens.
    got = receive(qb, 5)
    assert len(got) == 5
    outcome(qb, "nack", got[:4], error="db down")
    assert describe(qb)["circuit"]["state"] == "closed"
    outcome(qb, "nack", got[4:], error="db down")
    g = describe(qb)
    c = g["circuit"]
    assert c["state"] == "open" and c["opened"] == 1
    assert c["open_until_ms"] - c["since_ms"] == 1000
    # Open: no delivery, even of the events waiting or never delivered.
    t0 = time.time()
    while time.time() - t0 < 0.5:
        assert receive(qb, 10) == []
    # Half-open after open_ms: a long poll is woken by it, and gets the 2 trials only.
    trials = receive(qb, 10, wait_ms=3000)
    assert len(trials) == 2
    assert describe(qb)["circuit"]["state"] == "half_open"
    assert receive(qb, 10) == []
    # A trial fails: open again; the failure is the outage's, not counted.
    outcome(qb, "nack", trials[:1], error="still down")
    c = describe(qb)["circuit"]
    assert c["state"] == "open" and c["opened"] == 2
    outcome(qb, "ack", trials[1:])  # an outcome while open changes nothing
    assert describe(qb)["circuit"]["state"] == "open"
    # Recovered: both trials acked close it, and deliveries resume.
    trials = receive(qb, 10, wait_ms=3000)
    assert len(trials) == 2
    outcome(qb, "ack", trials)
    c = describe(qb)["circuit"]
    assert c["state"] == "closed" and c["calls"] == 0 and c["since_ms"] is None
    acked = 3
    end = time.time() + 20
    while acked < 30 and time.time() < end:
        got = receive(qb, 10, wait_ms=500)
        outcome(qb, "ack", got)
        acked += len(got)
    g = describe(qb)
    assert acked == 30 and g["depth"] == 0
    # Nothing was dead-lettered: 4 events failed once before the circuit opened, the 5th and
    # the failed trial while it was not closed (max_deliveries 2 would have killed them).
    assert g["dead_lettered"] == 0
    st, _, _ = call(qb, "GET", "/v1/topics/jobs.dlq")
    assert st == 404
    # Told on $sys.queues: opened, opened again, closed.
    vals = [v for v in events(qb, "$sys.queues", ["queue.circuit_closed"])
            if v["type"].startswith("queue.circuit")]
    assert [v["type"] for v in vals] == ["queue.circuit_opened", "queue.circuit_opened",
                                        "queue.circuit_closed"]
    assert vals[0]["reason"] == "failure rate" and vals[0]["calls"] == 5
    assert vals[0]["failures"] == 5 and vals[0]["group"] == "work"
    assert vals[1]["reason"] == "a trial delivery failed"
    assert vals[2]["trials"] == 2 and vals[2]["not_closed_ms"] >= 1000
    text = metrics_text(qb)
    assert 'tidings_queue_circuit_state{group="work"} 0' in text
    assert 'tidings_queue_circuit_opened_total{group="work"} 2' in text


def test_ack_timeouts_open_it(qb):
    setup_group(qb, 10, ack_timeout_ms=300, circuit_breaker=dict(BREAKER, min_calls=3))
    got = receive(qb, 3)  # a consumer that hangs: no ack
    assert len(got) == 3
    g = wait_state(qb, "open")
    assert g["in_flight"] == 0 and g["waiting"] == 3
    text = metrics_text(qb)
    assert 'tidings_queue_circuit_state{group="work"} 1' in text
    vals = [v for v in events(qb, "$sys.queues", ["queue.circuit_opened"])]
    assert vals[0]["calls"] == 3 and vals[0]["failures"] == 3


def test_below_the_rate_or_the_minimum_it_stays_closed(qb):
    setup_group(qb, 40, backoff={"initial_ms": 0, "max_ms": 0},
                circuit_breaker=dict(BREAKER, min_calls=10))
    # 4 failures alone: 100 %, but under min_calls.
    outcome(qb, "nack", receive(qb, 4))
    assert describe(qb)["circuit"]["state"] == "closed"
    outcome(qb, "ack", receive(qb, 6))      # 10 outcomes, 4 failed: 40 %
    outcome(qb, "nack", receive(qb, 1))     # 11, 5: 45 %
    outcome(qb, "ack", receive(qb, 1))      # 12, 5
    outcome(qb, "nack", receive(qb, 1))     # 13, 6: 46 %
    c = describe(qb)["circuit"]
    assert c["state"] == "closed" and c["calls"] == 13 and c["failures"] == 6
    outcome(qb, "nack", receive(qb, 1))     # 14, 7: 50 %, open
    assert describe(qb)["circuit"]["state"] == "open"


def test_policy_checks_and_turning_it_off(qb):
    setup_group(qb, 6, backoff={"initial_ms": 0, "max_ms": 0},
                circuit_breaker=dict(BREAKER, min_calls=2, open_ms=60000))
    for bad in ({"failure_rate": 101}, {"open_ms": 1}, {"half_open_trials": 0},
                {"min_calls": 0}, {"window_ms": 5}):
        assert_error(call(qb, "PUT", "/v1/queues/work", {"circuit_breaker": bad}), 400,
                     "invalid_config", "circuit.")
    assert_error(call(qb, "PUT", "/v1/queues/work", {"circuit_breaker": {"rate": 5}}), 400,
                 "invalid_argument", "rate")
    assert_error(call(qb, "PUT", "/v1/queues/work", {"circuit_breaker": 5}), 400,
                 "invalid_argument", "circuit_breaker")
    outcome(qb, "nack", receive(qb, 2))
    assert describe(qb)["circuit"]["state"] == "open"
    assert receive(qb, 5) == []
    # failure_rate 0 takes the breaker away: closed at once, deliveries resume.
    st, _, g = call(qb, "PUT", "/v1/queues/work", {"circuit_breaker": {"failure_rate": 0}})
    assert st == 200, g
    assert len(receive(qb, 5)) == 5
    assert describe(qb)["circuit"]["state"] == "closed"
    closed = [v for v in events(qb, "$sys.queues", ["queue.circuit_closed"])
              if v["type"] == "queue.circuit_closed"]
    assert closed[0]["reason"] == "the policy has no circuit breaker any more"


def test_cli_shows_and_sets_it(qb):
    import subprocess
    call(qb, "POST", "/v1/topics", {"name": "jobs"})
    server = ["--server", f"http://127.0.0.1:{qb.http_port}"]
    p = subprocess.run([BIN, "queue", "create", "work", "--topic", "jobs",
                        "--config", "circuit.failure.rate=25", "--config", "circuit.open.ms=5000",
                        *server], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([BIN, "queue", "describe", "work", "--json", *server],
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["policy"]["circuit_breaker"]["failure_rate"] == 25
    assert d["policy"]["circuit_breaker"]["open_ms"] == 5000
    assert d["circuit"]["state"] == "closed"


def test_the_window_slides(qb):
    setup_group(qb, 20, backoff={"initial_ms": 0, "max_ms": 0},
                circuit_breaker=dict(BREAKER, window_ms=1000))
    outcome(qb, "nack", receive(qb, 4))
    assert describe(qb)["circuit"]["failures"] == 4
    time.sleep(1.2)  # those 4 leave the window
    assert describe(qb)["circuit"]["calls"] == 0
    outcome(qb, "nack", receive(qb, 4))  # 4 in the window: under min_calls 5
    c = describe(qb)["circuit"]
    assert c["state"] == "closed" and c["calls"] == 4
    outcome(qb, "nack", receive(qb, 1))
    assert describe(qb)["circuit"]["state"] == "open"
