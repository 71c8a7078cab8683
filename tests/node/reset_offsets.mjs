// kafkajs's admin.resetOffsets({earliest: true}) against tidings: it commits offset -2 for
// every partition of the topic, which Kafka stores and gives back. Prints one JSON object for
// tests/integration/test_kafka_hardening.py: the offsets fetched back, and what a group
// consumer then reads (before the reset, the group's offsets were at the end).
//
//   node reset_offsets.mjs BOOTSTRAP TOPIC GROUP
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { Kafka, logLevel } = require('kafkajs')
const [bootstrap, topic, group] = process.argv.slice(2)

// The timer is cleared once p settles: a pending one would keep node running until it fires.
function within (ms, what, p) {
  let timer
  const limit = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not return within ${ms} ms`)), ms)
  })
  return Promise.race([p, limit]).finally(() => clearTimeout(timer))
}

const kafka = new Kafka({ clientId: 'reset-test', brokers: [bootstrap], logLevel: logLevel.NOTHING })
const admin = kafka.admin()
await admin.connect()
await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
const producer = kafka.producer()
await producer.connect()
await producer.send({ topic, messages: [0, 1, 2].map(i => ({ value: `v${i}`, partition: i % 2 })) })
await producer.disconnect()
await admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: '2' }, { partition: 1, offset: '1' }] })
await within(10000, 'resetOffsets', admin.resetOffsets({ groupId: group, topic, earliest: true }))
const fetched = await admin.fetchOffsets({ groupId: group, topics: [topic] })
const offsets = fetched[0].partitions.map(p => [p.partition, p.offset]).sort()
await admin.disconnect()

const consumer = kafka.consumer({ groupId: group })
await consumer.connect()
// The committed -2 sends kafkajs to the topic's configured start, the earliest offset.
await consumer.subscribe({ topic, fromBeginning: true })
const seen = []
await within(30000, 'consuming', new Promise((resolve, reject) => {
  consumer.run({
    eachMessage: async ({ message }) => {
      seen.push(message.value.toString())
      if (seen.length === 3) resolve()
    }
  }).catch(reject)
}))
await consumer.disconnect()
console.log(JSON.stringify({ offsets, seen: seen.sort() }))
