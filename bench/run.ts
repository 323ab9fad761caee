import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cpus } from 'node:os'
import { propagation } from './propagation.js'

/**
 * `npm run bench` runs every benchmark; `npm run bench -- <name>` one of them. Each writes
 * bench/results/<name>.json and prints a summary table.
 */
const BENCHMARKS: Record<string, () => Promise<object[]>> = {
  propagation: async () => {
    const sizes = (process.env.BENCH_REPLICAS ?? '20').split(',').map(Number)
    const inserts = Number(process.env.BENCH_INSERTS ?? 50)
    const rows: object[] = []
    for (const replicas of sizes) rows.push(await propagation({ replicas, inserts }))
    return rows
  }
}

const requested = process.argv.slice(2).filter(a => !a.startsWith('-'))
const names = requested.length > 0 ? requested : Object.keys(BENCHMARKS)
const resultsDir = join(import.meta.dirname, 'results')
mkdirSync(resultsDir, { recursive: true })
for (const name of names) {
  const run = BENCHMARKS[name]
  if (run === undefined) {
    process.stderr.write(`unknown benchmark '${name}'; known: ${Object.keys(BENCHMARKS).join(', ')}\n`)
    process.exit(2)
  }
  const rows = await run()
  const result = { benchmark: name, date: new Date().toISOString(), machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version }, rows }
  writeFileSync(join(resultsDir, `${name}.json`), JSON.stringify(result, null, 2) + '\n')
  console.log(JSON.stringify(result))
  console.table(rows)
}
