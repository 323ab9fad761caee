/**
 * `npm run wan`: the simulated wide-area network. Needs root (network namespaces). Creates the
 * namespaces (netns.ts), runs hub.ts inside the hub namespace, and whatever happens (an error,
 * Ctrl-C, SIGTERM) removes every namespace, link and process of the run and its database and
 * temp files, then checks that nothing is left. A run killed outright is swept by the next.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { PG_SOCKET } from './fleet.js'
import { checkPrerequisites, createNetwork, destroyNetwork, leftovers, netemAvailable, sweepStale } from './netns.js'
import { linksFromEnv, makeTopology, sizesFromEnv } from './topology.js'

const ROOT = join(import.meta.dirname, '..', '..')
const log = (line: string): void => { process.stdout.write(`[wan] ${line}\n`) }

await checkPrerequisites()
const swept = await sweepStale()
if (swept.length > 0) log(`removed what earlier runs left: ${swept.join(', ')}`)
const runId = `p${process.pid}`
const topo = makeTopology(runId, sizesFromEnv(), linksFromEnv())
log(`netem: ${await netemAvailable() ? 'available, but the link emulator is used (the same model everywhere)' : 'not in this kernel: the link emulator adds delay, jitter and stalls'}`)
const runDir = mkdtempSync(join(tmpdir(), `lmwan-${runId}-`))

let cleaning: Promise<void> | undefined
async function cleanUp (): Promise<string[]> {
  cleaning ??= (async () => {
    await destroyNetwork(runId)
    try {
      const client = new pg.Client({ host: PG_SOCKET, user: process.env.PGUSER ?? 'postgres', database: 'postgres', connectionTimeoutMillis: 5000 })
      await client.connect()
      try { await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(`lmwan_${runId}`)} WITH (FORCE)`) } finally { await client.end() }
    } catch (err) { log(`dropping the run's database: ${String(err)}`) }
    rmSync(runDir, { recursive: true, force: true })
  })()
  await cleaning
  return [...await leftovers(runId), ...processesOfRun()]
}

/** Processes whose command line names the run's directory (every node's env file is there). */
function processesOfRun (): string[] {
  const found: string[] = []
  for (const pid of readdirSync('/proc').filter(name => /^\d+$/.test(name))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      if (cmdline.includes(runDir) && Number(pid) !== process.pid) found.push(`process ${pid}: ${cmdline.replaceAll('\0', ' ').slice(0, 120)}`)
    } catch { /* gone meanwhile */ }
  }
  return found
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`)
    void cleanUp().then(left => { if (left.length > 0) log(`left behind: ${left.join('; ')}`); process.exit(130) })
  })
}

let code: number | null = 1
try {
  await createNetwork(topo)
  log(`${topo.hosts.length} namespaces and veths for run ${runId}`)
  const child = spawn('ip', ['netns', 'exec', topo.hubNs, process.execPath, '--import', join(ROOT, 'scripts', 'with-resolvers.mjs'), '--import', 'tsx', join(ROOT, 'bench', 'wan', 'hub.ts'), JSON.stringify(topo)], {
    cwd: ROOT,
    stdio: 'inherit',
    // every temp dir (node homes, env files, run logs) under the run's own, removed at the end
    env: { ...process.env, TMPDIR: runDir }
  })
  code = await new Promise<number | null>(resolve => child.once('exit', resolve))
} catch (err) {
  log(`failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
} finally {
  const left = await cleanUp()
  if (left.length > 0) {
    log(`NOT clean: ${left.join('; ')}`)
    code = 1
  } else {
    log('clean: no namespace, veth, node process, database or temp dir of this run is left')
  }
}
process.exit(code ?? 1)
