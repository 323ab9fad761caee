// `npm test`: tap on the bundled tests (dist/test/**/*.test.mjs, built by pretest). Arguments
// naming test files may name the sources: `npm test -- test/store.test.ts` runs that file's
// bundle. Other arguments go to tap as they are. test/helpers/lean-tap.mjs goes first in
// NODE_OPTIONS: it keeps tap's process-info hook out of the test processes; the benchmark
// smoke test's child processes run from their bundles too (LEDGERMESH_BENCH_CHILDREN).
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
/**
 * test/x.test.ts → its bundle: dist/test/x.test.mjs, or for the longest files
 * dist/test/0-long/x.test.mjs and dist/test/1-mid/x.test.mjs, for the benchmarks' smoke tests dist/test/bench-smoke/x.smoke.mjs,
 * for the process-fault suites dist/test/faults/x.fault.mjs, for the system tests
 * dist/test/system/x.system.mjs
 */
function bundleOf (source) {
  const name = basename(source).replace(/\.ts$/, '.mjs')
  const places = [join('dist', 'test', '0-long', name), join('dist', 'test', '1-mid', name), join('dist', 'test', 'bench-smoke', name.replace(/\.test\.mjs$/, '.smoke.mjs')), join('dist', 'test', 'faults', name.replace(/\.test\.mjs$/, '.fault.mjs')), join('dist', 'test', 'system', name.replace(/\.test\.mjs$/, '.system.mjs'))]
  return places.find(place => existsSync(join(root, place))) ?? join('dist', 'test', name)
}
const args = process.argv.slice(2).map(arg => /(^|[\\/])test[\\/][^\\/]+\.test\.ts$/.test(arg) ? bundleOf(arg) : arg)
const lean = `--import=${pathToFileURL(join(root, 'test', 'helpers', 'lean-tap.mjs')).href}`
const env = {
  ...process.env,
  NODE_OPTIONS: [lean, process.env.NODE_OPTIONS ?? ''].join(' ').trim(),
  // the benchmarks' children, bundled by build-tests.mjs (bench/lib/child.ts runs these)
  LEDGERMESH_BENCH_CHILDREN: join(root, 'dist', 'test', 'bench-lib')
}
const tap = spawnSync(join(root, 'node_modules', '.bin', 'tap'), args, { cwd: root, stdio: 'inherit', env })
process.exit(tap.status ?? 1)
