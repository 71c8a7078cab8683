// Authenticates to tidings with a Node Kafka client's SASL support, produces COUNT events to
// TOPIC and reads them back, and prints one JSON object for the Python test
// (tests/integration/test_kafka_sasl.py) to check. A failed authentication prints
// {"error": "..."} and exits 0, so that the test can check the refusal.
//
//   node sasl.mjs platformatic|kafkajs BOOTSTRAP MECHANISM USER PASSWORD TOPIC COUNT [SECONDS]
//
// With SECONDS (kafkajs only) the producer sends COUNT events spread over that many seconds on
// one connection, re-authenticating (KIP-368) 1 s before each session the broker grants ends.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const [client, bootstrap, mechanism, username, password, topic, countArg] = process.argv.slice(2)
const count = Number(countArg)
const seconds = Number(process.argv[9] || 0)
const values = Array.from({ length: count }, (_, i) => `${client}-${i}`)

async function platformatic () {
  const kafka = await import('@platformatic/kafka')
  const base = {
    clientId: 'node-sasl',
    bootstrapBrokers: [bootstrap],
    sasl: { mechanism, username, password },
    retries: 0
  }
  const admin = new kafka.Admin(base)
  try {
    await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 })
  } finally {
    await admin.close()
  }
  const producer = new kafka.Producer({ ...base, serializers: kafka.stringSerializers })
  try {
    await producer.send({ messages: values.map(v => ({ topic, value: v })) })
  } finally {
    await producer.close()
  }
  const consumer = new kafka.Consumer({
    ...base, groupId: 'node-sasl-unused', deserializers: kafka.stringDeserializers
  })
  const md = await consumer.metadata({ topics: [topic] })
  const meta = md.topics.get(topic)
  const res = await consumer.fetch({
    node: meta.partitions[0].leader,
    maxWaitTime: 100,
    topics: [{
      topicId: meta.id,
      partitions: [{ partition: 0, fetchOffset: 0n, currentLeaderEpoch: -1, lastFetchedEpoch: -1, partitionMaxBytes: 1048576 }]
    }]
  })
  const got = []
  for (const batch of res.responses[0].partitions[0].records ?? []) {
    for (const r of batch.records) got.push(r.value.toString())
  }
  await consumer.close()
  return got
}

async function kafkajs () {
  const { Kafka, logLevel } = require('kafkajs')
  const k = new Kafka({
    clientId: 'node-sasl',
    brokers: [bootstrap],
    sasl: { mechanism: mechanism.toLowerCase(), username, password },
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    reauthenticationThreshold: 1000
  })
  const producer = k.producer()
  await producer.connect()
  if (seconds > 0) {
    for (const v of values) {
      await producer.send({ topic, messages: [{ value: v }] })
      await new Promise(resolve => setTimeout(resolve, seconds * 1000 / count))
    }
  } else {
    await producer.send({ topic, messages: values.map(v => ({ value: v })) })
  }
  await producer.disconnect()
  const consumer = k.consumer({ groupId: `node-sasl-${topic}` })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const got = []
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out consuming')), 30000)
    consumer.run({
      eachMessage: async ({ message }) => {
        got.push(message.value.toString())
        if (got.length >= count) { clearTimeout(timer); resolve() }
      }
    }).catch(reject)
  })
  await consumer.disconnect()
  return got
}

try {
  const got = client === 'kafkajs' ? await kafkajs() : await platformatic()
  console.log(JSON.stringify({ consumed: got }))
} catch (e) {
  console.log(JSON.stringify({ error: String(e && (e.message || e)) + ' ' + String(e && e.cause ? (e.cause.message || e.cause) : '') }))
}
process.exit(0)
