/**
 * `node --import tsx test/robustness/merge-reports.ts <out.json> <report.json>...`: the reports
 * of several `npm run robustness --report` runs (run side by side, say) as one file, with the
 * totals a reader looks for first: seeds by network, operations by kind and outcome, faults by
 * kind, revocations, violations. Prints the totals.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import type { RunReport } from './run.js'

const [out, ...inputs] = process.argv.slice(2)
if (out === undefined || inputs.length === 0) {
  console.error('usage: merge-reports.ts <out.json> <report.json>...')
  process.exit(2)
}
const files = inputs.map(file => JSON.parse(readFileSync(file, 'utf8')) as { date: string, machine: string, reports: RunReport[] })
const reports = files.flatMap(f => f.reports).sort((a, b) => a.seed - b.seed)
const add = (into: Record<string, number>, from: Record<string, number>): void => {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n
}
const totals = {
  seeds: reports.length,
  minutes: reports.reduce((n, r) => n + r.minutes, 0),
  by_network: {} as Record<string, number>,
  operations: {} as Record<string, number>,
  faults: {} as Record<string, number>,
  revocations: reports.filter(r => r.revocation?.seq !== undefined).length,
  head_samples: reports.reduce((n, r) => n + r.headSamples, 0),
  process_runs: reports.reduce((n, r) => n + r.processRuns, 0),
  violations: reports.reduce((n, r) => n + r.violations.length, 0)
}
for (const r of reports) {
  add(totals.by_network, { [r.store]: 1 })
  add(totals.operations, r.operations)
  add(totals.faults, r.faultsByKind)
}
writeFileSync(out, JSON.stringify({ runs: files.map(f => ({ date: f.date, machine: f.machine })), totals, reports }, null, 2) + '\n')
console.log(JSON.stringify(totals, null, 2))
