import t from 'tap'
import { createTestDatabase } from './helpers/pg.js'
import { activeMaster, masterRole, startMasters } from './helpers/masters.js'
import { insert } from './helpers/fleet.js'
import { waitFor } from './helpers/net.js'

// Several masters over one real PostgreSQL database, as real node processes.

t.test('two masters: one writes, the other stands by and forwards; kill -9 of the writer and the other takes over', async t => {
  const db = await createTestDatabase(t)
  const [a, b] = await startMasters(t, db, 2)
  t.equal(await activeMaster([a, b]), a, 'the master that began the ledger writes')
  const roleB = await masterRole(b)
  t.equal(roleB.role, 'standby', 'the second stands by')
  t.equal(roleB.active_master, a.ledgerConn, 'naming the active master')
  t.same(roleB.masters.map(m => [m.name, m.trusted]), [['master-a', true], ['master-b', true]], 'both registered and trusted')
  const declared = await b.ok('blockchain get master bring.count')
  t.equal(declared.text.trim(), '2', 'b declared itself (through a) and follows the ledger')

  const viaB = await insert(b, { note: { name: 'through-the-standby' } })
  t.ok(viaB.seq > 0, 'an insert on the standby is ordered by the active master')

  await a.kill()
  const next = await activeMaster([b], 15_000)
  t.equal(next, b, 'b takes over')
  const after = await insert(b, { note: { name: 'after-failover' } })
  t.equal(after.seq, viaB.seq + 1, 'b writes on from the head a left')
  const role = await masterRole(b)
  t.ok(role.epoch >= 2, 'under a new epoch')
  await waitFor('b to show itself active', async () => (await masterRole(b)).active_master === b.ledgerConn ? true : undefined)
})
