import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { cpSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { silentLogger } from '../src/base/logger.js'
import { type Entry, entryBytes, entryLeafHash, entryText, parseEntryText } from '../src/ledger/entry.js'
import { ForkWatch } from '../src/ledger/fork-watch.js'
import { headNote, logOrigin, signHead } from '../src/ledger/head.js'
import { Ledger } from '../src/ledger/ledger.js'
import { SnapshotFiles, chunkPath, manifestPath } from '../src/ledger/snapshot/files.js'
import { decodeManifest, encodeManifest } from '../src/ledger/snapshot/manifest.js'
import { statePath } from '../src/ledger/state-tree/hashing.js'
import { verifyStateProof } from '../src/ledger/state-tree/proof.js'
import { bulkRoot, chunkIndexOf, subtreeRoot } from '../src/ledger/state-tree/snapshot-chunks.js'
import { decodeBundle, encodeBundle } from '../src/ledger/tlog/tiles.js'
import { SIG_COSIGNATURE_V1, formatNote, parseNote, signNote } from '../src/ledger/tlog/note.js'
import { witnessName } from '../src/ledger/witnessed.js'
import { canonicalJson } from '../src/policies/canonical.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { preparePolicy, prepareTombstone } from '../src/policies/prepare.js'
import { policyBody } from '../src/policies/policy.js'
import { AuthorCheck } from '../src/services/author-check.js'
import { bootstrapFromSnapshot } from '../src/services/snapshot-bootstrap.js'
import { SnapshotBuilder } from '../src/services/snapshot-builder.js'
import { type SnapshotSource, mirrorSnapshotSource } from '../src/services/snapshot-sources.js'
import { serveDirectory } from './helpers/static-server.js'
import { tmpDir } from './helpers/tmp.js'
import { waitFor } from './helpers/net.js'
import { ledgerAt } from './helpers/ledgers.js'

/**
 * Snapshots between real ledgers (LevelDB) and real web servers: a master's node takes one;
 * an empty replica starts from it (fetched over HTTP from two mirrors, one of which alters a
 * chunk in transit), then applies the entries after it; every way a snapshot can be wrong is
 * refused whole, and a master that vouched for a policy with a bad author signature is caught
 * by the background check.
 */
const log = silentLogger()
const POLICIES = 2500


/** A master ledger of POLICIES probes (some deleted), and a snapshot of it under `dir`. */
async function masterWithSnapshot (t: Test): Promise<{ dir: string, master: Ledger, signer: Ed25519Signer, files: SnapshotFiles, size: number }> {
  const dir = await tmpDir(t)
  const signer = new Ed25519Signer(randomBytes(32))
  const master = await ledgerAt(t, join(dir, 'master'), signer)
  const ids: string[] = []
  await Promise.all(Array.from({ length: POLICIES }, async (_, i) => {
    ids.push(policyBody((await master.submit({ op: 'put', policy: preparePolicy({ probe: { name: `p${i}` } }, signer) })).policy).id as string)
  }))
  for (const id of ids.slice(0, 20)) await master.submit({ op: 'delete', policy: prepareTombstone(id, signer) })
  const files = new SnapshotFiles(join(dir, 'served'))
  const builder = new SnapshotBuilder({ ledger: () => master, files, witnessed: () => undefined, intervalMs: 0, following: () => true, log })
  const size = await builder.tick()
  t.equal(size, master.head.seq, 'the master took a snapshot at its head')
  return { dir, master, signer, files, size: size! }
}

/** A source that counts what it is asked for. */
function counted (source: SnapshotSource): SnapshotSource & { asked: string[] } {
  const asked: string[] = []
  return { name: source.name, asked, get: async path => { asked.push(path); return await source.get(path) } }
}

t.test('an empty replica starts from a snapshot over HTTP, refusing a chunk altered in transit, and syncs on', async t => {
  const { dir, master, files, size } = await masterWithSnapshot(t)
  // a second copy whose chunk 0 was altered on the way: one byte of an entry's policy
  const altered = join(dir, 'altered')
  cpSync(files.root, altered, { recursive: true })
  const chunk0 = join(altered, chunkPath(size, 0))
  const bytes = readFileSync(chunk0)
  const at = bytes.indexOf(Buffer.from('"name":"p')) + 9
  bytes[at] = bytes[at] === 0x31 ? 0x32 : 0x31
  writeFileSync(chunk0, bytes)
  const bad = counted(mirrorSnapshotSource(await serveDirectory(t, altered, 'snapshot/latest')))
  const good = counted(mirrorSnapshotSource(await serveDirectory(t, files.root, 'snapshot/latest')))

  const replica = await ledgerAt(t, join(dir, 'replica'))
  const scratch = new SnapshotFiles(join(dir, 'scratch'))
  const result = await bootstrapFromSnapshot({ ledger: replica, sources: [bad, good], mode: 'snapshot', scratch, log })
  t.ok(result !== undefined, 'a snapshot was accepted')
  t.equal(result!.size, size)
  t.equal(replica.head.seq, size, 'the replica is at the snapshot\'s checkpoint')
  t.equal(replica.state.size, POLICIES - 20, 'it holds every live policy')
  t.same(replica.signedHead?.state, master.signedHead?.state, 'its state root is the one the master signed')
  t.equal(replica.masterKey, master.masterKey, 'it pinned the master key the checkpoint\'s origin names')
  t.ok(bad.asked.includes(chunkPath(size, 0)) && good.asked.includes(chunkPath(size, 0)), 'chunk 0 came from the second source after the first one\'s was refused')

  // the entries after the snapshot apply on top of it
  for (let i = 0; i < 30; i++) await master.submit({ op: 'put', policy: preparePolicy({ probe: { name: `after${i}` } }, new Ed25519Signer(randomBytes(32))) })
  await replica.applyBatch(await master.store.range(size + 1, Infinity), master.signedHead!)
  t.equal(replica.head.seq, master.head.seq, 'synced on from the snapshot')
  t.equal(replica.stateRoot.commitment().root, master.signedHead!.state!.root)

  // proofs: presence and absence against the state root; the log from the snapshot on
  const root = Buffer.from(master.signedHead!.state!.root, 'hex')
  const [id] = [...replica.state.logged()][0]
  t.ok(verifyStateProof(root, statePath(id), replica.stateRoot.valueOf(id), replica.stateRoot.prove(id)), 'a proof of presence from the replica')
  t.ok(verifyStateProof(root, statePath('no-such-policy'), undefined, replica.stateRoot.prove('no-such-policy')), 'and of absence')
  t.same(replica.tree.inclusionProof(size + 3), master.tree.inclusionProof(size + 3), 'inclusion proofs of entries after the snapshot')
  t.throws(() => replica.tree.inclusionProof(5), { code: 'compacted' }, 'before it: compacted, a clear refusal')

  // closed and opened again, it folds the snapshot and what came after
  await replica.close()
  const reopened = await ledgerAt(t, join(dir, 'replica'))
  t.equal(reopened.head.seq, master.head.seq, 'reopened at its head')
  t.equal(reopened.stateRoot.commitment().root, master.signedHead!.state!.root, 'with the same state root')
})

t.test('a bootstrap that was cut short resumes: chunks kept on disk are not fetched again, unless they no longer check', async t => {
  const { dir, master, files, size } = await masterWithSnapshot(t)
  const chunks = readdirSync(join(files.root, `snapshot/${size}/chunk`)).length
  t.ok(chunks >= 3, `the snapshot has ${chunks} chunks`)
  // what an interrupted try left: chunk 0 as it was fetched, chunk 1 damaged on disk since
  const scratch = new SnapshotFiles(join(dir, 'scratch'))
  await scratch.writeChunk(size, 0, readFileSync(join(files.root, chunkPath(size, 0))))
  const damaged = readFileSync(join(files.root, chunkPath(size, 1)))
  await scratch.writeChunk(size, 1, damaged.subarray(0, damaged.length - 5))
  const source = counted(mirrorSnapshotSource(await serveDirectory(t, files.root, 'snapshot/latest')))
  const replica = await ledgerAt(t, join(dir, 'replica'))
  const result = await bootstrapFromSnapshot({ ledger: replica, sources: [source], mode: 'snapshot', scratch, log })
  t.ok(result !== undefined, 'the snapshot was accepted')
  const fetched = source.asked.filter(path => path.includes('/chunk/'))
  t.notOk(fetched.includes(chunkPath(size, 0)), 'the chunk kept whole was not fetched again')
  t.ok(fetched.includes(chunkPath(size, 1)), 'the damaged one was')
  t.equal(fetched.length, chunks - 1, 'and every other chunk, once')
  t.equal(result!.bytes < readdirSync(join(files.root, `snapshot/${size}/chunk`)).reduce((sum, name) => sum + readFileSync(join(files.root, `snapshot/${size}/chunk/${name}`)).length, 0), true, 'fewer bytes than the whole snapshot came over the network')
  t.same(replica.signedHead?.state, master.signedHead?.state, 'the state root is the master\'s')
  await result!.stored
  // removed right after, in the background
  await waitFor('the kept chunks removed', async () => (await scratch.chunksKept(size)).size === 0 ? true : undefined, { timeoutMs: 5000 })
  t.pass('once the store holds the snapshot, the kept chunks are gone')
})

t.test('a snapshot that does not hold what its checkpoint commits to is refused whole', async t => {
  const { dir, master, signer, files, size } = await masterWithSnapshot(t)
  const manifest = decodeManifest(readFileSync(join(files.root, manifestPath(size)), 'utf8'))
  const signed = master.signedHead!
  const variant = async (name: string, change: (root: string) => void): Promise<SnapshotSource> => {
    const root = join(dir, name)
    cpSync(files.root, root, { recursive: true })
    change(root)
    return mirrorSnapshotSource(await serveDirectory(t, root, 'snapshot/latest'))
  }
  const refusedWith = async (source: SnapshotSource, mode: 'auto' | 'snapshot' = 'snapshot'): Promise<boolean> => {
    const replica = await ledgerAt(t, join(dir, `replica-${randomBytes(4).toString('hex')}`))
    const result = await bootstrapFromSnapshot({ ledger: replica, sources: [source], mode, scratch: new SnapshotFiles(join(dir, `scratch-${randomBytes(4).toString('hex')}`)), log }).catch(err => err as Error)
    t.equal(replica.head.seq, 0, 'the replica stays empty')
    return result === undefined || result instanceof Error
  }

  // a checkpoint signed by the master's key whose state root the chunks do not lead to
  const otherState = await variant('other-state', root => {
    const lying = headNote(signHead({ seq: signed.seq, hash: signed.hash, root: signed.root, state: { size: signed.state!.size, root: randomBytes(32).toString('hex') } }, signer, logOrigin(signer.publicKey)))
    writeFileSync(join(root, manifestPath(size)), encodeManifest({ ...manifest, checkpoint: lying }))
  })
  t.ok(await refusedWith(otherState), 'a state root the chunks do not lead to')

  // the same snapshot, its checkpoint signed by a key the network does not use
  const stranger = await variant('stranger', root => {
    const other = new Ed25519Signer(randomBytes(32))
    writeFileSync(join(root, manifestPath(size)), encodeManifest({ ...manifest, checkpoint: headNote(signHead({ seq: signed.seq, hash: signed.hash, root: signed.root, state: signed.state }, other, signed.origin)) }))
  })
  t.ok(await refusedWith(stranger), 'a checkpoint no master key of the snapshot signed')

  // every chunk is served altered by its only source
  const allAltered = await variant('all-altered', root => {
    const file = join(root, chunkPath(size, 1))
    const texts = decodeBundle(readFileSync(file))
    writeFileSync(file, encodeBundle(texts.slice(1)))
  })
  t.ok(await refusedWith(allAltered), 'a chunk missing an entry, with no other source')

  // BOOTSTRAP=auto needs witnesses: this network names none
  t.ok(await refusedWith(mirrorSnapshotSource(await serveDirectory(t, files.root, 'snapshot/latest')), 'auto'), 'auto: a network without witnesses replays the log instead')
})

t.test('a policy with a bad author signature that the master vouched for is found in the background and raises the fork alarm', async t => {
  const { dir, master, signer, files, size } = await masterWithSnapshot(t)
  const manifest = decodeManifest(readFileSync(join(files.root, manifestPath(size)), 'utf8'))
  // the lying master: a policy's signature spoiled, and a state root over it, signed
  const planted = join(dir, 'planted')
  cpSync(files.root, planted, { recursive: true })
  const file = join(planted, chunkPath(size, 2))
  const entries = decodeBundle(readFileSync(file)).map(text => parseEntryText(text)!)
  const victim = entries[0]
  const policy = structuredClone(victim.policy) as Record<string, Record<string, unknown>>
  const body = Object.values(policy)[0]
  body.signature = (body.signature as string).replace(/^./, c => c === 'a' ? 'b' : 'a')
  const forged: Entry = { ...victim, policy }
  const text = entryText(forged.prevHash, forged.seq, forged.op, canonicalJson(forged.policy))
  const reparsed = [parseEntryText(text)!, ...entries.slice(1)]
  writeFileSync(file, encodeBundle([text, ...entries.slice(1).map(entryBytes)]))
  const leaves = reparsed.map(e => ({ path: statePath(String(policyBody(e.policy).id)), valueHash: entryLeafHash(e) })).sort((a, b) => Buffer.compare(a.path, b.path))
  t.equal(chunkIndexOf(leaves[0].path, manifest.depth), 2)
  const chunks = manifest.chunks.map((c, i) => i === 2 ? { hash: subtreeRoot(leaves, manifest.depth), count: c.count } : c)
  const allLeaves = [...master.state.logged()].map(([id]) => ({ path: statePath(id), valueHash: id === policyBody(victim.policy).id ? entryLeafHash(reparsed[0]) : master.stateRoot.valueOf(id)! }))
  const signed = master.signedHead!
  const stateRoot = bulkRoot(allLeaves).toString('hex')
  const lying = headNote(signHead({ seq: signed.seq, hash: signed.hash, root: signed.root, state: { size: signed.state!.size, root: stateRoot } }, signer, logOrigin(signer.publicKey)))
  writeFileSync(join(planted, manifestPath(size)), encodeManifest({ ...manifest, chunks, checkpoint: lying }))

  const replica = await ledgerAt(t, join(dir, 'replica'))
  const result = await bootstrapFromSnapshot({ ledger: replica, sources: [mirrorSnapshotSource(await serveDirectory(t, planted, 'snapshot/latest'))], mode: 'snapshot', scratch: new SnapshotFiles(join(dir, 'scratch')), log })
  t.equal(result?.size, size, 'the snapshot checks against the state root the master signed')
  const forks = new ForkWatch(replica)
  await forks.load()
  const check = new AuthorCheck({ entries: result!.entries, log, onInvalid: async reason => { await forks.detected(result!.checkpoint, 'snapshot', reason) } })
  await check.run()
  t.equal(check.status.done, false, 'the check stopped at the bad signature')
  t.equal(check.status.failed?.id, policyBody(victim.policy).id, 'naming the policy')
  t.match(forks.current?.reason, /has an author signature that does not verify/, 'the fork alarm is raised')
  t.equal(forks.current?.source, 'snapshot')
  t.throws(() => { forks.assertFollowing() }, { code: 'fork_detected' }, 'and the node stops following')

  // the honest snapshot verifies every signature
  const honest = await ledgerAt(t, join(dir, 'honest'))
  const ok = await bootstrapFromSnapshot({ ledger: honest, sources: [mirrorSnapshotSource(await serveDirectory(t, files.root, 'snapshot/latest'))], mode: 'snapshot', scratch: new SnapshotFiles(join(dir, 'scratch2')), log })
  const clean = new AuthorCheck({ entries: ok!.entries, log, onInvalid: async () => { t.fail('no signature is bad') } })
  await clean.run()
  t.same(clean.status, { verified: POLICIES - 20, total: POLICIES - 20, done: true }, 'every author signature verified')
})

t.test('on a network with witnesses: only a checkpoint a quorum cosigned, and whose state root the chunks lead to', async t => {
  const dir = await tmpDir(t)
  const signer = new Ed25519Signer(randomBytes(32))
  const witnesses = [new Ed25519Signer(randomBytes(32)), new Ed25519Signer(randomBytes(32))]
  const master = await ledgerAt(t, join(dir, 'master'), signer)
  await master.submit({ op: 'put', policy: preparePolicy({ network: { witnesses: witnesses.map((w, i) => ({ key: w.publicKey, address: `127.0.0.1:${4000 + i}` })), witness_quorum: 2 } }, signer) })
  for (let i = 0; i < 300; i++) await master.submit({ op: 'put', policy: preparePolicy({ probe: { name: `w${i}` } }, signer) })
  const cosign = (note: string, by: Ed25519Signer[]): string => {
    const parsed = parseNote(note)
    return formatNote({ text: parsed.text, signatures: [...parsed.signatures, ...by.map(w => signNote(parsed.text, witnessName(w.publicKey), w, SIG_COSIGNATURE_V1))] })
  }
  const head = master.signedHead!
  const witnessed = { size: head.seq, cosigners: witnesses.map(w => w.publicKey), note: cosign(headNote(head), witnesses) }
  const files = new SnapshotFiles(join(dir, 'served'))
  const builder = new SnapshotBuilder({ ledger: () => master, files, witnessed: () => witnessed, intervalMs: 0, following: () => true, log })
  t.equal(await builder.tick(), head.seq, 'taken at the witnessed checkpoint')
  t.same(builder.latest, { size: head.seq, witnessed: true })
  const manifest = decodeManifest(readFileSync(join(files.root, manifestPath(head.seq)), 'utf8'))
  t.equal(manifest.checkpoint, witnessed.note, 'the manifest carries the cosigned checkpoint')

  const attempt = async (name: string, checkpoint?: string): Promise<Awaited<ReturnType<typeof bootstrapFromSnapshot>> | Error> => {
    const root = join(dir, name)
    cpSync(files.root, root, { recursive: true })
    if (checkpoint !== undefined) writeFileSync(join(root, manifestPath(head.seq)), encodeManifest({ ...manifest, checkpoint }))
    const replica = await ledgerAt(t, join(dir, `replica-${name}`))
    return await bootstrapFromSnapshot({ ledger: replica, sources: [mirrorSnapshotSource(await serveDirectory(t, root, 'snapshot/latest'))], mode: 'auto', scratch: new SnapshotFiles(join(dir, `scratch-${name}`)), log }).catch(err => err as Error)
  }
  const honest = await attempt('honest')
  t.ok(!(honest instanceof Error) && honest?.witnessed === true, 'BOOTSTRAP=auto: accepted, witnessed')

  const short = await attempt('short', cosign(headNote(head), witnesses.slice(0, 1)))
  t.match(short, { code: 'snapshot_refused', message: /cosigned by 1 of the network's witnesses, fewer than its quorum of 2/ }, 'cosigned by fewer than the quorum')

  // another state root, signed by the master's key and cosigned by both witnesses' keys (all stolen)
  const otherState = headNote(signHead({ seq: head.seq, hash: head.hash, root: head.root, state: { size: head.state!.size, root: randomBytes(32).toString('hex') } }, signer, head.origin))
  t.equal(await attempt('other-state', cosign(otherState, witnesses)), undefined, 'a witnessed state root the chunks do not lead to: refused (no snapshot accepted)')
})
