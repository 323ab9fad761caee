import t from 'tap'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { silentLogger } from '../src/base/logger.js'
import { Ledger } from '../src/ledger/ledger.js'
import { inclusionProof } from '../src/ledger/proofs.js'
import { SnapshotFiles } from '../src/ledger/snapshot/files.js'
import { statePath } from '../src/ledger/state-tree/hashing.js'
import { verifyStateProof } from '../src/ledger/state-tree/proof.js'
import { verifyConsistency } from '../src/ledger/tlog/proof.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { preparePolicy, prepareTombstone } from '../src/policies/prepare.js'
import { policyBody } from '../src/policies/policy.js'
import { Compactor, parseRetain } from '../src/services/compactor.js'
import { SnapshotBuilder } from '../src/services/snapshot-builder.js'
import { tmpDir } from './helpers/tmp.js'
import { ledgerAt, syncLedger } from './helpers/ledgers.js'

/**
 * Compaction of a replica's LevelDB log: at a snapshot point, the entries of deleted and
 * replaced policies are dropped, the live ones and every Merkle leaf hash kept; the replica
 * folds to the same state and tree when opened again, syncs on, serves proofs of presence and
 * absence and consistency proofs from any size, and refuses entry proofs it no longer holds
 * with a clear reason.
 */
const log = silentLogger()



/** Puts `n` probes and deletes every other one: half of what is written dies. */
async function churn (master: Ledger, signer: Ed25519Signer, n: number, tag: string): Promise<void> {
  const ids: string[] = []
  for (let i = 0; i < n; i++) ids.push(String(policyBody((await master.submit({ op: 'put', policy: preparePolicy({ probe: { name: `${tag}${i}` } }, signer) })).policy).id))
  for (const id of ids.filter((_, i) => i % 2 === 0)) await master.submit({ op: 'delete', policy: prepareTombstone(id, signer) })
}

t.test('RETAIN reads as witnessed, all, a number of entries or an interval', async t => {
  t.same(parseRetain('witnessed'), { kind: 'witnessed' })
  t.same(parseRetain('ALL'), { kind: 'all' })
  t.same(parseRetain('10000'), { kind: 'entries', entries: 10000 })
  t.same(parseRetain('1 hour'), { kind: 'duration', ms: 3_600_000 })
  t.equal(parseRetain('forever'), undefined)
  t.equal(parseRetain('0'), undefined)
})

t.test('a compacted replica keeps what is live and every leaf hash, folds to the same state, and syncs on', async t => {
  const dir = await tmpDir(t)
  const signer = new Ed25519Signer(randomBytes(32))
  const master = await ledgerAt(t, join(dir, 'master'), signer)
  const path = join(dir, 'replica')
  let replica = await ledgerAt(t, path)
  await churn(master, signer, 200, 'a')
  await syncLedger(master, replica)
  const point = replica.head.seq

  const compactor = new Compactor({ ledger: () => replica, retain: { kind: 'entries', entries: 1 }, log })
  const builder = new SnapshotBuilder({ ledger: () => replica, files: new SnapshotFiles(join(dir, 'served')), witnessed: () => undefined, intervalMs: 0, following: () => true, compactor, log })
  t.equal(await builder.tick(), point, 'a snapshot at the head')
  t.equal(replica.logStart, 0, 'RETAIN=1 entry: not compacted while the snapshot is the head')
  await churn(master, signer, 10, 'b')
  await syncLedger(master, replica)
  t.equal(await compactor.run(), point, 'compacted to the snapshot once an entry followed it')
  t.equal(replica.logStart, point)

  const kept = await replica.store.range(1, Infinity)
  t.equal(kept.filter(e => e.seq <= point).length, 100, 'at or before the point: only the 100 live policies\' entries')
  t.equal(kept.filter(e => e.seq > point).length, replica.head.seq - point, 'after it: every entry')
  t.equal((await replica.store.leafHashes()).length, 32 * point, 'a leaf hash kept for every entry compacted')

  // reopened: the same state, the same trees
  await replica.close()
  replica = await ledgerAt(t, path)
  t.equal(replica.head.seq, master.head.seq)
  t.equal(replica.logStart, point, 'the base is where compaction left it')
  t.equal(replica.stateRoot.commitment().root, master.signedHead!.state!.root, 'the state folds to the signed root')
  t.equal(replica.tree.root().toString('hex'), master.tree.root().toString('hex'), 'and the log tree to the signed root')
  t.equal(replica.state.size, master.state.size)

  // proofs after compaction
  const root = Buffer.from(master.signedHead!.state!.root, 'hex')
  const [liveId] = [...replica.state.logged()][0]
  t.ok(verifyStateProof(root, statePath(liveId), replica.stateRoot.valueOf(liveId), replica.stateRoot.prove(liveId)), 'a proof of presence')
  t.ok(verifyStateProof(root, statePath('never-a-policy'), undefined, replica.stateRoot.prove('never-a-policy')), 'a proof of absence')
  const size = replica.head.seq
  for (const first of [1, 7, point - 1, point, point + 3]) {
    const proof = replica.tree.consistencyProof(first, size)
    t.same(proof, master.tree.consistencyProof(first, size), `the consistency proof from ${first}`)
    t.equal(verifyConsistency(first, size, proof, master.tree.root(first), replica.tree.root()), undefined)
  }
  t.same(replica.tree.inclusionProof(3), master.tree.inclusionProof(3), 'an inclusion path of a compacted entry: the hashes are kept')
  // entry 1 put a0, deleted since (every other probe is): dropped
  await t.rejects(inclusionProof(replica, { seq: 1 }), { code: 'not_found' }, 'its bytes are not: a clear refusal')

  // syncs on, and a second compaction moves the base further
  await churn(master, signer, 40, 'c')
  await syncLedger(master, replica)
  const second = replica.head.seq
  t.equal(await builder.tick(), second)
  await churn(master, signer, 4, 'd')
  await syncLedger(master, replica)
  t.equal(await compactor.run(), second, 'compacted again')
  t.equal((await replica.store.leafHashes()).length, 32 * second, 'the leaf hashes of both compactions')
  await replica.close()
  replica = await ledgerAt(t, path)
  t.equal(replica.stateRoot.commitment().root, master.signedHead!.state!.root, 'folds after the second compaction')
  t.equal(replica.tree.root().toString('hex'), master.tree.root().toString('hex'))
})

t.test('a replica that started from a snapshot compacts too', async t => {
  const dir = await tmpDir(t)
  const signer = new Ed25519Signer(randomBytes(32))
  const master = await ledgerAt(t, join(dir, 'master'), signer)
  await churn(master, signer, 60, 'a')
  const files = new SnapshotFiles(join(dir, 'served'))
  const masterBuilder = new SnapshotBuilder({ ledger: () => master, files, witnessed: () => undefined, intervalMs: 0, following: () => true, log })
  const base = (await masterBuilder.tick())!
  const { bootstrapFromSnapshot } = await import('../src/services/snapshot-bootstrap.js')
  const path = join(dir, 'replica')
  let replica = await ledgerAt(t, path)
  const source = { name: 'files', get: async (p: string) => { const b = await files.read(p); if (b === undefined) throw new Error(`no ${p}`); return b } }
  await bootstrapFromSnapshot({ ledger: replica, sources: [source], mode: 'snapshot', scratch: new SnapshotFiles(join(dir, 'scratch')), log })
  t.equal(replica.logStart, base)
  await churn(master, signer, 30, 'b')
  await syncLedger(master, replica)
  const compactor = new Compactor({ ledger: () => replica, retain: { kind: 'duration', ms: 0 }, log })
  const builder = new SnapshotBuilder({ ledger: () => replica, files: new SnapshotFiles(join(dir, 'replica-served')), witnessed: () => undefined, intervalMs: 0, following: () => true, compactor, log })
  const point = await builder.tick()
  t.equal(point, replica.head.seq)
  t.equal(replica.logStart, point, 'compacted to its own snapshot')
  await replica.close()
  replica = await ledgerAt(t, path)
  t.equal(replica.tree.root().toString('hex'), master.tree.root().toString('hex'), 'the tree: the snapshot\'s compact range, then the kept leaf hashes')
  t.equal(replica.stateRoot.commitment().root, master.signedHead!.state!.root)
  t.throws(() => replica.tree.inclusionProof(2), { code: 'compacted' }, 'before the snapshot it started from there are no hashes')
})
