import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { silentLogger } from '../src/base/logger.js'
import { entryBytes, entryText } from '../src/ledger/entry.js'
import { headNote, logOrigin, signHead } from '../src/ledger/head.js'
import { Ledger } from '../src/ledger/ledger.js'
import { LevelStore } from '../src/ledger/level-store.js'
import { type LightEntry, lightNeeds, verifyLightAnswer } from '../src/ledger/light.js'
import { checkpointNote } from '../src/ledger/proofs.js'
import { LedgerState } from '../src/ledger/state.js'
import { canonicalJson } from '../src/policies/canonical.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { type Policy, policyId } from '../src/policies/policy.js'
import { preparePolicy } from '../src/policies/prepare.js'
import { decodeLeaseRequest, decodeLeaseResponse, encodeLeaseRequest, encodeLeaseResponse, signLeaseAnswer, verifyLeaseAnswer } from '../src/protocols/lease/index.js'
import { decodeLightRequest, decodeLightResponse, encodeLightRequest, encodeLightResponse } from '../src/protocols/light/index.js'
import { tmpDir } from './helpers/tmp.js'

// What a light worker checks (src/ledger/light.ts, src/protocols/lease/signed-answer.ts), on
// a real ledger: answers that verify, and each way an answer can be forged, refused with why.

const log = silentLogger()
const key = (): Ed25519Signer => new Ed25519Signer(randomBytes(32))

async function network (t: Test): Promise<{ ledger: Ledger, a: Ed25519Signer, b: Ed25519Signer, put: (body: Policy, signer?: Ed25519Signer) => Promise<Policy> }> {
  const a = key()
  const b = key()
  const ledger = new Ledger({ store: new LevelStore({ path: join(await tmpDir(t), 'ledger') }), log, masterSigner: a })
  await ledger.open()
  t.teardown(async () => { await ledger.close() })
  const put = async (body: Policy, signer = a): Promise<Policy> => {
    const policy = preparePolicy(body, signer)
    await ledger.submit({ op: 'put', policy })
    return policy
  }
  await put({ master: { name: 'master-a', ip: '127.0.0.1', port: 1000 } })
  await put({ master_key: { key: b.publicKey, name: 'master-b', address: '127.0.0.1:2000' } })
  await put({ slave: { name: 'slave-1', ip: '127.0.0.1', port: 1100 } })
  await put({ worker: { name: 'w1', slave: 'slave-1', slots: 2 } })
  await put({ worker: { name: 'w2', slave: 'slave-1', slots: 2 } })
  for (let i = 0; i < 20; i++) await put({ note: { name: `n${i}` } })
  const p1 = await put({ profile: { name: 'p1', kind: 'k', subaccount: 'acme' } })
  const p2 = await put({ profile: { name: 'p2', kind: 'k', subaccount: 'acme' } })
  await put({ assignment: { profile: 'p1', profile_id: policyId(p1), kind: 'k', subaccount: 'acme', slave: 'slave-1', worker: 'w1', epoch: 1 } })
  await put({ assignment: { profile: 'p2', profile_id: policyId(p2), kind: 'k', subaccount: 'acme', slave: 'slave-1', worker: 'w2', epoch: 1 } })
  return { ledger, a, b, put }
}

/** What a full node answers: each id's entry and its audit path at the checkpoint's size. */
async function answerOf (ledger: Ledger, ids: string[]): Promise<{ checkpoint: string, entries: LightEntry[] }> {
  const size = ledger.signedHead!.seq
  const entries: LightEntry[] = []
  for (const id of ids) {
    const seq = ledger.state.seqOf(id)!
    const [entry] = await ledger.store.range(seq, 1)
    entries.push({ entry: entryBytes(entry), proof: ledger.tree.inclusionProof(seq - 1, size) })
  }
  return { checkpoint: checkpointNote(ledger), entries }
}

t.test('lightNeeds: the worker\'s declaration, its slave\'s, its assignments and their profiles, the master declarations', async t => {
  const { ledger } = await network(t)
  const types = lightNeeds(ledger.state, 'w1').map(id => Object.keys(ledger.state.get(id)!)[0]).sort()
  t.same(types, ['assignment', 'master', 'master_key', 'profile', 'slave', 'worker'], 'one of each, nothing of w2\'s and no note')
  t.same(lightNeeds(ledger.state, 'nobody').map(id => Object.keys(ledger.state.get(id)!)[0]).sort(), ['master', 'master_key'], 'an unknown worker: the master declarations only')
})

t.test('a revoked master key: its revocation is among the needs, and a light worker holding it refuses that master\'s checkpoints', async t => {
  const { ledger, a, b, put } = await network(t)
  const revocation = await put({ revocation: { key: b.publicKey, reason: 'retired' } })
  const ids = lightNeeds(ledger.state, 'w1')
  t.ok(ids.includes(policyId(revocation)), 'the revocation of b is needed')
  const honest = await answerOf(ledger, ids)
  const held = new LedgerState()
  for (const { policy, seq } of verifyLightAnswer(honest, { rootKey: a.publicKey, held }).policies) held.apply({ seq, op: 'put', policy, prevHash: '', hash: '' })
  const bNote = headNote(signHead({ ...ledger.head, root: ledger.tree.root().toString('hex') }, b, logOrigin(a.publicKey)))
  t.throws(() => verifyLightAnswer({ ...honest, checkpoint: bNote }, { rootKey: a.publicKey, held }), { code: 'bad_signature', message: /not signed by a master key this worker trusts/ }, 'b\'s checkpoint is refused once the revocation is held')
})

t.test('an honest answer verifies; every forgery is refused with its reason', async t => {
  const { ledger, a, b } = await network(t)
  const ids = lightNeeds(ledger.state, 'w1')
  const honest = await answerOf(ledger, ids)
  const verified = verifyLightAnswer(honest, { rootKey: a.publicKey, held: new LedgerState() })
  t.equal(verified.policies.length, ids.length, 'every policy proven')
  t.equal(verified.head.seq, ledger.head.seq, 'at the master\'s checkpoint')

  const changed = structuredClone(honest)
  changed.entries[0].entry = changed.entries[0].entry.replace('"name":"', '"name":"x')
  t.throws(() => verifyLightAnswer(changed, { rootKey: a.publicKey, held: new LedgerState() }), { code: 'bad_signature', message: /not one its author signed|not in the checkpoint's tree/ }, 'a changed entry')

  const badProof = structuredClone(honest)
  badProof.entries[1].proof[0] = Buffer.alloc(32, 7)
  t.throws(() => verifyLightAnswer(badProof, { rootKey: a.publicKey, held: new LedgerState() }), { code: 'bad_signature', message: /is not in the checkpoint's tree of \d+ entries/ }, 'a changed audit path')

  // a well-formed, author-signed assignment that no master ever ordered
  const forger = key()
  const forged = preparePolicy({ assignment: { profile: 'p2', profile_id: ids[0], kind: 'k', subaccount: 'acme', slave: 'slave-1', worker: 'w1', epoch: 9 } }, forger)
  const withForged = { ...honest, entries: [...honest.entries, { entry: entryText('f'.repeat(64), ledger.head.seq, 'put', canonicalJson(forged)), proof: honest.entries[0].proof }] }
  t.throws(() => verifyLightAnswer(withForged, { rootKey: a.publicKey, held: new LedgerState() }), { code: 'bad_signature', message: /assignment .* is not in the checkpoint's tree/ }, 'a forged assignment')

  // a checkpoint signed by a key no trusted master declared, over a tree of its own making
  const stranger = key()
  const strangerNote = headNote(signHead({ ...ledger.head, root: ledger.tree.root().toString('hex') }, stranger, logOrigin(a.publicKey)))
  t.throws(() => verifyLightAnswer({ ...honest, checkpoint: strangerNote }, { rootKey: a.publicKey, held: new LedgerState() }), { code: 'bad_signature', message: /not signed by a master key this worker trusts/ }, 'a checkpoint a stranger signed')

  // master b, declared by a master_key policy a signed, is trusted: its checkpoint verifies
  const bNote = headNote(signHead({ ...ledger.head, root: ledger.tree.root().toString('hex') }, b, logOrigin(a.publicKey)))
  t.equal(verifyLightAnswer({ ...honest, checkpoint: bNote }, { rootKey: a.publicKey, held: new LedgerState() }).head.publicKey, b.publicKey, 'a declared master\'s checkpoint verifies')
  const noDeclaration = { checkpoint: bNote, entries: honest.entries.filter(e => !e.entry.includes('"master_key"')) }
  t.throws(() => verifyLightAnswer(noDeclaration, { rootKey: a.publicKey, held: new LedgerState() }), { code: 'bad_signature' }, 'b\'s checkpoint without a declaration of b: refused')
  const otherNetwork = key()
  t.throws(() => verifyLightAnswer(honest, { rootKey: otherNetwork.publicKey, held: new LedgerState() }), { code: 'bad_signature', message: /another log/ }, 'another network\'s checkpoint')
})

t.test('a signed lease answer is bound to the worker, its boot and seq, the terms and the set', async t => {
  const { ledger, a, b } = await network(t)
  const request = { worker: 'w1', role: 'worker' as const, boot: 'b'.repeat(32), seq: 7 }
  const terms = { ttlMs: 3000, graceMs: 2000, minSeq: ledger.head.seq }
  const signed = signLeaseAnswer(request, terms, { checkpoint: checkpointNote(ledger), policyIds: lightNeeds(ledger.state, 'w1') }, a)
  const keys = [a.publicKey, b.publicKey]
  t.doesNotThrow(() => { verifyLeaseAnswer(request, terms, signed, keys) }, 'it verifies for its own request')
  t.throws(() => { verifyLeaseAnswer({ ...request, worker: 'w2' }, terms, signed, keys) }, { code: 'bad_signature', message: /does not verify for worker 'w2'/ }, 'replayed to another worker')
  t.throws(() => { verifyLeaseAnswer({ ...request, seq: 8 }, terms, signed, keys) }, { code: 'bad_signature' }, 'replayed to a later renewal')
  t.throws(() => { verifyLeaseAnswer(request, { ...terms, ttlMs: 60_000 }, signed, keys) }, { code: 'bad_signature' }, 'longer terms')
  t.throws(() => { verifyLeaseAnswer(request, terms, { ...signed, policyIds: signed.policyIds.slice(1) }, keys) }, { code: 'bad_signature' }, 'a set with an assignment withheld')
  t.throws(() => { verifyLeaseAnswer(request, terms, signed, [b.publicKey]) }, { code: 'bad_signature', message: /not a master key this worker trusts/ }, 'a signer not trusted')
  t.throws(() => { verifyLeaseAnswer(request, terms, undefined, keys) }, { code: 'bad_signature', message: /not signed/ }, 'an unsigned answer')

  // on the wire: old peers see no new fields; the signed answer round-trips
  const response = { ok: true, ttlMs: 3000, graceMs: 2000, minSeq: terms.minSeq, errorCode: '', errorMessage: '' }
  t.equal(decodeLeaseResponse(encodeLeaseResponse(response)).signed, undefined, 'an answer without a signature decodes as before')
  t.same(decodeLeaseResponse(encodeLeaseResponse({ ...response, signed })).signed, signed, 'a signed answer round-trips')
  t.equal(decodeLeaseRequest(encodeLeaseRequest({ version: 1, worker: 'w1', running: [], draining: false, boot: '', seq: 0, role: 'worker', light: true })).light, true, 'a request says light')
})

t.test('light messages: bounded and well-formed', async t => {
  t.throws(() => decodeLightRequest(encodeLightRequest({ version: 1, worker: '', ids: [] })), { code: 'bad_message', message: /asks for nothing/ })
  t.throws(() => decodeLightRequest(encodeLightRequest({ version: 2, worker: 'w1', ids: [] })), { code: 'bad_message', message: /wire version 2/ })
  t.throws(() => decodeLightRequest(encodeLightRequest({ version: 1, worker: 'w1', ids: ['nope'] })), { code: 'bad_message', message: /not a policy id/ })
  t.throws(() => decodeLightRequest(encodeLightRequest({ version: 1, worker: '', ids: Array.from({ length: 4097 }, () => 'a'.repeat(64)) })), { code: 'bad_message', message: /more than 4096/ })
  t.throws(() => decodeLightResponse(encodeLightResponse({ ok: true, errorCode: '', errorMessage: '', checkpoint: '', entries: [], missing: [] })), { code: 'bad_message', message: /without a checkpoint/ })
  const answer = { ok: true, errorCode: '', errorMessage: '', checkpoint: 'c\n1\nx\n\n— c AAAA\n', entries: [{ entry: 'e', proof: [Buffer.alloc(32, 1)] }], missing: ['a'.repeat(64)] }
  const back = decodeLightResponse(encodeLightResponse(answer))
  t.same({ ...back, entries: back.entries.map(e => ({ entry: e.entry, proof: e.proof.map(p => Buffer.from(p)) })) }, answer, 'an answer round-trips')
})
