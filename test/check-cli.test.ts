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

t.test('ledgermesh check warns on every line that would not run here, naming the command and the line', async t => {
  const dir = await tmpDir(t)
  const deploy = join(dir, 'deploy.al')
  await writeFile(deploy, [
    'on error goto db-error',
    'create table tsd_info where dbms=almgm',
    'run streamer',
    'new_policy = create policy cluster with defaults where company=!company and name=!cluster',
    'members = get cluster info where name = c1',
    'if !node_type == publisher then edgelake-error',
    '<set policy new_policy [config][script] = [',
    '    "run scheduler 1",',
    '    "set buffer threshold where time=60 seconds",',
    '    "if !operator_id then run operator where policy=!operator_id"',
    ']>',
    'end script',
    ':db-error:',
    'exit scripts'
  ].join('\n'))
  const { status, out } = check(deploy)
  t.equal(status, 1, out)
  t.match(out, `${deploy}:2:1: warning: 'create table tsd_info' is AnyLog's data layer or host tooling: answered not_supported (a script notes the line and goes on)`)
  t.match(out, `${deploy}:3:1: warning: 'run streamer' is AnyLog's data layer`)
  t.notMatch(out, `${deploy}:4:`, 'create policy runs here')
  t.match(out, `${deploy}:5:11: warning: 'get cluster info' is an AnyLog command that ledgermesh does not run`)
  t.match(out, `${deploy}:6:33: unknown command 'edgelake-error'`, 'not AnyLog\'s either: an error')
  t.match(out, `${deploy}:9:1: warning: in the config policy's script, 'set buffer threshold where time=60 seconds': 'set buffer threshold' is AnyLog's data layer`)
  t.match(out, `${deploy}:10:1: warning: in the config policy's script, 'if !operator_id then run operator where policy=!operator_id': 'run operator where ...' is AnyLog's data layer`)
  t.match(out, `${deploy}: 10 statements, 1 error, 5 warnings`)

  const clean = join(dir, 'clean.al')
  await writeFile(clean, 'x = get hostname\nif !x then echo !x\n')
  const ok = check(clean)
  t.equal(ok.status, 0, ok.out)
  t.match(ok.out, '1 file, 3 statements, 0 errors, 0 warnings: clean (every line runs here)')
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
