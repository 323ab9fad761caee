/**
 * The WAN run inside the hub namespace (started by main.ts once the namespaces exist): starts
 * the link emulator and the fleet, places profiles, runs the scenarios in order, writes
 * bench/results/wan-<scenario>.json (WAN_RESULTS_DIR elsewhere) and prints a table. Exits 1
 * when any scenario's check fails (something lost, overlapping, moving back, stuck).
 */
import { writeFileSync, mkdirSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
import { envInt, withCleanup } from '../lib/harness.js'
import { WanFleet } from './fleet.js'
import { placeProfiles, SCENARIOS, type ScenarioResult, type ScenarioSettings } from './scenarios.js'
import type { WanTopology } from './topology.js'
import { parseDuration } from '../../src/base/duration.js'

const topo = JSON.parse(process.argv[2]) as WanTopology
const log = (line: string): void => { process.stdout.write(`[wan] ${line}\n`) }
const sync = process.env.WAN_SYNC ?? '10 second'
const syncMs = parseDuration(sync)?.ms
if (syncMs === undefined) throw new Error(`WAN_SYNC=${sync}: expected an interval such as "10 second"`)
const settings: ScenarioSettings = {
  propagationInserts: envInt('WAN_PROPAGATION_INSERTS', 100),
  catchUpPolicies: envInt('WAN_CATCHUP_POLICIES', 10_000),
  partitionSeconds: envInt('WAN_PARTITION_S', 60),
  stallSeconds: envInt('WAN_STALL_S', 120),
  heavyStall: Number(process.env.WAN_HEAVY_STALL ?? 0.05),
  syncMs,
  log
}
const names = (process.env.WAN_SCENARIOS ?? Object.keys(SCENARIOS).join(',')).split(',').map(n => n.trim()).filter(n => n !== '')
const unknown = names.filter(n => !(n in SCENARIOS))
if (unknown.length > 0) { process.stderr.write(`unknown WAN scenario '${unknown.join(', ')}'; known: ${Object.keys(SCENARIOS).join(', ')}\n`); process.exit(2) }
if (names.includes('failover') && names.at(-1) !== 'failover') { process.stderr.write('the failover scenario kills a master: it must come last\n'); process.exit(2) }
const resultsDir = process.env.WAN_RESULTS_DIR ?? join(import.meta.dirname, '..', 'results')
mkdirSync(resultsDir, { recursive: true })
const machine = { cpus: cpus().length, model: cpus()[0]?.model, memory_gb: Math.round(totalmem() / 2 ** 30), node: process.version }
const started = topo.hosts.filter(h => h.spare !== true)
const network = {
  nodes: started.length,
  joiners: topo.hosts.length - started.length,
  regions: topo.regions,
  roles: Object.fromEntries(['master', 'slave', 'worker', 'member'].map(r => [r, started.filter(h => h.role === r).length])),
  links: topo.links,
  blockchain_sync: sync
}

const results: ScenarioResult[] = []
await withCleanup(async t => {
  log(`${started.length} nodes in ${topo.regions} regions; links ${JSON.stringify(topo.links)}`)
  const fleet = await WanFleet.start(t, topo, { sync, slots: 4 }, log)
  const profiles = await placeProfiles(fleet, 2)
  log(`${profiles.length} profiles running`)
  for (const name of names) {
    const begun = Date.now()
    log(`scenario ${name}`)
    const result = await SCENARIOS[name as keyof typeof SCENARIOS](fleet, settings)
    results.push(result)
    writeFileSync(join(resultsDir, `wan-${name}.json`), JSON.stringify({
      benchmark: `wan-${name}`,
      date: new Date().toISOString(),
      seconds: Math.round((Date.now() - begun) / 1000),
      machine: { ...machine, loadavg_1m: Number(loadavg()[0].toFixed(2)) },
      network,
      rows: [result]
    }, null, 2) + '\n')
    const failed = Object.entries(result.checks).filter(([, ok]) => !ok).map(([check]) => check)
    log(`scenario ${name}: ${failed.length === 0 ? 'checks hold' : `FAILED ${failed.join(', ')}`} (${Math.round((Date.now() - begun) / 1000)} s)`)
    for (const problem of result.problems) log(`  ${problem}`)
  }
})

for (const result of results) {
  const { checks, goals, problems: _problems, ...measures } = result
  console.log(`\nwan-${result.scenario}`)
  console.table([measures])
  for (const [check, ok] of Object.entries(checks)) console.log(`  ${ok ? 'ok' : 'FAILED'}: ${check}`)
  for (const text of Object.values(goals)) console.log(`  goal ${text}`)
}
const failedChecks = results.flatMap(r => Object.entries(r.checks).filter(([, ok]) => !ok).map(([check]) => `${r.scenario}: ${check}`))
console.log(`\nWAN checks: ${results.reduce((n, r) => n + Object.keys(r.checks).length, 0) - failedChecks.length} held, ${failedChecks.length} failed`)
process.exit(failedChecks.length === 0 ? 0 : 1)
