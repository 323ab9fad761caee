import t from 'tap'
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfigFile, parseConfig, parseInterval } from '../src/node/config.js'
import { LedgerMeshError } from '../src/errors.js'

const base = { NODE_TYPE: 'master', NODE_NAME: 'm1' }

function configError (env: Record<string, string>): LedgerMeshError {
  try {
    parseConfig(env, 'test.env')
  } catch (err) {
    if (err instanceof LedgerMeshError) return err
    throw err
  }
  throw new Error('expected a config error')
}

t.test('a minimal master config gets AnyLog defaults', async t => {
  const config = parseConfig(base, 'test.env')
  t.equal(config.nodeType, 'master')
  t.equal(config.serverPort, 32048)
  t.equal(config.restPort, 32049)
  t.equal(config.ledgerConn, '127.0.0.1:32048', 'a master is its own ledger connection')
  t.equal(config.db.type, 'level')
  t.equal(config.db.name, 'blockchain', 'DB_NAME defaults to the database AnyLog connects')
  t.same(config.blockchainSync, { ms: 30_000, text: '30 second' })
  t.equal(config.restBind, '127.0.0.1', 'REST binds to loopback by default')
})

t.test('DB_TYPE=psql selects PostgreSQL; anything else the embedded store', async t => {
  t.equal(parseConfig({ ...base, DB_TYPE: 'psql' }, 'x').db.type, 'psql')
  const sqlite = parseConfig({ ...base, DB_TYPE: 'sqlite' }, 'x')
  t.equal(sqlite.db.type, 'level')
  t.equal(sqlite.db.requested, 'sqlite')
})

t.test('the values of an AnyLog env file are accepted as written', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lm-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'anylog.env')
  writeFileSync(file, [
    '# AnyLog master configs',
    'NODE_TYPE=master',
    'NODE_NAME=anylog-master',
    'COMPANY_NAME="New Company"',
    'ANYLOG_SERVER_PORT=32048',
    'ANYLOG_REST_PORT=32049',
    'LEDGER_CONN=127.0.0.1:32048',
    'DB_TYPE=sqlite',
    'DB_USER=admin',
    'DB_PASSWD=passwd',
    'DB_IP=127.0.0.1',
    'DB_PORT=5432',
    'BLOCKCHAIN_SYNC=30 second',
    'BLOCKCHAIN_SOURCE=master',
    'LOC=37.425423, -122.078360',
    'COUNTRY=USA',
    'STATE=CA',
    'CITY=Mountain View',
    'ENABLE_MQTT=false',
    'TCP_THREADS=6'
  ].join('\n'))
  const config = loadConfigFile(file, {})
  t.equal(config.companyName, 'New Company')
  t.equal(config.city, 'Mountain View')
  t.equal(config.loc, '37.425423, -122.078360')
  t.equal(config.env.ENABLE_MQTT, 'false', 'keys ledgermesh does not use are kept, not rejected')
})

t.test('each bad value names the key, the value and what is expected', async t => {
  const cases: Array<[Record<string, string>, string, RegExp]> = [
    [{ NODE_NAME: 'x' }, 'NODE_TYPE', /NODE_TYPE=missing .*expected one of master, slave, worker, member/],
    [{ NODE_TYPE: 'boss', NODE_NAME: 'x' }, 'NODE_TYPE', /NODE_TYPE="boss".*expected one of/],
    [{ NODE_TYPE: 'master' }, 'NODE_NAME', /NODE_NAME=missing/],
    [{ ...base, NODE_NAME: 'has space' }, 'NODE_NAME', /NODE_NAME="has space"/],
    [{ ...base, ANYLOG_SERVER_PORT: 'abc' }, 'ANYLOG_SERVER_PORT', /ANYLOG_SERVER_PORT="abc".*expected a port/],
    [{ ...base, ANYLOG_REST_PORT: '70000' }, 'ANYLOG_REST_PORT', /ANYLOG_REST_PORT="70000"/],
    [{ ...base, ANYLOG_SERVER_PORT: '4000', ANYLOG_REST_PORT: '4000' }, 'ANYLOG_REST_PORT', /different from ANYLOG_SERVER_PORT/],
    [{ NODE_TYPE: 'worker', NODE_NAME: 'w' }, 'LEDGER_CONN', /LEDGER_CONN=missing.*ip:port/],
    [{ ...base, LEDGER_CONN: 'nowhere' }, 'LEDGER_CONN', /LEDGER_CONN="nowhere"/],
    [{ ...base, BLOCKCHAIN_SYNC: 'often' }, 'BLOCKCHAIN_SYNC', /BLOCKCHAIN_SYNC="often".*30 second/],
    [{ ...base, BLOCKCHAIN_SYNC: '0 second' }, 'BLOCKCHAIN_SYNC', /BLOCKCHAIN_SYNC="0 second"/],
    [{ ...base, DB_PORT: '-1' }, 'DB_PORT', /DB_PORT="-1"/],
    [{ ...base, DB_NAME: 'drop table;' }, 'DB_NAME', /DB_NAME="drop table;"/],
    [{ ...base, INTERNAL_IP: 'localhost:1' }, 'INTERNAL_IP', /INTERNAL_IP="localhost:1"/],
    [{ ...base, LOG_LEVEL: 'loud' }, 'LOG_LEVEL', /LOG_LEVEL="loud"/],
    [{ ...base, SLOTS: '-2' }, 'SLOTS', /SLOTS="-2".*whole number of slots/],
    [{ NODE_TYPE: 'worker', NODE_NAME: 'w', LEDGER_CONN: '127.0.0.1:1' }, 'SLAVE_NAME', /SLAVE_NAME=missing.*this worker's slave/],
    [{ NODE_TYPE: 'worker', NODE_NAME: 'w', LEDGER_CONN: '127.0.0.1:1', SLAVE_NAME: 's', PROFILE_KINDS: 'linkedin;mta' }, 'PROFILE_KINDS', /PROFILE_KINDS="linkedin;mta".*comma-separated/],
    [{ NODE_TYPE: 'worker', NODE_NAME: 'w', LEDGER_CONN: '127.0.0.1:1', SLAVE_NAME: 's', PROFILE_KINDS: 'linkedin,email-verification', PROFILE_RUNNER_LINKEDIN: 'run-li' }, 'PROFILE_RUNNER_EMAIL_VERIFICATION', /PROFILE_RUNNER_EMAIL_VERIFICATION=missing.*'email-verification' profile/],
    [{ ...base, LEASE_TTL: 'forever' }, 'LEASE_TTL', /LEASE_TTL="forever"/]
  ]
  for (const [env, key, message] of cases) {
    const err = configError(env)
    t.equal(err.code, 'bad_config')
    t.equal(err.details.key, key)
    t.match(err.message, message)
    t.match(err.message, /in test\.env/, 'the message names the file')
  }
})

t.test('worker capacity: SLOTS, SLAVE_NAME, PROFILE_KINDS and a runner per kind', async t => {
  const config = parseConfig({
    NODE_TYPE: 'worker', NODE_NAME: 'w', LEDGER_CONN: '127.0.0.1:1', SLAVE_NAME: 'slave-1', SLOTS: '3',
    PROFILE_KINDS: 'LinkedIn, email-verification', PROFILE_RUNNER_LINKEDIN: 'node li.mjs', PROFILE_RUNNER_EMAIL_VERIFICATION: 'node ev.mjs'
  }, 'test.env')
  t.equal(config.slots, 3)
  t.equal(config.slaveName, 'slave-1')
  t.same(config.profileKinds, ['linkedin', 'email-verification'], 'kinds are lower-cased')
  t.same(config.profileRunners, { linkedin: 'node li.mjs', 'email-verification': 'node ev.mjs' })
  t.equal(config.leaseTtl.ms, 6000, 'lease defaults')
  t.equal(parseConfig({ NODE_TYPE: 'slave', NODE_NAME: 's', LEDGER_CONN: '127.0.0.1:1' }, 'test.env').slots, 10, 'a slave hosts 10 sub-accounts by default')
})

t.test('a missing file is a clear error', async t => {
  t.throws(() => loadConfigFile('/nonexistent/x.env'), { code: 'bad_config', message: /cannot read config file \/nonexistent\/x\.env: ENOENT/ })
})

t.test('sync intervals', async t => {
  t.same(parseInterval('30 seconds'), { ms: 30_000, text: '30 seconds' })
  t.same(parseInterval('500 ms'), { ms: 500, text: '500 ms' })
  t.same(parseInterval('2 minute'), { ms: 120_000, text: '2 minute' })
  t.equal(parseInterval('30')?.ms, 30_000)
  t.equal(parseInterval('soon'), undefined)
  t.equal(parseInterval('5 fortnights'), undefined)
})
