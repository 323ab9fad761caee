import t from 'tap'
import { waitFor } from './helpers/net.js'
import { insert, processesOf, profile, startMaster, startSlave, startWorker, waitRunning } from './helpers/fleet.js'
import { LIGHT, lightOf } from './helpers/light.js'

// Light workers (LEDGER_MODE=light) served by a slave that lies, a test fault
// (LEDGERMESH_TEST_FAULTS): one forges an assignment in every answer, one withholds every
// policy. Real master, slave and workers on 127.0.0.1; light-worker.test.ts has the rest.

t.test('a slave that serves a forged assignment is refused; the light worker runs only what the master assigned', async t => {
  const master = await startMaster(t)
  const slave = await startSlave(t, master, 'slave-f', 2, undefined, { LEDGERMESH_TEST_FAULTS: '1', LEDGERMESH_FAULT_LIGHT: 'forge-assignment' })
  t.match(slave.logs(), /forges an assignment in its light answers/, 'the slave runs the test fault')
  const light = await startWorker(t, master, { name: 'w-light', slave: 'slave-f', slots: 2, kinds: ['linkedin'], env: LIGHT })
  await insert(master, { subaccount: { name: 'acme', account: 'acme-inc' } })
  await profile(master, 'li-1', 'linkedin', 'acme')
  await waitRunning(light, ['li-1'])
  // the slave is asked first once the worker holds its declaration and the slave's policy; the
  // first assignment may come in the same answer as those (from the master), so a second one
  // is what the slave is surely asked for
  await profile(master, 'li-2', 'linkedin', 'acme')
  await waitRunning(light, ['li-1', 'li-2'])
  const status = await waitFor('a refusal of the slave\'s answer', async () => { const s = await lightOf(light); return s.refused > 0 ? s : undefined })
  t.match(status.last_refusal?.source, /slave slave-f/, 'the refused answer came from the slave')
  t.match(status.last_refusal?.reason, /assignment .* is not in the checkpoint's tree/, 'refused because the forged entry is in no signed tree')
  t.match(light.logs(), /light worker: answer from slave slave-f .* refused: it does not verify/, 'the worker logs the refusal')
  const rows = await processesOf(light)
  t.same(rows.map(r => r.name).sort(), ['li-1', 'li-2'], 'the forged assignment never ran')
  t.equal((await light.ok('blockchain get assignment where slave = forged bring.count')).text.trim(), '0', 'and is not held')
  const metrics = await (await fetch(`${light.url}/metrics`)).text()
  t.match(metrics, /ledgermesh_light_refused_total\{[^}]*what="light"[^}]*\} [1-9]/, '/metrics counts the refusal')
})

t.test('a slave that withholds every policy: the light worker gets them from the master and runs its profiles', async t => {
  const master = await startMaster(t)
  const slave = await startSlave(t, master, 'slave-w', 2, undefined, { LEDGERMESH_TEST_FAULTS: '1', LEDGERMESH_FAULT_LIGHT: 'withhold' })
  t.match(slave.logs(), /withholds every policy from its light answers/, 'the slave runs the test fault')
  const light = await startWorker(t, master, { name: 'w-light', slave: 'slave-w', slots: 2, kinds: ['linkedin'], env: LIGHT })
  await insert(master, { subaccount: { name: 'acme', account: 'acme-inc' } })
  await profile(master, 'li-1', 'linkedin', 'acme')
  await waitRunning(light, ['li-1'])
  // the worker asks its slave first once it holds its declaration and the slave's policy; the
  // first assignment may come in the same answer as those, so a second one shows the order
  await profile(master, 'li-2', 'linkedin', 'acme')
  await waitRunning(light, ['li-1', 'li-2'])
  const served = await (await fetch(`${slave.url}/metrics`)).text()
  t.match(served, /ledgermesh_light_served_total\{[^}]*result="answered"[^}]*\} [1-9]/, 'the slave was asked (and answered with nothing)')
  const status = await lightOf(light)
  t.equal(status.refused, 0, 'withholding is not a forgery: nothing refused')
  t.ok(status.complete, 'the master proved every policy')
})
