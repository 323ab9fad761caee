import { LedgerMeshError } from '../base/errors.js'
import { type Entry, GENESIS_HASH, entryLeafHash, verifyChainLinks } from './entry.js'
import { MerkleTree } from './tlog/merkle-tree.js'
import { type Head, type SignedHead, type StateCommitment, verifyHead } from './head.js'
import { StateRoot } from './state-root.js'
import { LedgerState } from './state.js'
import { trustedMasterKeys } from './ledger-rules.js'
import type { LedgerStore, StoreBase } from './store.js'

/** How many entries one store read brings while folding the log. */
const FOLD_PAGE = 5000
/** How many times a fold reads on when a shared store's log grew while it was read. */
const MAX_GROWTH_READS = 20

/**
 * Reads a store's whole log into a new state, verifying every chain link, that the log ends
 * at the store's head, and that the stored signed head is that head's and signed by
 * `trustedMasterKey` (when known). A log that does not verify is reported, never half-loaded.
 */
/** A ledger's view of its log, folded: what Ledger swaps in whole. */
export interface FoldedLog { state: LedgerState, head: Head, signed: SignedHead | undefined, tree: MerkleTree, stateRoot: StateRoot, base: StoreBase | undefined }

export async function foldLog (store: LedgerStore, trustedMasterKey: string | undefined): Promise<FoldedLog> {
  const state = new LedgerState()
  const stateRoot = new StateRoot()
  const base = await store.base()
  let tree = new MerkleTree()
  let head: Head = { seq: 0, hash: GENESIS_HASH }
  if (base !== undefined) {
    tree = await foldBase(store, base, state, stateRoot)
    head = { seq: base.seq, hash: base.hash }
  }
  let stored: Head
  let signed: SignedHead | undefined
  // Another master may write to a shared database while this one reads it: a head (or signed
  // head) read past the end of the log read so far means the log grew, so read on (bounded).
  for (let attempt = 0; ; attempt++) {
    for (;;) {
      const page = await store.range(head.seq + 1, FOLD_PAGE)
      if (page.length === 0) break
      const broken = verifyChainLinks(head, page)
      if (broken !== undefined) {
        throw new LedgerMeshError('chain_broken', `ledger store ${store.location} does not verify: ${broken}`, { seq: head.seq + 1 })
      }
      const leaves = page.map(entryLeafHash)
      page.forEach((entry, i) => {
        state.apply(entry)
        tree.appendLeafHash(leaves[i])
      })
      // hashed once, at the end (the state tree hashes lazily)
      stateRoot.apply(page, leaves)
      const last = page[page.length - 1]
      head = { seq: last.seq, hash: last.hash }
    }
    stored = await store.head()
    signed = await store.signedHead()
    const grew = stored.seq > head.seq || (signed !== undefined && signed.seq > head.seq)
    if (!grew || attempt >= MAX_GROWTH_READS) break
  }
  if (stored.seq !== head.seq || stored.hash !== head.hash) {
    throw new LedgerMeshError('chain_broken', `ledger store ${store.location} says its head is seq ${stored.seq}, but its log ends at seq ${head.seq}`)
  }
  // a head stored before heads were checkpoints (no Merkle root) is not used: the master signs
  // a new one, a replica gets one with its next sync
  if (signed !== undefined && (typeof signed.root !== 'string' || typeof signed.origin !== 'string')) signed = undefined
  if (signed !== undefined) {
    if (signed.seq !== head.seq || signed.hash !== head.hash) {
      throw new LedgerMeshError('chain_broken', `ledger store ${store.location}: signed head seq ${signed.seq} does not match the log's head seq ${head.seq}`)
    }
    // signed by the first master's key, or by another master's key the ledger declares
    if (trustedMasterKey !== undefined && (!trustedMasterKeys(state, trustedMasterKey).has(signed.publicKey) || !verifyHead(signed, signed.publicKey))) {
      throw new LedgerMeshError('chain_broken', `ledger store ${store.location}: the signed head at seq ${signed.seq} is not signed by the trusted master key`)
    }
    if (signed.root !== tree.root().toString('hex')) {
      throw new LedgerMeshError('chain_broken', `ledger store ${store.location}: the log's Merkle root at seq ${signed.seq} is not the one its signed head names`)
    }
    checkStateLine(signed, stateRoot.commitment(signed.seq), `ledger store ${store.location}`)
  }
  return { state, head, signed, tree, stateRoot, base }
}

/**
 * The base a store's log begins at (a snapshot it started from, a compaction point): its
 * entries (each live at the base) into the state, checked against the base's state commitment;
 * the log tree from the base's compact range and the leaf hashes kept after it, each kept
 * entry checked against its leaf.
 */
async function foldBase (store: LedgerStore, base: StoreBase, state: LedgerState, stateRoot: StateRoot): Promise<MerkleTree> {
  const frontierSize = base.frontierSize ?? base.seq
  const tree = baseTree(base)
  const leaves = frontierSize < base.seq ? await store.leafHashes() : Buffer.alloc(0)
  for (let at = 0; at < leaves.length; at += 32) tree.appendLeafHash(leaves.subarray(at, at + 32))
  if (tree.size !== base.seq) throw new LedgerMeshError('chain_broken', `ledger store ${store.location}: it keeps the leaf hashes of ${tree.size - frontierSize} entries after seq ${frontierSize}, but its base is seq ${base.seq}`)
  for (let from = 1; from <= base.seq;) {
    const page = (await store.range(from, FOLD_PAGE)).filter(entry => entry.seq <= base.seq)
    if (page.length === 0) break
    const hashes = page.map(entryLeafHash)
    page.forEach((entry, i) => {
      if (entry.seq > frontierSize && !hashes[i].equals(tree.leafHash(entry.seq - 1))) {
        throw new LedgerMeshError('chain_broken', `ledger store ${store.location}: entry ${entry.seq} is not the one the kept leaf hash names`)
      }
      state.apply(entry)
    })
    stateRoot.apply(page, hashes)
    from = page[page.length - 1].seq + 1
  }
  checkBaseState(stateRoot, base, `ledger store ${store.location}`)
  return tree
}

/** The log tree from a base's compact range (at `frontierSize`, its seq by default), before any kept leaf. */
function baseTree (base: StoreBase): MerkleTree {
  return MerkleTree.fromCompactRange(base.frontierSize ?? base.seq, base.frontier.map(h => Buffer.from(h, 'hex')))
}

function checkBaseState (stateRoot: StateRoot, base: StoreBase, where: string): void {
  const computed = stateRoot.commitment(base.seq)
  if (computed.root !== base.state.root || computed.size !== base.state.size) {
    throw new LedgerMeshError('chain_broken', `${where}: the entries at its base (seq ${base.seq}) hold ${computed.size} policies with state root ${computed.root.slice(0, 12)}…, not the ${base.state.size} with ${base.state.root.slice(0, 12)}… they were checked against`)
  }
}

/**
 * A snapshot's fold from its entries as they were checked (sorted by seq; nothing read back
 * from the store): `state` is the live state they make (the checks built it), the state tree
 * (whose root the chunk checks proved to be the base's commitment) is built on first use, and
 * the log tree grows from its compact range.
 */
export function foldSnapshot (base: StoreBase, entries: readonly Entry[], state: LedgerState, signed: SignedHead): FoldedLog {
  if (entries.length !== base.state.size) {
    throw new LedgerMeshError('chain_broken', `snapshot: ${entries.length} entries for the ${base.state.size} policies of its state at seq ${base.seq}`)
  }
  const stateRoot = StateRoot.deferred(entries, entries.map(entryLeafHash), base.seq, base.state)
  const tree = baseTree(base)
  return { state, head: { seq: base.seq, hash: base.hash }, signed, tree, stateRoot, base }
}

/**
 * Throws chain_broken unless the signed head's state line (when it has one) is `computed`, the
 * state commitment its entries lead to. `where` names the log in the error.
 */
export function checkStateLine (head: SignedHead, computed: StateCommitment, where = 'sync batch rejected'): void {
  if (head.state === undefined || (head.state.root === computed.root && head.state.size === computed.size)) return
  throw new LedgerMeshError('chain_broken', `${where}: its entries lead to the state root ${computed.root.slice(0, 12)}… over ${computed.size} policies, but the signed head at seq ${head.seq} names ${head.state.root.slice(0, 12)}… over ${head.state.size}`)
}

/**
 * What a store holds past `from`: the entries up to its signed head, and that head. Another
 * master may commit while this reads (a shared database), so the signed head is read first and
 * the log up to it; a head that moved on meanwhile is simply a later read's. `continues` is
 * false when the store no longer holds `from` as a point of its chain (it must be folded again).
 */
export async function readPastHead (store: LedgerStore, from: Head): Promise<{ entries: Entry[], signed: SignedHead | undefined, continues: boolean }> {
  const signed = await store.signedHead()
  const target = signed ?? { ...(await store.head()), publicKey: undefined }
  if (target.seq < from.seq) return { entries: [], signed: undefined, continues: false }
  if (target.seq === from.seq) return { entries: [], signed: signed?.hash === from.hash ? signed : undefined, continues: target.hash === from.hash }
  const entries = await store.range(from.seq + 1, target.seq - from.seq)
  const continues = entries.length === target.seq - from.seq && verifyChainLinks(from, entries) === undefined && entries[entries.length - 1].hash === target.hash
  return continues ? { entries, signed, continues } : { entries: [], signed: undefined, continues: false }
}
