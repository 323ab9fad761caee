import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { chainEntries } from '../src/ledger/entry.js'
import { signedHeadFor } from './helpers/checkpoints.js'
import { Ledger } from '../src/ledger/ledger.js'
import { LevelStore } from '../src/ledger/level-store.js'
import { silentLogger } from '../src/base/logger.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { type Policy, policyBody, policyId } from '../src/policies/policy.js'
import { preparePolicy, prepareTombstone } from '../src/policies/prepare.js'
import { Gatekeeper } from '../src/services/admission/index.js'
import { tmpDir } from './helpers/tmp.js'

// The admission rules as the master and every replica apply them: who may write once the
// network requires admission, who may write the admission policies themselves, and how join
// tokens are counted. Forged or replayed admissions are refused.

const log = silentLogger()

async function network (t: Test): Promise<{ ledger: Ledger, master: Ed25519Signer, gatekeeper: Gatekeeper }> {
  const master = new Ed25519Signer(randomBytes(32))
  const ledger = new Ledger({ store: new LevelStore({ path: join(await tmpDir(t), 'ledger') }), log, masterSigner: master })
  await ledger.open()
  t.teardown(async () => { await ledger.close() })
  const gatekeeper = new Gatekeeper({ ledger, signer: master, log })
  await gatekeeper.ensureMode('required')
  return { ledger, master, gatekeeper }
}

const key = () => new Ed25519Signer(randomBytes(32))
const note = (signer: Ed25519Signer, name = `n-${randomBytes(4).toString('hex')}`): Policy => preparePolicy({ note: { name } }, signer)

t.test('once admission is required, only the master, admins and admitted keys write', async t => {
  const { ledger, gatekeeper } = await network(t)
  const outsider = key()
  await t.rejects(ledger.submit({ op: 'put', policy: note(outsider) }), { code: 'unauthorized', message: /is not admitted to this network/, details: { reason: 'not_admitted' } })
  t.notOk(ledger.admits(outsider.publicKey), 'the outsider may not sync')

  await gatekeeper.admit(outsider.publicKey, { via: 'admin' })
  t.ok(ledger.admits(outsider.publicKey), 'admitted by hand')
  const written = await ledger.submit({ op: 'put', policy: note(outsider) })
  t.ok(written.seq > 0, 'an admitted key writes')

  await gatekeeper.revoke(outsider.publicKey, 'test')
  t.notOk(ledger.admits(outsider.publicKey), 'revoked')
  await t.rejects(ledger.submit({ op: 'put', policy: note(outsider) }), { code: 'unauthorized' }, 'a revoked key writes nothing')
  await t.rejects(ledger.submit({ op: 'delete', policy: prepareTombstone(policyId(written.policy), outsider) }), { code: 'unauthorized' }, 'nor deletes its own policies')

  await gatekeeper.admit(outsider.publicKey, { via: 'admin' })
  t.ok(ledger.admits(outsider.publicKey), 'an admin lifts the revocation')
})

t.test('forged admissions: no key but the master (or an admin) writes admission, revocation, join-token or network policies', async t => {
  const { ledger, gatekeeper } = await network(t)
  const insider = key()
  await gatekeeper.admit(insider.publicKey, { via: 'admin' })
  const outsider = key()
  const forged: Array<[string, Policy]> = [
    ['an admission of an outsider signed by an admitted node', preparePolicy({ admission: { key: outsider.publicKey, via: 'admin' } }, insider)],
    ['a self-admission', preparePolicy({ admission: { key: outsider.publicKey, via: 'admin' } }, outsider)],
    ['a join token minted by an admitted node', preparePolicy({ join_token: { token_id: '0123456789abcdef', secret_sha256: 'a'.repeat(64), expires: new Date(Date.now() + 3_600_000).toISOString(), uses: 100 } }, insider)],
    ['a network policy opening the network', preparePolicy({ network: { admission: 'open' } }, insider)],
    ['a revocation signed by an admitted node', preparePolicy({ revocation: { key: insider.publicKey } }, insider)]
  ]
  for (const [what, policy] of forged) {
    await t.rejects(ledger.submit({ op: 'put', policy }), { code: 'unauthorized' }, what)
  }
  const networkPolicy = [...ledger.state.policiesOfType('network')][0]
  await t.rejects(ledger.submit({ op: 'delete', policy: prepareTombstone(policyId(networkPolicy), insider) }), { code: 'unauthorized' }, 'deleting the network policy')
  t.notOk(ledger.admits(outsider.publicKey), 'the outsider is still not admitted')
})

t.test('a replica refuses a batch holding an admission the master key did not sign', async t => {
  const { ledger: master, master: masterKey } = await network(t)
  const replica = new Ledger({ store: new LevelStore({ path: join(await tmpDir(t), 'replica') }), log })
  await replica.open()
  t.teardown(async () => { await replica.close() })
  const honest = await master.store.range(1, 100)
  await replica.applyBatch(honest, master.signedHead!)
  t.ok(replica.admissionRequired, 'the replica knows the network requires admission')

  // a head signed by the master key over an admission it never wrote (a compromised store,
  // or a forged chain): the replica re-checks the rules and refuses the whole batch
  const outsider = key()
  const forged = chainEntries(replica.head, [{ op: 'put', policy: preparePolicy({ admission: { key: outsider.publicKey, via: 'admin' } }, outsider) }])
  await t.rejects(replica.applyBatch(forged, signedHeadFor(replica, forged, masterKey)), { code: 'unauthorized', message: /sync batch rejected: entry \d+: key .* may not write admission policies/ })
  t.notOk(replica.admits(outsider.publicKey), 'the forged admission is not applied')
  t.equal(replica.head.seq, honest.length, 'the replica stays where it was')
})

t.test('join tokens: counted exactly under concurrent joins, refused when replayed, expired or forged', async t => {
  const { ledger, master, gatekeeper } = await network(t)
  const { token } = await gatekeeper.createToken({ ttlMs: 3_600_000, uses: 2 })
  const keys = Array.from({ length: 6 }, key)
  const results = await Promise.allSettled(keys.map(async (k, i) => await gatekeeper.redeem({ token, name: `n${i}`, key: k.publicKey, peer: `peer-${i}` })))
  t.equal(results.filter(r => r.status === 'fulfilled').length, 2, 'six concurrent joins on a two-use token: two admitted')
  t.ok(results.filter(r => r.status === 'rejected').every(r => /has admitted 2 nodes, its limit/.test(String((r as PromiseRejectedResult).reason.message))), 'the others are told the token is used up')
  const admitted = keys.filter(k => ledger.admits(k.publicKey))
  t.equal(admitted.length, 2)

  const again = await gatekeeper.redeem({ token, name: 'n0', key: admitted[0].publicKey, peer: 'peer-again' })
  t.ok(again.seq > 0, 'an admitted key presenting its token again (a restart) is answered, using nothing')

  const replayed = await gatekeeper.redeem({ token, name: 'late', key: key().publicKey, peer: 'peer-late' }).then(() => 'admitted', (err: Error) => err.message)
  t.match(replayed, /has admitted 2 nodes, its limit/, 'a replayed token admits no new key')

  // the uses are counted on the ledger, not from the admissions still live: deleting one frees none
  const tokenId = token.split('.')[1]
  t.match([...ledger.state.lookup('join_token', 'token_id', tokenId)].map(p => policyBody(p).used), [2], 'the token\'s policy counts its two redemptions')
  const admission = [...ledger.state.lookup('admission', 'key', admitted[0].publicKey)][0]
  await ledger.submit({ op: 'delete', policy: prepareTombstone(String(policyBody(admission).id), master) })
  const afterDelete = await gatekeeper.redeem({ token, name: 'later', key: key().publicKey, peer: 'peer-later' }).then(() => 'admitted', (err: Error) => err.message)
  t.match(afterDelete, /has admitted 2 nodes, its limit/, 'an admission deleted later frees no use of the token')

  const expiring = await gatekeeper.createToken({ ttlMs: 1, uses: 5 })
  await new Promise(resolve => setTimeout(resolve, 5))
  await t.rejects(gatekeeper.redeem({ token: expiring.token, name: 'x', key: key().publicKey, peer: 'p' }), { code: 'unauthorized', message: /expired at/ })
  await t.rejects(gatekeeper.redeem({ token: `${token.slice(0, 22)}${'f'.repeat(64)}`, name: 'x', key: key().publicKey, peer: 'p' }), { code: 'unauthorized', message: /secret does not match/ })
  await t.rejects(gatekeeper.redeem({ token: 'lmjt.0000000000000000.' + 'a'.repeat(64), name: 'x', key: key().publicKey, peer: 'p' }), { code: 'unauthorized', message: /is not on the ledger/ })
  await t.rejects(gatekeeper.redeem({ token: 'not a token', name: 'x', key: key().publicKey, peer: 'p' }), { code: 'unauthorized', message: /is not of the form/ })
  const revoked = admitted[1]
  await gatekeeper.revoke(revoked.publicKey)
  const { token: fresh } = await gatekeeper.createToken({ uses: 1 })
  await t.rejects(gatekeeper.redeem({ token: fresh, name: 'back', key: revoked.publicKey, peer: 'p' }), { code: 'unauthorized', message: /was revoked/ }, 'a revoked key cannot come back with a new token')
})
