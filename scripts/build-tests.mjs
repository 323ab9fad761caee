// `npm test`'s second build step: bundles every test/*.test.ts, with the sources and packages
// it imports, into dist/test/*.test.mjs (the longest into dist/test/0-long/ and 1-mid/; esbuild, shared
// chunks), so each tap process loads a few files instead of some 500 TypeScript modules run
// through a loader one by one. That load was most of a short test's CPU. Source maps point
// failures back at test/ and src/.
//
// Paths stay those of the sources: import.meta.url, .dirname and .filename in src/, test/ and
// bench/ become the original file's, so a test finds its fixtures and the package root, and
// src/ finds its worker files, exactly as it does unbundled.
import { readFile, readdir, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from 'esbuild'
import { NODE_BUNDLE, RUNTIME_EXTERNALS } from './node-bundle.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const outdir = join(root, 'dist', 'test')

/** Not bundled: tap (one instance runs the file), and tools tests run or read as packages. */
const TEST_EXTERNALS = ['tap', 'playwright-core', 'esbuild', 'tsx', 'typescript', 'dependency-cruiser']

const sourcePaths = {
  name: 'source-paths',
  setup (build) {
    build.onLoad({ filter: /[\\/](src|test|bench)[\\/].*\.ts$/ }, async ({ path }) => {
      const text = (await readFile(path, 'utf8'))
        .replaceAll('import.meta.url', JSON.stringify(pathToFileURL(path).href))
        .replaceAll('import.meta.dirname', JSON.stringify(dirname(path)))
        .replaceAll('import.meta.filename', JSON.stringify(path))
      return { contents: text, loader: 'ts' }
    })
  }
}

const tests = (await readdir(join(root, 'test'))).filter(name => name.endsWith('.test.ts'))
/**
 * The benchmarks' child processes (bench/lib/child.ts starts them), bundled beside the tests
 * into dist/test/bench-lib/: the benchmark smoke test runs these, not the sources under tsx.
 */
const benchChildren = ['master-child', 'count-proxy', 'insert-client']
/**
 * The longest test files, bundled into dist/test/0-long/ (30 s of wall time or more on a loaded
 * 2-core machine) and dist/test/1-mid/ (15 to 30 s): tap runs files in path order, so the
 * longest start first and the short ones fill in at the end (longest first is how a fixed
 * number of jobs finishes soonest). With only a few long ones first, the run ended with
 * 15-40 s files running alone: a clean-clone CI run averaged 3.2 files at once of tap's 5.
 * Only the order changes. Durations from a CI run's tap output (2026-12-06).
 */
const LONG = ['private-network', 'store', 'bad-input', 'admission-revoke']
const MID = ['rest-api', 'admission-tokens', 'workers', 'sealed-settings', 'replication', 'sync-protocol', 'restart', 'anylog-operator', 'drain-policy', 'outbox', 'write-path', 'layering', 'node-master', 'state-tree', 'admission-attack', 'write-path-e2e', 'snapshot-protocol', 'pg-lease', 'network']
/**
 * The process-fault suites (kill -9 and SIGSTOP of masters, workers and the PostgreSQL primary
 * under load, a slave drained and killed -9, wall clocks stepped, replicas paused or cut off,
 * a slave that lies, a new node starting while the master is down), bundled into
 * dist/test/faults/ as *.fault.mjs, outside `npm test`'s files: `npm run test:faults` runs
 * them (CI does, as its own part; `npm run torture` runs them longer). Together they took
 * three minutes of the suite's five on a 2-core machine. (The npm scripts run a group by its
 * folder, `node scripts/test.mjs faults`: these lists are the only ones.)
 */
const FAULTS = ['worker-faults', 'slave-faults', 'crash', 'failover-load', 'failover', 'pg-ha', 'lease-clock', 'partition', 'light-failover', 'light-worker-faults', 'snapshot-nodes']
/**
 * The system tests, which drive the whole product from outside with many node processes: a
 * browser on the web console (Chromium), `npm start`'s demo network started, used and stopped
 * with Ctrl-C, and the verifiable log's networks (checkpoints and proofs served and checked by
 * an independent implementation, witnesses catching a split view, tile mirrors, light workers,
 * snapshot bootstrap and compaction across nodes). Bundled into dist/test/system/ as
 * *.system.mjs, outside `npm test`'s files: `npm run test:system` runs them, three at a time
 * (CI does, as its own part): five of these networks at once on two cores held a light
 * worker's lease renewals past their 3 s. They took a third of the suite's CPU; the parts they
 * are made of keep their own tests in `npm test`.
 */
const SYSTEM = ['console', 'demo', 'verifiable-log', 'witnessing', 'light-witnessed', 'tile-mirror', 'light-worker', 'compaction-nodes', 'snapshot-bootstrap']
/**
 * The benchmarks' smoke tests (each benchmark run at a tiny size), bundled into
 * dist/test/bench-smoke/ as *.smoke.mjs, outside `npm test`'s files: `npm run test:bench`
 * runs them (CI does, as its own part). They check the benchmark code, not the product, and
 * took three minutes of the suite's CPU.
 */
const BENCH_SMOKE = ['bench-smoke', 'bench-smoke-tlog']
await rm(outdir, { recursive: true, force: true })
await build({
  entryPoints: [
    ...tests.map(name => {
      const base = name.replace(/\.test\.ts$/, '')
      if (BENCH_SMOKE.includes(base)) return { in: join(root, 'test', name), out: `bench-smoke/${base}.smoke` }
      if (FAULTS.includes(base)) return { in: join(root, 'test', name), out: `faults/${base}.fault` }
      if (SYSTEM.includes(base)) return { in: join(root, 'test', name), out: `system/${base}.system` }
      return { in: join(root, 'test', name), out: `${LONG.includes(base) ? '0-long/' : MID.includes(base) ? '1-mid/' : ''}${base}.test` }
    }),
    ...benchChildren.map(name => ({ in: join(root, 'bench', 'lib', `${name}.ts`), out: `bench-lib/${name}` }))
  ],
  outdir,
  outExtension: { '.js': '.mjs' },
  ...NODE_BUNDLE,
  external: [...RUNTIME_EXTERNALS, ...TEST_EXTERNALS],
  sourcesContent: false,
  plugins: [sourcePaths]
})
console.log(`[build] ${tests.length} test files and ${benchChildren.length} benchmark children bundled into dist/test/`)
