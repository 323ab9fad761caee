import t from 'tap'
import { startNode, type NodeProcess } from './helpers/node-process.js'
import { waitFor } from './helpers/net.js'

async function headOf (node: NodeProcess): Promise<{ seq: number, hash: string }> {
  return (await node.ok('get status where format=json')).json.ledger.head
}

async function waitForEqualHeads (nodes: NodeProcess[]): Promise<{ seq: number, hash: string }> {
  return await waitFor('every head to be equal', async () => {
    const heads = await Promise.all(nodes.map(headOf))
    return heads.every(h => h.seq === heads[0].seq && h.hash === heads[0].hash) ? heads[0] : undefined
  }, { timeoutMs: 20_000 })
}

t.test('master, slave and two workers (one relaying through the slave) share one ledger', async t => {
  const master = await startNode(t, { type: 'master', name: 'm' })
  const conn = { LEDGER_CONN: master.ledgerConn }
  const slave = await startNode(t, { type: 'slave', name: 's1', env: conn })
  const w1 = await startNode(t, { type: 'worker', name: 'w1', env: { ...conn, SLAVE_NAME: 's1' } })
  const w2 = await startNode(t, { type: 'worker', name: 'w2', env: { ...conn, BLOCKCHAIN_SOURCE: 's1', SLAVE_NAME: 's1' } })
  const nodes = [master, slave, w1, w2]

  const declared = await waitFor('every node to see all four declarations', async () => {
    const counts = await Promise.all(nodes.map(async n => (await n.ok('blockchain get (master, slave, worker) bring.count')).text))
    return counts.every(c => c === '4') ? counts : undefined
  })
  t.same(declared, ['4', '4', '4', '4'])

  const insert = await w1.command('blockchain insert where policy=!p and local=true and master=!ledger_conn', {
    method: 'POST', body: '<p = {"sensor": {"name": "probe-1", "company": "test co"}}>'
  })
  t.equal(insert.status, 200, insert.text)
  t.match(insert.text, /inserted \(global, seq \d+\)/, 'the master ordered it')
  t.equal((await w1.ok('blockchain get sensor bring.count')).text, '1', 'visible on the inserting worker at once (read-your-writes)')

  const head = await waitForEqualHeads(nodes)
  for (const node of nodes) {
    const got = await node.ok('blockchain get sensor where name=probe-1')
    t.match(got.json, [{ sensor: { name: 'probe-1', ledger: 'global' } }], `${node.name} has it`)
  }
  t.ok(head.seq >= 5)

  const processes = (await w2.ok('get processes where format=json')).json
  t.equal(processes['Blockchain Sync'].Status, 'Running')
  t.match(processes['Blockchain Sync'].Details, /with s1 \(relay\) using: 127\.0\.0\.1:\d+, head seq \d+, lag 0/)
})
