import t from 'tap'
import { InsertProtocol } from '../src/protocols/insert/index.js'
import { trustedMasterCheck } from '../src/node/trusted-masters.js'
import { ledgerPeer, probe, startInsert, startSync } from './helpers/libp2p.js'

// Inserts (whose settings may be secret) and lease renewals go only to a peer whose
// noise-authenticated key is a master key the node's ledger trusts: another process answering
// at a master's address, or at one a redirect named, is refused before anything is sent.

t.test('an insert client refuses a peer whose key is not a trusted master\'s, and takes the real master', async t => {
  const master = await ledgerPeer(t, { master: true })
  await startSync(t, master)
  await startInsert(t, master)
  const impostor = await ledgerPeer(t, { master: true })
  await startInsert(t, impostor)
  const node = await ledgerPeer(t)
  const sync = await startSync(t, node)
  const client = new InsertProtocol({ libp2p: node.libp2p, ledger: node.ledger, log: node.log, checkPeer: trustedMasterCheck(() => node.ledger) })
  await client.start()
  t.teardown(async () => { await client.stop() })

  // before the node holds a signed head there is no key to check against (the first contact pins it, as for sync)
  t.ok((await client.submit(impostor.address, { op: 'put', policy: probe('before-pinning') })).seq > 0, 'not yet pinned: nothing to check against')

  await master.ledger.submit({ op: 'put', policy: probe('first') })
  await sync.pull(master.address)
  t.equal(node.ledger.masterKey, master.signer.publicKey, 'the node pinned the master\'s key')
  await t.rejects(client.submit(impostor.address, { op: 'put', policy: probe('secret-profile') }), { code: 'master_unreachable', message: /is refused: its key [0-9a-f]{64} is not a master key this node's ledger trusts/ }, 'another key at a master\'s address gets nothing')
  t.equal(impostor.ledger.state.findByName('probe', 'secret-profile'), undefined, 'the impostor received nothing')
  const accepted = await client.submit(master.address, { op: 'put', policy: probe('to-the-master') })
  t.ok(accepted.seq > 0, 'the real master takes it')
})
