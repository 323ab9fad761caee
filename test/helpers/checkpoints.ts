import { type Entry, entryLeafHash } from '../../src/ledger/entry.js'
import { type Head, type SignedHead, logOrigin, signHead } from '../../src/ledger/head.js'
import type { Ledger } from '../../src/ledger/ledger.js'
import type { SignCommit } from '../../src/ledger/store.js'
import { MerkleTree } from '../../src/ledger/tlog/merkle-tree.js'
import type { Signer } from '../../src/policies/keys.js'

/**
 * A store.commit() signer for tests that write a store directly: it keeps the Merkle tree of
 * what it signed (cut back to where each batch starts), so its heads are the checkpoints a
 * ledger opened on that store verifies. Origin: the network of `rootKey` (the signer's own).
 */
export function checkpointSigner (signer: Signer, rootKey = signer.publicKey): SignCommit {
  const tree = new MerkleTree()
  return (head: Head, entries: readonly Entry[] = []): SignedHead => {
    // no entries: a head at a size this signer has seen (a test re-signing an earlier head)
    if (entries.length === 0) return signHead({ ...head, root: tree.root(Math.min(head.seq, tree.size)).toString('hex') }, signer, logOrigin(rootKey))
    tree.truncate(entries[0].seq - 1)
    for (const entry of entries) tree.appendLeafHash(entryLeafHash(entry))
    return signHead({ ...head, root: tree.root().toString('hex') }, signer, logOrigin(rootKey))
  }
}

/**
 * A head signed by `signer` over `entries` (a run that continues `ledger`'s log at
 * entries[0].seq - 1, perhaps a fork of it), with the root that run leads to: what a master
 * (honest or made to lie) would serve with it.
 */
export function signedHeadFor (ledger: Ledger, entries: readonly Entry[], signer: Signer): SignedHead {
  const last = entries[entries.length - 1]
  const root = ledger.tree.rootWith(entries.map(entryLeafHash), entries[0].seq - 1)
  return signHead({ seq: last.seq, hash: last.hash, root: root.toString('hex') }, signer, logOrigin(ledger.masterKey ?? signer.publicKey))
}
