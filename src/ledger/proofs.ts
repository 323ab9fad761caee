import { LedgerMeshError } from '../base/errors.js'
import { entryBytes } from './entry.js'
import { type SignedHead, headNote } from './head.js'
import type { Ledger } from './ledger.js'
import { statePath } from './state-tree/hashing.js'
import { type StateProofJson, encodeStateProof } from './state-tree/proof.js'
import { TILE_WIDTH, checkTile, encodeBundle, hashTile, parseTilePath } from './tlog/tiles.js'

/**
 * Proofs a node serves from its ledger (REST, the command language, `ledgermesh verify`):
 * each is made against a tree size no larger than the checkpoint the node holds, and carries
 * what a verifier needs besides the master keys: the entry's bytes and the checkpoint.
 */
export interface InclusionProof {
  /** the entry's seq; its leaf index is seq - 1 */
  seq: number
  leaf_index: number
  tree_size: number
  /** the entry's bytes (the text its chain hash and leaf hash cover) */
  entry: string
  /** RFC 6962 audit path, base64 hashes */
  proof: string[]
  /** the signed checkpoint the proof is against, when `tree_size` is the checkpoint's */
  checkpoint?: string
}

export interface ConsistencyProof {
  first: number
  second: number
  proof: string[]
  checkpoint?: string
}

/**
 * That a policy id is live in the state the checkpoint's state line commits to (with the
 * entry that put it), or that it is not: a sparse Merkle proof against the state root.
 */
export interface StateProof {
  id: string
  present: boolean
  /** the policy's state path: SHA-256 of its id, base64 */
  path: string
  /** when present: the entry that put it (its leaf hash is the value the proof commits to) */
  seq?: number
  entry?: string
  /** the value at the path, base64: the entry's RFC 6962 leaf hash */
  value_hash?: string
  proof: StateProofJson
  /** the signed checkpoint whose state line the proof is against */
  checkpoint: string
}

const b64 = (hashes: Buffer[]): string[] => hashes.map(h => h.toString('base64'))

/** The checkpoint's size: proofs are made against it or a smaller size, never past it. */
function checkpointSize (ledger: Ledger): number {
  const signed = ledger.signedHead
  if (signed === undefined) throw new LedgerMeshError('not_found', 'this node holds no signed checkpoint yet: no proof can be made')
  return signed.seq
}

function sizeWithin (ledger: Ledger, size: number | undefined, what: string): number {
  const max = checkpointSize(ledger)
  if (size === undefined) return max
  if (!Number.isSafeInteger(size) || size < 1 || size > max) throw new LedgerMeshError('bad_command', `${what}: tree size ${size} is not from 1 to ${max} (this node's checkpoint)`)
  return size
}

/** Signed heads as notes, formatted once per head (every proof against it carries the note). */
const notes = new WeakMap<SignedHead, string>()

/** The signed checkpoint the node holds, as a C2SP signed note. */
export function checkpointNote (ledger: Ledger): string {
  const signed = ledger.signedHead
  if (signed === undefined) throw new LedgerMeshError('not_found', 'this node holds no signed checkpoint yet')
  let note = notes.get(signed)
  if (note === undefined) notes.set(signed, note = headNote(signed))
  return note
}

/** An inclusion proof of the entry at `seq`, or of the live policy `id`, in the tree of `size` entries. */
export async function inclusionProof (ledger: Ledger, target: { seq?: number, id?: string }, size?: number): Promise<InclusionProof> {
  let seq = target.seq
  if (target.id !== undefined) {
    seq = ledger.state.seqOf(target.id.toLowerCase())
    if (seq === undefined) throw new LedgerMeshError('not_found', `no live policy ${target.id} in this node's ledger (a policy waiting in the outbox has no place in the log yet)`, { id: target.id })
  }
  if (seq === undefined || !Number.isSafeInteger(seq) || seq < 1) throw new LedgerMeshError('bad_command', 'inclusion proof: name a policy id or an entry seq from 1')
  const treeSize = sizeWithin(ledger, size ?? undefined, 'inclusion proof')
  if (seq > treeSize) throw new LedgerMeshError('bad_command', `inclusion proof: entry ${seq} is not in the tree of ${treeSize} entries`)
  const [entry] = await ledger.store.range(seq, 1)
  if (entry === undefined || entry.seq !== seq) throw new LedgerMeshError('not_found', `entry ${seq} is not in this node's store`)
  const proof: InclusionProof = {
    seq,
    leaf_index: seq - 1,
    tree_size: treeSize,
    entry: entryBytes(entry),
    proof: b64(ledger.tree.inclusionProof(seq - 1, treeSize))
  }
  if (treeSize === ledger.signedHead?.seq) proof.checkpoint = checkpointNote(ledger)
  return proof
}

/** A proof that policy `id` is live (with its entry) or absent, against the checkpoint's state root. */
export async function stateProof (ledger: Ledger, id: string): Promise<StateProof> {
  const signed = ledger.signedHead
  if (signed?.state === undefined) throw new LedgerMeshError('not_found', 'this node holds no checkpoint with a state line yet: no state proof can be made')
  // the state tree moves with the head; the proof is made only where the checkpoint is
  if (signed.seq !== ledger.head.seq || ledger.stateRoot.commitment().root !== signed.state.root) throw new LedgerMeshError('not_active', 'this node\'s state is between checkpoints: try again')
  const value = ledger.stateRoot.valueOf(id)
  const seq = value === undefined ? undefined : ledger.state.seqOf(id)
  const [entry] = seq === undefined ? [] : await ledger.store.range(seq, 1)
  return {
    id,
    present: value !== undefined,
    path: statePath(id).toString('base64'),
    ...(value !== undefined && entry?.seq === seq ? { seq, entry: entryBytes(entry), value_hash: value.toString('base64') } : {}),
    proof: encodeStateProof(ledger.stateRoot.prove(id)),
    checkpoint: checkpointNote(ledger)
  }
}

/** A consistency proof from the tree of `first` entries to the tree of `second` (the checkpoint's by default). */
export function consistencyProof (ledger: Ledger, first: number, second?: number): ConsistencyProof {
  const to = sizeWithin(ledger, second, 'consistency proof')
  if (!Number.isSafeInteger(first) || first < 0 || first > to) throw new LedgerMeshError('bad_command', `consistency proof: size ${first} is not from 0 to ${to}`)
  const proof: ConsistencyProof = { first, second: to, proof: b64(ledger.tree.consistencyProof(first, to)) }
  if (to === ledger.signedHead?.seq) proof.checkpoint = checkpointNote(ledger)
  return proof
}

/**
 * A C2SP tile (`<L>/<N>[.p/<W>]`) or entry bundle (`entries/<N>[.p/<W>]`) of the tree at this
 * node's checkpoint: full tiles, and the partial ones of the checkpoint's size.
 */
export async function tileBytes (ledger: Ledger, path: string): Promise<Buffer> {
  const tile = parseTilePath(path)
  const size = checkpointSize(ledger)
  if (tile.level !== undefined) return hashTile(ledger.tree, tile, size)
  const width = checkTile(tile, size)
  if (tile.index * TILE_WIDTH < ledger.logStart) throw new LedgerMeshError('compacted', `this node keeps the log's entries whole only after seq ${ledger.logStart} (a snapshot, or compaction): tile/${path} is not here (its Merkle tiles are, when it kept the hashes): export tiles from a node that keeps the whole log (a master, or RETAIN=all)`)
  const entries = await ledger.store.range(tile.index * TILE_WIDTH + 1, width)
  if (entries.length !== width) throw new LedgerMeshError('not_found', `entries of tile/entries/${path} are not all in this node's store`)
  return encodeBundle(entries.map(entryBytes))
}
