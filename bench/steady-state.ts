import { AnyLogNode } from './lib/anylog.js'
import type { Child } from './lib/child.js'
import { benchPolicies, cpuMsSince, envInt, round, tempDir, withCleanup } from './lib/harness.js'
import { pullTo, type Replica, startReplica, viaPort } from './lib/replica.js'
import { masterBehindProxy, masterCpuMs, proxyBytes } from './catch-up.js'

/**
 * steady-state: what one sync round costs once the replica is current, at N policies
 * (BENCH_POLICIES, default 100,000), when nothing changed and when one policy changed —
 * ledgermesh's pull (the anti-entropy round, on the open connection) beside the AnyLog
 * model's round (digest exchange; the whole file when it differs), same master, same proxy.
 * Also the push path replicas use between pulls: a watch stream that carries each new
 * entry, and its keepalive when idle.
 *
 * Bytes: TCP payload both ways through the counting proxy. CPU: the replica's (this process)
 * and the master's (its process), per round, less the cost of asking the master for it.
 */
export interface SteadyRow {
  policies: number
  case: string
  rounds: number
  wire_bytes_per_round: number
  replica_cpu_ms_per_round: number
  master_cpu_ms_per_round: number
  ms_per_round: number
  anylog_wire_bytes_per_round: number
  anylog_replica_cpu_ms_per_round: number
  anylog_master_cpu_ms_per_round: number
  anylog_ms_per_round: number
  /** ledgermesh ÷ AnyLog model */
  bytes_ratio: number
  /** (replica + master CPU) ledgermesh ÷ AnyLog model */
  cpu_ratio: number
  goal?: string
}

interface Cost { bytes: number, replicaMs: number, masterMs: number, wallMs: number }

/** Measures `rounds` calls of `round` together: bytes through `port`, CPU on both sides. */
async function measure (master: Child, proxy: Child, port: number, rpcMs: number, rounds: number, round: (i: number) => Promise<void>, between?: (i: number) => Promise<void>): Promise<Cost> {
  const total: Cost = { bytes: 0, replicaMs: 0, masterMs: 0, wallMs: 0 }
  // Without work between rounds (`between`), all rounds run inside one measurement.
  const groups = between === undefined ? [[...Array(rounds).keys()]] : [...Array(rounds).keys()].map(i => [i])
  for (const group of groups) {
    if (between !== undefined) await between(group[0])
    const bytes0 = await proxyBytes(proxy, port)
    const master0 = await masterCpuMs(master)
    const cpu0 = process.cpuUsage()
    const start = performance.now()
    for (const i of group) await round(i)
    total.wallMs += performance.now() - start
    total.replicaMs += cpuMsSince(cpu0)
    total.masterMs += await masterCpuMs(master) - master0 - rpcMs
    total.bytes += await proxyBytes(proxy, port) - bytes0
  }
  return { bytes: total.bytes / rounds, replicaMs: total.replicaMs / rounds, masterMs: Math.max(0, total.masterMs / rounds), wallMs: total.wallMs / rounds }
}

/** The master CPU one `cpu` request itself costs (measured, subtracted from each reading). */
async function rpcOverheadMs (master: Child): Promise<number> {
  const readings: number[] = []
  for (let i = 0; i < 21; i++) readings.push(await masterCpuMs(master))
  return (readings[20] - readings[0]) / 20
}

async function waitForHead (replica: Replica, head: number, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (replica.ledger.head.seq < head) {
    if (Date.now() > end) throw new Error(`watch: replica at ${replica.ledger.head.seq}, want ${head}`)
    await new Promise(resolve => setTimeout(resolve, 1))
  }
}

export async function steadyState (opts: { policies?: number, rounds?: number, keepaliveWindowMs?: number } = {}): Promise<SteadyRow[]> {
  const policies = opts.policies ?? benchPolicies()
  const rounds = opts.rounds ?? envInt('BENCH_ROUNDS', 20)
  const keepaliveWindowMs = opts.keepaliveWindowMs ?? envInt('BENCH_KEEPALIVE_WINDOW_MS', 10_500)
  return await withCleanup(async t => {
    const { master, proxy, p2pPort, anylogPort } = await masterBehindProxy(t, policies, 's')
    const target = viaPort(p2pPort, master.ready.peerId)
    let head = master.ready.head as number
    const replica = await startReplica(t)
    await pullTo(replica, target, head)
    const node = new AnyLogNode(tempDir(t, 'lm-bench-anylog-'))
    await node.syncRound(anylogPort)
    const rpcMs = await rpcOverheadMs(master)
    const put = async (): Promise<void> => { head = (await master.call<{ head: number }>('put')).head }

    const oursUnchanged = await measure(master, proxy, p2pPort, rpcMs, rounds, async () => {
      if ((await replica.sync.pull(target)).applied !== 0) throw new Error('steady-state: an unchanged round applied entries')
    })
    const theirsUnchanged = await measure(master, proxy, anylogPort, rpcMs, rounds, async () => {
      if ((await node.syncRound(anylogPort)).changed) throw new Error('steady-state: the AnyLog model shipped the file with nothing changed')
    })
    // one changed: the master appends one policy before each round (not measured), then both sync
    const oursChanged = await measure(master, proxy, p2pPort, rpcMs, rounds, async () => {
      if ((await replica.sync.pull(target)).applied !== 1) throw new Error('steady-state: a one-changed round did not apply one entry')
    }, put)
    const theirsChanged = await measure(master, proxy, anylogPort, rpcMs, rounds, async () => {
      if (!(await node.syncRound(anylogPort)).changed) throw new Error('steady-state: the AnyLog model did not ship the changed file')
    }, put)
    await pullTo(replica, target, head)

    // push: a watch stream open on the same connection; each put arrives unasked
    const watch = replica.sync.watch(target, { onApplied: () => {}, onClose: () => {} })
    t.teardown(() => { watch.close() })
    await waitForHead(replica, head)
    await new Promise(resolve => setTimeout(resolve, 200))
    const pushed = await measure(master, proxy, p2pPort, rpcMs, rounds, async () => {
      const want = head + 1
      await put()
      await waitForHead(replica, want)
    })
    // the master's put is inside that measurement: take its cost out with puts nobody watches
    watch.close()
    await new Promise(resolve => setTimeout(resolve, 200))
    const putAlone = await measure(master, proxy, p2pPort, rpcMs, rounds, put)
    await pullTo(replica, target, head)
    const watch2 = replica.sync.watch(target, { onApplied: () => {}, onClose: () => {} })
    t.teardown(() => { watch2.close() })
    await waitForHead(replica, head)
    await new Promise(resolve => setTimeout(resolve, 200))
    const idle = await measure(master, proxy, p2pPort, rpcMs, 1, async () => {
      await new Promise(resolve => setTimeout(resolve, keepaliveWindowMs))
    })
    watch2.close()
    const keepalives = Math.max(1, Math.floor(keepaliveWindowMs / 5000))

    const row = (name: string, ours: Cost, theirs: Cost, n: number, goal?: string): SteadyRow => ({
      policies: head,
      case: name,
      rounds: n,
      wire_bytes_per_round: Math.round(ours.bytes),
      replica_cpu_ms_per_round: round(ours.replicaMs, 3),
      master_cpu_ms_per_round: round(ours.masterMs, 3),
      ms_per_round: round(ours.wallMs, 3),
      anylog_wire_bytes_per_round: Math.round(theirs.bytes),
      anylog_replica_cpu_ms_per_round: round(theirs.replicaMs, 3),
      anylog_master_cpu_ms_per_round: round(theirs.masterMs, 3),
      anylog_ms_per_round: round(theirs.wallMs, 3),
      bytes_ratio: round(ours.bytes / theirs.bytes, 5),
      cpu_ratio: round((ours.replicaMs + ours.masterMs) / (theirs.replicaMs + theirs.masterMs), 4),
      ...(goal !== undefined ? { goal } : {})
    })
    const pushOnly: Cost = {
      bytes: pushed.bytes,
      replicaMs: Math.max(0, pushed.replicaMs - putAlone.replicaMs),
      masterMs: Math.max(0, pushed.masterMs - putAlone.masterMs),
      wallMs: pushed.wallMs
    }
    const perKeepalive: Cost = { bytes: idle.bytes / keepalives, replicaMs: idle.replicaMs / keepalives, masterMs: idle.masterMs / keepalives, wallMs: idle.wallMs / keepalives }
    return [
      row('unchanged (pull round)', oursUnchanged, theirsUnchanged, rounds, `< 256 B: ${oursUnchanged.bytes < 256 ? 'met' : 'missed'}`),
      row('one changed (pull round)', oursChanged, theirsChanged, rounds),
      row('one changed (watch push; ms = insert to applied)', pushOnly, theirsChanged, rounds),
      row('idle watch keepalive (per 5 s)', perKeepalive, theirsUnchanged, keepalives)
    ]
  })
}
