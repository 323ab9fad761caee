import t from 'tap'
import { randomBytes } from 'node:crypto'
import { ledgerPeer } from './helpers/libp2p.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { preparePolicy } from '../src/policies/prepare.js'
import { Allocator } from '../src/services/allocation/index.js'
import { LeaseProtocol, decodeLeaseRequest, encodeLeaseRequest, type LeaseRequest } from '../src/protocols/lease/index.js'
import { WORKER, addProfile, eventually, leaseFleet, runsExactly, sleep } from './helpers/lease-fleet.js'

// Lease renewals (issue 12, defect 4): a worker keeps exactly one renewal loop with at most one
// renewal in flight, however often it is asked to renew early, and the master never lets an
// older renewal overwrite a newer one. Real libp2p hosts on 127.0.0.1, real profile processes.

t.test('early renewals (drain toggles, profile stops) never add a renewal loop nor overlap', async t => {
  const ttlMs = 1500
  const fleet = await leaseFleet(t, { ttlMs, graceMs: 1000 })
  const { operator, lease } = fleet
  // a slow master: each answer waits, so a renewal sent while another is unanswered overlaps
  lease.holdMs = 100
  for (const name of ['p1', 'p2', 'p3']) await addProfile(fleet, name)
  t.ok(await eventually(() => runsExactly(fleet, ['p1', 'p2', 'p3'])), 'the worker runs its three profiles')

  // asked to renew early many times, some while a renewal is in flight...
  for (let round = 0; round < 3; round++) {
    await Promise.all(Array.from({ length: 4 }, async () => { await operator.setDraining(false) }))
  }
  // ...and by three profile stops at once: the drain moves them away (nowhere), then ends
  await operator.setDraining(true)
  t.ok(await eventually(() => operator.profiles().length === 0), 'the drain stopped the profiles')
  await operator.setDraining(false)
  t.ok(await eventually(() => runsExactly(fleet, ['p1', 'p2', 'p3'])), 'the profiles came back when the drain ended')

  // now count what reaches the master for a few TTLs: one loop renews once per TTL / 3 at most
  const intervalMs = ttlMs / 3
  const from = lease.served.length
  const startedAt = performance.now()
  await sleep(3 * ttlMs)
  const windowMs = performance.now() - startedAt
  const received = lease.served.length - from
  const oneLoop = Math.floor(windowMs / intervalMs) + 1
  t.ok(received >= 1, `the worker kept renewing (${received} renewals)`)
  t.ok(received <= oneLoop, `one renewal loop: ${received} renewals in ${Math.round(windowMs)} ms, at most ${oneLoop} expected`)
  t.equal(lease.maxInFlight, 1, 'never two renewals of the worker in flight at once')

  // every renewal carries this process's boot id and a sequence number that only grows
  const seqs = lease.served.map(s => s.seq)
  t.ok(seqs.every(s => typeof s === 'number' && s > 0), 'every renewal carries a sequence number')
  t.ok(seqs.every((s, i) => i === 0 || (s as number) > (seqs[i - 1] as number)), 'sequence numbers grow in the order the master receives them')
  t.equal(new Set(lease.served.map(s => s.boot)).size, 1, 'one boot id for the whole life of the operator')
  t.ok(typeof lease.served[0].boot === 'string' && lease.served[0].boot !== '', 'the boot id is not empty')
})

t.test('the master applies renewals in (boot, seq) order: an older renewal never overwrites a newer one', async t => {
  const master = await ledgerPeer(t, { master: true })
  const lease = new LeaseProtocol({ libp2p: master.libp2p, log: master.log })
  const allocator = new Allocator({ ledger: master.ledger, signer: master.signer, lease, log: master.log, ttlMs: 60_000, graceMs: 30_000 })
  const peerId = 'worker-peer-id'
  await master.ledger.submit({ op: 'put', policy: preparePolicy({ worker: { name: WORKER, peer_id: peerId, slots: 4 } }, master.signer) })
  await allocator.start()
  t.teardown(async () => { await allocator.stop() })

  const [a, b, c] = ['a', 'b', 'c'].map(ch => ch.repeat(64))
  const renew = async (fields: { boot?: string, seq?: number, running: string[], draining: boolean }) =>
    await allocator.renewLease({ version: 1, worker: WORKER, ...fields } as LeaseRequest, peerId)
  const view = () => allocator.summary().leases[WORKER]

  await renew({ boot: 'boot-1', seq: 5, running: [], draining: true })
  t.same({ running: view().running, draining: view().draining }, { running: 0, draining: true }, 'seq 5 applied')

  // seq 4 was sent before seq 5 but arrives after it
  const stale = await renew({ boot: 'boot-1', seq: 4, running: [a, b], draining: false }).then(() => 'granted', (err: { code?: string }) => err.code)
  t.equal(stale, 'conflict', 'the stale renewal is refused, with a clear error')
  t.same({ running: view().running, draining: view().draining }, { running: 0, draining: true }, 'the newer running set and draining state win')

  // a restarted worker process starts its sequence again, under a new boot id: applied
  await renew({ boot: 'boot-2', seq: 1, running: [c], draining: false })
  t.same({ running: view().running, draining: view().draining }, { running: 1, draining: false }, 'a fresh process is not ignored')
  // and the process it replaced can no longer overwrite it, whatever its seq
  const superseded = await renew({ boot: 'boot-1', seq: 6, running: [a, b], draining: true }).then(() => 'granted', (err: { code?: string }) => err.code)
  t.equal(superseded, 'conflict', 'a renewal from the superseded process is refused')
  t.same({ running: view().running, draining: view().draining }, { running: 1, draining: false }, 'the fresh process\'s state stands')
})

t.test('the lease request carries boot and seq on the wire; a request without them still decodes', async t => {
  const withOrder = decodeLeaseRequest(encodeLeaseRequest({ version: 1, worker: WORKER, running: [], draining: false, boot: 'f'.repeat(32), seq: 2 ** 40 } as LeaseRequest))
  t.match(withOrder, { boot: 'f'.repeat(32), seq: 2 ** 40 }, 'boot and seq round-trip')
  const legacy = decodeLeaseRequest(encodeLeaseRequest({ version: 1, worker: WORKER, running: [], draining: false } as unknown as LeaseRequest))
  t.match(legacy, { worker: WORKER, boot: '', seq: 0 }, 'an older worker\'s request decodes with an empty boot and seq 0')
})

t.test('a lease goes only to the key that signed the declaration, whatever peer id it names', async t => {
  const master = await ledgerPeer(t, { master: true })
  const lease = new LeaseProtocol({ libp2p: master.libp2p, log: master.log })
  const allocator = new Allocator({ ledger: master.ledger, signer: master.signer, lease, log: master.log, ttlMs: 60_000, graceMs: 30_000 })
  const worker = new Ed25519Signer(randomBytes(32))
  const stranger = new Ed25519Signer(randomBytes(32))
  const peerId = 'the-peer-id-the-declaration-names'
  await master.ledger.submit({ op: 'put', policy: preparePolicy({ worker: { name: WORKER, peer_id: peerId, slots: 4 } }, worker) })
  await allocator.start()
  t.teardown(async () => { await allocator.stop() })
  const renew = async (key: string) => await allocator.renewLease({ version: 1, worker: WORKER, boot: 'b', seq: Date.now(), running: [], draining: false } as LeaseRequest, peerId, key)
  await t.rejects(renew(stranger.publicKey), { code: 'unauthorized', message: /did not sign worker/ }, 'a connection with another key, claiming the declared peer id, gets no lease')
  await t.resolves(renew(worker.publicKey), 'the declaration\'s author does')
})
