// A kafkajs consumer group against tidings: creates a topic, produces COUNT events, consumes
// them with consumer.run() in a group (JoinGroup/SyncGroup/Heartbeat/OffsetCommit), and prints
// what it consumed and what the group committed, as JSON, for test_kafka_node.py.
//
//   node group.mjs BOOTSTRAP TOPIC PARTITIONS COUNT GROUP
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { Kafka, logLevel } = require('kafkajs')
const [bootstrap, topic, partitionsArg, countArg, groupId] = process.argv.slice(2)
const count = Number(countArg)
const kafka = new Kafka({ clientId: 'node-group', brokers: [bootstrap], logLevel: logLevel.WARN })

const admin = kafka.admin()
await admin.connect()
await admin.createTopics({ topics: [{ topic, numPartitions: Number(partitionsArg) }] })
const producer = kafka.producer()
await producer.connect()
await producer.send({
  topic,
  messages: Array.from({ length: count }, (_, i) => ({ key: `k${i}`, value: String(i) }))
})
await producer.disconnect()

const consumer = kafka.consumer({ groupId, sessionTimeout: 10000 })
await consumer.connect()
await consumer.subscribe({ topic, fromBeginning: true })
const consumed = []
await consumer.run({
  eachMessage: async ({ partition, message }) => {
    consumed.push({ partition, offset: Number(message.offset), value: message.value.toString() })
  }
})
const deadline = Date.now() + 60000
while (consumed.length < count && Date.now() < deadline) {
  await new Promise(resolve => setTimeout(resolve, 100))
}
await consumer.disconnect() // commits what was processed and leaves the group
const offsets = await admin.fetchOffsets({ groupId, topics: [topic] })
const groups = await admin.listGroups()
await admin.disconnect()
console.log(JSON.stringify({
  consumed,
  committed: offsets[0].partitions.map(p => ({ partition: p.partition, offset: Number(p.offset) })),
  listed: groups.groups.filter(g => g.groupId === groupId)
}))
