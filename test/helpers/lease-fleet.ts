import type { Logger } from '../../src/base/logger.js'
import { type Policy, policyBody } from '../../src/policies/policy.js'
import { preparePolicy, prepareTombstone } from '../../src/policies/prepare.js'
import { Allocator } from '../../src/services/allocation/index.js'
import { type LeaseGrantor, LeaseProtocol, type LeaseRequest } from '../../src/protocols/lease/index.js'
import { Operator, SubaccountSource } from '../../src/services/operator/index.js'
import { type LedgerPeer, author, ledgerPeer, mastersOf } from './libp2p.js'

/**
 * A master and a worker in this process, for the lease tests: two real libp2p hosts on
 * 127.0.0.1 speaking `/ledgermesh/lease/1.0.0`, the master's ledger on LevelDB, a real
 * Allocator and a real Operator whose profiles are real processes (`sleep`).
 *
 * The worker's Operator reads the master's ledger object instead of a synced replica: the
 * lease is what these tests are about, and a replica would only add a sync delay.
 */
interface T {
  teardown: (fn: () => void | Promise<void>) => void
}

export const WORKER = 'w1'
export const SLAVE = 'slave-a'
export const KIND = 'sleepy'
/** a profile process that does nothing until it is stopped */
export const RUNNER = 'exec sleep 600'

/** What the master's lease protocol saw: every renewal it served, and how many overlapped. */
export interface Served { worker: string, boot?: string, seq?: number, running: number, draining: boolean }

/**
 * The master's LeaseProtocol, counting the renewals it serves and how many are being answered
 * at once. `holdMs` makes each answer wait that long first, like a busy master, so renewals a
 * worker sends while another is unanswered overlap visibly.
 */
export class CountingLease extends LeaseProtocol {
  readonly served: Served[] = []
  inFlight = 0
  maxInFlight = 0
  holdMs = 0

  override async serve (grantor: LeaseGrantor): Promise<void> {
    await super.serve(async (request: LeaseRequest, peer: string) => {
      // the slave's renewals (it holds a lease too) are not what these tests count
      if (request.role === 'slave') return await grantor(request, peer)
      const r = request as LeaseRequest & { boot?: string, seq?: number }
      this.served.push({ worker: r.worker, boot: r.boot, seq: r.seq, running: r.running.length, draining: r.draining })
      this.inFlight++
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
      try {
        if (this.holdMs > 0) await sleep(this.holdMs)
        return await grantor(request, peer)
      } finally {
        this.inFlight--
      }
    })
  }
}

export interface LeaseFleet {
  master: LedgerPeer
  worker: LedgerPeer
  /** the slave's operator: it holds the slave's lease (no sub-account processes) */
  slaveOperator: Operator
  lease: CountingLease
  allocator: Allocator
  operator: Operator
  ttlMs: number
  graceMs: number
}

export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/**
 * Polls `check` every 20 ms until it holds or `ms` pass; returns whether it held. It counts
 * on the monotonic clock, so a test may step the wall clock meanwhile.
 */
export async function eventually (check: () => boolean, ms = 10_000): Promise<boolean> {
  const end = performance.now() + ms
  while (!check()) {
    if (performance.now() > end) return false
    await sleep(20)
  }
  return true
}

/**
 * The master (allocator on), the worker's declaration, its slave (whose Operator holds its
 * lease, running no processes) and one sub-account, and the worker's Operator started (its profiles run `opts.runner`, default RUNNER; both log to
 * `opts.log`, default nowhere). Everything stops at teardown, the operator first.
 */
export async function leaseFleet (t: T, opts: { ttlMs: number, graceMs: number, runner?: string, log?: Logger }): Promise<LeaseFleet> {
  const master = await ledgerPeer(t, { master: true, log: opts.log })
  const worker = await ledgerPeer(t, { log: opts.log })
  const slave = await ledgerPeer(t, { log: opts.log })
  const lease = new CountingLease({ libp2p: master.libp2p, log: master.log })
  const allocator = new Allocator({ ledger: master.ledger, signer: master.signer, lease, log: master.log, ttlMs: opts.ttlMs, graceMs: opts.graceMs })
  const put = async (policy: Policy, signer = author): Promise<void> => { await master.ledger.submit({ op: 'put', policy: preparePolicy(policy, signer) }) }
  await put({ slave: { name: SLAVE, ip: '127.0.0.1', rest_port: 9, slots: 4, peer_id: slave.libp2p.peerId.toString() } }, slave.signer)
  await put({ worker: { name: WORKER, peer_id: worker.libp2p.peerId.toString(), slave: SLAVE, slots: 8, profile_kinds: [KIND] } }, worker.signer)
  await put({ subaccount: { name: 'acme', account: 'acme-inc', slave: SLAVE } })
  await allocator.start()
  t.teardown(async () => { await allocator.stop() })
  // a slave holds a lease too: without it the sub-account would not be placed
  const slaveOperator = new Operator({
    ledger: master.ledger,
    lease: new LeaseProtocol({ libp2p: slave.libp2p, log: slave.log }),
    masters: mastersOf([master]),
    source: new SubaccountSource({ ledger: master.ledger, slaveName: SLAVE, runners: {}, log: slave.log }),
    stopGraceMs: 500,
    log: slave.log
  })
  await slaveOperator.start()
  t.teardown(async () => { await slaveOperator.stop() })
  const operator = new Operator({
    ledger: master.ledger,
    lease: new LeaseProtocol({ libp2p: worker.libp2p, log: worker.log }),
    masters: mastersOf([master]),
    workerName: WORKER,
    signer: worker.signer,
    runners: { [KIND]: opts.runner ?? RUNNER },
    stopGraceMs: 500,
    log: worker.log
  })
  await operator.start()
  t.teardown(async () => { await operator.stop() })
  return { master, worker, slaveOperator, lease, allocator, operator, ttlMs: opts.ttlMs, graceMs: opts.graceMs }
}

/** Inserts a profile of the fleet's kind under its sub-account. */
export async function addProfile (fleet: LeaseFleet, name: string): Promise<void> {
  await fleet.master.ledger.submit({ op: 'put', policy: preparePolicy({ profile: { name, kind: KIND, subaccount: 'acme' } }, author) })
}

/** The profile assignments on the ledger: profile name → assignment id. */
export function assignments (fleet: LeaseFleet): Map<string, string> {
  const found = new Map<string, string>()
  for (const p of fleet.master.ledger.state.policiesOfType('assignment')) {
    const b = policyBody(p)
    if (typeof b.profile === 'string') found.set(b.profile, String(b.id))
  }
  return found
}

/** Whether the operator runs exactly `names`, every one RUNNING. */
export function runsExactly (fleet: LeaseFleet, names: string[]): boolean {
  const rows = fleet.operator.profiles()
  return rows.length === names.length && rows.every(r => r.state === 'RUNNING') && rows.map(r => r.name).sort().join() === [...names].sort().join()
}

/** Deletes a policy by id with the master's key. */
export async function deletePolicy (peer: LedgerPeer, id: string): Promise<void> {
  await peer.ledger.submit({ op: 'delete', policy: prepareTombstone(id, peer.signer) })
}
