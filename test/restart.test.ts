import t from 'tap'
import { waitFor } from './helpers/net.js'
import { type NodeProcess, startNode } from './helpers/node-process.js'

// Restarts (issue 8): every node type stopped and started again keeps its identity (key and
// peer id), its ledger or replica (it opens at the head it had), and its outbox.

async function status (node: NodeProcess): Promise<{ peer_id: string, public_key: string, ledger: { head: { seq: number } } }> {
  return (await node.ok('get status where format=json')).json
}

/** The head the node's ledger had when it was opened, from its "ledger connected" log line. */
function openedAt (node: NodeProcess): number {
  const line = node.stderr.find(l => l.includes('"msg":"ledger connected"'))
  if (line === undefined) throw new Error(`${node.name} logged no "ledger connected"`)
  return (JSON.parse(line) as { head: number }).head
}

t.test('master, slave and worker keep identity, ledger and outbox across a restart', async t => {
  const master = await startNode(t, { type: 'master', name: 'm' })
  const slave = await startNode(t, { type: 'slave', name: 's', env: { LEDGER_CONN: master.ledgerConn } })
  const worker = await startNode(t, { type: 'worker', name: 'w', env: { LEDGER_CONN: master.ledgerConn, SLAVE_NAME: 's' } })
  await master.ok('blockchain get master bring.count')
  const nodes = [master, slave, worker]
  const head = (await status(master)).ledger.head.seq
  for (const node of [slave, worker]) {
    await waitFor(`${node.name} to catch up`, async () => (await status(node)).ledger.head.seq === head ? true : undefined)
  }
  const before = await Promise.all(nodes.map(status))

  // the worker queues an insert while the master is down: it must survive the worker's restart
  await master.stop()
  const response = await fetch(`${worker.url}/v1/policies?local=true`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ note: { name: 'kept' } }) })
  const queued = await response.json() as { ledger: string }
  t.equal(queued.ledger, 'local', 'the insert waits in the outbox')
  await Promise.all([slave.stop(), worker.stop()])

  const again: NodeProcess[] = []
  for (const node of nodes) {
    again.push(await startNode(t, { type: node === master ? 'master' : node === slave ? 'slave' : 'worker', name: node.name, home: node.home, tcpPort: node.tcpPort, restPort: node.restPort, env: node === master ? {} : { LEDGER_CONN: master.ledgerConn, ...(node === worker ? { SLAVE_NAME: 's' } : {}) } }))
  }
  const after = await Promise.all(again.map(status))
  for (let i = 0; i < nodes.length; i++) {
    t.equal(after[i].public_key, before[i].public_key, `${nodes[i].name} keeps its key`)
    t.equal(after[i].peer_id, before[i].peer_id, `${nodes[i].name} keeps its peer id`)
    t.ok(openedAt(again[i]) >= head, `${nodes[i].name} opened its ledger at seq ${openedAt(again[i])} (had ${head}), not from zero`)
  }
  t.notMatch(again[0].logs(), /"type":"master"[^\n]*"msg":"policy accepted"/, 'the master did not re-declare itself')
  await waitFor('the queued insert to reach the master after both restarts', async () => {
    const reply = await again[0].ok('blockchain get note where name = kept bring.count')
    return reply.text.trim() === '1' ? true : undefined
  }, { timeoutMs: 30_000 })
  t.pass('the outbox kept the insert across the worker\'s restart and delivered it')
})
