import { writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { Command } from 'commander'
import { type RunReport, runSeed } from './run.js'
import { RUN_STORES, type RunStore } from './network.js'
import { runWanSeed } from './wan-run.js'

// `npm run robustness -- --seed N --minutes M`: a real network under a fault schedule drawn
// from the seed, every client operation recorded and the history checked (test/robustness/
// checker.ts). `--seeds 1,2,3` runs several; `--report <file>` writes the reports as JSON.
// Exits 1 when any run found a violation.
//
// Every node runs with snapshots and compaction on: a snapshot every 2 s, replicas compacting
// their logs to those 50 entries behind the head (RETAIN), and a node whose ledger a `wipe`
// fault lost starting again from a snapshot (BOOTSTRAP=snapshot). The nodes read these from
// the process environment (their env files do not set them); set them to try other values.
process.env.SNAPSHOT_INTERVAL ??= '2 seconds'
process.env.RETAIN ??= '50'
process.env.BOOTSTRAP ??= 'snapshot'

const program = new Command('robustness')
  .option('--seed <n>', 'the seed of the fault schedule', '1')
  .option('--seeds <list>', 'several seeds, comma-separated (overrides --seed)')
  .option('--minutes <m>', 'how long each run injects faults', '1')
  .option('--report <file>', 'write the reports (JSON) here')
  .option('--store <store>', `the masters' ledger: ${RUN_STORES.join(', ')} (PostgreSQL, every node in a network namespace behind the link emulator), or 'rotate' (by seed: pg, pgbouncer, level, wan, ...; pg-ha only when named)`, 'rotate')
  .parse()

const opts = program.opts<{ seed: string, seeds?: string, minutes: string, report?: string, store: string }>()
if (opts.store !== 'rotate' && !(RUN_STORES as readonly string[]).includes(opts.store)) {
  console.error(`robustness: --store must be one of ${RUN_STORES.join(', ')} or rotate, not ${opts.store}`)
  process.exit(2)
}
/** What `rotate` draws from, by seed; pg-ha (a cluster of its own per run) is chosen with --store. */
const ROTATION: readonly RunStore[] = ['pg', 'pgbouncer', 'level', 'wan']
const storeFor = (seed: number): RunStore => opts.store === 'rotate' ? ROTATION[Math.abs(seed) % ROTATION.length] : opts.store as RunStore
const seeds = (opts.seeds ?? opts.seed).split(',').map(s => Number(s.trim()))
const minutes = Number(opts.minutes)
if (seeds.some(s => !Number.isSafeInteger(s)) || !(minutes > 0)) {
  console.error(`robustness: --seed(s) must be whole numbers and --minutes more than 0 (got seeds ${opts.seeds ?? opts.seed}, minutes ${opts.minutes})`)
  process.exit(2)
}

const reports: RunReport[] = []
for (const seed of seeds) {
  const say = (line: string): void => { console.log(line) }
  const store = storeFor(seed)
  const report = store === 'wan' ? await runWanSeed(seed, minutes, say) : await runSeed(seed, minutes, say, store)
  reports.push(report)
  console.log(`[robustness] seed ${seed}: ${JSON.stringify({ store: report.store, operations: report.operations, faults: report.faultsByKind, revocation: report.revocation, heads: report.headSamples, processRuns: report.processRuns, finalHead: report.finalHead, snapshots: report.snapshots })}`)
  for (const v of report.violations) console.log(`[robustness] seed ${seed}: VIOLATION ${v.check}: ${v.message}\n  ${JSON.stringify(v.evidence)}`)
}
if (opts.report !== undefined) {
  writeFileSync(opts.report, JSON.stringify({ date: new Date().toISOString(), machine: `${hostname()} (node ${process.version})`, reports }, null, 2) + '\n')
}
const violations = reports.reduce((n, r) => n + r.violations.length, 0)
console.log(`robustness: ${reports.length} seeds, ${violations} violations`)
process.exit(violations === 0 ? 0 : 1)
