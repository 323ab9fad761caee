import t from 'tap'
import { randomBytes } from 'node:crypto'
import { InsertVerifier, VerifyPool } from '../src/policies/verify-pool.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { preparePolicy } from '../src/policies/prepare.js'
import type { Policy } from '../src/policies/policy.js'

// The replica's parallel signature check finds the same first bad policy as a sequential one,
// wherever it sits in the batch (the calling thread's share or a worker's).

/** The policy with its name changed after signing: its signature no longer verifies. */
const tamper = (policy: Policy): Policy => ({ item: { ...(policy as { item: Record<string, string> }).item, name: 'changed' } })

t.test('the pool reports the first policy whose signature does not verify', async t => {
  const signer = new Ed25519Signer(randomBytes(32))
  const policies: Policy[] = Array.from({ length: 900 }, (_, i) => preparePolicy({ item: { name: `p${i}` } }, signer))
  const pool = new VerifyPool(1)
  t.teardown(async () => { await pool.close() })
  t.equal(await pool.firstInvalid(policies), -1, 'all valid')
  for (const at of [3, 450, 899]) {
    const tampered = policies.map(p => p)
    tampered[at] = tamper(policies[at])
    t.equal(await pool.firstInvalid(tampered), at, `a tampered policy at ${at}`)
  }
  const two = policies.map(p => p)
  for (const at of [700, 20]) two[at] = tamper(policies[at])
  t.equal(await pool.firstInvalid(two), 20, 'the first of two')
  t.equal(await new VerifyPool(0).firstInvalid(two), 20, 'the same without threads')
})

t.test('concurrent inserts are verified in batches off the thread; a bad one gets its own error', async t => {
  const signer = new Ed25519Signer(randomBytes(32))
  const pool = new VerifyPool(1)
  t.teardown(async () => { await pool.close() })
  const verifier = new InsertVerifier(pool)
  const policies: Policy[] = Array.from({ length: 60 }, (_, i) => preparePolicy({ item: { name: `c${i}` } }, signer))
  for (const at of [7, 42]) policies[at] = tamper(policies[at])
  const results = await Promise.allSettled(policies.map(async p => { await verifier.verify(p, true) }))
  t.same(results.flatMap((r, i) => r.status === 'rejected' ? [i] : []), [7, 42], 'exactly the tampered ones fail')
  t.match((results[7] as PromiseRejectedResult).reason, { code: 'bad_signature', message: /does not match its content/ })
  // alone (no commit running, nothing queued): checked on the spot, same answer
  await t.rejects(verifier.verify(policies[42], false), { code: 'bad_signature' })
  await verifier.verify(policies[0], false)
})

t.test('a batch past the slice size is verified slice by slice, and finds the same policies', async t => {
  const signer = new Ed25519Signer(randomBytes(32))
  // more than SLICE (1,024) times the threads and the calling thread: the sliced path
  const policies: Policy[] = Array.from({ length: 5000 }, (_, i) => preparePolicy({ item: { name: `s${i}` } }, signer))
  const pool = new VerifyPool(1)
  t.teardown(async () => { await pool.close() })
  t.equal(await pool.firstInvalid(policies), -1, 'all valid')
  const tampered = policies.map(p => p)
  const at = [4999, 3100, 1024, 1023, 17]
  for (const i of at) tampered[i] = tamper(policies[i])
  t.equal(await pool.firstInvalid(tampered), 17, 'the first of several, in any slice')
  t.same(await pool.invalidAmong(tampered), [...at].sort((a, b) => a - b), 'every one of them, in order, when all are asked for')
  t.same(await new VerifyPool(0).invalidAmong(tampered), [...at].sort((a, b) => a - b), 'as without threads')
})
