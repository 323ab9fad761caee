import t from 'tap'
import { randomBytes } from 'node:crypto'
import { writeFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { configSecrets, loadConfigFile, parseConfig } from '../src/node/config.js'
import { parseDuration } from '../src/base/duration.js'
import { LedgerMeshError } from '../src/base/errors.js'

const base = { NODE_TYPE: 'master', NODE_NAME: 'm1' }

function configError (env: Record<string, string>, source = 'test.env'): LedgerMeshError {
  try {
    parseConfig(env, source)
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
    [{ ...base, LEDGER_CONN: '10.0.0.1:32048, nowhere' }, 'LEDGER_CONN', /LEDGER_CONN="10\.0\.0\.1:32048, nowhere".*element 2 of 2 is "nowhere", not ip:port/],
    [{ ...base, LEDGER_CONN: '10.0.0.1:32048,,10.0.0.2:32048' }, 'LEDGER_CONN', /element 2 of 3 is empty/],
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
    [{ ...base, LEASE_TTL: 'forever' }, 'LEASE_TTL', /LEASE_TTL="forever"/],
    [{ ...base, WITNESSES: 'abc@127.0.0.1:1' }, 'WITNESSES', /WITNESSES="abc@127\.0\.0\.1:1".*<public key hex>@<ip>:<port>/],
    [{ ...base, WITNESSES: `${'a'.repeat(64)}@127.0.0.1:1,${'a'.repeat(64)}@127.0.0.1:2` }, 'WITNESSES', /each witness key once/],
    [{ ...base, WITNESSES: `${'a'.repeat(64)}@127.0.0.1:1`, WITNESS_QUORUM: '2' }, 'WITNESS_QUORUM', /WITNESS_QUORUM="2".*at most the 1 witness/],
    [{ ...base, WITNESS_QUORUM: '1' }, 'WITNESS_QUORUM', /WITNESS_QUORUM="1".*WITNESSES names no witness/],
    [{ ...base, WITNESS_QUORUM: 'most' }, 'WITNESS_QUORUM', /WITNESS_QUORUM="most"/]
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

t.test('LEDGER_MODE: full by default; light only on a worker, any other value named', async t => {
  const worker = { NODE_TYPE: 'worker', NODE_NAME: 'w', LEDGER_CONN: '127.0.0.1:1', SLAVE_NAME: 'slave-1' }
  t.equal(parseConfig(worker, 'test.env').ledgerMode, 'full', 'full by default')
  t.equal(parseConfig({ ...worker, LEDGER_MODE: ' Light ' }, 'test.env').ledgerMode, 'light', 'light on a worker (case and spaces as elsewhere)')
  t.match(configError({ ...worker, LEDGER_MODE: 'thin' }).message, /LEDGER_MODE="thin" in test.env: expected full \(a replica of the whole ledger\) or light/, 'an unknown mode')
  t.match(configError({ ...base, LEDGER_MODE: 'light' }).message, /LEDGER_MODE="light" in test.env: expected full on a master node: only a worker \(NODE_TYPE=worker\) can be light/, 'not on a master')
  t.match(configError({ NODE_TYPE: 'slave', NODE_NAME: 's', LEDGER_CONN: '127.0.0.1:1', LEDGER_MODE: 'light' }).message, /expected full on a slave node/, 'not on a slave')
  t.match(configError({ NODE_TYPE: 'master,slave,worker', NODE_NAME: 'sa', LEDGER_MODE: 'light' }).message, /expected full on a master,slave,worker node/, 'not on a stand-alone node')
})

t.test('slave processes: SUBACCOUNT_PROCESSES and a SUBACCOUNT_RUNNER_<KIND> per kind', async t => {
  const slave = { NODE_TYPE: 'slave', NODE_NAME: 's', LEDGER_CONN: '127.0.0.1:1' }
  t.same(parseConfig(slave, 'test.env').subaccountRunners, {}, 'none by default')
  const config = parseConfig({ ...slave, SUBACCOUNT_PROCESSES: 'Ingest, import,time-line', SUBACCOUNT_RUNNER_INGEST: 'node i.mjs', SUBACCOUNT_RUNNER_IMPORT: 'node m.mjs', SUBACCOUNT_RUNNER_TIME_LINE: 'node t.mjs' }, 'test.env')
  t.same(config.subaccountRunners, { ingest: 'node i.mjs', import: 'node m.mjs', 'time-line': 'node t.mjs' }, 'kinds lower-cased, in order')
  const missing = configError({ ...slave, SUBACCOUNT_PROCESSES: 'ingest,plan', SUBACCOUNT_RUNNER_INGEST: 'x' })
  t.equal(missing.details.key, 'SUBACCOUNT_RUNNER_PLAN')
  t.match(missing.message, /SUBACCOUNT_RUNNER_PLAN=missing in test\.env: expected the command that runs a sub-account's 'plan' process \(SUBACCOUNT_PROCESSES lists 'plan'\)/)
  const bad = configError({ ...slave, SUBACCOUNT_PROCESSES: 'ingest;plan' })
  t.equal(bad.details.key, 'SUBACCOUNT_PROCESSES')
  t.match(bad.message, /SUBACCOUNT_PROCESSES="ingest;plan".*comma-separated/)
  t.same(parseConfig({ NODE_TYPE: 'worker', NODE_NAME: 'w', LEDGER_CONN: '127.0.0.1:1', SLAVE_NAME: 's', SUBACCOUNT_PROCESSES: 'ingest' }, 'test.env').subaccountRunners, {}, 'only a slave needs (and runs) them')
})

t.test('a missing file is a clear error', async t => {
  t.throws(() => loadConfigFile('/nonexistent/x.env'), { code: 'bad_config', message: /cannot read config file \/nonexistent\/x\.env: ENOENT/ })
})

t.test('sync intervals', async t => {
  t.same(parseDuration('30 seconds'), { ms: 30_000, text: '30 seconds' })
  t.same(parseDuration('500 ms'), { ms: 500, text: '500 ms' })
  t.same(parseDuration('2 minute'), { ms: 120_000, text: '2 minute' })
  t.equal(parseDuration('30')?.ms, 30_000)
  t.equal(parseDuration('soon'), undefined)
  t.equal(parseDuration('5 fortnights'), undefined)
})

t.test('NETWORK_KEY: 64 hex characters, or a key file in either format, relative to the env file', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lm-config-netkey-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const hex = randomBytes(32).toString('hex')
  const bytes = Uint8Array.from(Buffer.from(hex, 'hex'))

  t.equal(parseConfig(base, 'test.env').networkKey, undefined, 'no key: an open network')
  const inline = parseConfig({ ...base, NETWORK_KEY: hex }, 'test.env').networkKey!
  t.same(inline.key, bytes, 'the 32 bytes of the hex value')
  t.equal(inline.file, undefined)
  t.match(inline.id, /^[0-9a-f]{16}$/, 'a fingerprint')
  t.not(inline.id, hex.slice(0, 16), 'the fingerprint is not a piece of the key')
  t.same(parseConfig({ ...base, NETWORK_KEY: ` ${hex.toUpperCase()} ` }, 'test.env').networkKey!.key, bytes, 'upper case and spaces around are fine')
  const other = parseConfig({ ...base, NETWORK_KEY: randomBytes(32).toString('hex') }, 'test.env').networkKey!
  t.not(other.id, inline.id, 'another key, another fingerprint')

  mkdirSync(join(dir, 'keys'))
  writeFileSync(join(dir, 'keys', 'network.hex'), hex + '\n')
  writeFileSync(join(dir, 'keys', 'swarm.key'), `/key/swarm/psk/1.0.0/\r\n/base16/\r\n${hex}\r\n`)
  writeFileSync(join(dir, 'node.env'), 'NODE_TYPE=master\nNODE_NAME=m1\nNETWORK_KEY=keys/swarm.key\n')
  const elsewhere = mkdtempSync(join(tmpdir(), 'lm-config-cwd-'))
  t.teardown(() => rmSync(elsewhere, { recursive: true, force: true }))
  const cwd = process.cwd()
  process.chdir(elsewhere)
  t.teardown(() => process.chdir(cwd))
  const fromSwarm = loadConfigFile(join(dir, 'node.env'), {}).networkKey!
  t.same(fromSwarm.key, bytes, 'a swarm key file (CRLF lines), relative to the env file, not to the working directory')
  t.equal(fromSwarm.file, join(dir, 'keys', 'swarm.key'))
  t.equal(fromSwarm.id, inline.id, 'the same key, the same fingerprint')
  const fromHex = parseConfig({ ...base, NETWORK_KEY: join(dir, 'keys', 'network.hex') }, join(dir, 'node.env')).networkKey!
  t.same(fromHex.key, bytes, 'a file holding the hex key')
  const fromProcessEnv = loadConfigFile(join(dir, 'node.env'), { NETWORK_KEY: 'ignored, the file wins' }).networkKey!
  t.same(fromProcessEnv.key, bytes, 'the env file wins over the process environment')
  writeFileSync(join(dir, 'open.env'), 'NODE_TYPE=master\nNODE_NAME=m1\n')
  t.same(loadConfigFile(join(dir, 'open.env'), { NETWORK_KEY: hex }).networkKey!.key, bytes, 'or it comes from the process environment')

  const secrets = configSecrets(parseConfig({ ...base, NETWORK_KEY: join(dir, 'keys', 'swarm.key') }, 'test.env'))
  t.ok(secrets.values.includes(hex), 'a key read from a file is among the values masked in answers and logs')
  t.ok(secrets.keys.includes('NETWORK_KEY'))
})

t.test('a bad NETWORK_KEY names the problem and never shows the key', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lm-config-badkey-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const hex = randomBytes(32).toString('hex')
  const file = (name: string, content: string | Buffer): string => { writeFileSync(join(dir, name), content); return join(dir, name) }
  mkdirSync(join(dir, 'a-directory'))
  const cases: Array<[string, RegExp]> = [
    [hex.slice(0, 62), /NETWORK_KEY=\*\*\* \(62 characters\) in .*: expected 64 hex characters .*found 62 hex characters, not 64/],
    [hex + 'ab', /NETWORK_KEY=\*\*\* \(66 characters\).*found 66 hex characters, not 64/],
    [`0x${hex}`, /NETWORK_KEY=\*\*\* \(66 characters\).*found characters that are not hex, and no key file of that name/],
    [hex.slice(0, 60) + 'zzzz', /NETWORK_KEY=\*\*\* \(64 characters\).*not hex/],
    [join(dir, 'missing.key'), /NETWORK_KEY=file ".*missing\.key" in .*cannot read the key file .*missing\.key \(ENOENT\)/],
    ['./missing.key', new RegExp(`cannot read the key file ${join(dir, 'missing.key').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(ENOENT\\)`)],
    [join(dir, 'a-directory'), /the key file .*a-directory is not a regular file/],
    [file('short.key', hex.slice(0, 63) + '\n'), /the key file .*short\.key holds 63 hex characters, not 64/],
    [file('big.key', 'a'.repeat(5000)), /the key file .*big\.key has 5000 bytes/],
    [file('binary.key', Buffer.from([0xff, 0xfe, 0x00, 0x41])), /the key file .*binary\.key is not text/],
    [file('words.key', `my key is ${hex}\n`), /holds neither 64 hex characters nor a swarm key/],
    [file('b64.key', `/key/swarm/psk/1.0.0/\n/base64/\n${Buffer.from(hex, 'hex').toString('base64')}\n`), /second line is not \/base16\//],
    [file('short-swarm.key', `/key/swarm/psk/1.0.0/\n/base16/\n${hex.slice(2)}\n`), /third line is not the key in 64 hex characters/],
    [file('long-swarm.key', `/key/swarm/psk/1.0.0/\n/base16/\n${hex}\n${hex}\n`), /has 4 lines, not 3/],
    [file('empty.key', ''), /holds neither 64 hex characters nor a swarm key/]
  ]
  for (const [value, message] of cases) {
    const err = configError({ ...base, NETWORK_KEY: value }, join(dir, 'node.env'))
    t.equal(err.code, 'bad_config')
    t.equal(err.details.key, 'NETWORK_KEY')
    t.match(err.message, message)
    for (const piece of [hex.slice(0, 16), hex.slice(24, 40), hex.slice(-16)]) {
      t.notOk(err.message.includes(piece), `the message shows no part of the key (${message.source.slice(0, 40)})`)
      t.notOk(JSON.stringify(err.details).includes(piece), 'nor do the details')
    }
  }
})

t.test('LEDGER_CONN takes a list of masters: ledgerConn is the first, ledgerConns all of them in order', async t => {
  const single = parseConfig({ NODE_TYPE: 'member', NODE_NAME: 'm', LEDGER_CONN: '10.0.0.1:32048' }, 'test.env')
  t.equal(single.ledgerConn, '10.0.0.1:32048', 'one address, as AnyLog writes it')
  t.same(single.ledgerConns, ['10.0.0.1:32048'])
  const list = parseConfig({ NODE_TYPE: 'member', NODE_NAME: 'm', LEDGER_CONN: ' 10.0.0.1:32048 , 10.0.0.2:32048,10.0.0.1:32048' }, 'test.env')
  t.equal(list.ledgerConn, '10.0.0.1:32048')
  t.same(list.ledgerConns, ['10.0.0.1:32048', '10.0.0.2:32048'], 'spaces around commas allowed; a repeat counts once')
  const master = parseConfig({ NODE_TYPE: 'master', NODE_NAME: 'm', INTERNAL_IP: '10.0.0.9' }, 'test.env')
  t.same(master.ledgerConns, ['10.0.0.9:32048'], 'a master\'s default is its own address')
})

t.test('WITNESSES and WITNESS_QUORUM: a master\'s witnesses, a majority by default', async t => {
  const keys = ['a', 'b', 'c'].map(c => c.repeat(64))
  const env = { NODE_TYPE: 'master', NODE_NAME: 'm', WITNESSES: keys.map((k, i) => `${k}@10.0.0.${i + 1}:32048`).join(', ') }
  t.same(parseConfig(env, 'test.env').witnesses, { witnesses: keys.map((key, i) => ({ key, address: `10.0.0.${i + 1}:32048` })), quorum: 2 })
  t.equal(parseConfig({ ...env, WITNESS_QUORUM: '3' }, 'test.env').witnesses?.quorum, 3)
  t.equal(parseConfig({ NODE_TYPE: 'master', NODE_NAME: 'm' }, 'test.env').witnesses, undefined, 'none by default')
})
