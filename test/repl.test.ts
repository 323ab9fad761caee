import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startNode } from './helpers/node-process.js'
import { verifyPolicy } from '../src/policies/validate.js'

t.test('an admin session in the REPL, the AnyLog way', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lm-repl-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const script = join(dir, 'extra.al')
  writeFileSync(script, '# a script run with process\nfrom_script = yes\necho script ran with !from_script\n')

  const node = await startNode(t, { type: 'master', name: 'admin-m', repl: true })
  const lines = [
    'x = 5',
    '!x',
    'echo $HOME',
    'if (!x > 3) then echo big',
    'if (!x > 30) then echo huge',
    'if (!x == 5) {',
    '  echo five',
    '} else {',
    '  echo not five',
    '}',
    '# a comment line',
    '<new_policy = {"worker": {',
    '   "name": "w1",',
    '   "port": !x.int',
    '}}>',
    'blockchain prepare policy !new_policy',
    'blockchain insert where policy=!new_policy and local=true and master=!ledger_conn',
    'blockchain get worker where name=w1 bring [worker][port]',
    'blockchain get worker bring.count',
    'this is not a command',
    'blockchain get (master, worker) bring [*][name] separator=,',
    `process ${script}`,
    'blockchain get worker where name=w1',
    'exit node'
  ]
  node.proc.stdin!.end(lines.join('\n') + '\n')
  t.equal(await node.waitForExit(20_000), 0)
  const out = node.stdout.filter(l => l.trim() !== '')
  t.equal(out[0], '5', '!x shows the value')
  t.equal(out[1], process.env.HOME, '$HOME from the environment')
  t.equal(out[2], 'big')
  t.equal(out[3], 'five', 'if blocks and else')
  t.notOk(out.includes('huge'))
  t.notOk(out.includes('not five'))
  const prepared = JSON.parse(out[4])
  t.match(prepared, { worker: { name: 'w1', port: 5 } }, 'prepare prints the policy with !x.int as a number')
  t.doesNotThrow(() => verifyPolicy(prepared))
  t.match(out[5], /^Policy [0-9a-f]{64} inserted \(global, seq \d+\)$/)
  t.equal(out[6], '5')
  t.equal(out[7], '1')
  t.equal(out[8], 'admin-m,w1')
  t.equal(out[9], 'script ran with yes', 'process runs a script file')
  t.match(JSON.parse(out[10]), [{ worker: { name: 'w1', ledger: 'global' } }])
  t.ok(node.stderr.some(l => /^Error \(unknown_command\): unknown command 'this is not'/.test(l)), 'a bad line gets an error on stderr and the REPL goes on')
})
