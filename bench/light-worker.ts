import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type NodeProcess, ROOT, createJoinToken, startNode } from '../test/helpers/node-process.js'
import { httpJson, httpRequest } from '../test/helpers/http.js'
import { waitFor } from '../test/helpers/net.js'
import { benchPolicies, envInt, median, round, waitQuiet, withCleanup } from './lib/harness.js'
import { preparedHome } from './rest.js'

/**
 * light-worker: a worker joining a network whose ledger holds N policies (BENCH_POLICIES,
 * default 100,000), as a light worker (LEDGER_MODE=light) and as a full replica, in the same
 * run: the time from its process's start until its profiles run (every one RUNNING, as
 * `get profiles` shows), and its resident set (VmRSS, VmHWM from /proc) then and a few seconds
 * later. Real `ledgermesh start` processes from dist/: a master on a prepared LevelDB ledger, a
 * slave (a full replica), then each worker with three profiles of its own kind waiting for it.
 * Each light row is BENCH_LIGHT_RUNS workers (default 5) one after another: its ready time is
 * their median, with the slowest beside it. Before each worker the master and the slave are
 * left to go quiet (waitQuiet: a slave that just caught up 100,000 entries hashes and collects
 * for seconds), and its join token is made before its clock starts, as an operator hands one out.
 * Goal (issue "Light workers"): RSS < 80 MB and ready < 1 s at 100,000 policies.
 */
export interface LightWorkerRow {
  worker: string
  policies: number
  /** policies the worker holds (its replica, or its light state) */
  held: number
  /** workers started in this row (their median ready time is ready_s) */
  runs: number
  ready_s: number
  ready_max_s: number
  rss_mb: number
  rss_3s_later_mb: number
  peak_rss_mb: number
  goal?: string
}

const PROFILES = 3
const RUNNER = `${process.execPath} ${join(ROOT, 'scripts', 'demo-runner.mjs')}`

function procMb (pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (match === null) throw new Error(`no ${field} for pid ${pid}`)
  return round(Number(match[1]) / 1024, 1)
}

async function insert (node: NodeProcess, policy: object): Promise<void> {
  const reply = await httpRequest(`${node.url}/v1/policies`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(policy), timeoutMs: 30_000 })
  if (reply.status !== 201) throw new Error(`insert answered ${reply.status}: ${reply.text}`)
}

interface WorkerRun { ready: number, held: number, rss: number, rssLater: number, peak: number }

export async function lightWorker (opts: { policies?: number, runs?: number } = {}): Promise<LightWorkerRow[]> {
  const policies = opts.policies ?? benchPolicies()
  const runs = opts.runs ?? envInt('BENCH_LIGHT_RUNS', 5)
  return await withCleanup(async t => {
    const home = await preparedHome(t, policies)
    const master = await startNode(t, { type: 'master', name: 'bench-master', home, startWithinMs: 120_000 })
    const slave = await startNode(t, { type: 'slave', name: 'bench-slave', env: { LEDGER_CONN: master.ledgerConn, SLOTS: 2 }, startWithinMs: 120_000 })
    await waitFor('the slave to catch up', async () => ((await httpJson(`${slave.url}/v1/ledger/head`, 5000)) as { seq: number }).seq >= policies ? true : undefined, { timeoutMs: 300_000, everyMs: 500 })
    await insert(master, { subaccount: { name: 'bench-acme', account: 'bench' } })

    /** One worker of `mode`, its own kind of profiles waiting for it, from its start until they run. */
    const runWorker = async (name: string, mode: 'light' | 'full', nodeOptions?: string): Promise<WorkerRun> => {
      for (let i = 0; i < PROFILES; i++) await insert(master, { profile: { name: `${name}-${i}`, kind: name, subaccount: 'bench-acme', settings: { heartbeat_ms: 1000 } } })
      await waitQuiet([master.proc.pid!, slave.proc.pid!])
      const token = await createJoinToken(master)
      if (token === undefined) throw new Error('the master made no join token')
      const started = performance.now()
      const worker = await startNode(t, {
        type: 'worker',
        name,
        join: false,
        ...(nodeOptions !== undefined ? { processEnv: { NODE_OPTIONS: nodeOptions } } : {}),
        env: { LEDGER_CONN: master.ledgerConn, JOIN_TOKEN: token, LOG_LEVEL: 'warn', SLAVE_NAME: 'bench-slave', SLOTS: PROFILES, PROFILE_KINDS: name, [`PROFILE_RUNNER_${name.toUpperCase().replace(/-/g, '_')}`]: RUNNER, LEDGER_MODE: mode },
        noWait: true
      })
      await waitFor(`the ${mode} worker's profiles to run`, async () => {
        if (worker.exitCode !== undefined) throw new Error(`the worker exited with ${String(worker.exitCode)}:\n${worker.logs()}`)
        const body = await httpJson(`${worker.url}/v1/profiles`, 5000).catch(() => undefined) as { profiles?: Array<{ state: string }> } | undefined
        return body?.profiles?.length === PROFILES && body.profiles.every(p => p.state === 'RUNNING') ? true : undefined
      }, { timeoutMs: 300_000, everyMs: 25 })
      const ready = (performance.now() - started) / 1000
      const pid = worker.proc.pid!
      const rss = procMb(pid, 'VmRSS')
      await new Promise(resolve => setTimeout(resolve, 3000))
      const status = await httpJson(`${worker.url}/v1/status`, 5000) as { ledger?: { policies: number } }
      const run = { ready, held: status.ledger?.policies ?? 0, rss, rssLater: procMb(pid, 'VmRSS'), peak: procMb(pid, 'VmHWM') }
      await worker.stop()
      return run
    }

    const rows: LightWorkerRow[] = []
    // the light worker again with a young generation of at most 1 MB per semi-space (V8's
    // default grows it to 16 MB each on start-up's allocations): what RSS owes to the heap's sizing
    const modes = [{ mode: 'light', label: 'light', runs }, { mode: 'light', label: 'light, NODE_OPTIONS=--max-semi-space-size=1', nodeOptions: '--max-semi-space-size=1', runs }, { mode: 'full', label: 'full', runs: 1 }] as const
    for (const [index, mode] of modes.entries()) {
      const done: WorkerRun[] = []
      for (let i = 0; i < mode.runs; i++) done.push(await runWorker(`bench-${index}-${mode.mode}-${i}`, mode.mode, 'nodeOptions' in mode ? mode.nodeOptions : undefined))
      const readies = done.map(r => r.ready)
      const typical = done.find(r => r.ready === median(readies))!
      const row: LightWorkerRow = {
        worker: mode.label,
        policies,
        held: typical.held,
        runs: done.length,
        ready_s: round(median(readies), 2),
        ready_max_s: round(Math.max(...readies), 2),
        rss_mb: typical.rss,
        rss_3s_later_mb: typical.rssLater,
        peak_rss_mb: Math.max(...done.map(r => r.peak))
      }
      if (index === 0 && policies >= 100_000) row.goal = `RSS < 80 MB: ${row.peak_rss_mb < 80 ? 'met' : 'missed'}; ready < 1 s (median of ${done.length}): ${row.ready_s < 1 ? 'met' : 'missed'}`
      rows.push(row)
    }
    return rows
  })
}
