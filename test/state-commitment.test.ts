import t from 'tap'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { silentLogger } from '../src/base/logger.js'
import { entryLeafHash } from '../src/ledger/entry.js'
import { type SignedHead, headFromNote, headNote, logOrigin, signHead } from '../src/ledger/head.js'
import { Ledger } from '../src/ledger/ledger.js'
import { LevelStore } from '../src/ledger/level-store.js'
import { statePath } from '../src/ledger/state-tree/hashing.js'
import { verifyStateProof } from '../src/ledger/state-tree/proof.js'
import { bulkRoot } from '../src/ledger/state-tree/snapshot-chunks.js'
import { parseCheckpoint, parseStateLine } from '../src/ledger/tlog/checkpoint.js'
import { parseNote } from '../src/ledger/tlog/note.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { preparePolicy, prepareTombstone } from '../src/policies/prepare.js'
import { policyBody } from '../src/policies/policy.js'
import { tmpDir } from './helpers/tmp.js'
import { ledgerAt, syncLedger } from './helpers/ledgers.js'

/**
 * The live state's commitment: every checkpoint the master signs carries a state line (the
 * sparse Merkle root over the live policies, each at SHA-256(id) with the leaf hash of the
 * entry that put it); replicas recompute it from what they apply and refuse a batch whose
 * head names another; a reopened store folds to the same one.
 */
const log = silentLogger()
const key = (): Ed25519Signer => new Ed25519Signer(randomBytes(32))


/** The root computed from the definition: every live policy's put entry, found in the log. */
async function expectedRoot (ledger: Ledger): Promise<string> {
  const entries = await ledger.store.range(1, Infinity)
  const live = new Map<string, Buffer>()
  for (const entry of entries) {
    const body = policyBody(entry.policy)
    if (entry.op === 'put') live.set(String(body.id), entryLeafHash(entry))
    else live.delete(String(body.policy_id))
  }
  return bulkRoot([...live].map(([id, valueHash]) => ({ path: statePath(id), valueHash }))).toString('hex')
}


t.test('the master signs the state line; replicas and a reopened store compute the same', async t => {
  const dir = await tmpDir(t)
  const author = key()
  const master = await ledgerAt(t, join(dir, 'master'), author)
  const replica = await ledgerAt(t, join(dir, 'replica'))
  const ids: string[] = []
  for (let i = 0; i < 40; i++) ids.push(String(policyBody((await master.submit({ op: 'put', policy: preparePolicy({ probe: { name: `p${i}` } }, author) })).policy).id))
  // delete three (a re-declaration is a tombstone and a put too: ids are never reused)
  for (const id of ids.slice(1, 4)) await master.submit({ op: 'delete', policy: prepareTombstone(id, author) })

  const head = master.signedHead!
  t.ok(head.state !== undefined, 'the signed head has a state commitment')
  t.equal(head.state!.size, 37, '40 put, three deleted')
  t.equal(master.stateRoot.size, 37)
  t.equal(head.state!.root, await expectedRoot(master), 'the root is the sparse Merkle root of the live policies')

  const note = headNote(head)
  const checkpoint = parseCheckpoint(parseNote(note).text)
  t.same(checkpoint.extensions, [`state 37 ${Buffer.from(head.state!.root, 'hex').toString('base64')}`], 'one extension line: the state line')
  t.same(headFromNote(note, head.origin, [author.publicKey]).state, head.state, 'the note reads back with its state')

  await syncLedger(master, replica)
  t.same(replica.signedHead?.state, head.state, 'the replica applied up to that head')
  t.equal(replica.stateRoot.commitment().root, head.state!.root, 'and computed the same root')
  t.same(replica.stateRoot.commitmentAt(head.seq), head.state, 'kept for witnesses asked about that size')

  // a proof of presence (with the entry's leaf as its value) and of absence, against the signed root
  const root = Buffer.from(head.state!.root, 'hex')
  const kept = (await master.store.range(master.state.seqOf(ids[5])!, 1))[0]
  t.ok(verifyStateProof(root, statePath(ids[5]), entryLeafHash(kept), replica.stateRoot.prove(ids[5])), 'present, with its entry')
  t.ok(verifyStateProof(root, statePath(ids[2]), undefined, replica.stateRoot.prove(ids[2])), 'a deleted policy is proven absent')
  t.notOk(verifyStateProof(root, statePath(ids[2]), entryLeafHash(kept), replica.stateRoot.prove(ids[2])), 'and not present')

  await master.close()
  const reopened = new Ledger({ store: new LevelStore({ path: join(dir, 'master') }), log, masterSigner: author })
  await reopened.open()
  t.teardown(async () => { await reopened.close() })
  t.equal(reopened.stateRoot.commitment().root, head.state!.root, 'the fold at open computes it again')
})

t.test('a replica refuses a head whose state line its entries do not lead to, and stays put', async t => {
  const dir = await tmpDir(t)
  const author = key()
  const master = await ledgerAt(t, join(dir, 'master'), author)
  const replica = await ledgerAt(t, join(dir, 'replica'))
  await master.submit({ op: 'put', policy: preparePolicy({ probe: { name: 'first' } }, author) })
  await syncLedger(master, replica)
  const before = replica.stateRoot.commitment().root
  for (let i = 0; i < 5; i++) await master.submit({ op: 'put', policy: preparePolicy({ probe: { name: `n${i}` } }, author) })
  const entries = await master.store.range(replica.head.seq + 1, Infinity)
  const honest = master.signedHead!
  // the master's key signing the right log root with another state root (a lying master)
  const lying: SignedHead = signHead({ seq: honest.seq, hash: honest.hash, root: honest.root, state: { size: honest.state!.size, root: randomBytes(32).toString('hex') } }, author, logOrigin(author.publicKey))
  await t.rejects(replica.applyBatch(entries, lying), { code: 'chain_broken', message: /state root .* but the signed head at seq 6 names/ })
  t.equal(replica.head.seq, 1, 'nothing applied')
  t.equal(replica.stateRoot.commitment().root, before, 'the state tree is as it was')
  const wrongCount = signHead({ seq: honest.seq, hash: honest.hash, root: honest.root, state: { size: 99, root: honest.state!.root } }, author, logOrigin(author.publicKey))
  await t.rejects(replica.applyBatch(entries, wrongCount), { code: 'chain_broken', message: /over 99/ }, 'a wrong policy count too')
  await replica.applyBatch(entries, honest)
  t.equal(replica.head.seq, 6, 'the honest head applies after')
  t.equal(replica.stateRoot.commitment().root, honest.state!.root)
})

t.test('state lines: malformed ones are refused with a reason', async t => {
  t.equal(parseStateLine(['other extension']), undefined, 'no state line')
  t.throws(() => parseStateLine(['state 1 abc']), /is not `state <live policies> <base64 root>`/)
  t.throws(() => parseStateLine(['state 01 ' + Buffer.alloc(32).toString('base64')]), /is not `state/)
  const line = `state 3 ${Buffer.alloc(32, 1).toString('base64')}`
  t.throws(() => parseStateLine([line, line]), /more than one state line/)
  t.same(parseStateLine([line]), { size: 3, root: Buffer.alloc(32, 1) })
})
