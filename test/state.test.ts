import t from 'tap'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import { LedgerState } from '../src/ledger/state.js'
import { type Entry, GENESIS_HASH, entryHash, entryHashOfText } from '../src/ledger/entry.js'
import { canonicalJson } from '../src/policies/canonical.js'
import { type Policy, policyBody } from '../src/policies/policy.js'

// The state's indexes against a plain scan: any sequence of puts and deletes (names that
// collide, case-insensitively, so index entries go from one id to many and back) must leave
// lookups answering exactly what a scan of the live policies answers.

const NAMES = ['alpha', 'Alpha', 'beta', 'gamma']
const id = (n: number): string => createHash('sha256').update(String(n)).digest('hex')
const item = (n: number, name: string, key: string): Policy => ({ item: { name, color: n % 2 === 0 ? 'red' : 'blue', id: id(n), public_key: key } })

t.test('index lookups equal a scan after any puts and deletes', async t => {
  const op = fc.oneof(
    fc.record({ put: fc.integer({ min: 0, max: 11 }), name: fc.constantFrom(...NAMES), key: fc.constantFrom('k1', 'k2') }),
    fc.record({ del: fc.integer({ min: 0, max: 11 }) })
  )
  fc.assert(fc.property(fc.array(op, { maxLength: 40 }), ops => {
    const state = new LedgerState()
    const live = new Map<string, Policy>()
    let seq = 0
    for (const o of ops) {
      seq++
      if ('put' in o) {
        const policy = item(o.put, o.name, o.key)
        state.apply({ seq, op: 'put', policy } as unknown as Entry)
        live.set(id(o.put), policy)
      } else {
        state.apply({ seq, op: 'delete', policy: { delete: { policy_id: id(o.del) } } } as unknown as Entry)
        live.delete(id(o.del))
      }
    }
    for (const name of [...NAMES, 'delta']) {
      const found = [...state.lookup('item', 'name', name)].map(p => policyBody(p).id).sort()
      const scanned = [...live.values()].filter(p => String(policyBody(p).name).toLowerCase() === name.toLowerCase()).map(p => policyBody(p).id).sort()
      if (JSON.stringify(found) !== JSON.stringify(scanned)) return false
    }
    for (const color of ['red', 'blue']) {
      if ([...state.lookup('item', 'color', color)].length !== [...live.values()].filter(p => policyBody(p).color === color).length) return false
    }
    return state.size === live.size && [...state.all()].every(p => live.get(String(policyBody(p).id)) !== undefined)
  }), { numRuns: 500 })
  t.pass('500 random histories')
})

t.test("sharing one copy of an author's key keeps every policy's key as stored", async t => {
  const state = new LedgerState()
  const key = 'ab'.repeat(32)
  // two distinct string objects with the same text, as two JSON.parse calls produce
  const a = JSON.parse(JSON.stringify(item(1, 'one', key))) as Policy
  const b = JSON.parse(JSON.stringify(item(2, 'two', key))) as Policy
  state.apply({ seq: 1, op: 'put', policy: a } as unknown as Entry)
  state.apply({ seq: 2, op: 'put', policy: b } as unknown as Entry)
  t.equal(policyBody(state.get(id(2))!).public_key, key)
  t.equal(policyBody(state.get(id(1))!).public_key, policyBody(state.get(id(2))!).public_key)
})

t.test('the chain hash from a policy\'s canonical text equals the hash from the policy', async t => {
  fc.assert(fc.property(
    fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }),
    fc.constantFrom('put', 'delete'),
    fc.integer({ min: 1, max: 2 ** 40 }),
    (body, op, seq) => {
      const policy = { item: JSON.parse(JSON.stringify(body)) } as Policy
      return entryHashOfText(GENESIS_HASH, seq, op as 'put' | 'delete', canonicalJson(policy)) === entryHash(GENESIS_HASH, seq, op as 'put' | 'delete', policy)
    }), { numRuns: 500 })
  t.pass('500 random policies')
})
