import t from 'tap'
import { GENESIS_HASH, chainEntries, entryLeafHash } from '../src/ledger/entry.js'
import { foldSnapshot } from '../src/ledger/fold.js'
import type { SignedHead } from '../src/ledger/head.js'
import { StateRoot } from '../src/ledger/state-root.js'
import { LedgerState } from '../src/ledger/state.js'
import { statePath } from '../src/ledger/state-tree/hashing.js'
import { checkStateProof } from '../src/ledger/state-tree/proof.js'
import { MerkleTree } from '../src/ledger/tlog/merkle-tree.js'

// A snapshot's state root is built on first use (StateRoot.deferred): the node serves before
// hashing the tree again, and nothing it answers differs from a tree built at once.

const entries = chainEntries({ seq: 0, hash: GENESIS_HASH }, Array.from({ length: 300 }, (_, i) => ({ op: 'put' as const, policy: { probe: { id: `p${i}`, name: `probe-${i}` } } })))
const leaves = entries.map(entryLeafHash)

function builtAtOnce (): StateRoot {
  const root = new StateRoot()
  root.apply(entries, leaves)
  return root
}

t.test('a deferred state root answers the checked commitment without building, then builds on first use to the same tree', async t => {
  const expected = builtAtOnce().commitment(300)
  const deferred = StateRoot.deferred(entries, leaves, 300, expected)
  t.equal(deferred.materialized, false, 'nothing built yet')
  t.equal(deferred.size, 300, 'its size is its entries\'')
  t.same(deferred.commitmentAt(300), expected, 'the checked commitment, for a witness asking about the snapshot\'s size')
  t.equal(deferred.materialized, false, 'still not built')
  t.same(deferred.valueOf('p7'), leaves[7], 'a lookup builds it and finds the entry\'s leaf hash')
  t.equal(deferred.materialized, true, 'built')
  t.same(deferred.commitment(300), expected, 'the same root as a tree built at once')
  t.equal(checkStateProof(Buffer.from(expected.root, 'hex'), statePath('p7'), leaves[7], deferred.prove('p7')), undefined, 'a proof of presence verifies against the checked root')
})

t.test('the first batch after a snapshot applies on top of its entries, and reverts back to them', async t => {
  const deferred = StateRoot.deferred(entries, leaves, 300, builtAtOnce().commitment())
  const next = chainEntries(entries[entries.length - 1], [{ op: 'put', policy: { probe: { id: 'p300', name: 'probe-300' } } }, { op: 'delete', policy: { delete: { policy_id: 'p0' } } }])
  const undo = deferred.apply(next, next.map(entryLeafHash))
  const reference = builtAtOnce()
  reference.apply(next, next.map(entryLeafHash))
  t.same(deferred.commitment(), reference.commitment(), 'the snapshot\'s leaves and the batch\'s, as one tree built from all of them')
  deferred.revert(undo)
  t.same(deferred.commitment(), builtAtOnce().commitment(), 'undone: the snapshot\'s tree again')
})

t.test('foldSnapshot refuses entries that are not as many as the state it was checked against', async t => {
  const state = new LedgerState()
  for (const entry of entries) state.apply(entry)
  const commitment = builtAtOnce().commitment()
  const tree = new MerkleTree()
  for (const leaf of leaves) tree.appendLeafHash(leaf)
  const base = { seq: 300, hash: entries[299].hash, frontier: tree.compactRange().map(h => h.toString('hex')), checkpoint: 'note', state: commitment }
  const signed = { seq: 300, hash: entries[299].hash } as SignedHead
  const folded = foldSnapshot(base, entries, state, signed)
  t.equal(folded.stateRoot.materialized, false, 'the state tree waits for its first use')
  t.equal(folded.tree.root().equals(tree.root()), true, 'the log tree grows from the compact range')
  const short = (): unknown => foldSnapshot(base, entries.slice(1), state, signed)
  t.throws(short, { code: 'chain_broken', message: /snapshot: 299 entries for the 300 policies of its state at seq 300/ }, 'one entry missing: chain_broken, naming both counts')
})

t.test('entries that are not all puts (no snapshot holds such) are applied at once', async t => {
  const withDelete = [...entries, ...chainEntries(entries[entries.length - 1], [{ op: 'delete', policy: { delete: { policy_id: 'p0' } } }])]
  const reference = new StateRoot()
  reference.apply(withDelete, withDelete.map(entryLeafHash))
  const deferred = StateRoot.deferred(withDelete, withDelete.map(entryLeafHash), 301, reference.commitment())
  t.equal(deferred.materialized, true, 'built at once')
  t.same(deferred.commitment(), reference.commitment(), 'the same tree')
  t.equal(deferred.size, 299, 'the deleted policy is not in it')
})
