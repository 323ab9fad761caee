import { execFile } from 'node:child_process'
import { chmodSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { ROOT } from './helpers/node-process.js'
import { tmpDir } from './helpers/tmp.js'

// The node runs its bundle (dist/bin/cli.cjs) through V8's code cache (src/node/code-cache.ts):
// written once the bundle has run a while, used by the next start, replaced when the bundle or
// V8 changes, and never read from a directory other users could write into.

const run = promisify(execFile)
const CODE_CACHE = join(ROOT, 'dist', 'node', 'code-cache.js')

/** A CommonJS "bundle" that uses what a module sees: require, module, __dirname, __filename. */
function writeBundle (file: string, version: number): void {
  writeFileSync(file, `(function (exports, require, module, __filename, __dirname) {
const { join } = require('node:path')
module.exports = { version: ${version} }
setImmediate(() => process.stdout.write(JSON.stringify({ version: module.exports.version, here: join(__dirname, 'x') === join(${JSON.stringify(join(file, '..'))}, 'x'), file: __filename, eol: require('node:os').EOL === '\\n' })))
})`)
}

async function runBundle (file: string, dir: string, env: Record<string, string> = {}): Promise<{ result: string, output: { version: number, here: boolean, file: string, eol: boolean } }> {
  const script = `import { runWithCodeCache } from ${JSON.stringify(CODE_CACHE)}
process.stderr.write(runWithCodeCache(${JSON.stringify(file)}, { dir: ${JSON.stringify(dir)}, writeAfterMs: 0 }))`
  const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: undefined, ...env }, timeout: 30_000 })
  return { result: stderr.trim(), output: JSON.parse(stdout) }
}

t.test('the cache is written by the first run, used by the next, and replaced when the bundle changes', async t => {
  const home = await tmpDir(t)
  const bundle = join(home, 'bundle.cjs')
  const dir = join(home, 'cache')
  writeBundle(bundle, 1)

  const first = await runBundle(bundle, dir)
  t.equal(first.result, 'missing', 'no cache the first time')
  t.same(first.output, { version: 1, here: true, file: bundle, eol: true }, 'the bundle ran with require, module, __dirname and __filename')
  const caches = readdirSync(dir)
  t.equal(caches.length, 1, 'one cache written')
  t.match(caches[0], new RegExp(`^bundle\\.cjs-[0-9a-f]{12}-${process.version.replace(/\./g, '\\.')}-${process.arch}-\\d+-\\d+\\.bin$`), 'named by the file and its path, the Node version and architecture, and the build')

  const second = await runBundle(bundle, dir)
  t.equal(second.result, 'used', 'the second run uses it')
  t.same(second.output, first.output, 'and does the same')

  writeBundle(bundle, 22)
  utimesSync(bundle, new Date(), new Date(Date.now() + 5_000))
  const rebuilt = await runBundle(bundle, dir)
  t.equal(rebuilt.result, 'missing', 'a rebuilt bundle does not meet the old cache')
  t.equal(rebuilt.output.version, 22, 'the new bundle ran')
  t.equal(readdirSync(dir).length, 1, 'its cache replaced the old one')
  t.not(readdirSync(dir)[0], caches[0])
})

t.test('two copies of a bundle (two checkouts) keep a cache each', async t => {
  const home = await tmpDir(t)
  const dir = join(home, 'cache')
  const copies = [join(home, 'a'), join(home, 'b')].map(place => { mkdirSync(place); return join(place, 'bundle.cjs') })
  for (const copy of copies) writeBundle(copy, 5)
  for (const copy of copies) t.equal((await runBundle(copy, dir)).result, 'missing')
  t.equal(readdirSync(dir).length, 2, 'a cache for each')
  for (const copy of copies) t.equal((await runBundle(copy, dir)).result, 'used', 'each still used after the other was written')
})

t.test('a cache V8 rejects is replaced; a shared directory or NODE_DISABLE_COMPILE_CACHE turns it off', async t => {
  const home = await tmpDir(t)
  const bundle = join(home, 'bundle.cjs')
  const dir = join(home, 'cache')
  writeBundle(bundle, 3)
  await runBundle(bundle, dir)
  const cache = join(dir, readdirSync(dir)[0])
  writeFileSync(cache, Buffer.alloc(readFileSync(cache).length, 7))

  const damaged = await runBundle(bundle, dir)
  t.equal(damaged.result, 'rejected', 'V8 refuses a damaged cache')
  t.equal(damaged.output.version, 3, 'and the bundle runs from its source')
  t.equal((await runBundle(bundle, dir)).result, 'used', 'the cache was written again')

  const off = await runBundle(bundle, join(home, 'off'), { NODE_DISABLE_COMPILE_CACHE: '1' })
  t.same([off.result, off.output.version], ['off', 3], 'NODE_DISABLE_COMPILE_CACHE: the bundle runs without a cache')
  t.same(readdirSync(home).includes('off') ? readdirSync(join(home, 'off')) : [], [], 'and none is written')

  chmodSync(dir, 0o777)
  t.equal((await runBundle(bundle, dir)).result, 'off', 'a directory others may write to is not read')
  chmodSync(dir, 0o755)
  t.equal((await runBundle(bundle, dir)).result, 'used', 'one they may only read is')
})

t.test('the ledgermesh binary keeps its cache in the OS temp dir', async t => {
  const tmp = await tmpDir(t)
  const { stdout } = await run(process.execPath, [join(ROOT, 'dist', 'bin', 'ledgermesh.js'), '--version'], { env: { ...process.env, TMPDIR: tmp, NODE_DISABLE_COMPILE_CACHE: undefined }, timeout: 30_000 })
  t.match(stdout, /\d+\.\d+\.\d+/, 'it ran')
  const dirs = readdirSync(tmp).filter(name => name.startsWith('ledgermesh-code-cache-'))
  t.equal(dirs.length, 1, 'in a directory of its own')
  t.match(readdirSync(join(tmp, dirs[0])), [/^cli\.cjs-[0-9a-f]{12}-v.*\.bin$/], 'the bundle\'s cache')
})
