import t from 'tap'
import { randomBytes } from 'node:crypto'
import { lpStream } from '@libp2p/utils'
import { SyncProtocol, SYNC_PROTOCOL, encodeResponse } from '../src/ledger/sync/index.js'
import { chainEntries, type Entry } from '../src/ledger/entry.js'
import { signHead, type SignedHead } from '../src/ledger/head.js'
import { silentLogger } from '../src/node/logger.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { preparePolicy } from '../src/policies/prepare.js'
import { ledgerPeer, insertProbes } from './helpers/libp2p.js'

const log = silentLogger()

t.test('catch-up in several responses, relay, watch, and tampering rejected', async t => {
  const master = await ledgerPeer(t, { master: true })
  const masterSync = new SyncProtocol({ libp2p: master.host.libp2p, ledger: master.ledger, log })
  await masterSync.start()
  t.teardown(() => masterSync.stop())
  await insertProbes(master.ledger, 1000)

  const replica = await ledgerPeer(t)
  const replicaSync = new SyncProtocol({ libp2p: replica.host.libp2p, ledger: replica.ledger, log }, { maxEntriesPerResponse: 300 })
  await replicaSync.start()
  t.teardown(() => replicaSync.stop())

  const first = await replicaSync.pull(master.address)
  t.equal(first.applied, 1000)
  t.ok(first.requests >= 4, `caught up in ${first.requests} requests of at most 300 entries`)
  t.same(replica.ledger.head, master.ledger.head)
  t.equal(replica.ledger.masterKey, master.signer.publicKey, 'the master key is pinned from the first signed head')

  // A second replica syncs from the first (a relay): the data stays verifiable.
  const relayed = await ledgerPeer(t)
  const relayedSync = new SyncProtocol({ libp2p: relayed.host.libp2p, ledger: relayed.ledger, log })
  const viaRelay = await relayedSync.pull(replica.address)
  t.equal(viaRelay.applied, 1000)
  t.same(relayed.ledger.head, master.ledger.head)

  // Watch: a new insert on the master arrives without a pull.
  const applied: number[] = []
  const watch = replicaSync.watch(master.address, { onApplied: (n) => { applied.push(n) }, onClose: () => {} })
  t.teardown(() => { watch.close() })
  await new Promise(resolve => setTimeout(resolve, 300))
  await insertProbes(master.ledger, 1, 'watched')
  for (let i = 0; i < 50 && replica.ledger.head.seq < master.ledger.head.seq; i++) await new Promise(resolve => setTimeout(resolve, 100))
  t.same(replica.ledger.head, master.ledger.head, 'pushed to the watching replica')
  t.ok(applied.includes(1))
  watch.close()

  // The master moves on by two entries; a malicious peer serves altered versions of them.
  await insertProbes(master.ledger, 2, 'next')
  const honest = await master.ledger.store.range(replica.ledger.head.seq + 1, 10)
  const head = master.ledger.signedHead!
  const valid = replica.ledger.head
  const evil = await ledgerPeer(t)
  let serve: { entries: Entry[], head: SignedHead } = { entries: honest, head }
  await evil.host.libp2p.handle(SYNC_PROTOCOL, async (stream) => {
    const lp = lpStream(stream)
    await lp.read()
    await lp.write(encodeResponse({ entries: serve.entries, head: serve.head, more: false }))
    await stream.close()
  })
  const forger = new Ed25519Signer(randomBytes(32))
  const flipped = structuredClone(honest)
  flipped[0].policy.probe.name = 'tampered'
  const forkEntries = chainEntries(valid, honest.map(e => ({ op: e.op, policy: { probe: { ...e.policy.probe, name: 'fork' } } })))
  // Even a head signed by the master key does not make an unauthorized entry acceptable.
  const rogue = chainEntries(valid, [{ op: 'put', policy: preparePolicy({ assignment: { profile: 'p1', worker: 'w1' } }, forger) }])
  const cases: Array<[string, { entries: Entry[], head: SignedHead }, RegExp]> = [
    ['an assignment written by a key that is not the master', { entries: rogue, head: signHead(rogue[0], master.signer) }, /entry \d+: key .* may not write assignment policies/],
    ['a flipped byte in a policy', { entries: flipped, head }, /hash does not match/],
    ['a forged head signature', { entries: honest, head: signHead(head, forger) }, /not signed by the trusted master key/],
    ['a reordered batch', { entries: [honest[1], honest[0]], head }, /does not follow/],
    ['a dropped entry', { entries: [honest[1]], head }, /does not follow/],
    ['a replayed entry', { entries: [honest[0], honest[0], honest[1]], head }, /does not follow/],
    ['a stale fork signed by another key', { entries: forkEntries, head: signHead(forkEntries[1], forger) }, /not signed by the trusted master key/]
  ]
  for (const [name, variant, message] of cases) {
    serve = variant
    const before = replicaSync.stats.rejected
    await t.rejects(replicaSync.pull(evil.address), { message }, name)
    t.same(replica.ledger.head, valid, `${name}: the replica stays at its last valid head`)
    t.equal(replicaSync.stats.rejected, before + 1, `${name}: counted as rejected`)
  }
  const healed = await replicaSync.pull(master.address)
  t.equal(healed.applied, 2, 'the replica still syncs from an honest source')
  t.same(replica.ledger.head, master.ledger.head)

  // An incremental pull moves a small fraction of what the full catch-up did.
  const bytesBefore = replicaSync.stats.bytesIn
  await insertProbes(master.ledger, 1, 'small')
  await replicaSync.pull(master.address)
  const delta = replicaSync.stats.bytesIn - bytesBefore
  t.ok(delta * 100 < first.bytesReceived, `one entry: ${delta} bytes, full catch-up: ${first.bytesReceived} bytes`)
})

t.test('a replica that diverged rewinds to the last matching seq and re-syncs', async t => {
  const master = await ledgerPeer(t, { master: true })
  const masterSync = new SyncProtocol({ libp2p: master.host.libp2p, ledger: master.ledger, log })
  await masterSync.start()
  t.teardown(() => masterSync.stop())
  await insertProbes(master.ledger, 5)
  const replica = await ledgerPeer(t)
  const replicaSync = new SyncProtocol({ libp2p: replica.host.libp2p, ledger: replica.ledger, log })
  await replicaSync.pull(master.address)

  // Write a different seq 6 and 7 into the replica's store (signed by the master key, as if
  // the master had lost them in a crash), then let the master order other entries there.
  const fork = chainEntries(replica.ledger.head, [
    { op: 'put', policy: (await master.ledger.store.range(1, 1))[0].policy },
    { op: 'put', policy: (await master.ledger.store.range(2, 1))[0].policy }
  ])
  await replica.ledger.store.append(fork, signHead(fork[1], master.signer))
  await replica.ledger.rewind(7)
  t.equal(replica.ledger.head.seq, 7)
  await insertProbes(master.ledger, 3, 'after')

  const result = await replicaSync.pull(master.address)
  t.same(result.recovered, { from: 7, to: 5 }, 'rewound to seq 5, the last seq both agree on')
  t.same(replica.ledger.head, master.ledger.head)
})
