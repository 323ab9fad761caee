import t, { type Test } from 'tap'
import pg from 'pg'
import { startNode } from './helpers/node-process.js'
import { createTestDatabase } from './helpers/pg.js'
import { startPgBouncer } from './helpers/pgbouncer.js'
import { waitFor } from './helpers/net.js'
import { verifyPolicy } from '../src/policies/validate.js'
import type { Policy } from '../src/policies/policy.js'

/** Pipes commands into `ledgermesh start --repl` and returns what it printed on stdout. */
async function pipeIntoRepl (t: Test, env: Record<string, string | number>, commands: string[]) {
  const node = await startNode(t, { type: 'master', name: 'm1', env, repl: true })
  node.proc.stdin!.end(commands.join('\n') + '\n')
  const code = await node.waitForExit(20_000)
  return { node, code }
}

function checkMasterPolicy (t: Test, policies: Policy[], name: string): void {
  t.equal(policies.length, 1, 'one master policy')
  const body = policies[0].master
  t.equal(body.name, name)
  for (const field of ['id', 'date', 'ledger', 'public_key', 'signature']) t.ok(body[field], `master policy carries ${field}`)
  t.equal(body.ledger, 'global')
  t.doesNotThrow(() => verifyPolicy(policies[0]), 'its signature verifies')
}

t.test('a master started with --repl answers piped commands and exits cleanly', async t => {
  const { node, code } = await pipeIntoRepl(t, { DB_TYPE: 'sqlite' }, ['blockchain get master bring.count', 'exit node'])
  t.equal(code, 0, 'exit node stops the node with exit code 0')
  t.same(node.stdout.filter(l => l.trim() !== ''), ['1', 'Node is stopping'], 'prints 1, the number of master policies')
  t.ok(node.stderr.some(l => l.includes('the ledger uses the embedded LevelDB store')), 'says in the log that sqlite means the embedded store')
})

t.test('the master policy is signed and queryable over REST (LevelDB store)', async t => {
  const node = await startNode(t, { type: 'master', name: 'lvl-master' })
  const reply = await node.ok('blockchain get master')
  checkMasterPolicy(t, reply.json, 'lvl-master')
  t.equal(reply.json[0].master.port, node.tcpPort)
  t.equal(reply.json[0].master.rest_port, node.restPort)
})

// directly, and through PgBouncer in transaction pooling mode (the master creating its database through it)
for (const via of ['direct', 'pgbouncer'] as const) t.test(`with DB_TYPE=psql the ledger lives in PostgreSQL (${via})`, async t => {
  const db = await createTestDatabase(t, { create: via === 'direct' })
  const env = via === 'direct'
    ? { DB_TYPE: 'psql', DB_IP: db.host, DB_PORT: db.port, DB_USER: db.user, DB_NAME: db.database }
    : (await startPgBouncer(t)).nodeEnv(db)
  const node = await startNode(t, { type: 'master', name: 'pg-master', env })
  const reply = await node.ok('blockchain get master')
  checkMasterPolicy(t, reply.json, 'pg-master')
  const client = new pg.Client({ host: db.host, port: db.port, user: db.user, database: db.database })
  await client.connect()
  t.teardown(async () => { await client.end() })
  const rows = await client.query('SELECT policy_type, policy_id, status FROM ledger ORDER BY seq')
  t.same(rows.rows.map(r => r.policy_type), ['network', 'master'], 'the ledger table holds the network\'s admission policy and the master policy')
  t.same(rows.rows[1], { policy_type: 'master', policy_id: reply.json[0].master.id, status: 'active' })
})

t.test('a restarted master keeps its identity and ledger and does not re-declare itself', async t => {
  const first = await startNode(t, { type: 'master', name: 'again' })
  const before = (await first.ok('blockchain get master')).json
  await first.stop()
  t.equal(first.exitCode, 0)
  const second = await startNode(t, { type: 'master', name: 'again', home: first.home, tcpPort: first.tcpPort, restPort: first.restPort })
  const after = (await second.ok('blockchain get master')).json
  t.same(after, before, 'the same single master policy')
  const status = (await second.ok('get status where format=json')).json
  t.equal(status.public_key, before[0].master.public_key, 'same identity')
})

t.test('a bad env file stops the node with one line and exit code 2', async t => {
  const node = await startNode(t, { type: 'master', name: 'bad', env: { ANYLOG_REST_PORT: 'abc' }, noWait: true })
  const code = await node.waitForExit(10_000)
  t.equal(code, 2)
  const lines = node.stderr.filter(l => l.trim() !== '')
  t.equal(lines.length, 1, 'exactly one line')
  t.match(lines[0], /ANYLOG_REST_PORT="abc" in .*bad\.env: expected a port/)
  t.notMatch(lines[0], /\bat .*\.js:\d+/, 'no stack trace')
})

t.test('a master whose PostgreSQL is unreachable fails start-up with a clear line', async t => {
  const node = await startNode(t, { type: 'master', name: 'nodb', env: { DB_TYPE: 'psql', DB_PORT: 1 }, noWait: true })
  const code = await node.waitForExit(20_000)
  t.equal(code, 1)
  t.ok(node.stderr.some(l => /ledgermesh: start-up failed: .*127\.0\.0\.1:1/.test(l)), 'names the database address')
  await waitFor('exit', () => node.exitCode !== undefined ? true : undefined)
})
