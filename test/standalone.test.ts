import t from 'tap'
import { RUNNER, insert, processesOf, profile, slaveRuns, waitRunning, getJson } from './helpers/fleet.js'
import { ROOT, startNode } from './helpers/node-process.js'
import { join } from 'node:path'
import { waitFor } from './helpers/net.js'

const SUBACCOUNT_RUNNER = `exec ${process.execPath} ${join(ROOT, 'scripts', 'demo-subaccount-runner.mjs')}`

// A stand-alone node: NODE_TYPE=master,slave,worker in one env file, one process, one REST
// port. It declares all three roles, allocates to itself, and runs the profiles itself,
// renewing its worker lease with its own allocator.

t.test('one node holding the master, slave and worker roles allocates and runs profiles by itself', async t => {
  const node = await startNode(t, {
    type: 'master,slave,worker',
    name: 'solo',
    env: { SLOTS: 4, PROFILE_KINDS: 'demo,other', PROFILE_RUNNER_DEMO: RUNNER, PROFILE_RUNNER_OTHER: RUNNER, PROFILE_STOP_GRACE: '1 second', SUBACCOUNT_PROCESSES: 'ingest,plan', SUBACCOUNT_RUNNER_INGEST: SUBACCOUNT_RUNNER, SUBACCOUNT_RUNNER_PLAN: SUBACCOUNT_RUNNER }
  })
  for (const type of ['master', 'slave', 'worker']) {
    const declared = await node.ok(`blockchain get ${type} where name = solo bring.count`)
    t.equal(declared.text.trim(), '1', `it declared itself a ${type}`)
  }
  const worker = (await node.ok('blockchain get worker where name = solo')).json[0].worker
  t.equal(worker.slave, 'solo', 'its worker is its own slave\'s')

  await insert(node, { subaccount: { name: 'acme', account: 'acme-inc' } })
  await profile(node, 'p-demo', 'demo', 'acme')
  await profile(node, 'p-other', 'other', 'acme')
  const rows = await waitRunning(node, ['p-demo', 'p-other'])
  t.ok(rows.every(r => r.pid !== null), 'both profiles run as processes of this node')
  const processes = await waitFor('the slave role\'s sub-account processes', async () => {
    const body = await getJson(node, '/v1/profiles')
    const rows = (body.slave?.processes ?? []) as Array<{ name: string, kind: string, state: string }>
    return rows.filter(r => r.state === 'RUNNING').length === 2 ? rows : undefined
  })
  t.same(processes.map(p => `${p.name}/${p.kind}`).sort(), ['acme/ingest', 'acme/plan'], 'one process per SUBACCOUNT_PROCESSES kind for its sub-account, beside the profiles')
  const status = await getJson(node, '/v1/status')
  t.equal(status.node_type, 'master,slave,worker')
  t.equal(status.profiles.lease.valid, true, 'its worker holds a lease from its own allocator')

  // the profiles report to the slave role's REST, on the same port
  const reports = await waitFor('heartbeats recorded by the slave role', async () => {
    const { runs } = await slaveRuns(node)
    return runs.size === 2 ? runs : undefined
  })
  t.same([...reports.keys()].sort(), ['p-demo', 'p-other'])

  // a profile deleted on the ledger stops here
  const id = (await node.ok('blockchain get profile where name = p-other')).json[0].profile.id
  await node.ok(`blockchain delete policy where id = ${String(id)}`, { method: 'POST' })
  await waitFor('p-other to stop', async () => (await processesOf(node)).every(r => r.name !== 'p-other') ? true : undefined)
  t.same((await processesOf(node)).map(r => r.name), ['p-demo'], 'the other runs on')
})

t.test('NODE_TYPE lists only roles a node can combine, each once', async t => {
  for (const bad of ['master,member', 'slave,slave', 'master,query']) {
    const node = await startNode(t, { type: bad as 'master', name: 'bad', noWait: true })
    const code = await node.waitForExit(20_000)
    t.equal(code, 2, `NODE_TYPE=${bad} is refused as a config error`)
    t.match(node.logs(), /NODE_TYPE/, 'naming the key')
  }
})
