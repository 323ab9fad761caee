import { z } from 'zod'
import { LedgerMeshError } from '../../base/errors.js'
import { type Entry, entryLeafHash, parseEntryText } from '../entry.js'
import type { SignedHead } from '../head.js'
import { policyBody } from '../../policies/policy.js'
import { statePath } from '../state-tree/hashing.js'
import { type ChunkHash, MAX_CHUNK_DEPTH, chunkDepth, chunkIndexOf, rootFromChunks, subtreeRoot } from '../state-tree/snapshot-chunks.js'
import { MerkleTree } from '../tlog/merkle-tree.js'
import { HASH_SIZE } from '../tlog/rfc6962.js'
import { decodeBundle } from '../tlog/tiles.js'

/**
 * A snapshot: the live state at a checkpoint, cut into 2^depth chunks by the first `depth` bits
 * of each policy's state path (SHA-256 of its id). Each chunk is an entry bundle (the tiles'
 * format: each entry's bytes after a big-endian uint16 length) of the log entries that put the
 * chunk's live policies, so each chunk is checked alone against its subtree hash in the
 * manifest, and the manifest against the checkpoint's state line. The manifest also carries
 * the log tree's compact range at the checkpoint (what the tree needs to grow on from there,
 * checked against the checkpoint's root) and the chain hash of its last entry (checked by the
 * next entry's leaf, which covers it).
 *
 * The manifest is JSON: `{ checkpoint, head_hash, depth, chunks: [[base64 hash, count]...],
 * frontier: [base64 hash...] }`, the checkpoint being the signed note, with the witnesses'
 * cosignatures on a witnessed network.
 */
export interface SnapshotManifest {
  checkpoint: string
  /** the chain hash of the checkpoint's last entry, hex */
  headHash: string
  depth: number
  chunks: ChunkHash[]
  /** the roots of the log tree's maximal complete subtrees at the checkpoint's size, left to right */
  frontier: Buffer[]
}

/** Most bytes a manifest may have: 2^16 chunks of ~60 bytes, the frontier and the note. */
export const MAX_MANIFEST_BYTES = 5 * 1024 * 1024

const base64Hash = z.string().refine(s => Buffer.from(s, 'base64').length === HASH_SIZE && Buffer.from(s, 'base64').toString('base64') === s, 'not the base64 of a 32-byte hash')
const ManifestJson = z.object({
  checkpoint: z.string().min(1).max(64 * 1024),
  head_hash: z.string().regex(/^[0-9a-f]{64}$/, 'not a 32-byte hex hash'),
  depth: z.number().int().min(0).max(MAX_CHUNK_DEPTH),
  chunks: z.array(z.tuple([base64Hash, z.number().int().min(0)])).max(2 ** MAX_CHUNK_DEPTH),
  frontier: z.array(base64Hash).max(64)
}).strict()

const refused = (message: string): LedgerMeshError => new LedgerMeshError('snapshot_refused', `snapshot: ${message}`)

export function encodeManifest (m: SnapshotManifest): string {
  return JSON.stringify({
    checkpoint: m.checkpoint,
    head_hash: m.headHash,
    depth: m.depth,
    chunks: m.chunks.map(c => [Buffer.from(c.hash).toString('base64'), c.count]),
    frontier: m.frontier.map(h => h.toString('base64'))
  })
}

export function decodeManifest (text: string): SnapshotManifest {
  if (text.length > MAX_MANIFEST_BYTES) throw refused(`the manifest has ${text.length} bytes (at most ${MAX_MANIFEST_BYTES})`)
  let json: unknown
  try { json = JSON.parse(text) } catch (err) { throw refused(`the manifest is not JSON (${(err as Error).message})`) }
  const parsed = ManifestJson.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw refused(`the manifest's ${issue.path.join('.') || 'body'} is wrong: ${issue.message}`)
  }
  const m = parsed.data
  return {
    checkpoint: m.checkpoint,
    headHash: m.head_hash,
    depth: m.depth,
    chunks: m.chunks.map(([hash, count]) => ({ hash: Buffer.from(hash, 'base64'), count })),
    frontier: m.frontier.map(h => Buffer.from(h, 'base64'))
  }
}

/** The root of a log of `size` leaves from its compact range; undefined when it is not one. */
function rootFromCompactRange (frontier: readonly Uint8Array[], size: number): string | undefined {
  try {
    return MerkleTree.fromCompactRange(size, frontier).root().toString('hex')
  } catch {
    // a range of the wrong length for the size
    return undefined
  }
}

/**
 * Throws snapshot_refused unless the manifest holds what `head` (its checkpoint, whose
 * signatures the caller checked) commits to: chunks whose hashes combine into the state root,
 * as many policies as the state line says, and a compact range with the log's root.
 */
export function checkManifest (m: SnapshotManifest, head: Pick<SignedHead, 'seq' | 'root' | 'state'>): void {
  const state = head.state
  if (state === undefined) throw refused(`the checkpoint at size ${head.seq} has no state line: there is nothing to check a snapshot against`)
  if (m.depth !== chunkDepth(state.size)) throw refused(`depth ${m.depth} for ${state.size} policies, where it is ${chunkDepth(state.size)}`)
  if (m.chunks.length !== 2 ** m.depth) throw refused(`${m.chunks.length} chunks at depth ${m.depth}, not ${2 ** m.depth}`)
  const total = m.chunks.reduce((sum, c) => sum + c.count, 0)
  if (total !== state.size) throw refused(`the chunks hold ${total} policies, the checkpoint's state ${state.size}`)
  if (rootFromChunks(m.chunks, m.depth).toString('hex') !== state.root) throw refused('the chunks\' hashes do not lead to the checkpoint\'s state root')
  if (head.seq === 0 ? m.frontier.length > 0 : rootFromCompactRange(m.frontier, head.seq) !== head.root) {
    throw refused(`the log's compact range does not lead to the checkpoint's root at size ${head.seq}`)
  }
}

/**
 * The entries of chunk `index`, checked against the manifest (which checkManifest accepted):
 * each a put at or before the checkpoint, in this chunk, one per policy, and together exactly
 * the chunk's subtree. Throws snapshot_refused naming what does not hold.
 */
export function checkChunk (m: SnapshotManifest, size: number, index: number, bundle: Uint8Array): Entry[] {
  const expected = m.chunks[index]
  if (expected === undefined) throw refused(`there is no chunk ${index} (the snapshot has ${m.chunks.length})`)
  let texts: string[]
  try { texts = decodeBundle(bundle) } catch (err) { throw refused(`chunk ${index}: ${(err as Error).message}`) }
  if (texts.length !== expected.count) throw refused(`chunk ${index} holds ${texts.length} entries, the manifest says ${expected.count}`)
  const leaves: Array<{ path: Buffer, valueHash: Buffer, entry: Entry }> = []
  for (const [i, text] of texts.entries()) {
    const entry = parseEntryText(text)
    if (entry === undefined) throw refused(`chunk ${index}: entry ${i} is not a log entry's bytes`)
    if (entry.op !== 'put' || entry.seq > size) throw refused(`chunk ${index}: entry ${i} (seq ${entry.seq}) is not a put at or before the checkpoint's size ${size}`)
    const path = statePath(String(policyBody(entry.policy).id))
    if (chunkIndexOf(path, m.depth) !== index) throw refused(`chunk ${index}: entry ${i} (seq ${entry.seq}) belongs to chunk ${chunkIndexOf(path, m.depth)}`)
    // parseEntryText kept the leaf hash of these bytes: entryLeafHash reads it back
    leaves.push({ path, valueHash: entryLeafHash(entry), entry })
  }
  leaves.sort((a, b) => Buffer.compare(a.path, b.path))
  for (let i = 1; i < leaves.length; i++) {
    if (leaves[i].path.equals(leaves[i - 1].path)) throw refused(`chunk ${index}: two entries put policy ${String(policyBody(leaves[i].entry.policy).id)}`)
  }
  if (!subtreeRoot(leaves, m.depth).equals(expected.hash)) throw refused(`chunk ${index}: its entries do not lead to the manifest's hash for it`)
  return leaves.map(l => l.entry)
}
