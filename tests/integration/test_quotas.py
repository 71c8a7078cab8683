"""Client quotas through Kafka's admin API (DescribeClientQuotas, AlterClientQuotas), with
@platformatic/kafka's admin client (tests/node/quotas.mjs): quotas for a user, the default
client id and a (user, client id) pair, described with exact, default and any-name filters,
strict and not, a key removed, an unknown key refused; the quotas survive a restart.
Throttling itself is measured by the unit tests (tests/unit/test_quota.c)."""
import json
import os
import subprocess

from conftest import Broker

NODE_DIR = os.path.join(os.path.dirname(__file__), "..", "node")


def run_quotas(broker):
    p = subprocess.run(["node", "quotas.mjs", broker.bootstrap], cwd=NODE_DIR,
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()[-4000:]
    return json.loads(p.stdout)


def test_quota_admin_with_platformatic(tmp_path):
    b = Broker(str(tmp_path / "data")).start()
    try:
        r = run_quotas(b)
    finally:
        b.stop()
    assert r["altered"] == [0, 0, 0]
    alice = {"producer_byte_rate": 1048576, "consumer_byte_rate": 2097152}
    pair = {"producer_byte_rate": 4096}
    # Not strict: alice's own entity and the (alice, app) pair.
    assert sorted(r["alice"], key=lambda e: len(e["entity"])) == [
        {"entity": [["user", "alice"]], "values": alice},
        {"entity": [["user", "alice"], ["client-id", "app"]], "values": pair},
    ]
    assert r["aliceStrict"] == [{"entity": [["user", "alice"]], "values": alice}]
    assert r["defaultClient"] == [
        {"entity": [["client-id", None]], "values": {"request_percentage": 25.5}}]
    # Any client id, default included, and entities that also name a user.
    assert sorted((e["entity"] for e in r["anyClient"]), key=len) == [
        [["client-id", None]], [["user", "alice"], ["client-id", "app"]]]
    assert r["afterRemove"] == [
        {"entity": [["user", "alice"]], "values": {"producer_byte_rate": 1048576}}]
    refused = json.loads(r["unknownKey"])["response"]["entries"]
    assert refused == [{"errorCode": 42, "errorMessage": "Invalid configuration key no_such_quota",
                        "entity": [{"entityType": "user", "entityName": "bob"}]}]
    # The quotas are in the catalog: a restarted broker describes the same.
    b.start()
    try:
        out = subprocess.run(["node", "-e", DESCRIBE_ALL, b.bootstrap], cwd=NODE_DIR,
                             capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr.decode()[-2000:]
        entries = json.loads(out.stdout)
    finally:
        b.stop()
    assert sorted(entries) == sorted([
        [["user", "alice"]], [["client-id", None]], [["user", "alice"], ["client-id", "app"]]])


DESCRIBE_ALL = """
const kafka = await import('@platformatic/kafka')
const admin = new kafka.Admin({ clientId: 'q', bootstrapBrokers: [process.argv[1]], retries: 0 })
const a = await admin.describeClientQuotas({ components: [{ entityType: 'user', matchType: 2 }] })
const b = await admin.describeClientQuotas({ components: [{ entityType: 'client-id', matchType: 2 }] })
const seen = new Map()
for (const e of [...a, ...b]) {
  const k = e.entity.map(p => [p.entityType, p.entityName])
  seen.set(JSON.stringify(k), k)
}
await admin.close()
console.log(JSON.stringify([...seen.values()]))
"""
