import t from 'tap'
import { waitFor } from './helpers/net.js'
import { getJson, insert, pidAlive, placement, processesOf, profile, slaveRuns, startMaster, startSlave, startWorker, waitRunning } from './helpers/fleet.js'

// Workers and allocation (issue 6): real master, slaves and workers on 127.0.0.1, each running
// scripts/demo-runner.mjs per profile. Nothing here asserts a duration.

t.test('allocation respects slots and kinds; what has no capacity waits and is placed when capacity joins', async t => {
  const master = await startMaster(t)
  const slave = await startSlave(t, master, 'slave-a', 1)
  const w1 = await startWorker(t, master, { name: 'w1', slave: 'slave-a', slots: 1, kinds: ['linkedin'] })

  // sub-accounts: slave-a has one slot
  await insert(master, { subaccount: { name: 'acme', account: 'acme-inc' } })
  await insert(master, { subaccount: { name: 'globex', account: 'globex-inc' } })
  const subStatus = await waitFor('acme on slave-a and globex waiting', async () => {
    const body = await getJson(master, '/v1/policies?type=assignment')
    const subs = (body.policies as Array<{ assignment: { subaccount?: string, slave?: string, profile?: string } }>).filter(p => p.assignment.profile === undefined)
    return subs.length === 1 ? subs : undefined
  })
  t.equal(subStatus[0].assignment.subaccount, 'acme', 'the first sub-account (by name) takes the only slot')
  t.equal(subStatus[0].assignment.slave, 'slave-a')

  await profile(master, 'li-1', 'linkedin', 'acme')
  await profile(master, 'li-2', 'linkedin', 'acme')
  await profile(master, 'mail-1', 'email', 'acme')
  await waitRunning(w1, ['li-1'])
  const placed = await waitFor('li-2 and mail-1 reported unassigned', async () => {
    const p = await placement(master)
    return p.get('li-2')?.status.startsWith('unassigned') === true && p.get('mail-1')?.status.startsWith('unassigned') === true ? p : undefined
  })
  t.equal(placed.get('li-1')?.worker, 'w1')
  t.match(placed.get('li-2')?.status, /no live worker of slave 'slave-a' with a free slot runs 'linkedin'/, 'li-2 waits for a slot')
  t.match(placed.get('mail-1')?.status, /runs 'email'/, 'mail-1 waits for a worker of its kind')
  const metrics = await (await fetch(`${master.url}/metrics`)).text()
  t.match(metrics, /ledgermesh_unassigned\{[^}]*type="profile"[^}]*\} 2/, '/metrics counts the 2 waiting profiles')
  t.match(metrics, /ledgermesh_unassigned\{[^}]*type="subaccount"[^}]*\} 1/, '/metrics counts the waiting sub-account')
  const view = await master.ok('get profiles')
  t.match(view.text, /li-2.*unassigned/, 'get profiles on the master shows what waits')
  const status = await master.ok('get status')
  t.match(status.text, /unassigned: .*profile li-2 \(no live worker/, 'get status on the master says what waits, and why')

  // capacity joins: a worker with room for both kinds, and a second slave
  const w2 = await startWorker(t, master, { name: 'w2', slave: 'slave-a', slots: 2, kinds: ['linkedin', 'email'] })
  const slaveB = await startSlave(t, master, 'slave-b', 1)
  await waitRunning(w2, ['li-2', 'mail-1'])
  await waitRunning(w1, ['li-1'])
  await waitFor('globex placed on slave-b', async () => {
    const body = await getJson(master, '/v1/policies?type=assignment&subaccount=globex')
    return body.policies.length === 1 && body.policies[0].assignment.slave === 'slave-b' ? true : undefined
  })
  t.pass('globex placed on the slave that joined')
  t.ok(slaveB.url !== slave.url)

  // the slave knows which worker runs which profile, from the processes' heartbeats
  await waitFor('heartbeats of all three profiles at slave-a', async () => {
    const { runs } = await slaveRuns(slave)
    return runs.get('li-1')?.[0]?.worker === 'w1' && runs.get('li-2')?.[0]?.worker === 'w2' && runs.get('mail-1')?.[0]?.worker === 'w2' ? true : undefined
  })
  const slaveView = await slave.ok('get profiles')
  t.match(slaveView.text, /li-1\s*\|linkedin\s*\|w1\s*\|\d+/, 'get profiles on the slave shows where li-1 runs')
  const li1Id = (await processesOf(w1))[0].profile_id
  t.match(w1.logs(), new RegExp(`"profile":"${li1Id}".*"stream":"stdout".*linkedin profile li-1 started`), 'the runner\'s output is in the worker\'s log with the profile id')
  const w1View = await w1.ok('get profiles')
  t.match(w1View.text, /li-1\s*\|linkedin\s*\|RUNNING\s*\|\d+\s*\|0\s/, 'get profiles on the worker: state, pid, restarts')
})

t.test('a worker runs exactly its assignments: a deleted assignment stops its process; a crashing runner restarts with backoff', async t => {
  const master = await startMaster(t)
  await startSlave(t, master, 'slave-a', 5)
  const w1 = await startWorker(t, master, { name: 'w1', slave: 'slave-a', slots: 3, kinds: ['linkedin', 'mta'] })
  await insert(master, { subaccount: { name: 'acme', account: 'acme-inc' } })
  await profile(master, 'li-1', 'linkedin', 'acme')
  await profile(master, 'li-2', 'linkedin', 'acme')
  const rows = await waitRunning(w1, ['li-1', 'li-2'])
  const li1 = rows.find(r => r.name === 'li-1')!
  t.ok(li1.pid !== null && pidAlive(li1.pid), 'li-1 runs as a real process')

  // delete li-1's assignment: its process stops; the allocator then places li-1 again (new epoch)
  await master.ok(`blockchain delete policy where id = ${li1.assignment}`)
  await waitFor('the old li-1 process to exit', () => pidAlive(li1.pid!) ? undefined : true)
  t.pass('deleting the assignment stopped its process')
  const again = await waitFor('li-1 placed again under a new assignment', async () => {
    const now = await processesOf(w1)
    const row = now.find(r => r.name === 'li-1' && r.state === 'RUNNING')
    return row !== undefined && row.assignment !== li1.assignment ? row : undefined
  })
  t.not(again.pid, li1.pid, 'a new process for the new assignment')

  // delete the profile itself: its process stops and nothing replaces it
  const li2 = rows.find(r => r.name === 'li-2')!
  await master.ok(`blockchain delete policy where id = ${li2.profile_id}`)
  await waitRunning(w1, ['li-1'])
  t.notOk(pidAlive(li2.pid!), 'li-2 process is gone with its profile')

  // a runner that crashes: restarted with backoff, ERROR and restarts visible
  await profile(master, 'mta-crash', 'mta', 'acme', { crash_after_ms: 200 })
  const crashed = await waitFor('mta-crash to have restarted twice', async () => {
    const row = (await processesOf(w1)).find(r => r.name === 'mta-crash')
    return row !== undefined && row.restarts >= 2 ? row : undefined
  })
  t.equal(crashed.last_exit, 'exit code 3', 'the exit is recorded')
  const seen = await waitFor('mta-crash in ERROR between restarts', async () => {
    const row = (await processesOf(w1)).find(r => r.name === 'mta-crash')
    return row?.state === 'ERROR' ? row : undefined
  }, { everyMs: 50 })
  t.equal(seen.state, 'ERROR')
  const text = (await w1.ok('get profiles')).text
  t.match(text, /mta-crash\s*\|mta\s*\|(ERROR|STARTING|RUNNING)\s*\|[\d ]*\|[1-9]/, 'get profiles shows the crashing profile')
  t.ok(w1.logs().includes('"msg":"profile mta-crash ERROR"'), 'each state change is logged with the profile')
  const metrics = await (await fetch(`${w1.url}/metrics`)).text()
  t.match(metrics, /ledgermesh_profile_processes\{[^}]*state="RUNNING"[^}]*\} [12]/, '/metrics counts processes by state')
})
