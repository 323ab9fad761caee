import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type NodeProcess, ROOT, startNode } from '../test/helpers/node-process.js'
import { httpJson, httpRequest } from '../test/helpers/http.js'
import { waitFor } from '../test/helpers/net.js'
import { benchPolicies, round, withCleanup } from './lib/harness.js'
import { preparedHome } from './rest.js'

/**
 * light-worker: a worker joining a network whose ledger holds N policies (BENCH_POLICIES,
 * default 100,000), as a light worker (LEDGER_MODE=light) and as a full replica, in the same
 * run: the time from its process's start until its profiles run (every one RUNNING, as
 * `get profiles` shows), and its resident set (VmRSS, VmHWM from /proc) then and a few seconds
 * later. Real `ledgermesh start` processes from dist/: a master on a prepared LevelDB ledger, a
 * slave (a full replica), then each worker with three profiles of its own kind waiting for it.
 * Goal (issue "Light workers"): RSS < 80 MB and ready < 1 s at 100,000 policies.
 */
export interface LightWorkerRow {
  worker: string
  policies: number
  /** policies the worker holds (its replica, or its light state) */
  held: number
  ready_s: number
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

export async function lightWorker (opts: { policies?: number } = {}): Promise<LightWorkerRow[]> {
  const policies = opts.policies ?? benchPolicies()
  return await withCleanup(async t => {
    const home = await preparedHome(t, policies)
    const master = await startNode(t, { type: 'master', name: 'bench-master', home, startWithinMs: 120_000 })
    const slave = await startNode(t, { type: 'slave', name: 'bench-slave', env: { LEDGER_CONN: master.ledgerConn, SLOTS: 2 }, startWithinMs: 120_000 })
    await waitFor('the slave to catch up', async () => ((await httpJson(`${slave.url}/v1/ledger/head`, 5000)) as { seq: number }).seq >= policies ? true : undefined, { timeoutMs: 300_000, everyMs: 500 })
    await insert(master, { subaccount: { name: 'bench-acme', account: 'bench' } })
    const rows: LightWorkerRow[] = []
    // the light worker again with a young generation of at most 1 MB per semi-space (V8's
    // default grows it to 16 MB each on start-up's allocations): what RSS owes to the heap's sizing
    const modes = [{ mode: 'light', label: 'light' }, { mode: 'light', label: 'light, NODE_OPTIONS=--max-semi-space-size=1', nodeOptions: '--max-semi-space-size=1' }, { mode: 'full', label: 'full' }] as const
    for (const [index, run] of modes.entries()) {
      const { mode } = run
      const kind = `bench-${index}-${mode}`
      for (let i = 0; i < PROFILES; i++) await insert(master, { profile: { name: `${kind}-${i}`, kind, subaccount: 'bench-acme', settings: { heartbeat_ms: 1000 } } })
      const started = performance.now()
      const worker = await startNode(t, {
        type: 'worker',
        name: `bench-worker-${index}-${mode}`,
        master,
        ...('nodeOptions' in run ? { processEnv: { NODE_OPTIONS: run.nodeOptions } } : {}),
        env: { LEDGER_CONN: master.ledgerConn, LOG_LEVEL: 'warn', SLAVE_NAME: 'bench-slave', SLOTS: PROFILES, PROFILE_KINDS: kind, [`PROFILE_RUNNER_${kind.toUpperCase().replace(/-/g, '_')}`]: RUNNER, LEDGER_MODE: mode },
        noWait: true
      })
      await waitFor(`the ${mode} worker's profiles to run`, async () => {
        if (worker.exitCode !== undefined) throw new Error(`the worker exited with ${String(worker.exitCode)}:\n${worker.logs()}`)
        const body = await httpJson(`${worker.url}/v1/profiles`, 5000).catch(() => undefined) as { profiles?: Array<{ state: string }> } | undefined
        return body?.profiles?.length === PROFILES && body.profiles.every(p => p.state === 'RUNNING') ? true : undefined
      }, { timeoutMs: 300_000, everyMs: 50 })
      const ready = (performance.now() - started) / 1000
      const pid = worker.proc.pid!
      const rss = procMb(pid, 'VmRSS')
      await new Promise(resolve => setTimeout(resolve, 3000))
      const status = await httpJson(`${worker.url}/v1/status`, 5000) as { ledger?: { policies: number } }
      const row: LightWorkerRow = { worker: run.label, policies, held: status.ledger?.policies ?? 0, ready_s: round(ready, 2), rss_mb: rss, rss_3s_later_mb: procMb(pid, 'VmRSS'), peak_rss_mb: procMb(pid, 'VmHWM') }
      if (mode === 'light' && index === 0 && policies >= 100_000) row.goal = `RSS < 80 MB: ${row.peak_rss_mb < 80 ? 'met' : 'missed'}; ready < 1 s: ${row.ready_s < 1 ? 'met' : 'missed'}`
      rows.push(row)
      await worker.stop()
    }
    return rows
  })
}
