import t from 'tap'
import { PassThrough } from 'node:stream'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig } from '../src/node/config.js'
import { silentLogger } from '../src/base/logger.js'
import { LedgerMeshNode } from '../src/node/node.js'
import { complete, needsMoreInput, runRepl } from '../src/node/repl.js'

const home = mkdtempSync(join(tmpdir(), 'lm-repl-tty-'))
t.teardown(() => rmSync(home, { recursive: true, force: true }))
const node = new LedgerMeshNode({ config: parseConfig({ NODE_TYPE: 'master', NODE_NAME: 'tty' }, 'test'), home, log: silentLogger() })

/** Runs the REPL on a fake terminal, typing `keys`, and returns what it printed. */
async function session (keys: string): Promise<string> {
  const input = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => {} })
  const output = Object.assign(new PassThrough(), { isTTY: true, columns: 120 })
  let printed = ''
  output.on('data', (chunk: Buffer) => { printed += chunk.toString() })
  const done = runRepl(node, { input, output })
  for (const key of keys.split('|')) {
    input.write(key)
    await new Promise(resolve => setTimeout(resolve, 30))
  }
  input.end()
  await done
  return printed
}

t.test('history survives across REPL sessions', async t => {
  const first = await session('get version\r')
  t.match(first, 'LM tty > ', 'the prompt names the node')
  t.match(first, 'ledgermesh version')
  t.match(readFileSync(join(home, 'repl_history'), 'utf8'), 'get version')
  const second = await session('\x1b[A|\r')
  t.match(second, 'ledgermesh version', 'up-arrow in a new session brings back the last command')
})

t.test('tab completion of commands, and multi-line input detection', async t => {
  t.same(complete(node, 'blockchain g')[0], ['blockchain get'])
  t.ok(complete(node, 'get ')[0].includes('get processes'))
  t.same(complete(node, 'zzz')[0], [])
  t.equal(needsMoreInput('<p = {"a": 1,'), true)
  t.equal(needsMoreInput('<p = {"a": 1}>'), false)
  t.equal(needsMoreInput('if (!x) {'), true)
  t.equal(needsMoreInput('echo "}"'), false, 'braces in strings do not count')
})
