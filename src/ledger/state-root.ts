import { policyBody } from '../policies/policy.js'
import type { Entry } from './entry.js'
import type { StateCommitment } from './head.js'
import { STATE_HASH_SIZE, statePath } from './state-tree/hashing.js'
import { StateTree } from './state-tree/state-tree.js'

/** How many recent heads' commitments are kept, for witnesses asked about a size just passed. */
const RECENT_COMMITMENTS = 1024

/** What apply() changed, in order: restored in reverse, the tree is as it was before. */
export type StateUndo = Array<{ path: Buffer, previous: Buffer | undefined }>

/**
 * The live state's commitment, kept beside the log's Merkle tree: a sparse Merkle tree with
 * one leaf per live policy, at SHA-256(policy id), whose value is the Merkle leaf hash of the
 * log entry that put it. So a state proof names the exact entry, whose inclusion proof links
 * it to the log. Puts set a leaf, tombstones remove one; a batch can be applied tentatively
 * (the master signs its root before the store commits; a replica checks the signed one) and
 * undone.
 */
export class StateRoot {
  private readonly built = new StateTree()
  /** seq → the commitment at that head, for the last RECENT_COMMITMENTS heads computed */
  private readonly recent = new Map<number, StateCommitment>()
  /**
   * Puts not in the tree yet (a snapshot's: see deferred()): policy ids, and their leaf hashes
   * packed 32 bytes each, not the entries, which an idle replica would otherwise keep whole
   */
  private pending: { ids: string[], leaves: Buffer } | undefined

  /**
   * The state root of a snapshot's entries, whose commitment at `seq` the caller has checked
   * already (each chunk's entries against its subtree hash, the chunks against the checkpoint's
   * state line): the tree is built on first use, so a node bootstrapped from a snapshot serves
   * reads without waiting for it (hashing 100,000 leaves and their branches again takes some
   * 0.6 s). Until then the commitment at `seq` is the checked one. A snapshot holds puts only;
   * anything else is applied at once.
   */
  static deferred (entries: readonly Entry[], leaves: readonly Buffer[], seq: number, checked: StateCommitment): StateRoot {
    const root = new StateRoot()
    if (entries.every(entry => entry.op === 'put')) {
      root.pending = { ids: entries.map(entry => String(policyBody(entry.policy).id)), leaves: Buffer.concat(leaves) }
    } else {
      root.apply(entries, leaves)
    }
    root.recent.set(seq, checked)
    return root
  }

  /** The tree, with any pending puts set first. */
  private get tree (): StateTree {
    if (this.pending !== undefined) {
      const { ids, leaves } = this.pending
      this.pending = undefined
      ids.forEach((id, i) => { this.built.set(statePath(id), leaves.subarray(STATE_HASH_SIZE * i, STATE_HASH_SIZE * (i + 1))) })
    }
    return this.built
  }

  get size (): number { return this.pending !== undefined ? this.pending.ids.length : this.tree.size }

  /** Whether the tree has been built (false while a snapshot's waits for its first use). */
  get materialized (): boolean { return this.pending === undefined }

  /** Applies the entries (their leaf hashes in `leaves`, same order); answers how to undo it. */
  apply (entries: readonly Entry[], leaves: readonly Buffer[]): StateUndo {
    const undo: StateUndo = []
    const tree = this.tree
    entries.forEach((entry, i) => {
      const body = policyBody(entry.policy)
      const path = statePath(String(entry.op === 'put' ? body.id : body.policy_id))
      const previous = tree.get(path)
      if (entry.op === 'put') {
        undo.push({ path, previous })
        tree.set(path, leaves[i])
      } else if (previous !== undefined) {
        undo.push({ path, previous })
        tree.delete(path)
      }
    })
    return undo
  }

  revert (undo: StateUndo): void {
    for (let i = undo.length - 1; i >= 0; i--) {
      const { path, previous } = undo[i]
      if (previous === undefined) this.tree.delete(path)
      else this.tree.set(path, previous)
    }
  }

  /** The commitment now; `seq` (the head it is at) keeps it for commitmentAt(). */
  commitment (seq?: number): StateCommitment {
    const commitment = { size: this.tree.size, root: this.tree.root().toString('hex') }
    if (seq !== undefined) {
      this.recent.delete(seq)
      this.recent.set(seq, commitment)
      if (this.recent.size > RECENT_COMMITMENTS) this.recent.delete(this.recent.keys().next().value!)
    }
    return commitment
  }

  /** The commitment at head `seq`, if it was computed recently. */
  commitmentAt (seq: number): StateCommitment | undefined {
    return this.recent.get(seq)
  }

  /** The proof that `id` is live with `valueHash` as its value, or that it is absent. */
  prove (id: string): ReturnType<StateTree['prove']> {
    return this.tree.prove(statePath(id))
  }

  /** The value (the putting entry's leaf hash) at `id`, when live. */
  valueOf (id: string): Buffer | undefined {
    return this.tree.get(statePath(id))
  }
}
