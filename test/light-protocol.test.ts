import t from 'tap'
import { ledgerPeer, probe } from './helpers/libp2p.js'
import { lightNeeds, verifyLightAnswer } from '../src/ledger/light.js'
import { LedgerState } from '../src/ledger/state.js'
import { preparePolicy } from '../src/policies/prepare.js'
import { LightProtocol } from '../src/protocols/light/index.js'
import { Gatekeeper } from '../src/services/admission/index.js'

// /ledgermesh/light/1.0.0 over real libp2p: a master serves it from its ledger, a client with
// no ledger fetches. Admission gates it as it gates sync; bad requests are refused by name.

t.test('the light protocol: admitted keys only, bounded requests, answers that verify', async t => {
  const master = await ledgerPeer(t, { master: true })
  const client = await ledgerPeer(t)
  const gatekeeper = new Gatekeeper({ ledger: master.ledger, signer: master.signer, log: master.log })
  await gatekeeper.ensureMode('required')
  await master.ledger.submit({ op: 'put', policy: preparePolicy({ master: { name: 'm', ip: '127.0.0.1', port: 1 } }, master.signer) })
  await master.ledger.submit({ op: 'put', policy: preparePolicy({ slave: { name: 's1', ip: '127.0.0.1', port: 2 } }, master.signer) })
  await master.ledger.submit({ op: 'put', policy: preparePolicy({ worker: { name: 'w1', slave: 's1', slots: 1 } }, master.signer) })
  for (let i = 0; i < 10; i++) await master.ledger.submit({ op: 'put', policy: probe(`p${i}`, master.signer) })
  let served = 0
  const server = new LightProtocol({ libp2p: master.libp2p, ledger: master.ledger, log: master.log, onServed: () => { served++ } })
  await server.start()
  t.teardown(async () => { await server.stop() })
  const fetcher = new LightProtocol({ libp2p: client.libp2p, log: client.log })
  await fetcher.start()
  t.teardown(async () => { await fetcher.stop() })

  await t.rejects(fetcher.fetch(master.address, { worker: 'w1' }), { code: 'unauthorized', message: /is not admitted to this network/ }, 'a key not admitted learns nothing')
  await gatekeeper.admit(client.signer.publicKey, { via: 'admin' })
  const answer = await fetcher.fetch(master.address, { worker: 'w1', ids: ['0'.repeat(64)] })
  t.same(answer.missing, ['0'.repeat(64)], 'an id the server holds no live policy of is missing')
  const verified = verifyLightAnswer(answer, { rootKey: master.signer.publicKey, held: new LedgerState() })
  t.same(verified.policies.map(p => String(Object.values(p.policy)[0].id)).sort(), lightNeeds(master.ledger.state, 'w1'), 'the worker\'s needs, each proven')
  t.equal(verified.head.seq, master.ledger.head.seq, 'at the master\'s checkpoint')
  await t.rejects(fetcher.fetch(master.address, { ids: Array.from({ length: 4097 }, (_v, i) => i.toString(16).padStart(64, '0')) }), { code: 'bad_message', message: /more than 4096 policy ids/ }, 'too many ids')
  await t.rejects(fetcher.fetch(master.address, {}), { code: 'bad_message', message: /asks for nothing/ }, 'an empty request')
  t.equal(client.ledger.head.seq, 0, 'the client\'s own ledger stays empty: a light fetch applies nothing')
  t.ok(served >= 2, 'the server counted what it served')
  // the client's protocol was started without a ledger (a light node's): it serves nothing
  await t.rejects(server.fetch(client.address, { worker: 'w1' }), { code: 'master_unreachable' }, 'a node without a ledger does not serve it')
})
