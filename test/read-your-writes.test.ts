import t, { type Test } from 'tap'
import { NodeMetrics } from '../src/services/metrics.js'
import type { ReplicaSync } from '../src/services/replica-sync.js'
import { WritePath } from '../src/services/write-path.js'
import { policyId } from '../src/policies/policy.js'
import { ledgerPeer, probe, startInsert, type LedgerPeer } from './helpers/libp2p.js'

/**
 * A replica's insert answered by the master carries the entry's chain link and the master's
 * signed head: the replica applies its own entry at once (read-your-writes) without waiting
 * for sync to bring it. No sync protocol runs here, so only the answer can put the entry on
 * the replica.
 */

/** A write path on `replica` that sends its inserts to `master`; no sync runs between them. */
async function writePathTo (t: Test, replica: LedgerPeer, master: LedgerPeer): Promise<WritePath> {
  const insert = await startInsert(t, replica)
  const port = /\/tcp\/(\d+)/.exec(master.address.toString())?.[1]
  t.ok(port, 'the master listens on a TCP port')
  // what the write path reads of the node's Blockchain Sync: that it keeps a replica
  const sync = { keepsReplica: true } as unknown as ReplicaSync
  return new WritePath({
    ledger: () => replica.ledger,
    signer: () => replica.signer,
    sync: () => sync,
    insert: () => insert,
    masterConns: [`127.0.0.1:${port}`],
    metrics: new NodeMetrics({ headSeq: () => replica.ledger.head.seq, lag: () => undefined, sync: () => undefined }, { node: 'replica', role: 'member' }),
    log: replica.log
  })
}

t.test('a replica holds its own insert when the master answers, with no sync running', async t => {
  const master = await ledgerPeer(t, { master: true })
  await startInsert(t, master)
  const replica = await ledgerPeer(t)
  const writePath = await writePathTo(t, replica, master)

  for (let i = 1; i <= 3; i++) {
    const policy = probe(`ryw-${i}`)
    const result = await writePath.insert({ op: 'put', policy }, { local: false })
    t.same(result, { id: policyId(policy), seq: i, ledger: 'global' })
    t.same(replica.ledger.head, master.ledger.head, `after insert ${i} the replica's head is the master's`)
    t.same(replica.ledger.state.get(policyId(policy)), policy, 'and it holds the policy')
  }
  t.equal(replica.ledger.masterKey, master.signer.publicKey, 'the head it applied pinned the master key')
  t.same(replica.ledger.signedHead, master.ledger.signedHead, 'its signed head is the master\'s')
})

t.test('a replica that is behind does not apply an answered entry that does not continue its head', async t => {
  const master = await ledgerPeer(t, { master: true })
  await startInsert(t, master)
  // someone else's insert: the master is one entry ahead of the replica
  await master.ledger.submit({ op: 'put', policy: probe('elsewhere') })
  const replica = await ledgerPeer(t)
  const writePath = await writePathTo(t, replica, master)
  const policy = probe('ryw-behind')
  const result = await writePath.insert({ op: 'put', policy }, { local: false })
  t.equal(result.seq, 2, 'the master ordered it after the other insert')
  t.equal(replica.ledger.head.seq, 0, 'the replica applied nothing: the entry does not follow its head (sync brings both)')
  t.notOk(replica.ledger.state.has(policyId(policy)))
})

t.test('a sync batch overlapping entries the replica already applied (from an answer) applies only what is new', async t => {
  const master = await ledgerPeer(t, { master: true })
  const replica = await ledgerPeer(t)
  await master.ledger.submit({ op: 'put', policy: probe('overlap-1') })
  const head1 = master.ledger.signedHead!
  await master.ledger.submit({ op: 'put', policy: probe('overlap-2') })
  const head2 = master.ledger.signedHead!
  const [e1, e2] = await master.ledger.store.range(1, 2)
  await replica.ledger.applyBatch([e1], head1)
  t.equal(replica.ledger.head.seq, 1)
  await replica.ledger.applyBatch([e1, e2], head2)
  t.same(replica.ledger.head, master.ledger.head, 'the batch from seq 1 moved the replica to seq 2 without refusing entry 1')
  await replica.ledger.applyBatch([e1], head1)
  t.same(replica.ledger.signedHead, head2, 'a batch wholly behind the head changes nothing (its older head is not taken)')
  const other = await ledgerPeer(t)
  await other.ledger.applyBatch([e1], head1)
  const forged = { ...e1, hash: e2.hash }
  await t.rejects(other.ledger.applyBatch([forged, e2], head2), { code: 'chain_broken' }, 'an overlapping entry that is not the one held is still refused')
  t.equal(other.ledger.head.seq, 1, 'and nothing of that batch is applied')
})
