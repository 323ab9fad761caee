import type { MerkleTree } from './merkle-tree.js'
import { verifyConsistency } from './proof.js'

/** What a checkpoint presented by someone else says about the tree this node holds. */
export type TreeVerdict =
  /** the checkpoint's tree is this tree or a prefix of it, or a proof links this tree to it */
  | { kind: 'consistent' }
  /** larger than this tree, and no proof came with it: it can be checked once this tree grows */
  | { kind: 'ahead' }
  /** no history holds both: a split view or a rewritten log */
  | { kind: 'fork', reason: string }

/** A consistency proof toward a checkpoint, from the tree of `from` entries. */
export interface ProofFrom {
  from: number
  hashes: readonly Uint8Array[]
}

/**
 * Compares a checkpoint (its size and root, signature already checked) with the tree this
 * node verified entry by entry: a smaller or equal size must have this tree's root at that
 * size; a larger one needs a consistency proof from a size this tree has (`proof`), else it
 * waits.
 */
export function compareWithTree (tree: MerkleTree, presented: { size: number, root: Uint8Array }, proof?: ProofFrom): TreeVerdict {
  const size = tree.size
  if (presented.size <= size) {
    const ours = tree.root(presented.size)
    return ours.equals(presented.root)
      ? { kind: 'consistent' }
      : { kind: 'fork', reason: `the tree of ${presented.size} entries has root ${Buffer.from(presented.root).toString('base64')} there, but the entries this node verified give ${ours.toString('base64')}` }
  }
  if (proof === undefined || proof.from < 1 || proof.from > size) return { kind: 'ahead' }
  const why = verifyConsistency(proof.from, presented.size, proof.hashes, tree.root(proof.from), presented.root)
  return why === undefined ? { kind: 'consistent' } : { kind: 'fork', reason: `no consistency proof links this node's tree of ${proof.from} entries to the checkpoint of ${presented.size}: ${why}` }
}
