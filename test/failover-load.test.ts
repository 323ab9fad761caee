import t, { type Test } from 'tap'
import { createTestDatabase } from './helpers/pg.js'
import { startPgBouncer } from './helpers/pgbouncer.js'
import { activeMaster, masterEnv } from './helpers/masters.js'
import { type Fault, faultsUnderLoad } from './helpers/failover-load.js'
import { startNode } from './helpers/node-process.js'

// kill -9 of the active master while 8 clients insert through the members: every acknowledged
// insert is on the ledger exactly once, the seqs have no gap, every replica's chain verifies and
// its head never moves back, and the workers' profiles run on through every failover, never on
// two workers. With the masters connected to PostgreSQL directly (one round in `npm test`; ten
// under `npm run torture`, where each round kills the master that took over, so a restarted one
// takes over again), and, under torture only, through PgBouncer in transaction pooling mode (ten
// rounds; in CI, the robustness run on PgBouncer runs seeded faults, kills among them, under load).
const TORTURE = process.env.TORTURE === '1'

/** Kills the active master; once another writes, the killed one comes back (its home, its ports) as a standby. */
function killActiveMaster (t: Test, env: Record<string, string | number>): Fault {
  return async (round, { masters }) => {
    const active = await activeMaster(masters)
    await active.kill()
    t.not(await activeMaster(masters.filter(m => m !== active)), active, `round ${round}: another master writes`)
    const index = masters.indexOf(active)
    masters[index] = await startNode(t, { type: 'master', name: active.name, home: active.home, tcpPort: active.tcpPort, restPort: active.restPort, env })
  }
}

t.test('kill -9 of the active master under load (masters on PostgreSQL directly)', async t => {
  const db = await createTestDatabase(t)
  const env = masterEnv(db)
  await faultsUnderLoad(t, { env, rounds: TORTURE ? 10 : 1, fault: killActiveMaster(t, env), ledgerDb: async () => db })
})

t.test('kill -9 of the active master under load (masters through PgBouncer, transaction pooling)', { skip: TORTURE ? false : 'a long fault run: npm run torture runs it' }, async t => {
  const db = await createTestDatabase(t)
  const bouncer = await startPgBouncer(t)
  const env = masterEnv(bouncer.through(db))
  await faultsUnderLoad(t, { env, rounds: 10, fault: killActiveMaster(t, env), ledgerDb: async () => db })
})
