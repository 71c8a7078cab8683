// An @platformatic/kafka consumer group against tidings: creates a topic, produces COUNT events,
// consumes them with consumer.consume() in a group (JoinGroup/SyncGroup/Heartbeat, Fetch v13+
// by topic id, OffsetCommit), commits what it processed, and prints what it consumed and what
// the group committed, as JSON, for test_kafka_node.py.
//
//   node group_platformatic.mjs BOOTSTRAP TOPIC PARTITIONS COUNT GROUP
const kafka = await import('@platformatic/kafka')
const [bootstrap, topic, partitionsArg, countArg, groupId] = process.argv.slice(2)
const count = Number(countArg)
const base = { clientId: 'node-group', bootstrapBrokers: [bootstrap] }

const admin = new kafka.Admin(base)
await admin.createTopics({ topics: [topic], partitions: Number(partitionsArg), replicas: 1 })
const producer = new kafka.Producer({ ...base, serializers: kafka.stringSerializers })
await producer.send({
  messages: Array.from({ length: count }, (_, i) => ({ topic, key: `k${i}`, value: String(i) }))
})
await producer.close()

const consumer = new kafka.Consumer({
  ...base,
  groupId,
  deserializers: kafka.stringDeserializers,
  sessionTimeout: 10000,
  heartbeatInterval: 500,
  maxWaitTime: 200
})
const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false })
const consumed = []
const deadline = Date.now() + 60000
for await (const message of stream) {
  consumed.push({ partition: message.partition, offset: Number(message.offset), value: message.value })
  await message.commit()
  if (consumed.length >= count || Date.now() > deadline) break
}
await stream.close()
await consumer.close()
const partitionIndexes = Array.from({ length: Number(partitionsArg) }, (_, i) => i)
const offsets = await admin.listConsumerGroupOffsets({
  groups: [{ groupId, topics: [{ name: topic, partitionIndexes }] }]
})
const groups = await admin.listGroups()
await admin.close()
console.log(JSON.stringify({
  consumed,
  committed: offsets[0].topics[0].partitions.map(p => ({ partition: p.partitionIndex, offset: p.committedOffset })),
  listed: [...groups.values()].filter(g => g.id === groupId).map(g => ({ id: g.id, protocolType: g.protocolType }))
}, (k, v) => typeof v === 'bigint' ? Number(v) : v))
