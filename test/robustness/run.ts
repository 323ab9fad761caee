import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { httpJson } from '../helpers/http.js'
import { insert } from '../helpers/fleet.js'
import { checkHistory, operationCounts } from './checker.js'
import type { HeadSample, History, Operation, Violation } from './history.js'
import { Cleanup, RobustNetwork, type RunNetwork, type RunStore } from './network.js'
import { WanRobustNetwork } from './wan-network.js'
import type { WanTopology } from '../../bench/wan/topology.js'
import { type Fault, type Revocation, revocationFor, scheduleFor } from './schedule.js'

/** The sync interval the nodes run with (the test helpers' BLOCKCHAIN_SYNC) */
const SYNC_INTERVAL_MS = 2000
const HEAD_SAMPLE_MS = 250
const CLIENTS = 2
/** slow-links: the fraction of chunks stalled for a retransmission's time (the usual is 0.5 %) */
const SLOW_LINKS_STALL = 0.1

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
  /** from the nodes' logs: how many times a node started from a snapshot, and compacted its log */
  snapshots: { started: number, compactions: number }
  violations: Violation[]
}

/** One seed: the network, the clients and the head sampler under the seed's faults, then the checker. */
export async function runSeed (seed: number, minutes: number, say: (line: string) => void, store: RunStore = 'pg', topo?: WanTopology): Promise<RunReport> {
  const cleanup = new Cleanup()
  try {
    say(`[robustness] seed ${seed}: starting the network (ledger: ${store})`)
    if (store === 'wan' && topo === undefined) throw new Error('a wan seed runs inside the hub namespace: runWanSeed (wan-run.ts) starts it there')
    const net: RunNetwork = store === 'wan' ? await WanRobustNetwork.start(cleanup, topo!, say) : await RobustNetwork.start(cleanup, store)
    const runMs = Math.round(minutes * 60_000)
    const revocation: RunReport['revocation'] = revocationFor(seed, runMs, net.member)
    // a revoked member cannot start again: it is left out of the faults when it is revoked
    const faults = scheduleFor(seed, runMs, {
      nodes: [...net.nodes.keys()].filter(name => name !== revocation?.target),
      clockNodes: net.clockNodes.filter(name => name !== revocation?.target),
      dbMasters: [...net.dbProxies.keys()],
      workers: net.workers,
      profiles: net.profiles,
      regions: net.regions,
      replicas: [...net.nodes.keys()].filter(name => name !== revocation?.target && !net.masters.some(m => m.name === name)),
      databases: net.databaseFault === undefined ? [] : ['primary']
    })
    say(`[robustness] seed ${seed}: schedule ${JSON.stringify(faults)}${revocation === undefined ? '' : `, revoke ${revocation.target} at ${revocation.atMs} ms`}`)
    const history: History = { operations: [], heads: [], runs: [], final: [], texts: [], secrets: [net.secret], syncIntervalMs: SYNC_INTERVAL_MS, nodeKeys: await nodeKeys(net), wipes: [] }
    let stop = false
    const sampler = sampleHeads(net, history.heads, () => stop)
    // a client that fails for a reason of its own ends the run with that error, after the clean-up
    const clients = Array.from({ length: CLIENTS }, async (_v, i) => { await client(net, i, history.operations, () => stop) })
    const clientsDone = Promise.all(clients)
    clientsDone.catch(() => {})

    const started = Date.now()
    say(`[robustness] seed ${seed}: clients started at ${started}`)
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
      say(`[robustness] seed ${seed}: ${fault.kind} ${fault.target} for ${fault.forMs} ms (at ${Date.now()}, +${Date.now() - started} ms)`)
      try {
        await inject(net, fault, history)
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

    history.final = await net.finalLedger()
    history.runs = await net.processRuns()
    // a loop, not push(...lines): a node's log may hold more lines than a call takes arguments
    for (const node of net.nodes.values()) for (const text of [...node.stdout, ...node.stderr]) history.texts!.push({ where: `${node.name} log`, text })
    const violations = checkHistory(history)
    // KEEP_LOGS=<dir>: the whole history (but the log texts, which <dir>/<node>.log holds) for a post-mortem
    if (process.env.KEEP_LOGS !== undefined) {
      writeFileSync(join(process.env.KEEP_LOGS, `history-${seed}.json`), JSON.stringify({ startedMs: started, faults, violations, ...history, texts: undefined }, null, 1))
    }
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
      snapshots: {
        started: history.texts!.filter(t => t.text.includes('"msg":"started from a snapshot')).length,
        compactions: history.texts!.filter(t => t.text.includes('"msg":"compacted the log')).length
      },
      violations
    }
  } finally {
    await cleanup.run()
  }
}

/** Sends a node's process a signal (every network runs real processes; a dead one is skipped). */
function signal (net: RunNetwork, name: string, sig: NodeJS.Signals): void {
  net.nodes.get(name)?.proc.kill(sig)
}

/** Injects one fault and heals it after its time. */
async function inject (net: RunNetwork, fault: Fault, history: History): Promise<void> {
  const { kind, target, forMs } = fault
  switch (kind) {
    case 'wipe': {
      // a lost disk: the node's ledger is gone (its identity and outbox are not); it starts
      // again from a snapshot (BOOTSTRAP=snapshot, see main.ts)
      const node = net.nodes.get(target)!
      signal(net, target, 'SIGKILL')
      await node.waitForExit(10_000).catch(() => {})
      history.wipes!.push({ node: target, atMs: Date.now() })
      rmSync(join(node.home, 'ledger'), { recursive: true, force: true })
      await sleep(forMs)
      await net.restart(target)
      return
    }
    case 'kill':
      signal(net, target, 'SIGKILL')
      await sleep(forMs)
      await net.restart(target)
      return
    case 'pause':
      signal(net, target, 'SIGSTOP')
      await sleep(forMs)
      signal(net, target, 'SIGCONT')
      return
    case 'clock':
      // SIGUSR2: the wall clock steps an hour ahead, the next one back (test/helpers/clock-step.mjs)
      signal(net, target, 'SIGUSR2')
      await sleep(forMs)
      signal(net, target, 'SIGUSR2')
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
      return
    case 'partition': case 'reset':
      await net.partition(target, kind === 'partition' ? 'drop' : 'reset')
      await sleep(forMs)
      await net.heal()
      return
    case 'slow-links':
      await net.stallLinks(SLOW_LINKS_STALL)
      await sleep(forMs)
      await net.stallLinks(undefined)
      return
    case 'pg-kill': case 'pg-stall':
      await net.databaseFault!(kind === 'pg-kill' ? 'kill' : 'stall', forMs)
  }
}

/** Every node's head (seq and hash) every HEAD_SAMPLE_MS, as its REST server answers; a paused or dead node is skipped. */
async function sampleHeads (net: RunNetwork, heads: HeadSample[], stopped: () => boolean): Promise<void> {
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
async function client (net: RunNetwork, index: number, operations: Operation[], stopped: () => boolean): Promise<void> {
  const through = net.clientNodes.filter(name => net.nodes.has(name))
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

/** Each node's public key, as its status shows it (a restart keeps it: same home). */
async function nodeKeys (net: RunNetwork): Promise<Record<string, string>> {
  const keys: Record<string, string> = {}
  for (const node of net.nodes.values()) keys[node.name] = String((await httpJson(`${node.url}/v1/status`, 5000) as { public_key: string }).public_key)
  return keys
}
