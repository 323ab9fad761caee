import { readFileSync } from 'node:fs'
import { startNode } from '../test/helpers/node-process.js'
import { waitFor } from '../test/helpers/net.js'
import { spawnChild } from './lib/child.js'
import { benchPolicies, round, tempDir, withCleanup } from './lib/harness.js'

/**
 * memory: the resident set (RSS) of a replica holding N policies (BENCH_POLICIES, default
 * 100,000), synced from a master process over libp2p.
 *
 * - `replica process`: a process holding only a replica (libp2p host, LevelDB ledger, sync
 *   protocol; bench/lib/replica-child.mjs on dist/), measured with process.memoryUsage()
 *   after full GCs: before the sync, after it, and after a restart (ledger closed and
 *   reopened: the state folded from disk).
 * - `ledgermesh node`: a real `ledgermesh start` member node (dist/; bench/run.ts builds it when stale)
 *   that catches up from the same master; its VmRSS and VmHWM (peak) from /proc, no forced GC.
 */
export interface MemoryRow {
  process: string
  policies: number
  rss_mb: number
  heap_used_mb?: number
  /** V8 heap reserved (used + free pages kept) */
  heap_total_mb?: number
  external_mb?: number
  /** RSS split: the process's own memory, and mapped files (LevelDB's tables) */
  rss_anon_mb?: number
  rss_file_mb?: number
  peak_rss_mb?: number
  goal?: string
}

const mb = (bytes: number): number => round(bytes / 2 ** 20, 1)

function procStatusMb (pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (match === null) throw new Error(`no ${field} for pid ${pid}`)
  return round(Number(match[1]) / 1024, 1)
}

/** The goals at 100,000 policies: a full replica's RSS under 200 MB, its peak while catching up under 400 MB. */
const goal = (rssMb: number, policies: number): string | undefined => policies >= 100_000 ? `< 200 MB: ${rssMb < 200 ? 'met' : 'missed'}` : undefined
const peakGoal = (peakMb: number, policies: number): string | undefined => policies >= 100_000 ? `peak < 400 MB: ${peakMb < 400 ? 'met' : 'missed'}` : undefined

export async function replicaMemory (opts: { policies?: number, realNode?: boolean } = {}): Promise<MemoryRow[]> {
  const policies = opts.policies ?? benchPolicies()
  return await withCleanup(async t => {
    const master = await spawnChild(t, 'master-child.ts', { home: tempDir(t, 'lm-bench-master-'), policies, tag: 'mem' })
    const head = master.ready.head as number
    const rows: MemoryRow[] = []
    const replica = await spawnChild(t, 'replica-child.mjs', { addr: master.ready.addr, head }, { nodeArgs: ['--expose-gc'] })
    const row = (name: string, held: number, m: NodeJS.MemoryUsage & { rssAnon?: number, rssFile?: number }): MemoryRow => ({
      process: name, policies: held, rss_mb: mb(m.rss), heap_used_mb: mb(m.heapUsed), heap_total_mb: mb(m.heapTotal), external_mb: mb(m.external), rss_anon_mb: mb(m.rssAnon ?? NaN), rss_file_mb: mb(m.rssFile ?? NaN), ...(goal(mb(m.rss), held) !== undefined ? { goal: goal(mb(m.rss), held) } : {})
    })
    rows.push(row('replica process, before sync (after GC)', 0, await replica.call('memory') as unknown as NodeJS.MemoryUsage))
    const synced = await replica.call<{ policies: number }>('sync')
    rows.push(row('replica process, synced (after GC)', synced.policies, await replica.call('memory') as unknown as NodeJS.MemoryUsage))
    const reopened = await replica.call<{ policies: number }>('reopen')
    rows.push(row('replica process, restarted: folded from disk (after GC)', reopened.policies, await replica.call('memory') as unknown as NodeJS.MemoryUsage))

    if (opts.realNode !== false) {
      const node = await startNode(t, {
        type: 'member',
        name: 'bench-replica',
        env: { LEDGER_CONN: `127.0.0.1:${master.ready.port as number}`, LOG_LEVEL: 'warn', BLOCKCHAIN_SYNC: '30 seconds' },
        noWait: true
      })
      t.teardown(async () => { await node.stop() })
      const pid = node.proc.pid!
      const held = await waitFor('the ledgermesh node to catch up', async () => {
        if (node.exitCode !== undefined) throw new Error(`the node exited with ${String(node.exitCode)}:\n${node.logs()}`)
        const response = await fetch(`${node.url}/v1/ledger/head`, { signal: AbortSignal.timeout(5000) })
        const body = await response.json() as { seq: number }
        return body.seq >= head ? body.seq : undefined
      }, { timeoutMs: 150_000, everyMs: 250 })
      // let the start-up script finish and the sync settle
      await new Promise(resolve => setTimeout(resolve, 3000))
      const rss = procStatusMb(pid, 'VmRSS')
      const peak = procStatusMb(pid, 'VmHWM')
      const goals = [goal(rss, held), peakGoal(peak, held)].filter(g => g !== undefined)
      rows.push({ process: 'ledgermesh node (member, dist/), synced, 3 s later', policies: held, rss_mb: rss, peak_rss_mb: peak, ...(goals.length > 0 ? { goal: goals.join('; ') } : {}) })
    }
    const masterMemory = await master.call<{ rss: number, heapUsed: number, external: number }>('memory')
    rows.push({ process: 'benchmark master process (for reference, no forced GC)', policies: head, rss_mb: mb(masterMemory.rss), heap_used_mb: mb(masterMemory.heapUsed), external_mb: mb(masterMemory.external) })
    return rows
  })
}
