import type { Teardown } from './tmp.js'
import { pgQuery } from './pg.js'
import { atActiveMaster } from './masters.js'
import { RUNNER, getJson, processesOf, profile, insert, slaveRuns } from './fleet.js'
import { type NodeProcess, startNode } from './node-process.js'
import { readChain } from './ledger-check.js'
import { waitFor } from './net.js'
import type { PgStoreConfig } from '../../src/ledger/pg-store.js'

/**
 * A fault under load, as the failover tests and the pg-failover benchmark run it: two masters
 * over one PostgreSQL, a slave and two workers running a profile each, 8 clients inserting
 * through the members; then, after each round's fault, the checks: every acknowledged insert is
 * on the ledger exactly once, the seqs have no gap, every replica's chain verifies and its head
 * never moved back, and the workers' profiles ran on through every round, never on two workers.
 */
const CLIENTS = 8
/** acknowledged inserts to see before each fault, and after it */
export const ACKS_PER_PHASE = 15
/**
 * Each client's pause after an acknowledged insert: 8 clients at 50 ms keep inserts in flight at
 * every moment (each takes a few ms), without spending the test's CPU on throughput between the
 * faults. Under torture they insert flat out.
 */
const PACE_MS = process.env.TORTURE === '1' ? 0 : 50

export interface Fleet { masters: NodeProcess[], members: NodeProcess[], workers: NodeProcess[], slave: NodeProcess }

export async function startFleet (t: Teardown, env: Record<string, string | number>): Promise<Fleet> {
  const a = await startNode(t, { type: 'master', name: 'master-a', env })
  const b = await startNode(t, { type: 'master', name: 'master-b', env })
  const conn = `${a.ledgerConn},${b.ledgerConn}`
  const slave = await startNode(t, { type: 'slave', name: 'slave-a', master: a, env: { LEDGER_CONN: conn, SLOTS: 4 } })
  const workers: NodeProcess[] = []
  for (const name of ['w1', 'w2']) {
    workers.push(await startNode(t, {
      type: 'worker',
      name,
      master: a,
      env: { LEDGER_CONN: conn, BLOCKCHAIN_SOURCE: 'master', SLAVE_NAME: 'slave-a', SLOTS: 1, PROFILE_KINDS: 'demo', PROFILE_RUNNER_DEMO: RUNNER, PROFILE_STOP_GRACE: '1 second' }
    }))
  }
  return { masters: [a, b], members: [slave, ...workers], workers, slave }
}

/** 8 clients inserting notes through the members' JSON API until stopped, each PACE_MS apart. */
export function startClients (members: NodeProcess[]): { acked: Map<string, number>, ackTimes: number[], failures: string[], stop: () => Promise<void> } {
  const acked = new Map<string, number>()
  const ackTimes: number[] = []
  const failures: string[] = []
  let running = true
  const loops = Array.from({ length: CLIENTS }, async (_v, client) => {
    const member = members[client % members.length]
    for (let n = 0; running && n < 100_000; n++) {
      const name = `c${client}-n${n}`
      try {
        const { seq } = await insert(member, { note: { name } })
        acked.set(name, seq)
        ackTimes.push(Date.now())
        if (PACE_MS > 0) await new Promise(resolve => setTimeout(resolve, PACE_MS))
      } catch (err) {
        failures.push(`${name}: ${(err as Error).message}`)
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    }
  })
  return { acked, ackTimes, failures, stop: async () => { running = false; await Promise.all(loops) } }
}

/**
 * Samples every member's head; any step back is recorded. One request per member at a time: a
 * sample is sent only once the previous one answered, so answers are compared in the order the
 * member gave them (two in flight can arrive the other way round, a step back that never was).
 */
export function watchHeads (members: NodeProcess[]): { backwards: string[], stop: () => void } {
  const last = new Map<string, number>()
  const pending = new Set<string>()
  const backwards: string[] = []
  const timer = setInterval(() => {
    for (const member of members) {
      if (pending.has(member.name)) continue
      pending.add(member.name)
      void getJson(member, '/v1/ledger/head').then((head: { seq: number }) => {
        const before = last.get(member.name) ?? 0
        if (head.seq < before) backwards.push(`${member.name}: ${before} → ${head.seq}`)
        last.set(member.name, Math.max(before, head.seq))
      }, () => {}).finally(() => { pending.delete(member.name) })
    }
  }, 200)
  return { backwards, stop: () => { clearInterval(timer) } }
}

/**
 * The checks the run makes: a tap test, or a benchmark's recorder (bench/pg-failover.ts) that
 * counts the failed ones.
 */
export interface Checks extends Teardown {
  ok (value: unknown, message: string): boolean
  equal (found: unknown, wanted: unknown, message: string): boolean
  same (found: unknown, wanted: unknown, message: string): boolean
  not (found: unknown, notWanted: unknown, message: string): boolean
  comment (...message: unknown[]): void
}

/**
 * One round's fault: returns once the network should write again (the checks wait for inserts
 * after it), with the moment (Date.now()) the fault hit when that came after some preparation
 * (finding what to kill): the round's write gap is measured from then.
 */
export type Fault = (round: number, fleet: Fleet) => Promise<number | undefined | void>

/**
 * Runs `rounds` of `fault` under load and checks the ledger after: `ledgerDb` answers where the
 * ledger's database is now (after a database failover, the new primary). Answers how many
 * inserts were acknowledged and each round's write gap (longestGap).
 */
export async function faultsUnderLoad (t: Checks, opts: { env: Record<string, string | number>, rounds: number, fault: Fault, ledgerDb: () => Promise<PgStoreConfig> }): Promise<{ acked: number, gapsMs: number[] }> {
  const { env, rounds, fault } = opts
  const fleet = await startFleet(t, env)
  const { masters, members, workers, slave } = fleet
  await atActiveMaster(masters, async master => await insert(master, { subaccount: { name: 'acme', account: 'acme-inc' } }))
  await atActiveMaster(masters, async master => await profile(master, 'p-1', 'demo', 'acme'))
  await atActiveMaster(masters, async master => await profile(master, 'p-2', 'demo', 'acme'))
  const pids = new Map<string, number>()
  for (const worker of workers) {
    const rows = await waitFor(`${worker.name} to run a profile`, async () => {
      const running = (await processesOf(worker)).filter(r => r.state === 'RUNNING')
      return running.length === 1 ? running : undefined
    }, { timeoutMs: 30_000 })
    pids.set(rows[0].name, rows[0].pid!)
  }

  const heads = watchHeads(members)
  const clients = startClients(members)
  const gapsMs: number[] = []
  const acksSince = (since: number): number => clients.ackTimes.filter(at => at >= since).length
  try {
    for (let round = 1; round <= rounds; round++) {
      const phase = Date.now()
      await waitFor(`round ${round}: inserts before the fault`, () => acksSince(phase) >= ACKS_PER_PHASE ? true : undefined, { timeoutMs: 60_000 })
      const started = Date.now()
      const hitAt = await fault(round, fleet)
      const faultAt = typeof hitAt === 'number' ? hitAt : started
      await waitFor(`round ${round}: inserts after the fault`, () => acksSince(faultAt) >= ACKS_PER_PHASE ? true : undefined, { timeoutMs: 90_000 })
      gapsMs.push(longestGap(clients.ackTimes, faultAt))
    }
  } finally {
    await clients.stop()
    heads.stop()
  }
  t.ok(clients.acked.size >= 2 * rounds * ACKS_PER_PHASE, `${clients.acked.size} inserts acknowledged (${clients.failures.length} failed during failovers)`)

  // the ledger, as PostgreSQL holds it: every acknowledged note exactly once, seqs without a gap
  const db = await opts.ledgerDb()
  const rows = await pgQuery<{ name: string, copies: string }>(db, "SELECT policy->'note'->>'name' AS name, count(*) AS copies FROM ledger WHERE policy_type = 'note' GROUP BY 1")
  const copies = new Map(rows.map(r => [r.name, Number(r.copies)]))
  const lost = [...clients.acked.keys()].filter(name => copies.get(name) === undefined)
  const twice = [...copies].filter(([, n]) => n > 1).map(([name]) => name)
  t.same(lost, [], 'no acknowledged insert lost')
  t.same(twice, [], 'none twice')
  const [span] = await pgQuery<{ entries: string, last: string }>(db, 'SELECT count(*) AS entries, max(seq) AS last FROM ledger')
  t.equal(Number(span.entries), Number(span.last), 'no gap in seqs')

  // every replica reaches the head, verifies its whole chain, and never moved back
  const head = Number(span.last)
  for (const member of members) {
    await waitFor(`${member.name} to reach seq ${head}`, async () => (await getJson(member, '/v1/ledger/head')).seq >= head ? true : undefined, { timeoutMs: 30_000 })
  }
  t.same(heads.backwards, [], 'no replica head moved back')

  // the profiles ran on through every failover: the same processes, and never on two workers
  for (const worker of workers) {
    const running = (await processesOf(worker)).filter(r => r.state === 'RUNNING')
    t.equal(running.length, 1, `${worker.name} still runs its profile`)
    if (!t.equal(running[0]?.pid, pids.get(running[0]?.name), `${worker.name}: the same process as before the failovers (it never stopped)`)) {
      t.comment(worker.logs().split('\n').filter(line => /lease|profile|master/i.test(line) && !line.includes('policy accepted')).slice(-40).join('\n'))
    }
  }
  const { overlaps } = await slaveRuns(slave)
  t.same(overlaps, [], 'the slave\'s heartbeat records show no profile on two workers at once')

  for (const member of members) {
    await member.stop()
    const chain = await readChain(member.home)
    t.equal(chain.broken, undefined, `${member.name}: the whole chain verifies`)
    t.ok(chain.entries.length >= head, `${member.name}: holds every entry`)
  }
  return { acked: clients.acked.size, gapsMs }
}

/**
 * A round's write gap: the longest time, from the fault on, that no insert was acknowledged
 * (from the fault to the first acknowledgement after it, and between any two after that, up
 * to the acknowledgements the round waited for). A kill's gap begins at the kill; a planned
 * switchover's somewhere after it was asked for, which this finds too.
 */
function longestGap (ackTimes: number[], from: number): number {
  const after = ackTimes.filter(at => at >= from).sort((a, b) => a - b)
  let longest = 0
  let previous = from
  for (const at of after) { longest = Math.max(longest, at - previous); previous = at }
  return longest
}
