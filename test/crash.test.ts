import t from 'tap'
import { waitFor } from './helpers/net.js'
import { type NodeProcess, startNode } from './helpers/node-process.js'
import { readChain } from './helpers/ledger-check.js'

// Crash safety (issue 8): kill -9 the master while 8 clients insert, and a replica during
// catch-up. Afterwards every acknowledged insert is in every node's ledger, exactly once, at
// the seq it was acknowledged with; seqs run without gaps; every chain verifies.

const CLIENTS = 8
const MAX_PER_CLIENT = 300
/** kill -9 / restart rounds: one in `npm test`, more in `npm run torture` */
const ROUNDS = process.env.TORTURE === '1' ? 10 : 1

async function headOf (node: NodeProcess): Promise<number | undefined> {
  try {
    const response = await fetch(`${node.url}/v1/ledger/head`, { signal: AbortSignal.timeout(2000) })
    return response.ok ? (await response.json() as { seq: number }).seq : undefined
  } catch { return undefined }
}

async function postItem (node: NodeProcess, name: string): Promise<{ id: string, seq: number } | undefined> {
  try {
    const response = await fetch(`${node.url}/v1/policies`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ item: { name } }),
      signal: AbortSignal.timeout(5000)
    })
    if (response.status !== 201) return undefined
    return await response.json() as { id: string, seq: number }
  } catch { return undefined }
}

t.test('kill -9 the master under 8 concurrent inserting clients: nothing acknowledged is lost, nothing doubled, no gaps', async t => {
  const master = await startNode(t, { type: 'master', name: 'm' })
  const replicas = await Promise.all(['r1', 'r2'].map(async name => await startNode(t, { type: 'slave', name, env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second' } })))

  const acked = new Map<string, number>()
  let attempts = 0
  let current = master
  for (let round = 1; round <= ROUNDS; round++) {
    let stop = false
    const target = acked.size + 200
    const clients = Array.from({ length: CLIENTS }, async (_, c) => {
      for (let n = 0; n < MAX_PER_CLIENT && !stop; n++) {
        attempts++
        const result = await postItem(current, `r${round}-c${c}-${n}`)
        if (result !== undefined) acked.set(result.id, result.seq)
      }
    })
    await waitFor(`round ${round}: 200 more inserts acknowledged`, () => acked.size >= target ? true : undefined, { timeoutMs: 60_000, everyMs: 20 })
    await current.kill()
    await new Promise(resolve => setTimeout(resolve, 300)) // the clients see the master gone
    stop = true
    await Promise.all(clients)
    current = await startNode(t, { type: 'master', name: 'm', home: master.home, tcpPort: master.tcpPort, restPort: master.restPort })
  }
  const restarted = current
  t.comment(`${ROUNDS} crash(es): ${attempts} inserts attempted, ${acked.size} acknowledged`)

  const head = (await headOf(restarted))!
  t.ok(head >= Math.max(...acked.values()), 'the restarted master holds every acknowledged seq')
  for (const replica of replicas) {
    await waitFor(`${replica.name} to converge on seq ${head}`, async () => await headOf(replica) === head ? true : undefined, { timeoutMs: 30_000 })
  }
  t.pass('both replicas converged on the restarted master\'s head')

  await restarted.stop()
  for (const replica of replicas) await replica.stop()
  const chains = await Promise.all([restarted, ...replicas].map(async n => ({ name: n.name, chain: await readChain(n.home) })))
  const reference = chains[0].chain
  for (const { name, chain } of chains) {
    t.equal(chain.broken, undefined, `${name}: every link verifies and seqs run 1..${chain.entries.length} without a gap`)
    t.equal(chain.entries.length, head, `${name}: ${head} entries`)
    t.equal(chain.entries.at(-1)?.hash, reference.entries.at(-1)?.hash, `${name}: the same chain as the master`)
    const missing = [...acked].filter(([id, seq]) => chain.seqOf.get(id) !== seq)
    t.same(missing, [], `${name}: every acknowledged insert at its acknowledged seq`)
    const names = chain.entries.map(e => (e.policy as { item?: { name?: string } }).item?.name).filter(n => n !== undefined)
    t.equal(new Set(names).size, names.length, `${name}: no insert twice`)
  }
})

t.test('kill -9 a replica during catch-up: it restarts from what it kept and converges with a verified chain', async t => {
  const master = await startNode(t, { type: 'master', name: 'm' })
  for (let batch = 0; batch < 15; batch++) {
    await Promise.all(Array.from({ length: 100 }, async (_, i) => await postItem(master, `p${batch}-${i}`)))
  }
  const head = (await headOf(master))!
  t.ok(head >= 1400, `the master holds ${head} entries`)

  const replica = await startNode(t, { type: 'slave', name: 'r', env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second' }, noWait: true })
  // kill it as soon as it has applied something (it may be mid-catch-up, or already done)
  const partial = await waitFor('the replica to apply its first batch', () => {
    const line = replica.stderr.find(l => l.includes('"msg":"sync batch applied"') || l.includes('"msg":"sync pull applied entries"') || l.includes('"msg":"ledger connected"') && !l.includes('"head":0'))
    return line !== undefined ? line : undefined
  }, { timeoutMs: 30_000, everyMs: 5 })
  await replica.kill()
  t.ok(partial.length > 0, 'killed during or right after catch-up')
  const kept = await readChain(replica.home)
  t.equal(kept.broken, undefined, `what the killed replica kept (${kept.entries.length} entries) verifies`)

  const restarted = await startNode(t, { type: 'slave', name: 'r', env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second' }, home: replica.home, tcpPort: replica.tcpPort, restPort: replica.restPort })
  // the replica's own declaration went through the master too: converge on the master's head now
  await waitFor('the restarted replica to converge', async () => {
    const [mine, masters] = await Promise.all([headOf(restarted), headOf(master)])
    return mine !== undefined && mine === masters ? true : undefined
  }, { timeoutMs: 30_000 })
  await restarted.stop()
  await master.stop()
  const [mine, masters] = await Promise.all([readChain(restarted.home), readChain(master.home)])
  t.equal(mine.broken, undefined, 'its chain verifies')
  t.equal(mine.entries.length, masters.entries.length, 'as long as the master\'s')
  t.equal(mine.entries.at(-1)?.hash, masters.entries.at(-1)?.hash, 'the same chain as the master')
})
