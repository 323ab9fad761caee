import t from 'tap'
import { waitFor } from './helpers/net.js'
import { getJson, insert, processesOf, profile, startMaster, startSlave, startWorker, waitRunning } from './helpers/fleet.js'
import { LIGHT, lightOf } from './helpers/light.js'

// Light workers (LEDGER_MODE=light): real master, slave and workers on 127.0.0.1. The light
// worker holds only its own policies, each with an inclusion proof, and learns its assignment
// set from the master's signed lease answers. Nothing here asserts a duration. A slave that
// forges or withholds (a test fault) is in light-worker-faults.test.ts.

t.test('a light worker runs its profiles from policies it holds with proofs, and only those; restarted on its home, the same pinned master key, no second declaration, its profiles again', async t => {
  // Leases longer than the fleet tests' 3 s: nothing here waits for a lapse, and the log is
  // checked for warnings, while a loaded 2-core machine (the suite's first seconds, every test
  // starting its nodes) once held this light worker's renewals past 3 s.
  const master = await startMaster(t, 'master-1', { ttlMs: 10_000, graceMs: 5_000 })
  const slave = await startSlave(t, master, 'slave-a', 2)
  const light = await startWorker(t, master, { name: 'w-light', slave: 'slave-a', slots: 2, kinds: ['linkedin'], env: LIGHT })
  const full = await startWorker(t, master, { name: 'w-full', slave: 'slave-a', slots: 2, kinds: ['email'] })
  // policies the light worker has no business holding
  for (let i = 0; i < 30; i++) await insert(master, { note: { name: `unrelated-${i}` } })
  await insert(master, { subaccount: { name: 'acme', account: 'acme-inc' } })
  await profile(master, 'li-1', 'linkedin', 'acme')
  await profile(master, 'mail-1', 'email', 'acme')
  // li-2 once li-1 runs: the worker then holds its declaration and its slave's policy, so it asks
  // the slave first (li-1's assignment may come from the master with those, in one answer)
  await waitRunning(light, ['li-1'])
  await profile(master, 'li-2', 'linkedin', 'acme')
  const rows = await waitRunning(light, ['li-1', 'li-2'])
  await waitRunning(full, ['mail-1'])
  t.ok(rows.every(r => r.restarts === 0), 'both profiles run on the light worker')

  const held = await waitFor('the light state complete', async () => { const s = await lightOf(light); return s.complete ? s : undefined })
  const masterStatus = await getJson(master, '/v1/status')
  t.ok(held.policies < masterStatus.ledger.policies / 2, `the light worker holds ${held.policies} policies, the master ${masterStatus.ledger.policies}`)
  t.equal(held.refused, 0, 'nothing refused: the master and the slave serve proofs that verify')
  t.equal(held.root_key, masterStatus.public_key, 'it pinned the master\'s key')
  t.equal((await light.ok('blockchain get note bring.count')).text.trim(), '0', 'no note reached it')
  t.equal((await light.ok('blockchain get assignment bring.count')).text.trim(), '2', 'it holds its two assignments')
  t.equal((await light.ok('blockchain get profile bring.count')).text.trim(), '2', 'and their two profiles, not mail-1')
  t.match(light.logs(), /light worker: holds every policy of the master's answer, each proven/)
  t.match((await light.ok('get processes')).text, /Blockchain Sync\s*\|Running\s*\|Light worker: \d+ policies held with proofs, at checkpoint size \d+/, 'get processes shows what it holds')
  const served = await (await fetch(`${slave.url}/metrics`)).text()
  t.match(served, /ledgermesh_light_served_total\{[^}]*result="answered"[^}]*\} [1-9]/, 'the slave served it (its slave is asked first)')

  // a deleted profile: its assignment leaves the master's signed set, and its process stops
  const li2 = (await getJson(master, '/v1/policies?type=profile&name=li-2')).policies[0].profile.id as string
  const deleted = await master.command(`blockchain delete policy where id = ${li2}`, { method: 'POST' })
  t.equal(deleted.status, 200, deleted.text)
  await waitRunning(light, ['li-1'])
  t.pass('the deleted profile stopped on the light worker')
  const after = await processesOf(light)
  t.equal(after.find(r => r.name === 'li-1')?.restarts, 0, 'li-1 ran on untouched')
  const warnings = light.logs().split('\n').filter(line => /"level":(40|50)/.test(line))
  t.same(warnings, [], 'no warning or error in the light worker\'s log')

  // restarted on its home: the key it pinned and its declaration's proof, kept in its store
  t.match(light.logs(), /light worker: pinned the first master's key/, 'the first start pins the master key')
  t.match(light.logs(), /"type":"worker"[^\n]*policy accepted by the master/, 'and declares the worker')
  const declarations = (await master.ok('blockchain get worker where name = w-light bring.count')).text.trim()
  await light.stop()
  const again = await startWorker(t, master, { name: 'w-light', slave: 'slave-a', slots: 2, kinds: ['linkedin'], env: LIGHT, restartOf: light })
  await waitRunning(again, ['li-1'])
  t.notMatch(again.logs(), /pinned the first master's key/, 'the restart trusts the key it pinned (kept in its store)')
  t.notMatch(again.logs(), /"type":"worker"[^\n]*policy accepted by the master/, 'its declaration, proven at start, is not inserted again')
  t.equal((await master.ok('blockchain get worker where name = w-light bring.count')).text.trim(), declarations, 'one declaration on the ledger')
  t.equal((await lightOf(again)).refused, 0, 'nothing refused')
})
