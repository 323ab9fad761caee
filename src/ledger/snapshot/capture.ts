import { setImmediate as yieldToEvents } from 'node:timers/promises'
import { LedgerMeshError } from '../../base/errors.js'
import type { Head, SignedHead } from '../head.js'
import type { LedgerState } from '../state.js'
import { statePath } from '../state-tree/hashing.js'
import { chunkDepth, chunkIndexOf } from '../state-tree/snapshot-chunks.js'
import type { MerkleTree } from '../tlog/merkle-tree.js'

/** Policies placed into chunks between two turns of the event loop. */
const SLICE = 4096

/** A policy placed in its chunk; `key`, its path's first 48 bits, orders it without a Buffer.compare almost always. */
export interface Leaf { path: Buffer, seq: number, key: number }

/** Orders leaves by path, as Buffer.compare orders the paths. */
export function byPath (a: Leaf, b: Leaf): number {
  return a.key !== b.key ? a.key - b.key : Buffer.compare(a.path, b.path)
}

/** One chunk of a captured snapshot: the seqs of its entries, in path order (and their paths). */
export interface CapturedChunk { seqs: number[], paths: Buffer[] }

/** The state at a head, as a snapshot needs it: which entries go into which chunk, not yet read. */
export interface SnapshotCapture {
  head: SignedHead
  depth: number
  chunks: CapturedChunk[]
  frontier: Buffer[]
}

/** What a capture reads: a ledger (its live state, its log tree and its head). */
export interface CaptureSource {
  readonly state: LedgerState
  readonly tree: MerkleTree
  readonly head: Head
  readonly signedHead: SignedHead | undefined
}

/**
 * Captures the live state at the ledger's head: at once (nothing moves under it), each live
 * policy's id and seq and the log tree's compact range; then, a slice per turn of the event
 * loop (a capture of 100,000 policies must not stall the node), each policy's state path and
 * chunk, each chunk sorted by path. Entries are never changed once logged, so the seqs stay
 * good while the head moves on; the builder reads them and checks the chunks it writes
 * against the signed state root.
 */
export async function captureSnapshot (ledger: CaptureSource): Promise<SnapshotCapture> {
  const head = ledger.signedHead
  if (head === undefined || head.seq !== ledger.head.seq || head.hash !== ledger.head.hash) throw new LedgerMeshError('not_active', 'no signed head at this ledger\'s head to take a snapshot at')
  if (head.state === undefined) throw new LedgerMeshError('not_supported', `the signed head at seq ${head.seq} has no state line: a snapshot needs one`)
  const ids: string[] = []
  const seqs: number[] = []
  for (const [id, seq] of ledger.state.logged()) { ids.push(id); seqs.push(seq) }
  if (ids.length !== head.state.size) throw new LedgerMeshError('internal', `the state holds ${ids.length} logged policies at seq ${head.seq}, its signed state line ${head.state.size}`)
  const frontier = ledger.tree.compactRange(head.seq)
  const depth = chunkDepth(head.state.size)
  const buckets: Leaf[][] = Array.from({ length: 2 ** depth }, () => [])
  for (let i = 0; i < ids.length; i++) {
    const path = statePath(ids[i])
    buckets[chunkIndexOf(path, depth)].push({ path, seq: seqs[i], key: path.readUIntBE(0, 6) })
    if ((i + 1) % SLICE === 0) await yieldToEvents()
  }
  // sorted a few chunks per turn too: sorting 1,000,000 paths at once held a master's event
  // loop for 3 s and more, every SNAPSHOT_INTERVAL
  const chunks: CapturedChunk[] = []
  let sorted = 0
  for (const leaves of buckets) {
    leaves.sort(byPath)
    chunks.push({ seqs: leaves.map(l => l.seq), paths: leaves.map(l => l.path) })
    sorted += leaves.length
    if (sorted >= SLICE) { sorted = 0; await yieldToEvents() }
  }
  return { head, depth, chunks, frontier }
}
