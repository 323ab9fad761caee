import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { startNode } from './helpers/node-process.js'
import { createTestDatabase, pgQuery } from './helpers/pg.js'
import { Executor } from '../src/commands/executor.js'

/**
 * Issue 12, defect 7: secrets over unauthenticated GET. A master on PostgreSQL with a
 * DB_PASSWD, a REST_TOKEN and a secret-named key of its own in its env file, and a secret in
 * its process environment only: no GET read shows any of them, nor does its log, while the
 * node still works (its ledger is in PostgreSQL, an authorized POST inserts).
 */

const secret = (label: string): string => `${label}-${randomBytes(8).toString('hex')}`
const DB_SECRET = secret('pg-pass')
const REST_SECRET = secret('rest-token')
const API_SECRET = secret('api-key')
const PROCESS_SECRET = secret('process-env')
const SECRETS = { DB_PASSWD: DB_SECRET, REST_TOKEN: REST_SECRET, PARTNER_API_KEY: API_SECRET, LM_TEST_SECRET_ENV: PROCESS_SECRET }

const db = await createTestDatabase(t)
const node = await startNode(t, {
  type: 'master',
  name: 'secrets-m',
  env: {
    DB_TYPE: 'psql',
    DB_IP: db.host,
    DB_PORT: db.port,
    DB_USER: db.user,
    DB_NAME: db.database,
    DB_PASSWD: DB_SECRET,
    REST_TOKEN: REST_SECRET,
    PARTNER_API_KEY: API_SECRET,
    ENABLE_MQTT: 'false',
    LOG_LEVEL: 'debug'
  },
  processEnv: { LM_TEST_SECRET_ENV: PROCESS_SECRET }
})

/** Every reply body, so the last test can check none of them held a secret. */
const bodies: Array<{ command: string, text: string }> = []
const read = async (command: string) => {
  const reply = await node.command(command, { method: 'GET' })
  bodies.push({ command, text: reply.text })
  return reply
}

const noSecretIn = (t: Test, where: string, text: string): void => {
  for (const [key, value] of Object.entries(SECRETS)) {
    t.notOk(text.includes(value), `${where} does not show ${key}`, { text: text.slice(0, 2000) })
  }
}

t.test('the node works with its secrets: ledger in PostgreSQL, token-protected writes', async t => {
  const status = await read('get status where format=json')
  t.equal(status.status, 200, 'get status answers', { text: status.text })
  t.equal(status.json.ledger.store, 'psql', 'the ledger is in PostgreSQL')
  const rows = await pgQuery<{ n: string }>(db, 'SELECT count(*) AS n FROM ledger')
  t.ok(Number(rows[0].n) >= 1, 'the master declared itself in the PostgreSQL ledger table')

  const body = '<p = {"worker": {"name": "secret-w1", "company": "test co", "ip": "127.0.0.1", "port": 4001}}>'
  const refused = await node.command('blockchain insert where policy=!p', { method: 'POST', body })
  t.equal(refused.status, 401, 'a write without the token is refused')
  const insert = await node.command('blockchain insert where policy=!p', { method: 'POST', body, headers: { authorization: `Bearer ${REST_SECRET}` } })
  t.equal(insert.status, 200, 'a write with the token is accepted', { text: insert.text })
  t.equal((await read('blockchain get worker where name = secret-w1 bring.count')).text, '1', 'the insert is on the ledger')
})

t.test('GET reads show *** for every secret', async t => {
  for (const command of ['!db_passwd', '$DB_PASSWD', '$REST_TOKEN', '$PARTNER_API_KEY']) {
    const reply = await read(command)
    t.equal(reply.status, 200, `${command} answers`)
    t.equal(reply.text, '***', `${command} shows ***`)
  }
  const variables = await read('get variables')
  t.equal(variables.status, 200)
  t.match(variables.text, /db_passwd\s*\|\*\*\*/, 'get variables lists db_passwd as ***')
  t.match(variables.text, /node_name\s*\|secrets-m/, 'and other variables as they are')

  const echo = await read('echo !db_passwd $DB_PASSWD $REST_TOKEN')
  t.equal(echo.status, 200)
  t.equal(echo.text, '*** *** ***', 'echo shows *** for each')

  for (const command of ['get status', 'get status where format=json', 'get processes', 'get processes where format=json', 'help']) {
    t.equal((await read(command)).status, 200, command)
  }
})

t.test('GET cannot test a secret: casts, comparisons and queries see ***', async t => {
  const cast = await read('!db_passwd.int')
  t.equal(cast.status, 400, 'the cast fails')
  const oracle = await read(`if (!db_passwd == "${DB_SECRET}") then echo same`)
  t.equal(oracle.status, 200, 'the condition runs')
  t.not(oracle.text, 'same', 'a comparison with the real password does not match')
  const ordered = await read('if ($REST_TOKEN > "rest-toke") then echo after')
  t.not(ordered.text, 'after', 'an ordering comparison sees *** too')
})

t.test('a GET cannot change the node\'s variables; a POST with the token can', async t => {
  const overwrite = await read('db_passwd = attacker-chosen')
  t.equal(overwrite.status, 200, 'an assignment over GET runs')
  t.equal((await read('ledger_conn = 10.6.6.6:1')).status, 200)
  t.equal((await read('!ledger_conn')).text, node.ledgerConn, 'but it lived only in its request: the node\'s ledger_conn is unchanged')
  t.equal((await node.command('my_var = 5', { method: 'POST' })).status, 401, 'setting a node variable is a write: it needs the token')
  t.equal((await node.command('my_var = 5', { method: 'POST', headers: { authorization: `Bearer ${REST_SECRET}` } })).status, 200)
  t.equal((await read('!my_var')).text, '5', 'a POST assignment sets the node variable')
})

t.test('$X reads the env file and an allow-list, not the whole process environment', async t => {
  const hidden = await read('$LM_TEST_SECRET_ENV')
  t.equal(hidden.status, 400, 'a process variable outside the env file is not readable')
  t.equal(hidden.json?.error, 'bad_command')
  t.match(hidden.json?.message, /\$LM_TEST_SECRET_ENV is not defined/)
  t.equal((await read('echo $NODE_NAME $ENABLE_MQTT')).text, 'secrets-m false', 'the env file\'s keys are readable')
  if (process.env.HOME !== undefined) t.equal((await read('$HOME')).text, process.env.HOME, '$HOME is allow-listed')
})

t.test('scripts still read the real values; only what is shown is masked', async t => {
  const executor = new Executor({ env: name => name === 'DB_PASSWD' ? DB_SECRET : undefined })
  await executor.run('db_passwd = $DB_PASSWD\ncopy = !db_passwd', { via: 'script' })
  t.equal(executor.vars.get('db_passwd'), DB_SECRET, 'the script holds the real password')
  t.equal(executor.vars.get('copy'), DB_SECRET, 'and passes it on')
  const shown = await executor.runForOutput('!db_passwd\n$DB_PASSWD\n!copy', { via: 'repl' })
  t.same(shown.map(o => o.text), ['***', '***', '***'], 'the REPL shows *** for each, the copy included')
})

t.test('no reply body and no log line holds a secret', async t => {
  t.ok(bodies.length >= 15, `${bodies.length} replies checked`)
  for (const { command, text } of bodies) noSecretIn(t, `the reply to '${command}'`, text)
  await node.stop()
  t.ok(node.stderr.length > 5, 'the node logged')
  const configLine = node.stderr.find(line => line.includes('"msg":"config loaded"'))
  t.ok(configLine !== undefined, 'the log shows the config the node loaded (LOG_LEVEL=debug)')
  if (configLine !== undefined) {
    t.match(JSON.parse(configLine).env, { NODE_NAME: 'secrets-m', DB_PASSWD: '***', REST_TOKEN: '***', PARTNER_API_KEY: '***' }, 'with *** for its secrets')
  }
  noSecretIn(t, 'the node\'s output and log', node.logs())
})
