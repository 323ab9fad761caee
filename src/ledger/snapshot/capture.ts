import { LedgerMeshError } from '../../base/errors.js'
import type { Head, SignedHead } from '../head.js'
import type { LedgerState } from '../state.js'
import type { StateRoot } from '../state-root.js'
import { statePath } from '../state-tree/hashing.js'
import { chunkDepth, chunkIndexOf, rootFromChunks, subtreeRoot } from '../state-tree/snapshot-chunks.js'
import type { MerkleTree } from '../tlog/merkle-tree.js'
import { frontierOf } from './manifest.js'

/** One chunk of a captured snapshot: its subtree hash, and the seqs of its entries in path order. */
export interface CapturedChunk { hash: Buffer, count: number, seqs: number[] }

/** The state at a head, as a snapshot needs it: what to write, not yet written. */
export interface SnapshotCapture {
  head: SignedHead
  depth: number
  chunks: CapturedChunk[]
  frontier: Buffer[]
}

/** What a capture reads: a ledger (its live state, both trees and its head). */
export interface CaptureSource {
  readonly state: LedgerState
  readonly stateRoot: StateRoot
  readonly tree: MerkleTree
  readonly head: Head
  readonly signedHead: SignedHead | undefined
}

/**
 * Captures the live state at the ledger's head, at once (nothing moves under it: no await): each
 * live policy's seq, sorted into chunks by its state path, each chunk's subtree hash (its
 * values are the state tree's, the putting entries' leaf hashes), and the log tree's compact
 * range. The chunks must lead to the signed head's state root: a capture that does not is a
 * bug, reported, never served.
 */
export function captureSnapshot (ledger: CaptureSource): SnapshotCapture {
  const head = ledger.signedHead
  if (head === undefined || head.seq !== ledger.head.seq || head.hash !== ledger.head.hash) throw new LedgerMeshError('not_active', 'no signed head at this ledger\'s head to take a snapshot at')
  if (head.state === undefined) throw new LedgerMeshError('not_supported', `the signed head at seq ${head.seq} has no state line: a snapshot needs one`)
  const depth = chunkDepth(head.state.size)
  const buckets: Array<Array<{ path: Buffer, valueHash: Buffer, seq: number }>> = Array.from({ length: 2 ** depth }, () => [])
  for (const [id, seq] of ledger.state.logged()) {
    const path = statePath(id)
    const valueHash = ledger.stateRoot.valueOf(id)
    if (valueHash === undefined) throw new LedgerMeshError('internal', `policy ${id} is live but not in the state tree`)
    buckets[chunkIndexOf(path, depth)].push({ path, valueHash, seq })
  }
  const chunks = buckets.map(leaves => {
    leaves.sort((a, b) => Buffer.compare(a.path, b.path))
    return { hash: subtreeRoot(leaves, depth), count: leaves.length, seqs: leaves.map(l => l.seq) }
  })
  if (rootFromChunks(chunks, depth).toString('hex') !== head.state.root) {
    throw new LedgerMeshError('internal', `the snapshot captured at seq ${head.seq} does not lead to its signed state root`)
  }
  return { head, depth, chunks, frontier: frontierOf(ledger.tree, head.seq) }
}
