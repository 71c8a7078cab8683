// Drives tidings with a Node Kafka client: creates a topic with the client's admin API,
// produces keyed events with headers through the client's producer, reads every partition back
// from offset 0 through the client's Fetch, and prints one JSON object for the Python test
// (tests/integration/test_kafka_node.py) to check.
//
//   node roundtrip.mjs platformatic|kafkajs BOOTSTRAP TOPIC PARTITIONS COUNT [idempotent]
//
// With `idempotent` the producers are the clients' idempotent ones (InitProducerId, sequence
// numbers per partition).
//
// Both clients' consumers use consumer groups for subscribe-style reading (the next issue);
// here each reads through the client's own Fetch path: @platformatic/kafka's Consumer.fetch()
// (a public call, by topic id) and kafkajs's broker-level fetch (the code its Consumer runs underneath).
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const [client, bootstrap, topic, partitionsArg, countArg, mode] = process.argv.slice(2)
const idempotent = mode === 'idempotent'
const partitions = Number(partitionsArg)
const count = Number(countArg)
const deadline = Date.now() + 60000

function events () {
  const out = []
  for (let i = 0; i < count; i++) {
    out.push({ key: `k${i % 13}`, value: `${client}-${i}`, n: String(i) })
  }
  return out
}

async function platformatic () {
  const kafka = await import('@platformatic/kafka')
  const base = { clientId: 'node-test', bootstrapBrokers: [bootstrap] }
  const admin = new kafka.Admin(base)
  await admin.createTopics({ topics: [topic], partitions, replicas: 1 })
  const md = await admin.metadata({ topics: [topic] })
  const meta = md.topics.get(topic)
  await admin.close()

  const producer = new kafka.Producer({
    ...base,
    serializers: kafka.stringSerializers,
    idempotent,
    partitioner: kafka.compatibilityPartitioner // Java's: the default masks differently
  })
  const produced = []
  const evs = events()
  for (let i = 0; i < evs.length; i += 100) {
    const chunk = evs.slice(i, i + 100)
    const res = await producer.send({
      messages: chunk.map(e => ({ topic, key: e.key, value: e.value, headers: { n: e.n } }))
    })
    if (!res.offsets) throw new Error('no offsets in ' + JSON.stringify(res))
  }
  await producer.close()

  const consumer = new kafka.Consumer({ ...base, groupId: 'node-test-unused' })
  const consumed = []
  for (let p = 0; p < partitions; p++) {
    let offset = 0n
    for (;;) {
      if (Date.now() > deadline) throw new Error('timed out reading partition ' + p)
      const res = await consumer.fetch({
        node: meta.partitions[p].leader,
        maxWaitTime: 100,
        topics: [{
          topicId: meta.id, // the id: Fetch v13+ names topics by id
          partitions: [{ partition: p, fetchOffset: offset, currentLeaderEpoch: -1, lastFetchedEpoch: -1, partitionMaxBytes: 1048576 }]
        }]
      })
      const part = res.responses[0].partitions[0]
      if (part.errorCode !== 0) throw new Error('fetch error ' + part.errorCode)
      let got = 0
      for (const batch of part.records ?? []) {
        for (const r of batch.records) {
          const off = batch.firstOffset + BigInt(r.offsetDelta)
          if (off < offset) continue
          const headers = {}
          for (const [k, v] of r.headers) headers[k.toString()] = v.toString()
          consumed.push({ partition: p, offset: Number(off), key: r.key.toString(), value: r.value.toString(), n: headers.n })
          offset = off + 1n
          got++
        }
      }
      if (got === 0 && offset >= part.highWatermark) break
    }
  }
  await consumer.close()
  return { produced: evs.length, consumed, partitions: meta.partitionsCount ?? meta.partitions.length }
}

async function kafkajs () {
  const { Kafka, logLevel } = require('kafkajs')
  const k = new Kafka({ clientId: 'node-test', brokers: [bootstrap], logLevel: logLevel.WARN })
  const admin = k.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true })
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  const producer = k.producer({ allowAutoTopicCreation: false, idempotent })
  await producer.connect()
  const evs = events()
  for (let i = 0; i < evs.length; i += 100) {
    const chunk = evs.slice(i, i + 100)
    await producer.send({
      topic,
      acks: -1,
      messages: chunk.map(e => ({ key: e.key, value: e.value, headers: { n: e.n } }))
    })
  }
  await producer.disconnect()
  const offsets = await admin.fetchTopicOffsets(topic)

  // The broker-level fetch kafkajs's Consumer uses, on a cluster object made by the client's
  // own (private) factory, so it has the client's defaults.
  const make = Object.getOwnPropertySymbols(k).find(s => s.description === 'private:Kafka:createCluster')
  const cluster = k[make]({ metadataMaxAge: 300000, allowAutoTopicCreation: false })
  await cluster.connect()
  await cluster.addTargetTopic(topic)
  const consumed = []
  for (let p = 0; p < partitions; p++) {
    const leader = md.topics[0].partitions.find(x => x.partitionId === p).leader
    const broker = await cluster.findBroker({ nodeId: String(leader) })
    const high = Number(offsets.find(o => o.partition === p).high)
    let offset = 0
    while (offset < high) {
      if (Date.now() > deadline) throw new Error('timed out reading partition ' + p)
      const res = await broker.fetch({
        maxWaitTime: 100,
        topics: [{ topic, partitions: [{ partition: p, fetchOffset: String(offset), maxBytes: 1048576 }] }]
      })
      const part = res.responses[0].partitions[0]
      if (part.errorCode !== 0) throw new Error('fetch error ' + part.errorCode)
      for (const m of part.messages) {
        const off = Number(m.offset)
        if (off < offset) continue
        consumed.push({ partition: p, offset: off, key: m.key.toString(), value: m.value.toString(), n: m.headers.n.toString() })
        offset = off + 1
      }
    }
  }
  await cluster.disconnect()

  // Admin: configuration and record deletion (DescribeConfigs, AlterConfigs, DeleteRecords).
  const { ConfigResourceTypes } = require('kafkajs')
  const resource = { type: ConfigResourceTypes.TOPIC, name: topic }
  await admin.alterConfigs({ resources: [{ ...resource, configEntries: [{ name: 'retention.ms', value: '3600000' }] }] })
  const described = await admin.describeConfigs({ resources: [resource], includeSynonyms: false })
  const configs = {}
  for (const e of described.resources[0].configEntries) configs[e.configName] = e.configValue
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '5' }] })
  const after = await admin.fetchTopicOffsets(topic)
  await admin.disconnect()
  return {
    produced: evs.length,
    consumed,
    partitions: md.topics[0].partitions.length,
    configs,
    low0: Number(after.find(o => o.partition === 0).low)
  }
}

const run = { platformatic, kafkajs }[client]
if (!run) {
  console.error('unknown client ' + client)
  process.exit(2)
}
run().then(r => {
  // Exit only once the whole line is written: a pipe takes it asynchronously.
  process.stdout.write(JSON.stringify(r) + '\n', () => process.exit(0))
}, e => {
  console.error(e && e.stack ? e.stack : e)
  if (e && e.errors) console.error(JSON.stringify(e.errors, null, 1))
  process.exit(1)
})
