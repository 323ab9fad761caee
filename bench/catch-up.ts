import { AnyLogNode } from './lib/anylog.js'
import { type Child, spawnChild } from './lib/child.js'
import { type Cleanup, cpuMsSince, envInt, envInts, median, round, tempDir, withCleanup } from './lib/harness.js'
import { pullTo, startReplica, viaPort } from './lib/replica.js'

/**
 * catch-up: a fresh replica syncing a whole ledger from the master, beside the AnyLog model
 * (one round that ships the whole blockchain.json) on the same policies.
 *
 * The master runs in its own process (bench/lib/master-child.ts), the replica here, and both
 * connections go through a byte-counting proxy process (bench/lib/count-proxy.ts): bytes are
 * TCP payload both ways, connection set-up included (for libp2p: multistream, the noise
 * handshake, identify, yamux). The replica's time covers dial, every request, and the full
 * verification (chain links, head signature, each policy's id, signature, schema and
 * authorization) and the LevelDB writes. CPU is per process (every thread).
 */
export interface CatchUpRow {
  policies: number
  /** runs measured; the numbers are their medians */
  runs: number
  seconds: number
  entries_per_s: number
  wire_bytes: number
  wire_bytes_per_entry: number
  replica_cpu_s: number
  master_cpu_s: number
  anylog_seconds: number
  anylog_wire_bytes: number
  anylog_replica_cpu_s: number
  anylog_master_cpu_s: number
  /** ledgermesh ÷ AnyLog model (below 1: ledgermesh is cheaper) */
  time_ratio: number
  bytes_ratio: number
  /** goal: < 10 s at 100,000 */
  goal?: string
}

/** A master child holding `policies`, and a proxy in front of its two ports. */
export async function masterBehindProxy (t: Cleanup, policies: number, tag = 'm'): Promise<{ master: Child, proxy: Child, p2pPort: number, anylogPort: number }> {
  const master = await spawnChild(t, 'master-child.ts', { home: tempDir(t, 'lm-bench-master-'), policies, tag })
  const proxy = await spawnChild(t, 'count-proxy.ts', {})
  const { port: p2pPort } = await proxy.call<{ port: number }>('listen', { targetPort: master.ready.port })
  const { port: anylogPort } = await proxy.call<{ port: number }>('listen', { targetPort: master.ready.anylogPort })
  return { master, proxy, p2pPort, anylogPort }
}

export const proxyBytes = async (proxy: Child, port: number): Promise<number> => {
  const { up, down } = await proxy.call<{ up: number, down: number }>('bytes', { port })
  return up + down
}
export const masterCpuMs = async (master: Child): Promise<number> => (await master.call<{ cpuMs: number }>('cpu')).cpuMs

interface Run { seconds: number, bytes: number, replicaCpuMs: number, masterCpuMs: number }

async function oneSize (policies: number, runs: number): Promise<CatchUpRow> {
  return await withCleanup(async t => {
    const { master, proxy, p2pPort, anylogPort } = await masterBehindProxy(t, policies)
    const head = master.ready.head as number
    const ours: Run[] = []
    const theirs: Run[] = []
    for (let r = 0; r < runs; r++) {
      await withCleanup(async tr => {
        const replica = await startReplica(tr)
        const bytes0 = await proxyBytes(proxy, p2pPort)
        const masterCpu0 = await masterCpuMs(master)
        const cpu0 = process.cpuUsage()
        const start = performance.now()
        await pullTo(replica, viaPort(p2pPort, master.ready.peerId), head)
        const seconds = (performance.now() - start) / 1000
        const replicaCpuMs = cpuMsSince(cpu0)
        ours.push({ seconds, replicaCpuMs, masterCpuMs: await masterCpuMs(master) - masterCpu0, bytes: await proxyBytes(proxy, p2pPort) - bytes0 })
      })
      const node = new AnyLogNode(tempDir(t, 'lm-bench-anylog-'))
      const bytes0 = await proxyBytes(proxy, anylogPort)
      const masterCpu0 = await masterCpuMs(master)
      const cpu0 = process.cpuUsage()
      const start = performance.now()
      const round1 = await node.syncRound(anylogPort)
      const seconds = (performance.now() - start) / 1000
      const replicaCpuMs = cpuMsSince(cpu0)
      if (round1.policies !== head) throw new Error(`AnyLog model loaded ${round1.policies} policies, want ${head}`)
      theirs.push({ seconds, replicaCpuMs, masterCpuMs: await masterCpuMs(master) - masterCpu0, bytes: await proxyBytes(proxy, anylogPort) - bytes0 })
    }
    const m = (runs: Run[], key: keyof Run): number => median(runs.map(r => r[key]))
    const seconds = m(ours, 'seconds')
    const bytes = m(ours, 'bytes')
    return {
      policies: head,
      runs,
      seconds: round(seconds, 3),
      entries_per_s: Math.round(head / seconds),
      wire_bytes: bytes,
      wire_bytes_per_entry: round(bytes / head, 1),
      replica_cpu_s: round(m(ours, 'replicaCpuMs') / 1000, 3),
      master_cpu_s: round(m(ours, 'masterCpuMs') / 1000, 3),
      anylog_seconds: round(m(theirs, 'seconds'), 3),
      anylog_wire_bytes: m(theirs, 'bytes'),
      anylog_replica_cpu_s: round(m(theirs, 'replicaCpuMs') / 1000, 3),
      anylog_master_cpu_s: round(m(theirs, 'masterCpuMs') / 1000, 3),
      time_ratio: round(seconds / m(theirs, 'seconds'), 2),
      bytes_ratio: round(bytes / m(theirs, 'bytes'), 3),
      ...(head >= 100_000 ? { goal: `< 10 s: ${seconds < 10 ? 'met' : 'missed'}` } : {})
    }
  })
}

/** Sizes from BENCH_CATCHUP_SIZES (else BENCH_POLICIES), default 10,000 and 100,000. */
export async function catchUp (opts: { sizes?: number[], runs?: number } = {}): Promise<CatchUpRow[]> {
  const sizes = opts.sizes ?? envInts('BENCH_CATCHUP_SIZES', envInts('BENCH_POLICIES', [10_000, 100_000]))
  const rows: CatchUpRow[] = []
  for (const size of sizes) {
    const runs = opts.runs ?? envInt('BENCH_RUNS', size <= 20_000 ? 3 : 1)
    rows.push(await oneSize(size, Math.max(1, runs)))
  }
  return rows
}
