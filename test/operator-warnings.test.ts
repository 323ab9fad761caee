import { Writable } from 'node:stream'
import { pino } from 'pino'
import t from 'tap'
import { preparePolicy, prepareTombstone } from '../src/policies/prepare.js'
import { LeaseProtocol } from '../src/protocols/lease/index.js'
import { Operator } from '../src/services/operator/index.js'
import { eventually, sleep } from './helpers/lease-fleet.js'
import { type LedgerPeer, ledgerPeer, mastersOf } from './helpers/libp2p.js'
import type { Teardown } from './helpers/tmp.js'

// The operator logs each problem of an assignment once (issue 12, part of defect 8). What it
// remembers to do so comes from outside input (assignment ids × problem texts), so it must stay
// bounded: forgotten when the assignment goes, and capped.

/** the operator's cap on remembered problems (MAX_REMEMBERED_WARNINGS in operator.ts) */
const CAP = 1000
const PROBLEM = 'assigned profile is not in the replica yet'

interface Setup { master: LedgerPeer, operator: Operator, logs: string[], remembered: () => number }

/**
 * A master whose lease protocol grants every renewal (no allocator: it would delete the
 * assignments these tests write on purpose, for profiles that do not exist) and a worker's
 * Operator over real libp2p, reading the master's ledger, logging into `logs`.
 */
async function setup (t: Teardown, assignments: number): Promise<Setup & { ids: string[] }> {
  const master = await ledgerPeer(t, { master: true })
  const worker = await ledgerPeer(t)
  const lease = new LeaseProtocol({ libp2p: master.libp2p, log: master.log })
  await lease.serve(async () => ({ ttlMs: 60_000, graceMs: 30_000, minSeq: 0 }))
  t.teardown(async () => { await lease.stop() })
  const ids = await Promise.all(Array.from({ length: assignments }, async (_, i) => {
    const policy = preparePolicy({ assignment: { profile: `ghost-${i}`, worker: 'w1', epoch: i } }, master.signer)
    await master.ledger.submit({ op: 'put', policy })
    return String((policy.assignment as { id: string }).id)
  }))
  const logs: string[] = []
  const log = pino({ level: 'warn' }, new Writable({ write (chunk, _encoding, done) { logs.push(String(chunk)); done() } }))
  const operator = new Operator({ ledger: master.ledger, lease: new LeaseProtocol({ libp2p: worker.libp2p, log }), masters: mastersOf([master]), workerName: 'w1', signer: worker.signer, runners: {}, stopGraceMs: 500, log })
  await operator.start()
  t.teardown(async () => { await operator.stop() })
  const remembered = (): number => (operator as unknown as { warned: { size: number } }).warned.size
  return { master, operator, logs, remembered, ids }
}

t.test('the problems of an assignment are forgotten once the assignment is gone', async t => {
  const { master, logs, remembered, ids } = await setup(t, 40)
  t.ok(await eventually(() => remembered() === 40), 'one problem remembered per assignment')
  t.equal(logs.filter(l => l.includes(PROBLEM)).length, 40, 'each logged once')

  await Promise.all(ids.map(async id => { await master.ledger.submit({ op: 'delete', policy: prepareTombstone(id, master.signer) }) }))
  t.ok(await eventually(() => remembered() === 0, 5000), `nothing remembered once the assignments are deleted (${remembered()} left)`)
})

t.test('what the operator remembers is capped, and so is what it logs', async t => {
  const { logs, remembered } = await setup(t, CAP + 100)
  t.ok(await eventually(() => remembered() >= CAP, 20_000), 'the operator looked at the assignments')
  // a few more reconciles (every 200 ms) must not add to it
  let most = remembered()
  for (let i = 0; i < 10; i++) { await sleep(100); most = Math.max(most, remembered()) }
  t.ok(most <= CAP, `at most ${CAP} problems remembered (saw ${most})`)
  t.ok(logs.filter(l => l.includes(PROBLEM)).length <= CAP, 'at most as many problem lines logged')
})
