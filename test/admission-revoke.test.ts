import t from 'tap'
import { waitFor } from './helpers/net.js'
import { notSyncing, statusOf } from './helpers/admission.js'
import { startNode } from './helpers/node-process.js'
import { getJson, insert, processesOf, profile, slaveRuns, startMaster, startSlave, startWorker, waitRunning } from './helpers/fleet.js'

// Admission by hand and revocation, with real nodes: a node started without a token names the
// command that admits it, and is let in by it without a restart; a revoked worker's writes are refused and its profiles move to
// another worker with no overlap.

t.test('admit by hand; revoke a worker: its writes are refused and its profiles move with no overlap', async t => {
  const master = await startMaster(t)
  const slave = await startSlave(t, master, 'slave-a', 5)

  // started without a token, the node says its key and what to do, and keeps running
  const byHand = await startNode(t, { type: 'member', name: 'by-hand', join: false, env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second' } })
  const key = /run 'admit node where key = ([0-9a-f]{64})' on the master/.exec(byHand.logs())?.[1]
  t.ok(key !== undefined, 'its log names the command that admits it')
  t.ok(await notSyncing(byHand), 'not admitted yet: it gets nothing')
  const admitted = await master.command(`admit node where key = ${key!} and name = by-hand`, { method: 'POST' })
  t.equal(admitted.status, 200, admitted.text)
  await waitFor('the node admitted by hand to sync', async () => await notSyncing(byHand) ? undefined : true, { timeoutMs: 30_000 })
  t.equal(byHand.exitCode, undefined, 'without a restart')

  const w1 = await startWorker(t, master, { name: 'w1', slave: 'slave-a', slots: 3, kinds: ['linkedin'] })
  await insert(master, { subaccount: { name: 'acme', account: 'acme-inc' } })
  await profile(master, 'a', 'linkedin', 'acme')
  await profile(master, 'b', 'linkedin', 'acme')
  await waitRunning(w1, ['a', 'b'])
  const w2 = await startWorker(t, master, { name: 'w2', slave: 'slave-a', slots: 3, kinds: ['linkedin'] })
  await waitFor('w2 to hold a lease', async () => (await getJson(w2, '/v1/profiles')).lease.valid === true ? true : undefined)

  const w1Key = String((await statusOf(w1)).public_key)
  const revoked = await master.command(`revoke node where key = ${w1Key} and reason = test`, { method: 'POST' })
  t.equal(revoked.status, 200, revoked.text)
  t.match(revoked.text, /declarations removed: worker w1/)
  await waitRunning(w2, ['a', 'b'], 40_000)
  await waitFor('the revoked worker to run nothing', async () => (await processesOf(w1)).length === 0 ? true : undefined)
  const report = await waitFor('w2 runs reported to the slave', async () => {
    const r = await slaveRuns(slave)
    return ['a', 'b'].every(name => r.runs.get(name)?.some(run => run.worker === 'w2')) ? r : undefined
  })
  t.same(report.overlaps, [], 'the slave never saw a profile on two workers at once')
  const write = await w1.command('blockchain insert where policy = !p', { method: 'POST', body: '<p = {"note": {"name": "after-revoke"}}>' })
  t.equal(write.status, 403, 'a revoked node\'s writes are refused')
  t.equal((await master.ok('blockchain get worker where name = w1 bring.count')).text, '0', 'its declaration is gone')
})
