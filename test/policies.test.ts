import t from 'tap'
import fc from 'fast-check'
import { randomBytes } from 'node:crypto'
import { LedgerMeshError } from '../src/base/errors.js'
import {
  Ed25519Signer, canonicalJson, contentId, preparePolicy, parsePolicyJson, validatePolicy,
  verifyPolicy, withLedgerScope, type Policy
} from '../src/policies/index.js'
import { signingPayload } from '../src/policies/prepare.js'

const signer = new Ed25519Signer(randomBytes(32))
const worker: Policy = { worker: { name: 'w1', company: 'acme', ip: '127.0.0.1', port: 4000 } }

t.test('canonical JSON does not depend on key order (RFC 8785)', async t => {
  t.equal(canonicalJson({ b: 1, a: { d: [1, 'x'], c: null } }), '{"a":{"c":null,"d":[1,"x"]},"b":1}')
  t.equal(canonicalJson({ n: 1e21, f: 0.1 }), '{"f":0.1,"n":1e+21}')
})

t.test('content ids: same content, same id; reserved fields do not count', async t => {
  const reordered: Policy = { worker: { port: 4000, ip: '127.0.0.1', company: 'acme', name: 'w1' } }
  t.equal(contentId(worker), contentId(reordered))
  t.match(contentId(worker), /^[0-9a-f]{64}$/)
  const prepared = preparePolicy(worker, signer)
  t.equal(contentId(prepared), contentId(worker), 'id, date, public_key and signature are not part of the id')
  t.not(contentId({ worker: { ...worker.worker, port: 4001 } }), contentId(worker))
})

t.test('prepare adds id, date, public_key and signature; verify accepts it', async t => {
  const prepared = preparePolicy(worker, signer, new Date('2026-11-25T01:12:37.799Z'))
  const body = prepared.worker
  t.equal(body.id, contentId(worker))
  t.equal(body.date, '2026-11-25T01:12:37.799000Z', 'UTC with microseconds')
  t.equal(body.public_key, signer.publicKey)
  t.match(body.signature, /^[0-9a-f]{128}$/)
  t.same(Object.keys(body), ['name', 'company', 'ip', 'port', 'id', 'date', 'public_key', 'signature'])
  t.same(worker, { worker: { name: 'w1', company: 'acme', ip: '127.0.0.1', port: 4000 } }, 'input unchanged')
  t.doesNotThrow(() => validatePolicy(prepared))
  t.doesNotThrow(() => verifyPolicy(prepared))
  t.doesNotThrow(() => verifyPolicy(withLedgerScope(prepared, 'global')), 'the ledger field is not signed')
})

t.test('a flipped byte anywhere is rejected', async t => {
  const prepared = preparePolicy(worker, signer)
  const sig = prepared.worker.signature as string
  const flipped = sig.slice(0, 10) + (sig[10] === '0' ? '1' : '0') + sig.slice(11)
  t.throws(() => verifyPolicy({ worker: { ...prepared.worker, signature: flipped } }), { code: 'bad_signature' })
  t.throws(() => verifyPolicy({ worker: { ...prepared.worker, port: 4001 } }), { code: 'bad_signature', message: /does not match its content/ })
  t.throws(() => verifyPolicy({ worker: { ...prepared.worker, date: '2030-01-01T00:00:00.000000Z' } }), { code: 'bad_signature', message: /signature/ })
  const other = new Ed25519Signer(randomBytes(32))
  t.throws(() => verifyPolicy({ worker: { ...prepared.worker, public_key: other.publicKey } }), { code: 'bad_signature' })
})

t.test('every bad policy gets a clear error', async t => {
  const cases: Array<[string, RegExp]> = [
    ['{"worker": {"name": "x", ', /not valid JSON/],
    ['[1, 2]', /found an array/],
    ['"text"', /found string/],
    ['{}', /exactly one root key \(its type\), found 0/],
    ['{"a": {"name": "x"}, "b": {"name": "y"}}', /found 2: a, b/],
    ['{"worker": 5}', /body of a 'worker' policy must be a JSON object, found number/],
    ['{"worker": null}', /found null/],
    ['{"bad type!": {}}', /policy type/],
    [`{"blob": {"data": "${'x'.repeat(70_000)}"}}`, /bytes; the limit is 65408 bytes/],
    [`{"deep": ${'{"a":'.repeat(40)}1${'}'.repeat(40)}}`, /nests deeper than 32/]
  ]
  for (const [text, message] of cases) {
    t.throws(() => parsePolicyJson(text), { code: 'bad_policy', message }, text.slice(0, 40))
  }
})

t.test('schemas name the field and what was expected', async t => {
  const check = (policy: Policy) => () => validatePolicy(policy, { requireSigned: false })
  t.throws(check({ worker: { name: 'w', port: 'abc' } }), { code: 'bad_policy', message: /worker policy: field 'port'.*found "abc"/ })
  t.throws(check({ worker: { name: 'w', port: 70000 } }), { message: /field 'port'/ })
  t.throws(check({ worker: { port: 1 } }), { message: /field 'name'.*found missing/ })
  t.throws(check({ profile: { name: 'p', subaccount: 's' } }), { message: /profile policy: field 'kind'/ })
  t.throws(check({ admin: { name: 'a', key: 'not-hex' } }), { message: /admin policy: field 'key'/ })
  t.throws(check({ assignment: { profile: 'p' } }), { message: /either a profile and its worker/ })
  t.throws(() => validatePolicy({ worker: { name: 'w' } }), { message: /field 'id'.*found missing/ }, 'an unsigned policy is not valid on the ledger')
  t.doesNotThrow(check({ sensor: { anything: [1, { deep: true }] } }), 'unknown types need only the shape')
  t.doesNotThrow(check({ worker: { name: 'w', custom_field: 'kept' } }), 'extra fields are allowed')
})

/** The ledger's rules for values: integers within ±2^53-1 (exact in JSON) and no U+0000. */
function withinRules (value: unknown): boolean {
  if (typeof value === 'number') return Math.abs(value) <= Number.MAX_SAFE_INTEGER
  if (typeof value === 'string') return !value.includes('\u0000')
  if (Array.isArray(value)) return value.every(withinRules)
  if (typeof value === 'object' && value !== null) return Object.entries(value).every(([k, v]) => withinRules(k) && withinRules(v))
  return true
}

t.test('property: any JSON body within the rules prepares, validates and verifies; its id ignores key order', async t => {
  const body = fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }).filter(k => !['id', 'date', 'ledger', 'public_key', 'signature'].includes(k)), fc.jsonValue({ maxDepth: 4 }), { maxKeys: 6 })
    .filter(withinRules)
  fc.assert(fc.property(body, b => {
    const policy: Policy = { sensor: JSON.parse(JSON.stringify(b)) }
    const prepared = preparePolicy(policy, signer)
    validatePolicy(prepared)
    verifyPolicy(prepared)
    const reversed: Policy = { sensor: Object.fromEntries(Object.entries(policy.sensor).reverse()) }
    return contentId(reversed) === prepared.sensor.id
  }), { numRuns: 300 })
  t.pass('300 random bodies round-trip')
})

t.test('property: a value outside the rules is refused, naming where it is', async t => {
  const outside = fc.oneof(
    fc.tuple(fc.oneof(fc.constant(2 ** 53), fc.double({ min: 2 ** 53, noNaN: true, noDefaultInfinity: true })), fc.boolean()).map(([n, negative]) => negative ? -n : n),
    fc.string().map(s => `${s}\u0000${s}`)
  )
  fc.assert(fc.property(outside, fc.string({ minLength: 1, maxLength: 8 }).filter(k => /^[a-z]+$/.test(k)), (value, key) => {
    try {
      validatePolicy({ sensor: { [key]: value } }, { requireSigned: false })
      return false
    } catch (err) {
      return err instanceof LedgerMeshError && err.code === 'bad_policy' && err.message.includes(`sensor.${key}`)
    }
  }), { numRuns: 200 })
  t.pass('200 out-of-rule values refused')
})

t.test('a node skips re-verifying only policies it prepared itself, unchanged', async t => {
  const prepared = preparePolicy({ probe: { name: 'own' } }, signer)
  t.doesNotThrow(() => { verifyPolicy(prepared) }, 'its own prepared policy verifies')
  const body = prepared.probe
  // signed here too, but by hand over a payload whose id is not the content's: verified in full
  const forged = { probe: { ...body, name: 'changed', signature: '' } }
  forged.probe.signature = signer.sign(signingPayload(forged))
  t.throws(() => { verifyPolicy(forged) }, { code: 'bad_signature', message: /does not match its content/ })
  const altered = { probe: { ...body, name: 'altered' } }
  t.throws(() => { verifyPolicy(altered) }, { code: 'bad_signature' }, 'a prepared policy changed afterwards is verified in full')
})

t.test('a policy is measured by JSON.stringify: the same byte count as its canonical form, for every JSON value', async t => {
  fc.assert(fc.property(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 4 })), body => {
    const policy = JSON.parse(JSON.stringify({ probe: body })) as Policy
    return Buffer.byteLength(JSON.stringify(policy)) === Buffer.byteLength(canonicalJson(policy))
  }), { numRuns: 500 })
  t.pass('500 random policies: equal sizes')
  const big = { probe: { blob: 'é'.repeat(40_000) } }
  t.throws(() => validatePolicy(big, { requireSigned: false }), { code: 'bad_policy', message: /80021 bytes; the limit is 65408/ }, 'the limit counts UTF-8 bytes')
})
