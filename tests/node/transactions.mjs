// kafkajs transactions against tidings (InitProducerId with a transactional id,
// AddPartitionsToTxn, EndTxn, read_committed Fetch), for test_kafka_node_txn.py:
//
//   node transactions.mjs BOOTSTRAP TOPIC FENCE_TOPIC
//
// On TOPIC (2 partitions) one transactional producer commits a transaction (c1-*), aborts one
// (a-*), commits another (c2-*), and leaves a fourth (o-*) open. Two consumers in their own
// groups read TOPIC from the beginning: one read_committed (kafkajs's default), one with
// readUncommitted: true. Once both have gone quiet, the open transaction is committed and the
// read_committed consumer must then see it too. Each message is sent to an explicit partition
// (value i goes to partition i % 2), so both partitions hold every transaction and its marker.
//
// On FENCE_TOPIC a second producer with the same transactional id fences the first one, whose
// open transaction the broker aborts; the first's later send and commit must fail. Last, a third
// producer commits offsets of a group with a transaction (sendOffsets), then aborts another.
//
// Prints one JSON object. Every wait is bounded: each step by its own time-out, the whole
// script by a watchdog.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { Kafka, logLevel } = require('kafkajs')
const [bootstrap, topic, fenceTopic] = process.argv.slice(2)

const watchdog = setTimeout(() => {
  console.error('transactions.mjs: watchdog: still running after 100 s')
  process.exit(3)
}, 100000)
watchdog.unref()

// retries bounded so that a failing step fails within its time-out rather than after kafkajs's
// 30 s of back-off.
const kafka = new Kafka({
  clientId: 'node-txn',
  brokers: [bootstrap],
  logLevel: logLevel.NOTHING,
  retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 }
})

function within (ms, what, promise) {
  let timer
  return Promise.race([
    promise,
    new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms)
    })
  ]).finally(() => clearTimeout(timer))
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

function txnProducer (transactionalId) {
  return kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 })
}

function msgs (prefix, n) {
  return Array.from({ length: n }, (_, i) => ({
    key: `${prefix}-${i}`, value: `${prefix}-${i}`, partition: i % 2
  }))
}

// Waits until `got` holds at least `n` entries and then nothing more arrived for `quietMs`
// (or until `ms` has passed).
async function settle (got, n, ms, quietMs = 1500) {
  const end = Date.now() + ms
  while (got.length < n && Date.now() < end) await sleep(50)
  let seen = got.length
  let since = Date.now()
  while (Date.now() - since < quietMs && Date.now() < end) {
    await sleep(50)
    if (got.length !== seen) {
      seen = got.length
      since = Date.now()
    }
  }
  return got.length
}

async function consumer (groupId, readUncommitted) {
  const c = kafka.consumer({ groupId, readUncommitted, sessionTimeout: 10000, maxWaitTimeInMs: 200 })
  const got = []
  await within(15000, `${groupId} connect`, c.connect())
  await within(15000, `${groupId} subscribe`, c.subscribe({ topic, fromBeginning: true }))
  await within(15000, `${groupId} run`, c.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      got.push({ partition, offset: Number(message.offset), value: message.value.toString() })
    }
  }))
  return { c, got }
}

// kafkajs's admin lists offsets read_committed: the last stable offset of each partition.
async function lastStable () {
  const offs = await within(15000, 'fetchTopicOffsets', admin.fetchTopicOffsets(topic))
  return offs.map(x => [x.partition, Number(x.high)]).sort((x, y) => x[0] - y[0]).map(x => x[1])
}

function failure (e) {
  return { name: e.name, type: e.type ?? null, message: e.message }
}

const out = {}
const admin = kafka.admin()
await within(15000, 'admin connect', admin.connect())
await within(15000, 'create topics', admin.createTopics({
  topics: [{ topic, numPartitions: 2 }, { topic: fenceTopic, numPartitions: 1 }]
}))

// Commit, abort, commit, and one left open.
const p = txnProducer('node-txn-app')
await within(15000, 'producer connect', p.connect())
let t = await within(15000, 'transaction 1', p.transaction())
await within(15000, 'send c1', t.send({ topic, messages: msgs('c1', 10) }))
await within(15000, 'commit 1', t.commit())
t = await within(15000, 'transaction 2', p.transaction())
await within(15000, 'send a', t.send({ topic, messages: msgs('a', 5) }))
await within(15000, 'abort 2', t.abort())
t = await within(15000, 'transaction 3', p.transaction())
await within(15000, 'send c2', t.send({ topic, messages: msgs('c2', 6) }))
await within(15000, 'commit 3', t.commit())
const open = await within(15000, 'transaction 4', p.transaction())
await within(15000, 'send o', open.send({ topic, messages: msgs('o', 4) }))

const committed = await consumer('node-txn-committed', false)
const uncommitted = await consumer('node-txn-uncommitted', true)
await settle(committed.got, 16, 30000)
await settle(uncommitted.got, 25, 30000)
out.committedBeforeCommit = committed.got.slice()
out.uncommitted = uncommitted.got.slice()
out.lsoOpen = await lastStable()

// The open transaction commits: the read_committed consumer, still running, sees it now.
await within(15000, 'commit 4', open.commit())
await settle(committed.got, 20, 30000)
out.committed = committed.got.slice()
out.lsoCommitted = await lastStable()
await within(15000, 'disconnect committed', committed.c.disconnect())
await within(15000, 'disconnect uncommitted', uncommitted.c.disconnect())
await within(15000, 'producer disconnect', p.disconnect())

// Fencing: a second instance of the same transactional id.
const first = txnProducer('node-txn-fence')
await within(15000, 'first connect', first.connect())
const t1 = await within(15000, 'first transaction', first.transaction())
await within(15000, 'first send', t1.send({ topic: fenceTopic, messages: [{ value: 'zombie-0' }, { value: 'zombie-1' }] }))
const second = txnProducer('node-txn-fence')
await within(15000, 'second connect', second.connect())
const t2 = await within(15000, 'second transaction', second.transaction()) // InitProducerId: fences the first
await within(15000, 'second send', t2.send({ topic: fenceTopic, messages: [{ value: 'fresh' }] }))
await within(15000, 'second commit', t2.commit())
out.fence = {}
try {
  await within(20000, 'first late send', t1.send({ topic: fenceTopic, messages: [{ value: 'late' }] }))
  out.fence.send = null
} catch (e) {
  out.fence.send = failure(e)
}
try {
  await within(20000, 'first commit', t1.commit())
  out.fence.commit = null
} catch (e) {
  out.fence.commit = failure(e)
}
// The second instance goes on after the first is fenced.
const t3 = await within(15000, 'second transaction 2', second.transaction())
await within(15000, 'second send 2', t3.send({ topic: fenceTopic, messages: [{ value: 'fresh-2' }] }))
await within(15000, 'second commit 2', t3.commit())
await within(15000, 'first disconnect', first.disconnect())
await within(15000, 'second disconnect', second.disconnect())

const fc = kafka.consumer({ groupId: 'node-txn-fence-reader', sessionTimeout: 10000, maxWaitTimeInMs: 200 })
const fenceGot = []
await within(15000, 'fence reader connect', fc.connect())
await within(15000, 'fence reader subscribe', fc.subscribe({ topic: fenceTopic, fromBeginning: true }))
await within(15000, 'fence reader run', fc.run({
  autoCommit: false,
  eachMessage: async ({ message }) => { fenceGot.push(message.value.toString()) }
}))
await settle(fenceGot, 2, 30000)
await within(15000, 'fence reader disconnect', fc.disconnect())
out.fenceCommitted = fenceGot

// sendOffsets: offsets committed with a transaction (AddOffsetsToTxn, TxnOffsetCommit) show in
// the group once it commits, and never when it aborts.
async function groupOffset () {
  const r = await within(15000, 'fetchOffsets', admin.fetchOffsets({ groupId: 'node-eos', topics: [topic] }))
  return Number(r[0].partitions.find(x => x.partition === 0).offset)
}
const eos = txnProducer('node-txn-eos')
await within(15000, 'eos connect', eos.connect())
let te = await within(15000, 'eos transaction 1', eos.transaction())
await within(15000, 'eos send 1', te.send({ topic: fenceTopic, messages: [{ value: 'eos-1' }] }))
await within(15000, 'sendOffsets 1', te.sendOffsets({
  consumerGroupId: 'node-eos', topics: [{ topic, partitions: [{ partition: 0, offset: '5' }] }]
}))
out.offsetInOpenTxn = await groupOffset()
await within(15000, 'eos commit 1', te.commit())
// EndTxn is answered once the outcome is durable (as Kafka's is); the offsets follow the
// markers, so a plain fetch right after can still see the old ones: poll, bounded.
for (let i = 0; i < 100 && (out.offsetCommitted = await groupOffset()) !== 5; i++) {
  await new Promise(resolve => setTimeout(resolve, 50))
}
te = await within(15000, 'eos transaction 2', eos.transaction())
await within(15000, 'sendOffsets 2', te.sendOffsets({
  consumerGroupId: 'node-eos', topics: [{ topic, partitions: [{ partition: 0, offset: '9' }] }]
}))
await within(15000, 'eos abort 2', te.abort())
out.offsetAfterAbort = await groupOffset()
await within(15000, 'eos disconnect', eos.disconnect())

await within(15000, 'admin disconnect', admin.disconnect())
console.log(JSON.stringify(out))
process.exit(0)
