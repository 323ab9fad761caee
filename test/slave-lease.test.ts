import t from 'tap'
import { ledgerPeer } from './helpers/libp2p.js'
import { preparePolicy } from '../src/policies/prepare.js'
import { Allocator } from '../src/services/allocation/index.js'
import { LeaseProtocol, decodeLeaseRequest, encodeLeaseRequest, type LeaseRequest } from '../src/protocols/lease/index.js'
import { LeaseRequestType } from '../src/protocols/lease/messages.js'

// Slaves hold leases like workers (role 'slave' on the lease protocol): the role on the wire,
// and the master's checks of a slave's renewal, looked up by role and name.

t.test('the lease request carries a role; absent or empty is a worker, anything else is refused', async t => {
  const base = { version: 1, worker: 'x', running: [], draining: false, boot: '', seq: 0 }
  t.equal(decodeLeaseRequest(encodeLeaseRequest({ ...base, role: 'slave' })).role, 'slave')
  t.equal(decodeLeaseRequest(encodeLeaseRequest({ ...base, role: 'worker' })).role, 'worker')
  t.equal(decodeLeaseRequest(encodeLeaseRequest(base as unknown as LeaseRequest)).role, 'worker', 'an older node sends no role: a worker')
  const odd = LeaseRequestType.encode(LeaseRequestType.fromObject({ ...base, role: 'master' })).finish()
  t.throws(() => decodeLeaseRequest(odd), { code: 'bad_message', message: /role "master" is not one of worker, slave/ })
})

t.test('the master renews a slave\'s lease by its slave declaration, kept apart from a worker of the same name', async t => {
  const master = await ledgerPeer(t, { master: true })
  const lease = new LeaseProtocol({ libp2p: master.libp2p, log: master.log })
  const allocator = new Allocator({ ledger: master.ledger, signer: master.signer, lease, log: master.log, ttlMs: 60_000, graceMs: 30_000 })
  await master.ledger.submit({ op: 'put', policy: preparePolicy({ slave: { name: 'n1', peer_id: 'slave-peer', slots: 2 } }, master.signer) })
  await master.ledger.submit({ op: 'put', policy: preparePolicy({ worker: { name: 'n1', peer_id: 'worker-peer', slave: 'n1', slots: 2 } }, master.signer) })
  await allocator.start()
  t.teardown(async () => { await allocator.stop() })
  const renew = async (role: 'worker' | 'slave', peer: string, running: string[] = []) =>
    await allocator.renewLease({ version: 1, worker: 'n1', running, draining: false, boot: `${role}-boot`, seq: Date.now(), role }, peer)

  await t.rejects(renew('slave', 'worker-peer'), { code: 'unauthorized', message: /not slave 'n1'/ }, 'the worker\'s peer is not the slave')
  await t.rejects(renew('worker', 'slave-peer'), { code: 'unauthorized', message: /not worker 'n1'/ })
  await renew('slave', 'slave-peer', ['a'.repeat(64)])
  const summary = allocator.summary()
  t.match(summary.slave_leases.n1, { state: 'live', running: 1 }, 'the slave\'s lease is live')
  t.not(summary.leases.n1?.state, 'live', 'the worker of the same name holds no lease yet')
  await renew('worker', 'worker-peer')
  t.match(allocator.summary().leases.n1, { state: 'live', running: 0 })
  t.match(allocator.summary().slave_leases.n1, { state: 'live', running: 1 }, 'each keeps its own')
  await t.rejects(allocator.renewLease({ version: 1, worker: 'nobody', running: [], draining: false, boot: '', seq: 0, role: 'slave' }, 'p'), { code: 'not_found', message: /no slave 'nobody'/ })
})
