import t from 'tap'
import { getJson, insert, profile, startMaster, startSlave, startWorker, waitRunning } from './helpers/fleet.js'
import { waitFor } from './helpers/net.js'
import { startNode } from './helpers/node-process.js'

// A drain asked through the ledger (the console's Drain button): a `drain` policy naming a
// worker drains it as `worker drain` would; only the master or an admin may write one; deleting
// it resumes the worker.

t.test('a drain policy drains a worker, its deletion resumes it, and only the master may write one', async t => {
  const master = await startMaster(t, 'dp-master')
  await startSlave(t, master, 'dp-slave', 4)
  const a = await startWorker(t, master, { name: 'dp-worker-a', slave: 'dp-slave', slots: 2, kinds: ['demo'] })
  const b = await startWorker(t, master, { name: 'dp-worker-b', slave: 'dp-slave', slots: 2, kinds: ['demo'] })
  const member = await startNode(t, { type: 'member', name: 'dp-member', env: { LEDGER_CONN: master.ledgerConn } })
  await insert(master, { subaccount: { name: 'acme', account: 'acme-inc' } })
  await profile(master, 'p-1', 'demo', 'acme')
  const on = await waitFor('p-1 placed', async () => {
    const placed = (await getJson(master, '/v1/profiles')).profiles as Array<{ name: string, worker: string | null }>
    return placed.find(p => p.name === 'p-1')?.worker ?? undefined
  })
  const [from, to] = on === a.name ? [a, b] : [b, a]
  await waitRunning(from, ['p-1'])

  const forged = await fetch(`${member.url}/v1/policies`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ drain: { node: from.name } }), signal: AbortSignal.timeout(10_000) })
  t.equal(forged.status, 403, 'a member may not drain a worker')
  t.match((await forged.json() as { message: string }).message, /may not write drain policies/)

  const { id } = await insert(master, { drain: { node: from.name, reason: 'kernel upgrade' } })
  await waitRunning(to, ['p-1'], 60_000)
  t.pass(`p-1 moved from ${from.name} to ${to.name}`)
  t.match((await getJson(from, '/v1/profiles')).lease, { draining: true }, 'the worker says it drains')
  t.ok(from.logs().includes('a drain policy names this node: draining'), 'and why')

  await master.ok(`blockchain delete policy where id = ${id}`, { method: 'POST' })
  await waitFor('the worker to resume', async () => (await getJson(from, '/v1/profiles')).lease?.draining === false ? true : undefined, { timeoutMs: 30_000 })
  t.pass('deleting the drain policy resumes the worker')
})
