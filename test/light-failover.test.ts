import t from 'tap'
import { createTestDatabase } from './helpers/pg.js'
import { activeMaster, atActiveMaster, startMasters } from './helpers/masters.js'
import { getJson, processesOf, profile, insert, startSlave, startWorker, waitRunning } from './helpers/fleet.js'
import { waitFor } from './helpers/net.js'

// A light worker through a failover: two masters over one real PostgreSQL database, a slave and
// a light worker, all real node processes. The second master's key is declared on the ledger
// by a `master_key` policy the first signed; the light worker holds it with its proof, so it
// verifies the second master's signed lease answers, and its profiles run on, never restarted.

t.test('a light worker runs its profiles through a failover, trusting the second master by its proven declaration', async t => {
  const db = await createTestDatabase(t)
  // the default lease (6 s, 4 s of grace): a takeover on a loaded machine must not outlast it
  const [a, b] = await startMasters(t, db, 2)
  t.equal(await activeMaster([a, b]), a, 'a writes')
  await startSlave(t, a, 'slave-a', 2)
  const light = await startWorker(t, a, { name: 'w-light', slave: 'slave-a', slots: 3, kinds: ['linkedin'], env: { LEDGER_MODE: 'light' } })
  await insert(a, { subaccount: { name: 'acme', account: 'acme-inc' } })
  await profile(a, 'li-1', 'linkedin', 'acme')
  await profile(a, 'li-2', 'linkedin', 'acme')
  const before = await waitRunning(light, ['li-1', 'li-2'])
  const status = await getJson(light, '/v1/status')
  const keyB = (await getJson(b, '/v1/status')).public_key as string
  t.ok((status.sync.light.master_keys as string[]).includes(keyB), 'the light worker trusts b\'s key, from the master_key policy it holds with its proof')

  await a.kill()
  t.equal(await activeMaster([b], 30_000), b, 'b takes over')
  // a profile placed by b: the light worker runs it only once it verified b's signed lease
  // answer naming it, and fetched it with its proof
  await atActiveMaster([b], async m => await profile(m, 'li-3', 'linkedin', 'acme'))
  const after = await waitRunning(light, ['li-1', 'li-2', 'li-3'], 60_000)
  for (const name of ['li-1', 'li-2']) {
    const [was, is] = [before.find(r => r.name === name)!, after.find(r => r.name === name)!]
    t.equal(is.pid, was.pid, `${name} is the same process`)
    t.equal(is.restarts, 0, `${name} never restarted`)
  }
  const light2 = (await getJson(light, '/v1/status')).sync.light as { refused: number, last_refusal: unknown, complete: boolean }
  t.equal(light2.refused, 0, `nothing refused: b's answers verify (${JSON.stringify(light2.last_refusal)})`)
  t.ok(light2.complete, 'the light state is complete at b\'s checkpoint')
  const rows = await processesOf(light)
  t.ok(rows.every(r => r.state === 'RUNNING'), 'every profile runs')
  await waitFor('the lease valid with b', async () => (await getJson(light, '/v1/status')).profiles?.lease?.valid === true ? true : undefined)
  t.pass('the light worker holds its lease with b')
})
