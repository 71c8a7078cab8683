// @platformatic/kafka's admin client managing client quotas on tidings (DescribeClientQuotas,
// AlterClientQuotas): sets quotas for a user, the default client id and a (user, client id)
// pair, describes them with exact, default and any-name filters (strict and not), removes one
// key, and tries an unknown key. Prints one JSON object for tests/integration/test_quotas.py.
//
//   node quotas.mjs BOOTSTRAP
const kafka = await import('@platformatic/kafka')
const [bootstrap] = process.argv.slice(2)
const admin = new kafka.Admin({ clientId: 'quota-admin', bootstrapBrokers: [bootstrap], retries: 0 })

const entity = (user, client) => {
  const e = []
  if (user !== undefined) e.push({ entityType: 'user', entityName: user })
  if (client !== undefined) e.push({ entityType: 'client-id', entityName: client })
  return e
}
const altered = await admin.alterClientQuotas({
  entries: [
    { entities: entity('alice'), ops: [{ key: 'producer_byte_rate', value: 1048576, remove: false }, { key: 'consumer_byte_rate', value: 2097152, remove: false }] },
    { entities: entity(undefined, null), ops: [{ key: 'request_percentage', value: 25.5, remove: false }] },
    { entities: entity('alice', 'app'), ops: [{ key: 'producer_byte_rate', value: 4096, remove: false }] }
  ]
})
const describe = async (components, strict) => {
  const entries = await admin.describeClientQuotas({ components, strict })
  return entries.map(e => ({
    entity: e.entity.map(p => [p.entityType, p.entityName]),
    values: Object.fromEntries(e.values.map(v => [v.key, v.value]))
  })).sort((a, b) => JSON.stringify(a.entity).localeCompare(JSON.stringify(b.entity)))
}
const alice = await describe([{ entityType: 'user', matchType: 0, match: 'alice' }], false)
const aliceStrict = await describe([{ entityType: 'user', matchType: 0, match: 'alice' }], true)
const defaultClient = await describe([{ entityType: 'client-id', matchType: 1 }], false)
const anyClient = await describe([{ entityType: 'client-id', matchType: 2 }], false)
await admin.alterClientQuotas({
  entries: [{ entities: entity('alice'), ops: [{ key: 'consumer_byte_rate', remove: true }] }]
})
const afterRemove = await describe([{ entityType: 'user', matchType: 0, match: 'alice' }], true)
let unknownKey = null
try {
  await admin.alterClientQuotas({
    entries: [{ entities: entity('bob'), ops: [{ key: 'no_such_quota', value: 1, remove: false }] }]
  })
} catch (err) {
  const inner = err.errors ? err.errors[0] : err
  unknownKey = JSON.stringify({ message: String(inner.message), errors: inner.errors ? Object.values(inner.errors).map(e => [e.apiId, e.apiCode, e.message]) : null, response: inner.response })
}
await admin.close()
console.log(JSON.stringify({
  altered: altered.map(e => e.errorCode),
  alice,
  aliceStrict,
  defaultClient,
  anyClient,
  afterRemove,
  unknownKey
}))
