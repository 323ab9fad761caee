import t, { type Test } from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startNode, type NodeProcess } from './helpers/node-process.js'
import { waitFor } from './helpers/net.js'
import { tmpDir } from './helpers/tmp.js'
import { writeAnyLogDeployment } from './helpers/anylog-deployment.js'

/**
 * An AnyLog deployment of an operator and a query node joining a master, in the shapes of
 * AnyLog's node-deployment scripts (test/helpers/anylog-deployment.ts). ledgermesh runs the
 * metadata steps and passes over the data-layer lines (noted in the error log), even where
 * `on error goto` would have ended the scripts.
 */
const COMPANY = 'Lake Co'
const CLUSTER = 'lake-cluster1'
const dir = await tmpDir(t, 'lm-anylog-op-')
const scripts = await writeAnyLogDeployment(dir)

const anylogEnv = { COMPANY_NAME: `"${COMPANY}"`, DB_TYPE: 'sqlite', DB_USER: '""', DB_PASSWD: '""', LOCATION: '""', BLOCKCHAIN_SOURCE: 'master', BLOCKCHAIN_SYNC: '30 second', MEMBER: '""', LOCAL_SCRIPTS: scripts }

async function deploy (t: Test, node: NodeProcess): Promise<string> {
  const reply = await node.command(`process ${join(scripts, 'main.al')}`, { method: 'POST' })
  t.equal(reply.status, 200, reply.text)
  t.match(reply.text, /Process\s+Status/, `${node.name}: main.al ran to its end`)
  return reply.text
}

const count = async (node: NodeProcess, query: string): Promise<number> => Number((await node.ok(`blockchain get ${query} bring.count`)).text.trim())
const errorLog = async (node: NodeProcess): Promise<string> => (await node.ok('get error log')).text

t.test('an operator and a query node deployed with AnyLog\'s scripts, twice across a restart', async t => {
  const master = await startNode(t, { type: 'master', name: 'lake-master', env: anylogEnv })
  await deploy(t, master)
  t.equal(await count(master, 'config where node_type = master'), 1)

  const operatorEnv = { ...anylogEnv, LEDGER_CONN: master.ledgerConn, CLUSTER_NAME: CLUSTER, DEFAULT_DBMS: 'lake_data' }
  let operator = await startNode(t, { type: 'operator', name: 'lake-operator', env: operatorEnv })
  await deploy(t, operator)

  const clusters = (await master.ok('blockchain get cluster')).json
  t.equal(clusters.length, 1, 'one cluster')
  t.match(clusters[0].cluster, { company: COMPANY, name: CLUSTER, status: 'active' }, 'AnyLog\'s cluster policy')
  const clusterId = clusters[0].cluster.id
  const operators = (await master.ok('blockchain get operator')).json
  t.equal(operators.length, 1, 'one operator policy')
  t.match(operators[0].operator, { name: 'lake-operator', company: COMPANY, local_ip: '127.0.0.1', port: operator.tcpPort, rest_port: operator.restPort, cluster: clusterId, main: true }, 'the operator belongs to its cluster')
  t.equal(await count(master, 'config where node_type = operator'), 1)
  t.equal((await operator.ok('!operator_id')).text, operators[0].operator.id, 'node_policy.al found the operator policy (AnyLog\'s operator_id)')

  const passedOver = await errorLog(operator)
  for (const line of ['connect dbms almgm', 'create table tsd_info', 'partition', 'set buffer threshold', 'run streamer', 'run operator where ...']) {
    t.match(passedOver, `'${line}'`, `${line}: noted in the error log`)
  }
  t.match(passedOver, /passed over: the script goes on/)
  t.notMatch(passedOver, /edgelake-error/, 'a then-statement that does not parse fails only when it runs')

  await operator.stop()
  operator = await startNode(t, { type: 'operator', name: 'lake-operator', home: operator.home, tcpPort: operator.tcpPort, restPort: operator.restPort, env: operatorEnv })
  await deploy(t, operator)
  t.equal(await count(master, 'cluster'), 1, 'restarted and deployed again: no second cluster')
  t.equal(await count(master, 'operator'), 1, 'no second operator policy')
  t.equal(await count(master, 'config where node_type = operator'), 1, 'no second config policy')

  let query = await startNode(t, { type: 'query', name: 'lake-query', env: { ...anylogEnv, LEDGER_CONN: master.ledgerConn } })
  await deploy(t, query)
  t.match((await master.ok('blockchain get query')).json, [{ query: { name: 'lake-query', company: COMPANY, port: query.tcpPort } }])
  t.equal((await master.ok('blockchain get query')).json[0].query.cluster, undefined, 'only operators have a cluster')
  t.match(await errorLog(query), /'connect dbms system_query' is a database of AnyLog's data layer/)
  await query.stop()
  query = await startNode(t, { type: 'query', name: 'lake-query', home: query.home, tcpPort: query.tcpPort, restPort: query.restPort, env: { ...anylogEnv, LEDGER_CONN: master.ledgerConn } })
  await deploy(t, query)
  t.equal(await count(master, 'query'), 1, 'no second query policy')
  t.equal(await count(master, 'config where node_type = query'), 1)
  await waitFor('the query node\'s replica', async () => await count(query, 'cluster') === 1 ? true : undefined)
})

t.test('create policy, as AnyLog makes policies', async t => {
  const master = await startNode(t, { type: 'master', name: 'policy-master', env: anylogEnv })
  // a script assigns it (REST reads run in a scope of their own), REST reads it back
  let scriptsMade = 0
  const made = async (text: string): Promise<any> => {
    const file = join(dir, `made-${++scriptsMade}.al`)
    await writeFile(file, `p = ${text}`)
    await master.ok(`process ${file}`, { method: 'POST' })
    return (await master.ok('!p')).json
  }
  t.same(await made('create policy tag where dbms = lake and table = t1'), { tag: { dbms: 'lake', table: 't1' } }, 'the where pairs, nothing else')
  t.match(await made('create policy master with defaults where company = "Lake Co"'), { master: { company: COMPANY, port: 32048, rest_port: 32049, ip: String, internal_ip: String } }, 'AnyLog\'s master defaults')
  t.match(await made('create policy query with defaults where port = 4000'), { query: { port: '4000', rest_port: 32349 } }, 'a given key is kept')

  const cluster = await made(`create policy cluster with defaults where company = "${COMPANY}" and name = c1`)
  t.same(cluster, { cluster: { company: COMPANY, name: 'c1', status: 'active' } })
  await master.ok('blockchain prepare policy !p')
  await master.ok('blockchain insert where policy = !p and local = true')
  const clusterId = (await master.ok('blockchain get cluster where name = c1 bring [*][id]')).text.trim()
  const taken = await master.command('create policy cluster with defaults where company = "Lake Co" and name = c1', { method: 'GET' })
  t.equal(taken.json.error, 'conflict', taken.text)
  t.match(taken.json.message, /a cluster named 'c1' is on the ledger already/)

  const orphan = await master.command('create policy operator with defaults where company = "Lake Co" and name = op1', { method: 'GET' })
  t.equal(orphan.json.error, 'bad_policy')
  t.match(orphan.json.message, /an operator belongs to a cluster/)
  const nowhere = await master.command(`create policy operator with defaults where company = "Lake Co" and name = op1 and cluster = ${'0'.repeat(64)}`, { method: 'GET' })
  t.match(nowhere.json.message, /no cluster policy with id 0{64}/)
  const operator = await made(`create policy operator with defaults where company = "${COMPANY}" and name = op1 and cluster = ${clusterId}`)
  t.match(operator, { operator: { company: COMPANY, name: 'op1', cluster: clusterId, port: 32148, rest_port: 32149 } })
  t.ok(Number.isInteger(operator.operator.member) && operator.operator.member >= 1 && operator.operator.member <= 255, 'a member number from 1 to 255')

  const bad = await master.command('create policy cluster with name = c2', { method: 'GET' })
  t.equal(bad.status, 400)
  t.match(bad.json.message, /create policy: expected 'defaults' after 'with'/)
  t.equal(await count(master, 'cluster'), 1, 'nothing was written by create policy itself')
})
