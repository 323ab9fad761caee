import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CLI, POLYFILL, ROOT } from './helpers/node-process.js'
import { tmpDir } from './helpers/tmp.js'

function check (...files: string[]): { status: number | null, out: string } {
  const run = spawnSync(process.execPath, ['--import', POLYFILL, CLI, 'check', ...files], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
  return { status: run.status, out: run.stdout + run.stderr }
}

t.test('ledgermesh check names every error with file, line and column, runs nothing, and exits 1', async t => {
  const dir = await tmpDir(t)
  const bad = join(dir, 'bad.al')
  await writeFile(bad, [
    'on error ignore',
    'x = 1',
    'frobnicate the node',
    'blockchain get where name = x',
    ':here:',
    'set policy p [a]',
    'goto nowhere',
    ':here:',
    'exit node'
  ].join('\n'))
  const { status, out } = check(bad)
  t.equal(status, 1, out)
  t.match(out, `${bad}:3:1: unknown command 'frobnicate the node'`)
  t.match(out, `${bad}:4:16: blockchain get: expected a policy type, found 'where'`)
  t.match(out, `${bad}:6:`)
  t.match(out, /set policy: expected '<var> \[key\]\[key\]\.\.\. = <value>'/)
  t.match(out, `${bad}:8:1: label ':here:' is defined twice (first at line 5)`)
  t.match(out, `${bad}:7:1: warning: goto nowhere: no label ':nowhere:' in this script`)
  t.match(out, `${bad}: 7 statements, 4 errors`)
  t.match(out, /1 file, 7 statements, 4 errors/)
})

t.test('ledgermesh check passes the start-up scripts and exits 0', async t => {
  const scripts = readdirSync(join(ROOT, 'scripts')).filter(f => f.endsWith('.al')).map(f => join(ROOT, 'scripts', f))
  const { status, out } = check(...scripts)
  t.equal(status, 0, out)
  t.match(out, new RegExp(`${scripts.length} files, \\d+ statements, 0 errors`))
})

t.test('a file that cannot be read is an error too', async t => {
  const { status, out } = check('/no/such/script.al')
  t.equal(status, 1)
  t.match(out, '/no/such/script.al: cannot read: ENOENT')
})
