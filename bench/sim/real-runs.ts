import { startNode, type NodeProcess } from '../../test/helpers/node-process.js'
import { processCpuMs, withCleanup } from '../lib/harness.js'
import { timedInsert } from '../propagation.js'

/**
 * Real propagation runs on loopback, for the simulator to be calibrated on and checked against:
 * a master and `replicas` member processes (the first `relays` of them syncing from the master
 * and the rest from those relays, round-robin; no relays: all from the master), `inserts`
 * inserts one after another, each timed until every replica applied it (as bench/propagation.ts
 * times them), and every process's CPU read from /proc before and after, and over an idle
 * window of the same length before the inserts.
 */
export interface RealRun {
  replicas: number
  relays: number
  inserts: number
  /** per insert: ms from the insert to each replica's apply (index = replica) */
  lags: number[][]
  /** per insert: the last replica's lag */
  latencies: number[]
  /** CPU per insert, ms, idle CPU taken out: the master's, and each replica's */
  masterCpuMsPerInsert: number
  replicaCpuMsPerInsert: number[]
  /** idle CPU per process as a fraction of a core */
  idleLoad: number
  /** ms from one insert to the next (its propagation, then a 50 ms pause) */
  periodMs: number
}

export async function realRun (opts: { replicas: number, relays?: number, inserts: number }): Promise<RealRun> {
  const relays = Math.min(opts.relays ?? 0, opts.replicas)
  return await withCleanup(async t => {
    const master = await startNode(t, { type: 'master', name: 'sim-master', env: { LOG_LEVEL: 'info' } })
    const replicas: NodeProcess[] = []
    const sourceOf = (i: number): string => relays === 0 || i < relays ? master.ledgerConn : `127.0.0.1:${replicas[i % relays].tcpPort}`
    // five at a time (fifty processes starting at once on two cores time out their start-up);
    // relays first, so the others can name them
    const start = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i += 5) {
        replicas.push(...await Promise.all(Array.from({ length: Math.min(5, to - i) }, async (_, j) =>
          await startNode(t, { type: 'member', name: `sim-r${i + j}`, env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SOURCE: sourceOf(i + j), LOG_LEVEL: 'info', BLOCKCHAIN_SYNC: '30 second' } }))))
      }
    }
    await start(0, relays)
    await start(relays, opts.replicas)
    const processes = [master, ...replicas]
    const cpu = (): number[] => processes.map(p => processCpuMs(p.proc.pid!))
    // let start-up settle, then measure what idle costs
    await new Promise(resolve => setTimeout(resolve, 3000))
    const idleStart = cpu()
    const idleStarted = Date.now()
    await new Promise(resolve => setTimeout(resolve, 4000))
    const idleMs = cpu().map((c, i) => c - idleStart[i])
    const idleWindow = Date.now() - idleStarted

    const before = cpu()
    const runStarted = Date.now()
    const lags: number[][] = []
    for (let i = 0; i < opts.inserts; i++) lags.push(await timedInsert(master, replicas, `s${i}`))
    const runMs = Date.now() - runStarted
    const used = cpu().map((c, i) => c - before[i] - (idleMs[i] * runMs) / idleWindow)
    return {
      replicas: opts.replicas,
      relays,
      inserts: opts.inserts,
      lags,
      latencies: lags.map(l => Math.max(...l)),
      masterCpuMsPerInsert: used[0] / opts.inserts,
      replicaCpuMsPerInsert: used.slice(1).map(c => c / opts.inserts),
      idleLoad: idleMs.reduce((a, b) => a + b, 0) / processes.length / idleWindow,
      periodMs: runMs / opts.inserts
    }
  })
}
