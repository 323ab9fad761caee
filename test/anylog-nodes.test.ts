import t from 'tap'
import { startNode, type NodeProcess } from './helpers/node-process.js'
import { waitFor } from './helpers/net.js'

/**
 * Nodes started from env files written with AnyLog's keys and values (booleans, KEY="",
 * DB_TYPE=sqlite, NODE_TYPE=operator): a master and an operator that syncs from it and
 * declares an `operator` policy, once, restart or not. Everything listens on 127.0.0.1:
 * TCP_BIND/REST_BIND=true bind to INTERNAL_IP, which is loopback by default.
 */

const COMPANY = 'Lake Co'
/** What AnyLog's env files hold besides the keys ledgermesh uses: kept, and ignored. */
const anylogKeys = {
  COMPANY_NAME: `"${COMPANY}"`,
  DB_TYPE: 'sqlite',
  DB_USER: '""',
  DB_PASSWD: '""',
  DB_IP: '127.0.0.1',
  DB_PORT: 5432,
  AUTOCOMMIT: 'false',
  SYSTEM_QUERY: 'false',
  MEMORY: 'true',
  BLOCKCHAIN_SOURCE: 'master',
  BLOCKCHAIN_DESTINATION: 'file',
  DISABLE_CLI: 'false',
  REMOTE_CLI: 'false',
  LOCATION: '""',
  COUNTRY: '""',
  ANYLOG_BROKER_PORT: '""',
  BROKER_BIND: 'false',
  COMPRESS_FILE: 'true',
  DEPLOY_LOCAL_SCRIPT: 'false',
  DEBUG_MODE: 'false'
}

const count = async (node: NodeProcess, query: string): Promise<number> => Number((await node.ok(`blockchain get ${query} bring.count`)).text.trim())

t.test('a master and an operator from AnyLog env files', async t => {
  const master = await startNode(t, { type: 'master', name: 'lake-master', env: { ...anylogKeys, TCP_BIND: 'true', REST_BIND: 'TRUE' } })
  const operatorEnv = { ...anylogKeys, LEDGER_CONN: master.ledgerConn, TCP_BIND: 'True', REST_BIND: 'true', CLUSTER_NAME: 'lake-cluster', MEMBER: '""', BLOCKCHAIN_SYNC: '1 second' }
  const operator = await startNode(t, { type: 'operator', name: 'lake-operator', env: operatorEnv })

  // AnyLog's node_policy.al finds the master's declaration so
  const found = await master.ok(`blockchain get master where company = "${COMPANY}" and name = lake-master and local_ip = 127.0.0.1 and port = ${master.tcpPort} bring.first`)
  t.match(found.json, [{ master: { name: 'lake-master', company: COMPANY, local_ip: '127.0.0.1', port: master.tcpPort, rest_port: master.restPort } }])

  t.equal(await count(operator, 'master'), 1, 'the operator synced the master\'s declaration')
  await waitFor('the operator\'s policy on the master', async () => await count(master, 'operator') === 1 ? true : undefined)
  const policy = (await master.ok('blockchain get operator where name = lake-operator')).json[0].operator
  t.match(policy, {
    name: 'lake-operator',
    company: COMPANY,
    hostname: String,
    ip: '127.0.0.1',
    local_ip: '127.0.0.1',
    port: operator.tcpPort,
    rest_port: operator.restPort,
    loc: '0.0, 0.0',
    country: 'Unknown',
    state: 'Unknown',
    city: 'Unknown'
  }, 'AnyLog\'s fields')
  t.equal(policy.internal_ip, undefined, 'local_ip, as AnyLog writes it')

  const status = (await operator.ok('get status where format=json')).json
  t.match(status, { node_type: 'operator', role: 'member' })
  t.match((await operator.ok('get processes where format=json')).json.REST, { Details: new RegExp(`Listening on: 127\\.0\\.0\\.1:${operator.restPort}`) }, 'REST_BIND=true: INTERNAL_IP')

  await operator.stop()
  const again = await startNode(t, { type: 'operator', name: 'lake-operator', home: operator.home, tcpPort: operator.tcpPort, restPort: operator.restPort, env: operatorEnv })
  t.equal(await count(master, 'operator'), 1, 'restarted, the operator finds its declaration and does not declare it again')
  t.equal(await count(again, 'operator where name = lake-operator'), 1)
})

t.test('a master-operator orders the ledger and declares itself as an operator', async t => {
  const node = await startNode(t, { type: 'master-operator', name: 'lake-solo', env: { ...anylogKeys, TCP_BIND: 'true' } })
  t.match((await node.ok('blockchain get operator')).json, [{ operator: { name: 'lake-solo', company: COMPANY, local_ip: '127.0.0.1', port: node.tcpPort } }])
  t.equal(await count(node, 'master'), 0, 'as in AnyLog, no master policy')
  t.match((await node.ok('get status where format=json')).json, { node_type: 'master-operator', role: 'master' })
})
