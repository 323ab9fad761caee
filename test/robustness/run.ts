import { setTimeout as sleep } from 'node:timers/promises'
import { httpJson } from '../helpers/http.js'
import { insert, slaveRuns } from '../helpers/fleet.js'
import { pgQuery } from '../helpers/pg.js'
import { checkHistory, operationCounts } from './checker.js'
import type { FinalEntry, HeadSample, History, Operation, ProcessRun, Violation } from './history.js'
import { Cleanup, PROFILES, RobustNetwork, type RunStore } from './network.js'
import { join } from 'node:path'
import { LevelStore } from '../../src/ledger/level-store.js'
import { policyBody, policyType } from '../../src/policies/policy.js'
import { type Fault, type Revocation, revocationFor, scheduleFor } from './schedule.js'

/** The sync interval the nodes run with (the test helpers' BLOCKCHAIN_SYNC) */
const SYNC_INTERVAL_MS = 2000
const HEAD_SAMPLE_MS = 250
const CLIENTS = 2

export interface RunReport {
  seed: number
  minutes: number
  store: RunStore
  faults: Fault[]
  revocation?: Revocation & { seq?: number, error?: string }
  faultsByKind: Record<string, number>
  operations: Record<string, number>
  headSamples: number
  processRuns: number
  finalHead: number
  violations: Violation[]
}

/** One seed: the network, the clients and the head sampler under the seed's faults, then the checker. */
export async function runSeed (seed: number, minutes: number, say: (line: string) => void, store: RunStore = 'pg'): Promise<RunReport> {
  const cleanup = new Cleanup()
  try {
    say(`[robustness] seed ${seed}: starting the network (ledger: ${store})`)
    const net = await RobustNetwork.start(cleanup, store)
    const runMs = Math.round(minutes * 60_000)
    const revocation: RunReport['revocation'] = revocationFor(seed, runMs, 'm1')
    // a revoked member cannot start again: it is left out of the faults when it is revoked
    const faults = scheduleFor(seed, runMs, {
      nodes: [...net.nodes.keys()].filter(name => name !== revocation?.target),
      dbMasters: [...net.dbProxies.keys()],
      workers: ['w1', 'w2'],
      profiles: PROFILES
    })
    say(`[robustness] seed ${seed}: schedule ${JSON.stringify(faults)}${revocation === undefined ? '' : `, revoke ${revocation.target} at ${revocation.atMs} ms`}`)
    const history: History = { operations: [], heads: [], runs: [], final: [], texts: [], secrets: [net.secret], syncIntervalMs: SYNC_INTERVAL_MS, nodeKeys: await nodeKeys(net) }
    let stop = false
    const sampler = sampleHeads(net, history.heads, () => stop)
    // a client that fails for a reason of its own ends the run with that error, after the clean-up
    const clients = Array.from({ length: CLIENTS }, async (_v, i) => { await client(net, i, history.operations, () => stop) })
    const clientsDone = Promise.all(clients)
    clientsDone.catch(() => {})

    const started = Date.now()
    const revoking = revocation === undefined
      ? Promise.resolve()
      : (async () => {
          await sleep(revocation.atMs)
          const key = history.nodeKeys![revocation.target]
          say(`[robustness] seed ${seed}: revoke ${revocation.target} (key ${key.slice(0, 12)}…)`)
          try {
            await net.atWriter(async master => await master.ok(`revoke node where key = ${key} and reason = robustness`, { method: 'POST' }))
          } catch (err) {
            revocation.error = String(err)
          }
        })()
    for (const fault of faults) {
      await sleep(Math.max(0, started + fault.atMs - Date.now()))
      say(`[robustness] seed ${seed}: ${fault.kind} ${fault.target} for ${fault.forMs} ms`)
      try {
        await inject(net, fault)
      } catch (err) {
        // an admin operation the network refused under an earlier fault: recorded, the run goes on
        fault.error = String(err)
        say(`[robustness] seed ${seed}: ${fault.kind} ${fault.target} failed: ${fault.error}`)
      }
    }
    await sleep(Math.max(0, started + runMs - Date.now()))
    await revoking
    history.healedAtMs = Date.now()
    // quiet after the last fault: every replica must reach the final head within a sync interval
    stop = true
    await clientsDone
    await sleep(SYNC_INTERVAL_MS * 2)
    stop = false
    await sleep(HEAD_SAMPLE_MS * 4)
    stop = true
    await sampler
    // the converge check reads the samples taken after healedAt + one interval: only those
    history.healedAtMs = Date.now() - SYNC_INTERVAL_MS - HEAD_SAMPLE_MS * 4

    history.final = await finalLedger(net)
    history.runs = await processRuns(net)
    for (const node of net.nodes.values()) history.texts!.push(...[...node.stdout, ...node.stderr].map(text => ({ where: `${node.name} log`, text })))
    const violations = checkHistory(history)
    const faultsByKind: Record<string, number> = {}
    for (const f of faults) faultsByKind[f.kind] = (faultsByKind[f.kind] ?? 0) + 1
    if (revocation !== undefined) revocation.seq = history.final.find(e => e.type === 'revocation' && e.revokes === history.nodeKeys![revocation.target])?.seq
    return {
      seed,
      minutes,
      store,
      faults,
      revocation,
      faultsByKind,
      operations: operationCounts(history.operations),
      headSamples: history.heads.length,
      processRuns: history.runs.length,
      finalHead: history.final.length === 0 ? 0 : history.final[history.final.length - 1].seq,
      violations
    }
  } finally {
    await cleanup.run()
  }
}

/** Injects one fault and heals it after its time. */
async function inject (net: RobustNetwork, fault: Fault): Promise<void> {
  const { kind, target, forMs } = fault
  switch (kind) {
    case 'kill':
      net.kill(target)
      await sleep(forMs)
      await net.restart(target)
      return
    case 'pause':
      net.pause(target)
      await sleep(forMs)
      net.resume(target)
      return
    case 'clock':
      net.stepClock(target)
      await sleep(forMs)
      net.stepClock(target)
      return
    case 'db-stall': case 'db-cut': {
      const proxy = net.dbProxies.get(target)!
      if (kind === 'db-stall') proxy.stall(); else proxy.partition()
      await sleep(forMs)
      if (kind === 'db-stall') proxy.unstall(); else proxy.heal()
      return
    }
    case 'drain':
      await net.drainWorker(target, true)
      await sleep(forMs)
      await net.drainWorker(target, false)
      return
    case 'replace':
      await net.replaceProfile(target)
  }
}

/** Every node's head (seq and hash) every HEAD_SAMPLE_MS, as its REST server answers; a paused or dead node is skipped. */
async function sampleHeads (net: RobustNetwork, heads: HeadSample[], stopped: () => boolean): Promise<void> {
  for (let n = 0; n < 100_000 && !stopped(); n++) {
    await Promise.all([...net.nodes.values()].map(async node => {
      try {
        const status = await httpJson(`${node.url}/v1/status`, 1000) as { ledger?: { head?: { seq: number, hash: string } } }
        const head = status.ledger?.head
        if (head !== undefined) heads.push({ node: node.name, atMs: Date.now(), seq: head.seq, hash: head.hash })
      } catch {}
    }))
    await sleep(HEAD_SAMPLE_MS)
  }
}

/** A client: inserts a note through a node, then reads it back on that node; every call recorded. */
async function client (net: RobustNetwork, index: number, operations: Operation[], stopped: () => boolean): Promise<void> {
  const through = ['m1', 'w1', 'master-a', 'master-b', 's1'].filter(name => net.nodes.has(name))
  for (let n = 0; n < 100_000 && !stopped(); n++) {
    const node = net.nodes.get(through[(n + index) % through.length])!
    const name = `c${index}-${n}`
    const invokeMs = Date.now()
    try {
      const { id } = await insert(node, { note: { name } })
      operations.push({ client: `c${index}`, node: node.name, kind: 'insert', invokeMs, completeMs: Date.now(), ok: true, id })
    } catch (err) {
      operations.push({ client: `c${index}`, node: node.name, kind: 'insert', invokeMs, completeMs: Date.now(), ok: false, answer: String(err) })
      await sleep(200)
      continue
    }
    const readAt = Date.now()
    const scope = [operations[operations.length - 1].id!]
    try {
      const reply = await node.command(`blockchain get note where name = ${name}`)
      const found = Array.isArray(reply.json) ? (reply.json as Array<{ note: { id: string } }>).map(p => p.note.id) : []
      operations.push({ client: `c${index}`, node: node.name, kind: 'read', invokeMs: readAt, completeMs: Date.now(), ok: reply.status === 200, sees: found, scope })
    } catch (err) {
      operations.push({ client: `c${index}`, node: node.name, kind: 'read', invokeMs: readAt, completeMs: Date.now(), ok: false, answer: String(err) })
    }
  }
}

/** The final chain, as the database holds it (a LevelDB master: its store, read once it has stopped). */
async function finalLedger (net: RobustNetwork): Promise<FinalEntry[]> {
  if (net.db === undefined) {
    const master = net.masters[0]
    await master.stop()
    const store = new LevelStore({ path: join(master.home, 'ledger') })
    await store.open()
    try {
      return (await store.range(1, Infinity)).map(e => {
        const body = policyBody(e.policy)
        const type = policyType(e.policy)
        return { seq: e.seq, hash: e.hash, op: e.op, id: String(body.id), type, author: String(body.public_key), ...(e.op === 'delete' ? { target: String(body.policy_id) } : {}), ...(type === 'revocation' ? { revokes: String(body.key) } : {}) }
      })
    } finally {
      await store.close()
    }
  }
  const rows = await pgQuery<{ seq: string, op: 'put' | 'delete', policy_type: string, policy_id: string, policy_text: string, hash: string }>(net.db!, 'SELECT seq, op, policy_type, policy_id, policy_text, hash FROM ledger ORDER BY seq')
  return rows.map(row => {
    const policy = JSON.parse(row.policy_text) as Record<string, Record<string, unknown>>
    const body = Object.values(policy)[0]
    return {
      seq: Number(row.seq),
      hash: row.hash,
      op: row.op,
      id: String(body.id ?? row.policy_id),
      type: row.policy_type,
      author: String(body.public_key),
      ...(row.op === 'delete' ? { target: String(body.policy_id) } : {}),
      ...(row.policy_type === 'revocation' ? { revokes: String(body.key) } : {})
    }
  })
}

/** Every profile process's run, from the heartbeats its runner sent the slave. */
async function processRuns (net: RobustNetwork): Promise<ProcessRun[]> {
  const { runs } = await slaveRuns(net.slave)
  return [...runs].flatMap(([unit, list]) => list.map(run => ({ unit, host: run.worker, startMs: run.first_seen_ms, stopMs: run.last_seen_ms })))
}

/** Each node's public key, as its status shows it (a restart keeps it: same home). */
async function nodeKeys (net: RobustNetwork): Promise<Record<string, string>> {
  const keys: Record<string, string> = {}
  for (const node of net.nodes.values()) keys[node.name] = String((await httpJson(`${node.url}/v1/status`, 5000) as { public_key: string }).public_key)
  return keys
}
