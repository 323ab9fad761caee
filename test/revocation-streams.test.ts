import t from 'tap'
import { preparePolicy } from '../src/policies/prepare.js'
import { SyncProtocol } from '../src/protocols/sync/index.js'
import { insertProbes, ledgerPeer, probe, startSync, until } from './helpers/libp2p.js'

// A revocation cuts every stream of the revoked key at once, on the master and on a relay:
// admission is not only checked when a sync request arrives but before every run a watch
// pushes, so a node revoked while it watches gets nothing appended after its revocation.

const revoke = (key: string, signer: Parameters<typeof preparePolicy>[1]) => ({ op: 'put' as const, policy: preparePolicy({ revocation: { key, reason: 'test' } }, signer) })

t.test('a watch open when its key is revoked is cut at the revocation, and later requests are refused', async t => {
  const master = await ledgerPeer(t, { master: true })
  await startSync(t, master, { watchKeepaliveMs: 200 })
  await insertProbes(master.ledger, 5)
  const member = await ledgerPeer(t)
  const memberSync = await startSync(t, member)
  let closed: { err?: Error } | undefined
  const watch = memberSync.watch(master.address, { onApplied: () => {}, onClose: (err) => { closed = { err } } })
  t.teardown(() => { watch.close() })
  await master.ledger.submit({ op: 'put', policy: probe('while-watching') })
  t.ok(await until(() => member.ledger.head.seq === master.ledger.head.seq), 'the member follows the master on its watch')

  const revocation = await master.ledger.submit(revoke(member.signer.publicKey, master.signer))
  await insertProbes(master.ledger, 5, 'after-revocation')
  t.ok(await until(() => closed !== undefined), 'the watch is closed')
  t.match(closed?.err?.message, /not admitted to this network \(never admitted, or revoked\)/, `with the reason: ${closed?.err?.message}`)
  t.ok(member.ledger.head.seq < revocation.seq, `nothing from the revocation on reached the member (its head ${member.ledger.head.seq}, the revocation ${revocation.seq})`)
  await t.rejects(memberSync.pull(master.address), { code: 'unauthorized' }, 'a new request is refused too')
  t.ok(member.ledger.head.seq < revocation.seq, 'and still nothing reached it')
})

t.test('a relay cuts a revoked client\'s watch when the revocation reaches the relay', async t => {
  const master = await ledgerPeer(t, { master: true })
  await startSync(t, master)
  const relay = await ledgerPeer(t)
  const relaySync = await startSync(t, relay, { watchKeepaliveMs: 200 })
  const client = await ledgerPeer(t)
  const clientSync = await startSync(t, client)
  await insertProbes(master.ledger, 3)
  await relaySync.pull(master.address)
  let closed: { err?: Error } | undefined
  const watch = clientSync.watch(relay.address, { onApplied: () => {}, onClose: (err) => { closed = { err } } })
  t.teardown(() => { watch.close() })
  t.ok(await until(() => client.ledger.head.seq === 3), 'the client follows the relay')

  const revocation = await master.ledger.submit(revoke(client.signer.publicKey, master.signer))
  await insertProbes(master.ledger, 3, 'after-revocation')
  await relaySync.pull(master.address)
  t.equal(relay.ledger.head.seq, master.ledger.head.seq, 'the relay holds the revocation')
  t.ok(await until(() => closed !== undefined), 'the relay closed the client\'s watch')
  t.match(closed?.err?.message, /revoked/)
  t.ok(client.ledger.head.seq < revocation.seq, `the client got nothing from the revocation on (its head ${client.ledger.head.seq})`)
})

t.test('a node that may not serve (its own key revoked, or refused by its source) serves no one', async t => {
  const master = await ledgerPeer(t, { master: true })
  await startSync(t, master)
  await insertProbes(master.ledger, 3)
  const relay = await ledgerPeer(t)
  let refusal: string | undefined
  const relaySync = new SyncProtocol({ libp2p: relay.libp2p, ledger: relay.ledger, log: relay.log, servingRefused: () => refusal })
  await relaySync.start()
  t.teardown(async () => { await relaySync.stop() })
  const client = await ledgerPeer(t)
  const clientSync = await startSync(t, client)
  await relaySync.pull(master.address)
  await clientSync.pull(relay.address)
  t.equal(client.ledger.head.seq, 3, 'a relay in good standing serves')

  refusal = 'its source refused it: key is not admitted'
  await insertProbes(master.ledger, 2, 'later')
  await relaySync.pull(master.address)
  await t.rejects(clientSync.pull(relay.address), { code: 'unauthorized', message: /this node serves no one: its source refused it/ }, 'refused by its source, the relay serves no one')
  refusal = undefined

  // the relay's own state revokes it (it synced the revocation before being cut off)
  await master.ledger.submit(revoke(relay.signer.publicKey, master.signer))
  const relayRecord = await master.ledger.store.range(master.ledger.head.seq, 1)
  await relay.ledger.applyBatch(relayRecord, master.ledger.signedHead!)
  t.ok(relay.ledger.isRevoked(relay.signer.publicKey), 'the relay holds its own revocation')
  await t.rejects(clientSync.pull(relay.address), { code: 'unauthorized', message: /this node's own key .* is revoked/ }, 'and serves no one')
  t.equal(client.ledger.head.seq, 3, 'the client got nothing more from it')
})
