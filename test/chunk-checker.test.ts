import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { LedgerMeshError } from '../src/base/errors.js'
import { type Logger, silentLogger } from '../src/base/logger.js'
import { type Entry, entryLeafHash } from '../src/ledger/entry.js'
import { ChunkChecker } from '../src/ledger/snapshot/chunk-checker.js'
import { SnapshotFiles, chunkPath, manifestPath } from '../src/ledger/snapshot/files.js'
import { type SnapshotManifest, checkChunk, chunkSpec, decodeManifest } from '../src/ledger/snapshot/manifest.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { preparePolicy } from '../src/policies/prepare.js'
import { SnapshotBuilder } from '../src/services/snapshot-builder.js'
import { ledgerAt } from './helpers/ledgers.js'
import { tmpDir } from './helpers/tmp.js'

/**
 * ChunkChecker checks a snapshot's chunks on a worker thread and on the calling thread: what
 * a thread accepts is exactly what checkChunk accepts (the same entries with the same chain
 * and leaf hashes), what it refuses is refused with checkChunk's reason, and a thread that
 * cannot run leaves the calling thread to check every chunk.
 */
const POLICIES = 3000

interface Snapshot { manifest: SnapshotManifest, size: number, bundles: Buffer[] }

async function snapshotOf (t: Test): Promise<Snapshot> {
  const dir = await tmpDir(t)
  const signer = new Ed25519Signer(randomBytes(32))
  const master = await ledgerAt(t, join(dir, 'master'), signer)
  await Promise.all(Array.from({ length: POLICIES }, async (_, i) => await master.submit({ op: 'put', policy: preparePolicy({ probe: { name: `p${i}` } }, signer) })))
  const files = new SnapshotFiles(join(dir, 'served'))
  const size = (await new SnapshotBuilder({ ledger: () => master, files, witnessed: () => undefined, intervalMs: 0, following: () => true, log: silentLogger() }).tick())!
  const manifest = decodeManifest(readFileSync(join(files.root, manifestPath(size)), 'utf8'))
  const bundles = manifest.chunks.map((_, index) => readFileSync(join(files.root, chunkPath(size, index))))
  return { manifest, size, bundles }
}

/** What a test compares of an entry: its content, its chain hash and its leaf hash. */
function facts (entries: Entry[]): unknown[] {
  return entries.map(e => [e.seq, e.op, e.prevHash, e.hash, JSON.stringify(e.policy), e.policyText, entryLeafHash(e).toString('hex')])
}

async function refusal (promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (err) {
    return err instanceof LedgerMeshError ? `${err.code}: ${err.message}` : `not a LedgerMeshError: ${String(err)}`
  }
  return 'accepted'
}

t.test('a thread and the calling thread accept the same entries, hashes and all, as checkChunk', async t => {
  const { manifest, size, bundles } = await snapshotOf(t)
  t.ok(bundles.length >= 2, `the snapshot has ${bundles.length} chunks`)
  const checker = new ChunkChecker({ threads: 1 })
  t.teardown(async () => { await checker.close() })
  // all at once: the thread takes two, the calling thread the rest
  const checked = await Promise.all(bundles.map(async (bundle, index) => await checker.check(chunkSpec(manifest, index), size, bundle)))
  t.ok(checker.stats.byThread >= 1, `the thread checked ${checker.stats.byThread} chunk(s)`)
  t.ok(checker.stats.here >= 1, `the calling thread checked ${checker.stats.here} chunk(s)`)
  bundles.forEach((bundle, index) => {
    t.same(facts(checked[index]), facts(checkChunk(manifest, size, index, bundle)), `chunk ${index}: the same entries as checkChunk's`)
  })
  t.equal(checked.flat().length, manifest.chunks.reduce((sum, c) => sum + c.count, 0), 'every policy of the snapshot')
})

t.test('a chunk a thread refuses is refused with checkChunk\'s reason, and the thread goes on', async t => {
  const { manifest, size, bundles } = await snapshotOf(t)
  const altered = Buffer.from(bundles[0])
  const at = altered.indexOf(Buffer.from('"name":"p')) + 9
  altered[at] = altered[at] === 0x31 ? 0x32 : 0x31
  const truncated = bundles[1].subarray(0, bundles[1].length - 3)
  const checker = new ChunkChecker({ threads: 1 })
  t.teardown(async () => { await checker.close() })
  for (const [what, index, bundle] of [['one byte of a policy altered', 0, altered], ['cut short', 1, truncated], ['another chunk\'s bytes', 1, bundles[0]]] as const) {
    const expected = await refusal(Promise.resolve().then(() => checkChunk(manifest, size, index, bundle)))
    t.match(expected, /^snapshot_refused: snapshot: chunk \d/, `${what}: checkChunk refuses it`)
    t.equal(await refusal(checker.check(chunkSpec(manifest, index), size, bundle)), expected, `${what}: refused by the thread for the same reason`)
  }
  t.equal(checker.stats.here, 0, 'the thread answered each (none fell back to the calling thread)')
  t.equal((await checker.check(chunkSpec(manifest, 0), size, bundles[0])).length, manifest.chunks[0].count, 'and then checks a good chunk')
  t.equal(checker.stats.byThread, 1, 'on the thread')
})

t.test('a thread that cannot start leaves every chunk to the calling thread', async t => {
  const { manifest, size, bundles } = await snapshotOf(t)
  const warnings: string[] = []
  const checker = new ChunkChecker({ threads: 1, threadFile: 'no-such-thread', log: { warn: (o: object, message: string) => { warnings.push(message) } } as unknown as Logger })
  t.teardown(async () => { await checker.close() })
  const checked = await Promise.all(bundles.map(async (bundle, index) => await checker.check(chunkSpec(manifest, index), size, bundle)))
  t.equal(checker.stats.byThread, 0, 'no chunk was answered by a thread')
  t.equal(checker.stats.here, bundles.length, 'the calling thread checked every chunk')
  t.equal(warnings.length, 1, 'the failure was logged once')
  t.match(warnings[0], /snapshot chunk thread failed/, 'as a thread\'s failure')
  bundles.forEach((bundle, index) => { t.same(facts(checked[index]), facts(checkChunk(manifest, size, index, bundle)), `chunk ${index} checked all the same`) })
  const none = new ChunkChecker({ threads: 0 })
  t.equal((await none.check(chunkSpec(manifest, 0), size, bundles[0])).length, manifest.chunks[0].count, 'with no threads at all, too')
  await none.close()
})
