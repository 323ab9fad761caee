// `npm test`'s build step: runs `npm run build` unless dist/ is already newer than everything it
// is built from (as right after `npm install`, whose prepare script built it), so a test run
// does not pay for the same build twice. `npm run build` always builds.
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
/** What the build reads: sources, the console, the build scripts and their settings. */
const INPUTS = ['src', 'ui', 'scripts/build-ui.mjs', 'scripts/build-bin.mjs', 'scripts/node-bundle.mjs', 'package.json', 'package-lock.json', 'tsconfig.json']
/** What it writes last in each of its steps. */
const OUTPUTS = ['dist/node/cli.js', 'dist/ui/app.js', 'dist/bin/ledgermesh.js']

function mtimes (path) {
  const full = join(root, path)
  const stat = statSync(full, { throwIfNoEntry: false })
  if (stat === undefined) return []
  if (!stat.isDirectory()) return [stat.mtimeMs]
  return readdirSync(full, { recursive: true, withFileTypes: true })
    .filter(entry => entry.isFile())
    .map(entry => statSync(join(entry.parentPath, entry.name)).mtimeMs)
}

const newestInput = Math.max(...INPUTS.flatMap(mtimes))
const outputs = OUTPUTS.map(mtimes)
const oldestOutput = outputs.some(times => times.length === 0) ? -Infinity : Math.min(...outputs.flat())
if (oldestOutput > newestInput) {
  console.log('[build] dist/ is newer than its sources: not rebuilding (npm run build rebuilds)')
} else {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const run = spawnSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit' })
  process.exit(run.status ?? 1)
}
