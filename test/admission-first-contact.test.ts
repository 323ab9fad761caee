import t from 'tap'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { waitFor } from './helpers/net.js'
import { statusOf } from './helpers/admission.js'
import { CLI, POLYFILL, ROOT, type NodeProcess, startNode } from './helpers/node-process.js'

// A node started from an AnyLog-style env file without JOIN_TOKEN, pointed at a master that
// requires admission (its default): at first contact it says so, naming its key and the two
// ways in, in its log, in `get status` (JSON and text) and in the REPL's banner, and keeps
// running; `admit node` on the master then lets it in without a restart.

/** `ledgermesh attach` on `node`, detaching at once: what it printed. */
async function attachBanner (node: NodeProcess): Promise<string> {
  const proc = spawn(process.execPath, ['--import', POLYFILL, CLI, 'attach', '-n', node.url], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const exited = new Promise<void>(resolve => proc.once('exit', () => { resolve() }))
  proc.stdin.end('exit\n')
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000)
  await exited
  clearTimeout(timer)
  return out
}

/** The node's log lines (pino JSON on stderr), parsed. */
function logLines (node: NodeProcess): Array<{ level: number, msg: string, [key: string]: unknown }> {
  return node.stderr.flatMap(line => { try { return [JSON.parse(line)] } catch { return [] } })
}

t.test('a node without JOIN_TOKEN says at start-up that it is not admitted, with its key and both ways in, and admit node lets it in', async t => {
  const master = await startNode(t, { type: 'master', name: 'gate' })
  t.equal((await master.ok('blockchain get network where admission = required bring.count')).text, '1', 'the master\'s network requires admission (its default)')

  const node = await startNode(t, { type: 'operator', name: 'op1', join: false, repl: true, env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second' } })
  t.notMatch(readFileSync(node.envFile, 'utf8'), /JOIN_TOKEN/, 'its env file has no JOIN_TOKEN')
  t.equal(node.exitCode, undefined, 'it started and keeps running')

  const status = await statusOf(node)
  const key = String(status.public_key)
  t.match(key, /^[0-9a-f]{64}$/)
  const admitNode = `admit node where key = ${key}`
  const joinToken = 'JOIN_TOKEN=<token from \'create join token\' on the master>'

  // get status, JSON
  t.match(status.admission, { admitted: false, key, reason: /refuses its key/ }, 'get status: not admitted, naming its key')
  t.equal(status.admission.ways_in.length, 2, 'two ways in')
  t.match(status.admission.ways_in[0], joinToken)
  t.match(status.admission.ways_in[1], admitNode)
  const message = String(status.admission.message)
  for (const part of [key, joinToken, admitNode]) t.ok(message.includes(part), `the notice names ${part.slice(0, 24)}…`)

  // the log: one warning at start-up (before "node started"), with the same text
  const lines = logLines(node)
  const notices = lines.filter(l => l.msg.startsWith('NOT ADMITTED'))
  t.equal(notices.length, 1, 'one notice in the log')
  t.equal(notices[0]?.level, 40, 'a warning')
  t.equal(notices[0]?.msg, message, 'the log line is the status\'s text')
  t.ok(lines.indexOf(notices[0]) < lines.findIndex(l => l.msg === 'node started'), 'logged at start-up, at the first contact')
  t.notMatch(node.logs(), /start-up failed/, 'its start-up did not fail')

  // get status, text
  const text = (await node.ok('get status')).text
  t.match(text, /^op1@127\.0\.0\.1:\d+ running \(operator/)
  t.ok(text.includes(message), 'the text form says it, in the same words')

  // the REPL's banner: `ledgermesh start --repl`, then `ledgermesh attach`
  const banner = await waitFor('the REPL banner', () => node.stdout.find(l => l.startsWith('NOT ADMITTED')), { timeoutMs: 30_000 })
  t.equal(banner, message, 'start --repl prints the notice first')
  t.equal(node.stdout.filter(l => l.trim() !== '')[0], message, 'before anything else')
  const attached = await attachBanner(node)
  t.equal(attached.split('\n')[0], message, 'attach prints it first too')

  t.equal((await master.ok('blockchain get operator where name = op1 bring.count')).text, '0', 'its declaration is not on the ledger yet')
  t.equal((await statusOf(node)).sync.outbox, 1, 'it waits in the outbox')

  // admitted by hand on the master: no restart
  const admitted = await master.command(admitNode, { method: 'POST' })
  t.equal(admitted.status, 200, admitted.text)
  const after = await waitFor('op1 to be admitted', async () => {
    const s = await statusOf(node)
    return s.admission?.admitted === true ? s : undefined
  }, { timeoutMs: 30_000 })
  t.same(after.admission, { admitted: true, key }, 'get status no longer says it')
  t.notOk((await node.ok('get status')).text.includes('NOT ADMITTED'), 'nor does its text form')
  await waitFor('its declaration to reach the ledger', async () => (await master.ok('blockchain get operator where name = op1 bring.count')).text === '1' ? true : undefined, { timeoutMs: 30_000 })
  t.pass('the declaration kept in its outbox went out once admitted')
  await waitFor('the log to say it is in', () => logLines(node).some(l => l.msg === 'admitted: the master serves this node\'s key now') ? true : undefined, { timeoutMs: 10_000 })
  t.equal(node.exitCode, undefined, 'the same process, never restarted')
  t.equal(logLines(node).filter(l => l.msg.startsWith('NOT ADMITTED')).length, 1, 'the notice was logged once')
  node.proc.stdin?.end()
})
