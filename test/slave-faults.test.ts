import t from 'tap'
import { waitFor } from './helpers/net.js'
import { getJson, insert, pidAlive, processesOf, profile, slaveRuns, startMaster, startSlave, startWorker, waitRunning } from './helpers/fleet.js'
import { KINDS, inTurn, logged, runLog, slaveProcesses, slavesInTurn, subaccountOn, subRuns, waitSubsRunning } from './helpers/slave-runs.js'

// A slave drained, then one killed -9 (a process fault: npm run test:faults): its sub-accounts'
// processes stop there before they start on the other slave, and their profiles follow, with
// no overlap and no orphan. Real master, slaves and workers on 127.0.0.1; the processes' own
// heartbeat records (helpers/slave-runs.ts) are the history checked. Nothing asserts a duration.

t.test('drain and kill -9 of a slave move its sub-accounts, their processes and their profiles, with no overlap and no orphan', async t => {
  const { command, beats } = await runLog(t)
  const master = await startMaster(t)
  const a = await startSlave(t, master, 'slave-a', 2, { kinds: KINDS, command })
  const wa = await startWorker(t, master, { name: 'wa', slave: 'slave-a', slots: 2, kinds: ['linkedin'] })
  await insert(master, { subaccount: { name: 'acme', account: 'acme-inc', settings: { heartbeat_ms: 150 } } })
  await profile(master, 'li-1', 'linkedin', 'acme')
  await waitSubsRunning(a, ['acme'])
  await waitRunning(wa, ['li-1'])
  const b = await startSlave(t, master, 'slave-b', 2, { kinds: KINDS, command })
  const wb = await startWorker(t, master, { name: 'wb', slave: 'slave-b', slots: 2, kinds: ['linkedin'] })
  await waitFor('slave-b to hold a lease', async () => (await getJson(b, '/v1/profiles')).lease?.valid === true ? true : undefined)

  // drain slave-a: acme's processes stop there before they start on slave-b; li-1 follows to wb
  const drained = await a.ok('slave drain', { method: 'POST' })
  t.match(drained.text, /Slave slave-a draining/)
  const onB = await waitSubsRunning(b, ['acme'])
  t.same(await slaveProcesses(a), [], 'slave-a runs nothing once drained')
  await waitRunning(wb, ['li-1'], 40_000)
  t.same(await processesOf(wa), [], 'the profile left the old slave\'s worker')
  t.match(await subaccountOn(master, 'acme'), { slave: 'slave-b', lease: 'live' })
  await a.ok('slave resume', { method: 'POST' })
  await waitFor('slave-a to take sub-accounts again', async () => (await getJson(a, '/v1/profiles')).lease?.draining === false ? true : undefined)

  // kill -9 slave-b: its processes die with it (its reaper), acme and li-1 come back to slave-a and wa
  await waitFor('slave-b\'s processes to record heartbeats', () => onB.every(pid => beats().some(x => x.pid === pid)) ? true : undefined)
  // li-1's heartbeats went to slave-b while it ran under it: read them before slave-b dies
  const onBRuns = await waitFor('li-1 reported to slave-b from wb', async () => {
    const runs = (await slaveRuns(b)).runs.get('li-1')
    return runs?.some(r => r.worker === 'wb') === true ? runs : undefined
  })
  await b.kill()
  const recordedOnB = [...new Set(beats().filter(x => x.slave === 'slave-b').map(x => x.pid))]
  await waitFor('the killed slave\'s processes to exit', () => [...onB, ...recordedOnB].every(pid => !pidAlive(pid)) ? true : undefined, { timeoutMs: 10_000 })
  t.pass('no sub-account process outlives its slave')
  await waitSubsRunning(a, ['acme'], 40_000)
  await waitRunning(wa, ['li-1'], 40_000)
  t.ok(await logged(master, /slave lease lapsed: its sub-accounts will move/), 'the master logged the slave\'s lapse')

  const { runs, overlaps } = await waitFor('acme\'s processes on slave-a to record heartbeats again', () => {
    const report = subRuns(beats())
    return KINDS.every(k => slavesInTurn(report.runs.get(`acme/${k}`) ?? []).length >= 3) ? report : undefined
  })
  t.same(overlaps, [], 'the processes\' own records never show a sub-account on two slaves at once')
  for (const k of KINDS) t.same(slavesInTurn(runs.get(`acme/${k}`)!), ['slave-a', 'slave-b', 'slave-a'], `acme ${k} ran on slave-a, slave-b, slave-a`)
  // the profile's heartbeats went to each slave in turn: together, never on two workers at once
  const all = await waitFor('li-1 reported to slave-a from wa again', async () => {
    const runs = [...((await slaveRuns(a)).runs.get('li-1') ?? []), ...onBRuns].sort((x, y) => x.first_seen_ms - y.first_seen_ms)
    return inTurn(runs.map(r => r.worker)).length >= 3 ? runs : undefined
  })
  t.same(inTurn(all.map(r => r.worker)), ['wa', 'wb', 'wa'], 'li-1 ran on wa, then wb, then wa')
  t.ok(all.every((r, i) => i === 0 || all[i - 1].last_seen_ms < r.first_seen_ms), 'and never on two workers at once', { runs: all })
})
