import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdir, readFile, readdir, writeFile, copyFile } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { tmpDir } from './helpers/tmp.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const DEPCRUISE = join(ROOT, 'node_modules', '.bin', 'depcruise')
const CONFIG = join(ROOT, '.dependency-cruiser.cjs')
/** No file in src/ grows past this; a module that needs more has a second job to split off. */
const MAX_LINES = 450

/** The rule names depcruise reports, one per violation, and its whole output. */
async function cruise (cwd: string, paths: string[]): Promise<{ rules: string[], output: string }> {
  const { stdout, stderr } = await promisify(execFile)(DEPCRUISE, [...paths, '--config', CONFIG, '--output-type', 'err'], { cwd, timeout: 60_000 })
    .catch((err: { stdout?: string, stderr?: string }) => ({ stdout: err.stdout ?? '', stderr: err.stderr ?? '' }))
  const output = stdout + stderr
  return { rules: [...output.matchAll(/^\s*error ([a-z-]+):/gm)].map(m => m[1]), output }
}

async function sourceFiles (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  return entries.filter(e => e.isFile() && e.name.endsWith('.ts')).map(e => join(e.parentPath, e.name))
}

t.test('the repository keeps its layering: no rule of .dependency-cruiser.cjs is broken', async t => {
  const { rules, output } = await cruise(ROOT, ['src', 'test', 'bench'])
  t.same(rules, [], output)
  t.match(output, /no dependency violations found/)
})

t.test(`no file in src/ is longer than ${MAX_LINES} lines`, async t => {
  const files = await sourceFiles(join(ROOT, 'src'))
  t.ok(files.length > 50, `found the sources (${files.length} files)`)
  const long: string[] = []
  for (const file of files) {
    const lines = (await readFile(file, 'utf8')).split('\n').length - 1
    if (lines > MAX_LINES) long.push(`${relative(ROOT, file)}: ${lines} lines`)
  }
  t.same(long, [])
})

t.test('each layering rule catches its violation (a fixture tree breaking every rule once)', async t => {
  const dir = await tmpDir(t, 'layering')
  const files: Record<string, string> = {
    'src/node/wiring.ts': 'export const wiring = 1\n',
    'src/services/service.ts': "import { wiring } from '../node/wiring.js'\nexport const service = wiring\n",
    'src/commands/handler.ts': "import { service } from '../services/service.js'\nexport const handler = service\n",
    'src/ledger/log.ts': "import { handler } from '../commands/handler.js'\nexport const log = handler\n",
    'src/policies/policy.ts': "import { log } from '../ledger/log.js'\nexport const policy = log\n",
    'src/net/stream.ts': "import { policy } from '../policies/policy.js'\nexport const stream = policy\n",
    'src/base/a.ts': "import { stream } from '../net/stream.js'\nimport { b } from './b.js'\nexport const a = stream + b\n",
    'src/base/b.ts': "import { a } from './a.js'\nexport const b = 1\nexport const c = a\n",
    'src/protocols/sync.ts': "import { wiring } from '../node/wiring.js'\nexport const sync = wiring\n",
    'src/protocols/helper.ts': "import { fixture } from '../../test/fixture.js'\nexport const helper = fixture\n",
    'src/node/broken.ts': "import { gone } from './missing.js'\nexport const broken = gone\n",
    'test/fixture.ts': 'export const fixture = 1\n'
  }
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true })
    await writeFile(join(dir, path), text)
  }
  await copyFile(join(ROOT, 'tsconfig.json'), join(dir, 'tsconfig.json'))
  const { rules, output } = await cruise(dir, ['src'])
  for (const rule of [
    'no-circular', 'no-unresolvable', 'base-imports-nothing-of-ours', 'policies-import-only-base',
    'net-imports-only-base', 'ledger-imports-only-policies-and-base', 'protocols-import-no-upper-layer',
    'commands-never-import-services-or-node', 'services-never-import-node', 'nothing-imports-tests-or-benchmarks'
  ]) {
    t.ok(rules.includes(rule), `${rule} is reported`, { output })
  }
})
