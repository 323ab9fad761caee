// `npm test`: tap on the bundled tests (dist/test/**/*.test.mjs, built by pretest). Arguments
// naming test files may name the sources: `npm test -- test/store.test.ts` runs that file's
// bundle. An argument naming a group (`faults`, `system`, `bench-smoke`: a folder of
// dist/test/, as scripts/build-tests.mjs sorts them) runs every file of it, so the group's list
// is kept in one place. Other arguments go to tap as they are. test/helpers/lean-tap.mjs goes first in
// NODE_OPTIONS: it keeps tap's process-info hook out of the test processes; the benchmark
// smoke test's child processes run from their bundles too (LEDGERMESH_BENCH_CHILDREN).
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
/** The groups kept out of `npm test`'s own files: folder of dist/test/ → their bundles' suffix. */
const GROUPS = { 'bench-smoke': '.smoke.mjs', faults: '.fault.mjs', system: '.system.mjs' }
/**
 * test/x.test.ts → its bundle: dist/test/x.test.mjs, or for the longest files
 * dist/test/0-long/x.test.mjs and dist/test/1-mid/x.test.mjs, or in a group's folder (the
 * benchmarks' smoke tests, the process-fault suites, the system tests) x.smoke.mjs,
 * x.fault.mjs, x.system.mjs
 */
function bundleOf (source) {
  const name = basename(source).replace(/\.ts$/, '.mjs')
  const places = [join('dist', 'test', '0-long', name), join('dist', 'test', '1-mid', name),
    ...Object.entries(GROUPS).map(([folder, suffix]) => join('dist', 'test', folder, name.replace(/\.test\.mjs$/, suffix)))]
  return places.find(place => existsSync(join(root, place))) ?? join('dist', 'test', name)
}
/** A group's bundles, in path order. */
function groupFiles (folder) {
  const dir = join('dist', 'test', folder)
  return readdirSync(join(root, dir)).filter(name => name.endsWith(GROUPS[folder])).sort().map(name => join(dir, name))
}
const args = process.argv.slice(2).flatMap(arg => Object.hasOwn(GROUPS, arg) ? groupFiles(arg) : /(^|[\\/])test[\\/][^\\/]+\.test\.ts$/.test(arg) ? [bundleOf(arg)] : [arg])
const lean = `--import=${pathToFileURL(join(root, 'test', 'helpers', 'lean-tap.mjs')).href}`
const env = {
  ...process.env,
  NODE_OPTIONS: [lean, process.env.NODE_OPTIONS ?? ''].join(' ').trim(),
  // the benchmarks' children, bundled by build-tests.mjs (bench/lib/child.ts runs these)
  LEDGERMESH_BENCH_CHILDREN: join(root, 'dist', 'test', 'bench-lib')
}
const tap = spawnSync(join(root, 'node_modules', '.bin', 'tap'), args, { cwd: root, stdio: 'inherit', env })
process.exit(tap.status ?? 1)
