import t from 'tap'
import { metric } from './helpers/admission.js'
import { startNode } from './helpers/node-process.js'
import { insert, placement, profile, slaveRuns, startMaster, startSlave, startWorker, waitRunning } from './helpers/fleet.js'

// Only admitted nodes join and write: a node nobody invited, pointed at the master with a
// fresh key and declaring itself a worker with 50 slots, cannot sync, declare itself or get
// work; the admitted worker gets every profile.

t.test('a node nobody invited cannot sync, declare itself or get work; the admitted worker gets every profile', async t => {
  const master = await startMaster(t)
  const slave = await startSlave(t, master, 'slave-a', 5)
  const w1 = await startWorker(t, master, { name: 'w1', slave: 'slave-a', slots: 4, kinds: ['linkedin'] })

  // the attacker: a fresh key, the master's address, a worker of the same slave with 50 slots
  const evil = await startNode(t, {
    type: 'worker',
    name: 'evil',
    join: false,
    env: { LEDGER_CONN: master.ledgerConn, SLAVE_NAME: 'slave-a', SLOTS: 50, PROFILE_KINDS: 'linkedin', PROFILE_RUNNER_LINKEDIN: 'sleep 60' }
  })
  // it starts and keeps running, told it is not admitted, waiting for an `admit node` that never comes
  t.equal(evil.exitCode, undefined, 'the attacker\'s node runs, waiting to be admitted')
  const evilKey = /"publicKey":"([0-9a-f]{64})"/.exec(evil.logs())?.[1] ?? '(no key logged)'
  t.match(evil.logs(), /NOT ADMITTED: this node's key [0-9a-f]{64} is not admitted to the network: .*Two ways in: start the node with JOIN_TOKEN=/, 'its log says why and what to do')
  t.match(evil.logs(), /this node is not admitted yet: the insert waits in the outbox/, 'the master refused its declaration')
  t.match(evil.logs(), /sync source says unauthorized/, 'its sync was refused too')
  t.equal((await master.ok('blockchain get worker where name = evil bring.count')).text, '0', 'its declaration is not on the ledger')
  t.match(master.logs(), /sync refused: the peer's key is not admitted/, 'the master logs the refusal')
  t.match(master.logs(), new RegExp(`"key":"${evilKey}"`), 'naming the key')
  t.ok(await metric(master, 'ledgermesh_unadmitted_total', 'what="sync"') > 0, '/metrics counts the refused sync')
  t.ok(await metric(master, 'ledgermesh_unadmitted_total', 'what="insert"') > 0, 'and the refused declaration')

  await insert(master, { subaccount: { name: 'acme', account: 'acme-inc' } })
  for (const name of ['p1', 'p2', 'p3', 'p4']) await profile(master, name, 'linkedin', 'acme', { password: `secret-${name}` })
  await waitRunning(w1, ['p1', 'p2', 'p3', 'p4'], 40_000)
  const placed = await placement(master)
  t.same([...placed.values()].map(p => p.worker), ['w1', 'w1', 'w1', 'w1'], 'every profile went to the admitted worker')
  t.same((await slaveRuns(slave)).overlaps, [])
})
