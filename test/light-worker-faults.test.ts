import t, { type Test } from 'tap'
import type { NodeProcess } from './helpers/node-process.js'
import { waitFor } from './helpers/net.js'
import { insert, processesOf, profile, startMaster, startSlave, startWorker, waitRunning } from './helpers/fleet.js'
import { LIGHT, lightOf } from './helpers/light.js'

// Light workers (LEDGER_MODE=light) served by a slave that lies, a test fault
// (LEDGERMESH_TEST_FAULTS): one forges an assignment in every answer, one withholds every
// policy. Real master, slave and workers on 127.0.0.1; light-worker.test.ts has the rest.

/**
 * A master, a slave running the test fault `fault`, and a light worker of that slave running two
 * profiles. The worker asks its slave first once it holds its declaration and the slave's
 * policy; the first assignment may come in the same answer as those (from the master), so the
 * second one is what the slave is surely asked for.
 */
async function lyingSlave (t: Test, name: string, fault: 'forge-assignment' | 'withhold'): Promise<{ slave: NodeProcess, light: NodeProcess }> {
  const master = await startMaster(t)
  const slave = await startSlave(t, master, name, 2, undefined, { LEDGERMESH_TEST_FAULTS: '1', LEDGERMESH_FAULT_LIGHT: fault })
  const light = await startWorker(t, master, { name: 'w-light', slave: name, slots: 2, kinds: ['linkedin'], env: LIGHT })
  await insert(master, { subaccount: { name: 'acme', account: 'acme-inc' } })
  await profile(master, 'li-1', 'linkedin', 'acme')
  await waitRunning(light, ['li-1'])
  await profile(master, 'li-2', 'linkedin', 'acme')
  await waitRunning(light, ['li-1', 'li-2'])
  return { slave, light }
}

t.test('a slave that serves a forged assignment is refused; the light worker runs only what the master assigned', async t => {
  const { slave, light } = await lyingSlave(t, 'slave-f', 'forge-assignment')
  t.match(slave.logs(), /forges an assignment in its light answers/, 'the slave runs the test fault')
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
  const { slave, light } = await lyingSlave(t, 'slave-w', 'withhold')
  t.match(slave.logs(), /withholds every policy from its light answers/, 'the slave runs the test fault')
  const served = await (await fetch(`${slave.url}/metrics`)).text()
  t.match(served, /ledgermesh_light_served_total\{[^}]*result="answered"[^}]*\} [1-9]/, 'the slave was asked (and answered with nothing)')
  const status = await lightOf(light)
  t.equal(status.refused, 0, 'withholding is not a forgery: nothing refused')
  t.ok(status.complete, 'the master proved every policy')
})
