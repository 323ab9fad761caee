import t from 'tap'
import { startNode } from './helpers/node-process.js'

// POST /v1/policies/check: the console's editor checks a policy as it is typed, inserting
// nothing; open without the token (it writes nothing), every problem named.

t.test('a policy is checked, not inserted', async t => {
  const node = await startNode(t, { type: 'master', name: 'check-m', env: { REST_TOKEN: 'check-token' } })
  const check = async (body: string): Promise<{ status: number, json: any }> => {
    const response = await fetch(`${node.url}/v1/policies/check`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(10_000) })
    return { status: response.status, json: await response.json() }
  }
  const before = await (await fetch(`${node.url}/v1/ledger/head`)).json() as { seq: number }
  t.same(await check('{"worker": {"name": "w9", "company": "acme", "slots": 2}}'), { status: 200, json: { valid: true, type: 'worker' } }, 'a good one, without the token')
  const badSchema = await check('{"worker": {"name": "w9", "slots": "many"}}')
  t.equal(badSchema.status, 400)
  t.match(badSchema.json.message, /slots/, `the field is named: ${badSchema.json.message}`)
  const twoTypes = await check('{"a": {}, "b": {}}')
  t.equal(twoTypes.status, 400)
  t.match(twoTypes.json.message, /\S/, twoTypes.json.message)
  const forged = await check('{"worker": {"name": "w9", "company": "acme", "id": "' + 'a'.repeat(64) + '", "date": "2026-01-01T00:00:00.000Z", "public_key": "' + 'b'.repeat(64) + '", "signature": "' + 'c'.repeat(128) + '"}}')
  t.equal(forged.status, 400, `a signed one is verified: ${String(forged.json.message)}`)
  const after = await (await fetch(`${node.url}/v1/ledger/head`)).json() as { seq: number }
  t.equal(after.seq, before.seq, 'nothing was inserted')
})

t.test('search by the command language\'s where conditions, and delete, in the JSON API', async t => {
  const node = await startNode(t, { type: 'master', name: 'search-m' })
  for (const name of ['s-1', 's-2']) {
    const response = await fetch(`${node.url}/v1/policies`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sensor: { name, site: name === 's-1' ? 'north' : 'south' } }), signal: AbortSignal.timeout(10_000) })
    t.equal(response.status, 201)
  }
  const search = async (query: Record<string, string>): Promise<{ status: number, json: any }> => {
    const response = await fetch(`${node.url}/v1/policies/search?${new URLSearchParams(query).toString()}`, { signal: AbortSignal.timeout(10_000) })
    return { status: response.status, json: await response.json() }
  }
  const north = await search({ type: 'sensor', where: 'site = north' })
  t.equal(north.status, 200)
  t.same(north.json.map((p: any) => p.sensor.name), ['s-1'], 'found by a field')
  t.equal((await search({ type: 'sensor' })).json.length, 2, 'no conditions: every policy of the type')
  const bad = await search({ type: 'sensor', where: 'site =' })
  t.equal(bad.status, 400, `a bad condition is named: ${String(bad.json.message)}`)
  t.equal((await search({ type: 'sensor; drop' })).status, 400, 'a type is a name')
  const id = north.json[0].sensor.id as string
  const deleted = await fetch(`${node.url}/v1/policies/${id}`, { method: 'DELETE', signal: AbortSignal.timeout(10_000) })
  t.equal(deleted.status, 200)
  t.same((await search({ type: 'sensor', where: 'site = north' })).json, [], 'deleted')
  t.equal((await fetch(`${node.url}/v1/policies/${id}`, { method: 'DELETE', signal: AbortSignal.timeout(10_000) })).status, 404, 'a policy no longer there is not found')
})
