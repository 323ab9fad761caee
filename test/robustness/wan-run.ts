import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { PG_SOCKET } from '../../bench/wan/fleet.js'
import { checkPrerequisites, createNetwork, destroyNetwork, leftovers, sweepStale } from '../../bench/wan/netns.js'
import { ROOT } from '../helpers/node-process.js'
import type { RunReport } from './run.js'
import { wanTopology } from './wan-network.js'

/**
 * A `--store wan` seed: makes the WAN harness's namespaces (needs root), runs the seed inside
 * the hub namespace (wan-child.ts), and whatever happens removes every namespace, process,
 * database and temp file of the run, then checks nothing is left.
 */
export async function runWanSeed (seed: number, minutes: number, say: (line: string) => void): Promise<RunReport> {
  await checkPrerequisites()
  const swept = await sweepStale()
  if (swept.length > 0) say(`[robustness] removed what earlier WAN runs left: ${swept.join(', ')}`)
  // `p<pid>`: what sweepStale recognizes (a run killed outright is swept by the next)
  const topo = wanTopology(`p${process.pid}`)
  const runDir = mkdtempSync(join(tmpdir(), `lmrobust-${topo.runId}-`))
  const reportFile = join(runDir, 'report.json')
  try {
    await createNetwork(topo)
    const child = spawn('ip', ['netns', 'exec', topo.hubNs, process.execPath, '--import', join(ROOT, 'scripts', 'with-resolvers.mjs'), '--import', 'tsx',
      join(ROOT, 'test', 'robustness', 'wan-child.ts'), JSON.stringify(topo), String(seed), String(minutes), reportFile], {
      cwd: ROOT,
      stdio: 'inherit',
      env: { ...process.env, TMPDIR: runDir }
    })
    const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
    if (code !== 0) throw new Error(`seed ${seed} (wan): the run inside the hub namespace exited with ${String(code)}`)
    return JSON.parse(readFileSync(reportFile, 'utf8')) as RunReport
  } finally {
    await destroyNetwork(topo.runId)
    await dropDatabase(`lmwan_${topo.runId}`).catch((err: unknown) => { say(`[robustness] dropping the WAN run's database: ${String(err)}`) })
    rmSync(runDir, { recursive: true, force: true })
    const left = await leftovers(topo.runId)
    if (left.length > 0) say(`[robustness] seed ${seed}: NOT clean: ${left.join('; ')}`)
  }
}

async function dropDatabase (database: string): Promise<void> {
  const client = new pg.Client({ host: PG_SOCKET, user: process.env.PGUSER ?? 'postgres', database: 'postgres', connectionTimeoutMillis: 5000 })
  await client.connect()
  try { await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`) } finally { await client.end() }
}
