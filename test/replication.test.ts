import t from 'tap'
import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startNode, type NodeProcess } from './helpers/node-process.js'
import { waitFor } from './helpers/net.js'

const status = async (node: NodeProcess) => (await node.ok('get status where format=json')).json

async function insertMany (node: NodeProcess, count: number, prefix: string): Promise<void> {
  const parallel = 16
  for (let start = 0; start < count; start += parallel) {
    await Promise.all(Array.from({ length: Math.min(parallel, count - start) }, async (_, i) => {
      const n = start + i
      await node.ok('blockchain insert where policy=!p', { method: 'POST', body: `<p = {"item": {"name": "${prefix}${n}", "index": ${n}, "note": "padding to look like a real policy"}}>` })
    }))
  }
}

t.test('incremental sync: one more insert moves far fewer bytes than the whole ledger', async t => {
  const master = await startNode(t, { type: 'master', name: 'm' })
  const replica = await startNode(t, { type: 'member', name: 'r', env: { LEDGER_CONN: master.ledgerConn } })
  await insertMany(master, 1000, 'p')
  const target = (await status(master)).ledger.head.seq
  await waitFor('the replica to hold all 1,000', async () => (await status(replica)).ledger.head.seq === target ? true : undefined, { timeoutMs: 60_000 })
  t.equal((await replica.ok('blockchain get item bring.count')).text, '1000')
  const before = (await status(replica)).sync.bytesIn
  t.ok(before > 1000 * 200, `the whole ledger came over the wire (${before} bytes)`)

  await master.ok('blockchain insert where policy=!p', { method: 'POST', body: '<p = {"item": {"name": "one-more"}}>' })
  await waitFor('the replica to get the new one', async () => (await replica.ok('blockchain get item where name=one-more bring.count')).text === '1' ? true : undefined)
  const delta = (await status(replica)).sync.bytesIn - before
  t.ok(delta < 4096, `one more insert moved ${delta} bytes`)
  t.ok(delta * 100 < before, 'less than 1% of the full ledger')
})

t.test('a replica whose store was corrupted on disk rebuilds itself from its source', async t => {
  const master = await startNode(t, { type: 'master', name: 'm2' })
  await master.ok('blockchain insert where policy=!p', { method: 'POST', body: '<p = {"item": {"name": "before"}}>' })
  const replica = await startNode(t, { type: 'member', name: 'r2', env: { LEDGER_CONN: master.ledgerConn } })
  await waitFor('the replica to sync', async () => (await replica.ok('blockchain get item bring.count')).text === '1' ? true : undefined)
  await replica.stop()

  const dir = join(replica.home, 'ledger')
  for (const file of readdirSync(dir).filter(f => f === 'CURRENT' || f.startsWith('MANIFEST') || f.endsWith('.ldb'))) {
    writeFileSync(join(dir, file), 'garbage, not LevelDB')
  }
  const again = await startNode(t, { type: 'member', name: 'r2', env: { LEDGER_CONN: master.ledgerConn }, home: replica.home, tcpPort: replica.tcpPort, restPort: replica.restPort })
  await waitFor('the rebuilt replica to catch up', async () => {
    const [a, b] = await Promise.all([status(again), status(master)])
    return a.ledger.head.seq === b.ledger.head.seq && a.ledger.head.hash === b.ledger.head.hash ? true : undefined
  })
  t.equal((await again.ok('blockchain get item where name=before bring.count')).text, '1')
  t.ok(again.stderr.some(l => l.includes('the local replica is corrupt')), 'it says so in its log')
  t.match((await status(again)).sync.rebuilt_from_zero, { reason: /.+/ }, 'and in its status')
})
