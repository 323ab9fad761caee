import { startNode, type NodeProcess } from '../test/helpers/node-process.js'
import { waitFor } from '../test/helpers/net.js'

/**
 * propagation: a master and N replica processes on loopback; each insert on the master is
 * timed until every replica has applied it. A replica's "applied" time is read from its own
 * debug log line (pino's timestamp, same clock), so measuring costs the replicas nothing.
 */
export interface PropagationResult {
  replicas: number
  inserts: number
  p50_ms: number
  p99_ms: number
  max_ms: number
}

function percentile (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

/** When a replica applied seq, from its log lines `{"time": ..., "head": <seq>, "msg": "sync batch applied"}`. */
function appliedAt (node: NodeProcess, seq: number): number | undefined {
  for (const line of node.stderr) {
    if (!line.includes('sync batch applied') && !line.includes('sync pull applied entries')) continue
    const entry = JSON.parse(line) as { time: string, head: number }
    if (entry.head >= seq) return Date.parse(entry.time)
  }
  return undefined
}

export async function propagation (opts: { replicas: number, inserts: number }): Promise<PropagationResult> {
  const cleanups: Array<() => void | Promise<void>> = []
  const t = { teardown: (fn: () => void | Promise<void>) => { cleanups.push(fn) } }
  try {
    const master = await startNode(t, { type: 'master', name: 'bench-master', env: { LOG_LEVEL: 'info' } })
    const replicas: NodeProcess[] = []
    for (let i = 0; i < opts.replicas; i += 5) {
      replicas.push(...await Promise.all(Array.from({ length: Math.min(5, opts.replicas - i) }, async (_, j) =>
        await startNode(t, { type: 'member', name: `bench-r${i + j}`, env: { LEDGER_CONN: master.ledgerConn, LOG_LEVEL: 'info', BLOCKCHAIN_SYNC: '30 second' } }))))
    }
    const latencies: number[] = []
    for (let i = 0; i < opts.inserts; i++) {
      const started = Date.now()
      const reply = await master.ok('blockchain insert where policy=!p', { method: 'POST', body: `<p = {"probe": {"name": "p${i}-${started}"}}>` })
      const seq = Number(/seq (\d+)/.exec(reply.text)?.[1])
      const times = await waitFor(`insert ${i} on every replica`, () => {
        const seen = replicas.map(r => appliedAt(r, seq))
        return seen.every(s => s !== undefined) ? seen as number[] : undefined
      }, { timeoutMs: 30_000, everyMs: 20 })
      latencies.push(Math.max(...times) - started)
      for (const r of replicas) r.stderr.length = 0
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    latencies.sort((a, b) => a - b)
    return { replicas: opts.replicas, inserts: opts.inserts, p50_ms: percentile(latencies, 50), p99_ms: percentile(latencies, 99), max_ms: latencies[latencies.length - 1] }
  } finally {
    for (const fn of cleanups.reverse()) await fn()
  }
}
