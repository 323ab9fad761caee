import t from 'tap'
import { ledgerPeer } from './helpers/libp2p.js'
import { policyBody, policyId, type Policy } from '../src/policies/policy.js'
import { preparePolicy, prepareTombstone } from '../src/policies/prepare.js'
import { Allocator } from '../src/services/allocation/index.js'
import { LeaseProtocol, type LeaseRequest } from '../src/protocols/lease/index.js'

// An assignment that goes away for a reason its worker hears only through the ledger (the
// profile replaced, the worker's declaration deleted): the worker may have started the
// profile after its last renewal, so no renewal listed it yet. The master places the profile
// elsewhere only once that worker has renewed at a head past the delete without it, or its
// lease has lapsed: never while it may still run it.

async function allocation (t: Parameters<typeof ledgerPeer>[0], ttlMs: number) {
  const master = await ledgerPeer(t, { master: true })
  const lease = new LeaseProtocol({ libp2p: master.libp2p, log: master.log })
  const allocator = new Allocator({ ledger: master.ledger, signer: master.signer, lease, log: master.log, ttlMs, graceMs: ttlMs })
  const put = async (policy: Policy): Promise<Policy> => (await master.ledger.submit({ op: 'put', policy: preparePolicy(policy, master.signer) })).policy
  await put({ slave: { name: 's', slots: 4, peer_id: 's-peer' } })
  await put({ subaccount: { name: 'acme', account: 'acme', slave: 's' } })
  for (const w of ['w1', 'w2']) await put({ worker: { name: w, slave: 's', slots: 1, profile_kinds: ['k'], peer_id: `${w}-peer` } })
  await allocator.start()
  t.teardown(async () => { await allocator.stop() })
  let seq = 0
  const renew = async (node: string, running: string[], head = master.ledger.head.seq, role: 'worker' | 'slave' = 'worker'): Promise<void> => {
    await allocator.renewLease({ version: 1, worker: node, running, draining: false, boot: `${node}-boot`, seq: ++seq, role, head } as LeaseRequest, `${node}-peer`)
    await allocator.settled()
    // the placement the allocator follows change by change reads what a full round over the ledger reads
    t.same(allocator.placementDrift(), [], `after ${node}'s renewal, placement followed change by change is the full round's`)
  }
  const placedOn = (profile: string): string | undefined => {
    const found = [...master.ledger.state.policiesOfType('assignment')].map(policyBody).find(b => b.profile === profile)
    return found === undefined ? undefined : String(found.worker)
  }
  await renew('s', [], master.ledger.head.seq, 'slave')
  await renew('w1', [])
  await renew('w2', [])
  return { master, allocator, put, renew, placedOn }
}

t.test('a replaced profile: the new one waits until the old holder renews at a head past the delete without the old one', async t => {
  const { master, allocator, put, renew, placedOn } = await allocation(t, 60_000)
  const first = await put({ profile: { name: 'p', kind: 'k', subaccount: 'acme', version: 1 } })
  await allocator.settled()
  const holder = placedOn('p')!
  t.ok(holder === 'w1' || holder === 'w2', `p placed on ${holder}`)
  const oldId = policyId(first)
  const headBefore = master.ledger.head.seq
  // the holder started p after its last renewal; p is replaced before it renews again
  await master.ledger.submit({ op: 'delete', policy: prepareTombstone(oldId, master.signer) })
  await put({ profile: { name: 'p', kind: 'k', subaccount: 'acme', version: 2 } })
  await allocator.settled()
  t.equal(placedOn('p'), undefined, 'the new p is not placed while the holder may still run the old one')
  t.match(allocator.summary().unplaced ?? [], [{ name: 'p', reason: new RegExp(`waiting for worker '${holder}' to stop it`) }])
  await renew(holder, [oldId], headBefore)
  t.equal(placedOn('p'), undefined, 'a renewal from before the delete, listing the old p, changes nothing')
  await renew(holder, [], headBefore)
  t.equal(placedOn('p'), undefined, 'nor one from before the delete without it (the holder had not seen the delete: it may start it yet)')
  await renew(holder, [])
  t.ok(placedOn('p') !== undefined, `a renewal past the delete without it releases p: placed on ${String(placedOn('p'))}`)
  t.not(placedOn('p'), undefined)
})

t.test('a worker whose declaration is deleted: its profile moves once its lease lapsed, not before', async t => {
  const ttlMs = 400
  const { master, allocator, put, renew, placedOn } = await allocation(t, ttlMs)
  await put({ profile: { name: 'p', kind: 'k', subaccount: 'acme' } })
  await allocator.settled()
  const holder = placedOn('p')!
  const declaration = master.ledger.state.findByName('worker', holder)!
  await master.ledger.submit({ op: 'delete', policy: prepareTombstone(policyId(declaration), master.signer) })
  await allocator.settled()
  t.equal(placedOn('p'), undefined, `p waits while ${holder}'s lease may still hold (it cannot renew any more, nor be heard to stop p)`)
  // the lease lapses after TTL + grace; the allocator's own tick notices it. The other worker
  // and the slave keep renewing meanwhile.
  const other = holder === 'w1' ? 'w2' : 'w1'
  const deadline = Date.now() + 20_000
  while (placedOn('p') === undefined && Date.now() < deadline) {
    await renew(other, [])
    await renew('s', [], master.ledger.head.seq, 'slave')
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.ok(placedOn('p') !== undefined && placedOn('p') !== holder, `once the lease lapsed, p moved (to ${String(placedOn('p'))})`)
})
