import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfigFile, parseConfig } from '../src/node/config.js'
import { listenAddress } from '../src/net/bind.js'
import { LedgerMeshError } from '../src/base/errors.js'

/**
 * Env files written the way AnyLog's and EdgeLake's deployments write them (the text here is
 * our own): booleans in any case, empty values as KEY="", DB_TYPE=sqlite, AnyLog's node types.
 */

const dir = mkdtempSync(join(tmpdir(), 'lm-anylog-env-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
let files = 0
function load (lines: string[]): ReturnType<typeof loadConfigFile> {
  const file = join(dir, `node-${files++}.env`)
  writeFileSync(file, lines.join('\n') + '\n')
  return loadConfigFile(file, {})
}

function configError (env: Record<string, string>): LedgerMeshError {
  try {
    parseConfig(env, 'test.env')
  } catch (err) {
    if (err instanceof LedgerMeshError) return err
    throw err
  }
  throw new Error('expected a config error')
}

const master = { NODE_TYPE: 'master', NODE_NAME: 'm1' }

t.test('an AnyLog master env file loads: empty values, booleans, sqlite, keys kept and ignored', async t => {
  const config = load([
    '# an edge deployment, master node',
    'NODE_TYPE=master',
    'NODE_NAME=lake-master',
    'COMPANY_NAME="Lake Co"',
    'ANYLOG_SERVER_PORT=32048',
    'ANYLOG_REST_PORT=32049',
    'TCP_BIND=false',
    'REST_BIND=false',
    'DB_TYPE=sqlite',
    'DB_USER=""',
    'DB_PASSWD=""',
    'DB_IP=127.0.0.1',
    'DB_PORT=5432',
    'AUTOCOMMIT=false',
    'SYSTEM_QUERY=False',
    'MEMORY=TRUE',
    'BLOCKCHAIN_SOURCE=master',
    'BLOCKCHAIN_SYNC=30 second',
    'BLOCKCHAIN_DESTINATION=file',
    'LEDGER_CONN=127.0.0.1:32048',
    'DEPLOY_LOCAL_SCRIPT=false',
    'DEBUG_MODE=0',
    'DISABLE_CLI=false',
    'REMOTE_CLI=true',
    'LOCATION=""',
    'COUNTRY=""',
    'STATE=""',
    "CITY=''",
    'ANYLOG_BROKER_PORT=""',
    'BROKER_BIND=false',
    'COMPRESS_FILE=true',
    'WRITE_IMMEDIATE=true',
    'ENABLE_NEBULA=false',
    'ENABLE_ETHERIP = false',
    'THRESHOLD_TIME=60 seconds',
    'MSG_TABLE=bring [table]'
  ])
  t.equal(config.nodeType, 'master')
  t.equal(config.role, 'master')
  t.equal(config.companyName, 'Lake Co', 'quotes are taken off')
  t.equal(config.db.type, 'level', 'DB_TYPE=sqlite is the embedded store')
  t.equal(config.db.requested, 'sqlite')
  t.equal(config.db.user, 'postgres', 'DB_USER="" counts as not set: its default applies')
  t.equal(config.db.password, undefined, 'DB_PASSWD="": no password')
  t.same([config.loc, config.country, config.state, config.city], ['0.0, 0.0', 'Unknown', 'Unknown', 'Unknown'], 'empty location keys take their defaults')
  t.equal(config.restBind, false)
  t.equal(config.tcpBind, false)
  t.equal(listenAddress(config.restBind, config.ip), '0.0.0.0', 'REST_BIND=false: every interface')
  t.equal(config.env.DISABLE_CLI, 'false', 'AnyLog booleans without a meaning here are kept')
  t.equal(config.env.ENABLE_ETHERIP, 'false', 'spaces around = are fine')
  t.equal(config.env.MSG_TABLE, 'bring [table]')
  t.equal(config.env.DB_USER, '', 'the raw value stays as written')
})

t.test('REST_BIND, TCP_BIND, BROKER_BIND: true/false in any case, or an IPv4 address', async t => {
  for (const text of ['true', 'True', 'TRUE']) {
    const config = parseConfig({ ...master, INTERNAL_IP: '10.1.2.3', REST_BIND: text, TCP_BIND: text }, 'test.env')
    t.equal(config.restBind, true, `REST_BIND=${text}`)
    t.equal(listenAddress(config.restBind, config.ip), '10.1.2.3', `REST_BIND=${text}: only the node's own IP`)
    t.equal(listenAddress(config.tcpBind, config.ip), '10.1.2.3', `TCP_BIND=${text}: only the node's own IP`)
  }
  for (const text of ['false', 'False', 'FALSE']) {
    const config = parseConfig({ ...master, REST_BIND: text, TCP_BIND: text, BROKER_BIND: text }, 'test.env')
    t.equal(listenAddress(config.restBind, config.ip), '0.0.0.0', `REST_BIND=${text}: every interface`)
    t.equal(listenAddress(config.tcpBind, config.ip), '0.0.0.0', `TCP_BIND=${text}: every interface`)
  }
  const address = parseConfig({ ...master, REST_BIND: '10.0.0.7' }, 'test.env')
  t.equal(listenAddress(address.restBind, address.ip), '10.0.0.7', 'an address: that address')

  const unset = parseConfig({ ...master, INTERNAL_IP: '10.1.2.3' }, 'test.env')
  t.equal(listenAddress(unset.restBind, unset.ip), '127.0.0.1', 'REST_BIND unset: loopback, whatever INTERNAL_IP is')
  t.equal(listenAddress(unset.tcpBind, unset.ip), '10.1.2.3', 'TCP_BIND unset: INTERNAL_IP, as before')
  const empty = parseConfig({ ...master, REST_BIND: '', TCP_BIND: '' }, 'test.env')
  t.equal(empty.restBind, '127.0.0.1', 'REST_BIND="" counts as unset')
  t.equal(empty.tcpBind, true)

  for (const key of ['REST_BIND', 'TCP_BIND', 'BROKER_BIND']) {
    for (const bad of ['yes', '1', '0.0.0.256', 'localhost']) {
      const err = configError({ ...master, [key]: bad })
      t.equal(err.details.key, key)
      t.match(err.message, new RegExp(`${key}="${bad.replace(/\./g, '\\.')}" in test\\.env: expected true \\(listen on the node's own IP only\\), false \\(listen on all interfaces\\) or an IPv4 address`))
    }
  }
})

t.test('AnyLog node types: operator, query, publisher, generic run as members; master-operator and master-publisher as the master', async t => {
  for (const type of ['operator', 'query', 'publisher', 'generic', 'Operator']) {
    const config = parseConfig({ NODE_TYPE: type, NODE_NAME: 'n1', LEDGER_CONN: '127.0.0.1:32048' }, 'test.env')
    t.equal(config.nodeType, type.toLowerCase(), `NODE_TYPE=${type}`)
    t.equal(config.role, 'member', `NODE_TYPE=${type} keeps a replica and serves REST`)
    t.equal(config.slots, 0)
    const err = configError({ NODE_TYPE: type, NODE_NAME: 'n1' })
    t.equal(err.details.key, 'LEDGER_CONN', `NODE_TYPE=${type} needs the master's address`)
  }
  for (const type of ['master-operator', 'master-publisher']) {
    const config = parseConfig({ NODE_TYPE: type, NODE_NAME: 'n1', ANYLOG_SERVER_PORT: '32148' }, 'test.env')
    t.equal(config.nodeType, type)
    t.equal(config.role, 'master', `NODE_TYPE=${type} orders the ledger`)
    t.equal(config.ledgerConn, '127.0.0.1:32148', 'its own ledger connection')
  }
  const err = configError({ NODE_TYPE: 'relay', NODE_NAME: 'n1' })
  t.match(err.message, /NODE_TYPE="relay" in test\.env: expected one of master, slave, worker, member, operator, query, publisher, generic, master-operator, master-publisher/)
})

t.test('LOCATION is AnyLog\'s name for LOC', async t => {
  t.equal(parseConfig({ ...master, LOCATION: '48.85, 2.35' }, 'test.env').loc, '48.85, 2.35')
  t.equal(parseConfig({ ...master, LOCATION: '48.85, 2.35', LOC: '1.0, 2.0' }, 'test.env').loc, '1.0, 2.0', 'LOC wins when both are set')
  t.equal(parseConfig(master, 'test.env').loc, '0.0, 0.0')
})
