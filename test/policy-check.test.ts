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
