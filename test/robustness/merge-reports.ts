/**
 * `node --import tsx test/robustness/merge-reports.ts <out.json> <report.json|run.log>...`: the
 * reports of several `npm run robustness` runs (run side by side, say) as one file, with the
 * totals a reader looks for first: seeds by network, operations by kind and outcome, faults by
 * kind, revocations, violations. Prints the totals. A `.log` (a run's output, for a run stopped
 * before it wrote its --report) gives every seed it completed, from the lines it printed: its
 * schedule, its summary and its violations.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { cpus, hostname, totalmem } from 'node:os'
import type { RunReport } from './run.js'

const [out, ...inputs] = process.argv.slice(2)
if (out === undefined || inputs.length === 0) {
  console.error('usage: merge-reports.ts <out.json> <report.json>...')
  process.exit(2)
}
const files = inputs.map(file => file.endsWith('.log') ? fromLog(file) : JSON.parse(readFileSync(file, 'utf8')) as { date: string, machine: string, reports: RunReport[] })
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
const machine = { host: hostname(), cpus: cpus().length, model: cpus()[0]?.model, memory_gb: Math.round(totalmem() / 2 ** 30), node: process.version }
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine, runs: files.map(f => ({ date: f.date, machine: f.machine })), totals, reports }, null, 2) + '\n')
console.log(JSON.stringify(totals, null, 2))

/** The completed seeds of a run's output (see above). */
function fromLog (file: string): { date: string, machine: string, reports: RunReport[] } {
  const text = readFileSync(file, 'utf8')
  const minutes = Number(/--minutes (\S+)/.exec(text)?.[1] ?? NaN)
  const line = (seed: number, rest: string): RegExp => new RegExp(`^\\[robustness\\] seed ${seed}: ${rest}$`, 'm')
  const reports: RunReport[] = []
  for (const [, seedText] of text.matchAll(/^\[robustness\] seed (\d+): \{/gm)) {
    const seed = Number(seedText)
    const summary = JSON.parse(line(seed, '(\\{.*\\})').exec(text)![1]) as { store: RunReport['store'], operations: Record<string, number>, faults: Record<string, number>, revocation?: RunReport['revocation'], heads: number, processRuns: number, finalHead: number, snapshots?: RunReport['snapshots'] }
    const schedule = line(seed, 'schedule (\\[.*?\\])(, revoke .*)?').exec(text)
    const violations = [...text.matchAll(new RegExp(`^\\[robustness\\] seed ${seed}: VIOLATION ([a-z_]+): (.*)$`, 'gm'))].map(m => ({ check: m[1], message: m[2], evidence: [] }))
    reports.push({
      seed,
      minutes,
      store: summary.store,
      faults: schedule === null ? [] : JSON.parse(schedule[1]),
      ...(summary.revocation === undefined ? {} : { revocation: summary.revocation }),
      faultsByKind: summary.faults,
      operations: summary.operations,
      headSamples: summary.heads,
      processRuns: summary.processRuns,
      finalHead: summary.finalHead,
      snapshots: summary.snapshots ?? { started: 0, compactions: 0 },
      violations
    })
  }
  return { date: statSync(file).mtime.toISOString(), machine: `${hostname()} (from the run's output: ${file.split('/').pop()})`, reports }
}
