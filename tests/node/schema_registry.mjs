// kafkajs and @kafkajs/confluent-schema-registry against tidings' schema registry (served under
// the HTTP listener, at REGISTRY_URL) and its enforcement on produce. For each of Avro, JSON
// Schema and Protobuf it:
//   - creates the topic PREFIX-<type> with the topic configuration CONFIG (a JSON object; the
//     test passes value.schema.validation=true, schema.validation.mode=full),
//   - registers version 1 under the subject PREFIX-<type>-value with the registry client (which
//     also sets the subject's compatibility to BACKWARD, as it does on a first registration),
//   - produces events encoded by the client in the wire format through kafkajs,
//   - registers a compatible version 2 (an added field with a default, or an added optional
//     property in a closed content model, or an added field number) and produces with it,
//   - tries an incompatible version 3 (a field without default; a property's type changed; a
//     field's scalar type changed) and records the error the client surfaces (Confluent: 409),
//   - produces a record that is not in the wire format and one in the wire format whose payload
//     does not decode against the schema, and records the produce errors (INVALID_RECORD),
//   - reads the topic back with a kafkajs consumer and decodes every event with the client.
// Prints one JSON object, one member per type, for tests/integration/test_schema_clients.py. A
// step that throws ends that type's run and is recorded as {"error": ...}; the others go on.
//
//   node schema_registry.mjs BOOTSTRAP REGISTRY_URL PREFIX CONFIG_JSON
//
// kafkajs's registry client (3.x) writes a Protobuf payload without the message indexes that
// Confluent's wire format puts between the schema id and the message (Confluent's serializers
// write the list [0] of the file's first message as the single byte 0); this script inserts
// that byte, so that what it produces is in Confluent's format, and the client's decoder, which
// skips leading zero bytes, still reads it.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { Kafka, logLevel } = require('kafkajs')
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry')
const [bootstrap, registryUrl, prefix, configArg] = process.argv.slice(2)
const topicConfig = JSON.parse(configArg || '{}')
const PER_VERSION = 10
const deadline = Date.now() + 45000

const avro = (extra) => JSON.stringify({
  type: 'record',
  name: 'Reading',
  namespace: 'tidings.test',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'sensor', type: 'string' },
    { name: 'value', type: 'double' },
    ...extra
  ]
})
const jsonSchema = (sensorType, extra) => JSON.stringify({
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'Reading',
  type: 'object',
  properties: {
    id: { type: 'integer' },
    sensor: { type: sensorType },
    value: { type: 'number' },
    ...extra
  },
  required: ['id', 'sensor', 'value'],
  additionalProperties: false
})
const proto = (sensorType, extra) => `syntax = "proto3";
package tidings.test;

message Reading {
  int32 id = 1;
  ${sensorType} sensor = 2;
  double value = 3;${extra}
}
`

const wire = (id, payload) => {
  const head = Buffer.alloc(5)
  head.writeInt32BE(id, 1)
  return Buffer.concat([head, payload])
}

// Per type: the three versions, the events of versions 1 and 2, a payload in the wire format
// that does not decode against version 1, and what the client's encoder produces made into
// Confluent's format.
const TYPES = {
  avro: {
    type: SchemaType.AVRO,
    v1: avro([]),
    v2: avro([{ name: 'unit', type: 'string', default: 'C' }]),
    v3: avro([{ name: 'unit', type: 'string', default: 'C' }, { name: 'site', type: 'string' }]),
    event: (i, v) => v === 1 ? { id: i, sensor: `s${i % 3}`, value: i / 2 } : { id: i, sensor: `s${i % 3}`, value: i / 2, unit: 'K' },
    bad: () => Buffer.from([0x02]), // a long (1), then a string's length and nothing more
    fix: (buf) => buf
  },
  json: {
    type: SchemaType.JSON,
    v1: jsonSchema('string', {}),
    v2: jsonSchema('string', { unit: { type: 'string' } }),
    v3: jsonSchema('integer', { unit: { type: 'string' } }),
    event: (i, v) => v === 1 ? { id: i, sensor: `s${i % 3}`, value: i / 2 } : { id: i, sensor: `s${i % 3}`, value: i / 2, unit: 'K' },
    bad: () => Buffer.from('{"id":"one","sensor":"s1","value":1}'),
    fix: (buf) => buf
  },
  protobuf: {
    type: SchemaType.PROTOBUF,
    v1: proto('string', ''),
    v2: proto('string', '\n  string unit = 4;'),
    v3: proto('int64', '\n  string unit = 4;'),
    event: (i, v) => v === 1 ? { id: i, sensor: `s${i % 3}`, value: i / 2 } : { id: i, sensor: `s${i % 3}`, value: i / 2, unit: 'K' },
    // The message index [0], then field 2 (sensor, length-delimited) claiming 100 bytes of 1.
    bad: () => Buffer.from([0x00, 0x12, 0x64, 0x41]),
    fix: (buf) => Buffer.concat([buf.subarray(0, 5), Buffer.from([0]), buf.subarray(5)])
  }
}

// kafkajs wraps a produce's protocol error (KafkaJSNonRetriableError, its cause the
// KafkaJSProtocolError whose type names the Kafka error, e.g. INVALID_RECORD).
const describeError = (e) => {
  let inner = e
  for (let i = 0; i < 5 && inner && !inner.type && inner.cause; i++) inner = inner.cause
  return {
    name: e && e.name,
    type: inner && inner.type,
    status: e && e.status, // the registry client: the HTTP status
    message: String(e && e.message),
    inner: inner && inner !== e ? String(inner.message) : undefined
  }
}

const kafka = new Kafka({
  clientId: 'node-schema',
  brokers: [bootstrap],
  logLevel: logLevel.NOTHING,
  retry: { retries: 2 }
})
const registry = new SchemaRegistry({ host: registryUrl, retry: { retries: 0 } })

async function runType (name, t, admin, producer, out) {
  const topic = out.topic
  const subject = out.subject
  const step = (s) => out.steps.push(s)
  await admin.createTopics({
    topics: [{
      topic,
      numPartitions: 1,
      configEntries: Object.entries(topicConfig).map(([k, v]) => ({ name: k, value: String(v) }))
    }],
    waitForLeaders: true
  })
  step('created')
  const r1 = await registry.register({ type: t.type, schema: t.v1 }, { subject })
  step('registered v1')
  const send = async (id, v) => {
    const messages = []
    for (let i = 0; i < PER_VERSION; i++) {
      const encoded = await registry.encode(id, t.event((v - 1) * PER_VERSION + i, v))
      messages.push({ key: `k${i}`, value: t.fix(encoded) })
    }
    await producer.send({ topic, acks: -1, messages })
    out.produced += messages.length
  }
  await send(r1.id, 1)
  step('produced v1')
  const r2 = await registry.register({ type: t.type, schema: t.v2 }, { subject })
  step('registered v2')
  await send(r2.id, 2)
  step('produced v2')
  out.ids = [r1.id, r2.id]
  try {
    const r3 = await registry.register({ type: t.type, schema: t.v3 }, { subject })
    out.incompatible = { registered: r3.id }
  } catch (e) {
    out.incompatible = describeError(e)
  }
  out.latest = await registry.getLatestSchemaId(subject)
  out.lookupV1 = await registry.getRegistryIdBySchema(subject, { type: t.type, schema: t.v1 })
  step('checked the registry')

  // Refusals: nothing of a refused batch is stored (checked through the end offset below).
  const refused = async (value) => {
    try {
      await producer.send({ topic, acks: -1, messages: [{ value }] })
      return { accepted: true }
    } catch (e) {
      return describeError(e)
    }
  }
  out.notWire = await refused(Buffer.from(JSON.stringify(t.event(99, 1))))
  out.badPayload = await refused(wire(r1.id, t.bad()))
  out.unknownId = await refused(t.fix(wire(2147483000, (await registry.encode(r1.id, t.event(98, 1))).subarray(5))))
  const offsets = await admin.fetchTopicOffsets(topic)
  out.end = Number(offsets[0].high)
  step('tried refusals')
}

async function consumeAll (results) {
  const topics = Object.values(results).filter(r => r.produced > 0).map(r => r.topic)
  const want = Object.values(results).reduce((n, r) => n + r.produced, 0)
  const got = []
  if (topics.length === 0) return got
  const consumer = kafka.consumer({ groupId: `${prefix}-reader`, sessionTimeout: 10000 })
  await consumer.connect()
  for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ topic, message }) => {
      const row = { topic, offset: Number(message.offset), key: message.key && message.key.toString() }
      row.schemaId = message.value.length >= 5 ? message.value.readInt32BE(1) : null
      try {
        const decoded = await registry.decode(message.value)
        row.value = JSON.parse(JSON.stringify(decoded)) // a plain object (avsc, protobufjs)
      } catch (e) {
        row.decodeError = String(e && e.message)
      }
      got.push(row)
    }
  })
  while (got.length < want && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  await consumer.disconnect()
  return got
}

const results = {}
const admin = kafka.admin()
await admin.connect()
const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } })
await producer.connect()
for (const [name, t] of Object.entries(TYPES)) {
  const topic = `${prefix}-${name}`
  results[name] = { topic, subject: `${topic}-value`, steps: [], produced: 0 }
  try {
    await runType(name, t, admin, producer, results[name])
  } catch (e) {
    results[name].error = describeError(e)
  }
}
await producer.disconnect()
let consumed = []
try {
  consumed = await consumeAll(results)
} catch (e) {
  for (const r of Object.values(results)) r.consumeError = describeError(e)
}
for (const r of Object.values(results)) {
  r.consumed = consumed.filter(m => m.topic === r.topic).sort((a, b) => a.offset - b.offset)
}
await admin.disconnect()
process.stdout.write(JSON.stringify(results) + '\n', () => process.exit(0))
