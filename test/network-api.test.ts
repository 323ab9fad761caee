import t from 'tap'
import { getJson, startMaster, startSlave, startWorker } from './helpers/fleet.js'
import { waitFor } from './helpers/net.js'
import { startNode } from './helpers/node-process.js'

// GET /v1/network: the nodes the ledger declares, and on the master the head each replica
// holds (from its sync requests and what its watch sent), its lag and its lease.

interface NetworkNode { name: string, type: string, address: string | null, rest: string | null, key: string, self: boolean, seq: number | null, lag: number | null, last_sync: string | null, watching: boolean | null, lease: { state: string, draining: boolean } | null }
interface Network { node: string, role: string, head: number, nodes: NetworkNode[] }

t.test('the master knows every node, its head, its lag and its lease; a member knows the declarations', async t => {
  const master = await startMaster(t, 'net-master')
  await startSlave(t, master, 'net-slave', 4)
  const worker = await startWorker(t, master, { name: 'net-worker', slave: 'net-slave', slots: 2, kinds: ['demo'] })
  const member = await startNode(t, { type: 'member', name: 'net-member', env: { LEDGER_CONN: master.ledgerConn } })

  const view = await waitFor('every replica at the master\'s head, the worker\'s and the slave\'s leases live', async () => {
    const network = await getJson(master, '/v1/network') as Network
    const replicas = network.nodes.filter(n => !n.self)
    const ready = replicas.length === 3 && replicas.every(n => n.lag === 0 && n.watching === true) &&
      network.nodes.find(n => n.name === 'net-worker')?.lease?.state === 'live' && network.nodes.find(n => n.name === 'net-slave')?.lease?.state === 'live'
    return ready ? network : undefined
  }, { timeoutMs: 30_000, everyMs: 250 })
  t.equal(view.role, 'master')
  t.same(view.nodes.map(n => [n.type, n.name]), [['master', 'net-master'], ['slave', 'net-slave'], ['worker', 'net-worker'], ['member', 'net-member']], 'by role, as declared')
  const self = view.nodes.find(n => n.self)!
  t.equal(self.name, 'net-master')
  t.equal(self.seq, view.head, 'the master\'s own head')
  t.match(self.address, /^127\.0\.0\.1:\d+$/)
  for (const n of view.nodes.filter(n => !n.self)) {
    t.equal(n.seq, view.head, `${n.name} holds the head`)
    t.ok(n.last_sync !== null && !Number.isNaN(Date.parse(n.last_sync)), `${n.name} last synced at ${String(n.last_sync)}`)
  }
  t.equal(view.nodes.find(n => n.name === 'net-member')!.lease, null, 'a member holds no lease')
  t.equal(view.nodes.find(n => n.name === 'net-worker')!.lease!.draining, false)

  await worker.ok('worker drain', { method: 'POST' })
  await waitFor('the drain on the master', async () => {
    const network = await getJson(master, '/v1/network') as Network
    return network.nodes.find(n => n.name === 'net-worker')?.lease?.draining === true ? true : undefined
  }, { timeoutMs: 30_000, everyMs: 250 })
  t.pass('a drained worker shows draining')

  const seen = await getJson(member, '/v1/network') as Network
  t.equal(seen.role, 'member')
  t.same(seen.nodes.filter(n => n.self).map(n => n.name), ['net-member'], 'a member knows itself')
  t.ok(seen.nodes.filter(n => !n.self).every(n => n.seq === null && n.lease === null), 'and only the declarations of the others')
  t.equal(seen.nodes.length, 4)
  const openapi = await getJson(master, '/openapi.json') as { paths: Record<string, unknown> }
  t.ok(openapi.paths['/v1/network'] !== undefined, 'documented in the OpenAPI document')
})
