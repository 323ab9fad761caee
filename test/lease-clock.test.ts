import { join } from 'node:path'
import t from 'tap'
import { waitFor } from './helpers/net.js'
import { ROOT } from './helpers/node-process.js'
import { getJson, insert, pidAlive, profile, slaveRuns, startMaster, startSlave, startWorker, waitRunning } from './helpers/fleet.js'
import { addProfile, assignments, eventually, leaseFleet, runsExactly } from './helpers/lease-fleet.js'

// Leases follow monotonic clocks (issue 12, defect 5): a step of the wall clock, forwards or
// backwards, neither moves profiles whose worker holds a valid lease nor keeps a dead worker's
// profiles in place, nor disarms the reaper of a frozen worker.

const HOUR_MS = 3_600_000

/** Frozen-worker runs take half a minute each: they run in `npm run torture` (TORTURE=1), not in `npm test`. */
const LONG_FAULT_RUN = process.env.TORTURE === '1' ? false : 'a long fault run: npm run torture runs it'

/** Steps this process's Date.now by `ms` until the test ends. */
function stepWallClock (t: { teardown: (fn: () => void) => void }, ms: number): void {
  const realNow = Date.now
  Date.now = () => realNow() + ms
  t.teardown(() => { Date.now = realNow })
}

t.test('the wall clock jumps an hour ahead: a worker holding a valid lease keeps its profile', async t => {
  // a TTL long enough that only the clock step, not a loaded machine holding up this process
  // for seconds, could make the worker stop and restart p1 (it stops its profiles when it sees
  // its own lease lapse)
  const ttlMs = 4500
  const fleet = await leaseFleet(t, { ttlMs, graceMs: 2000 })
  await addProfile(fleet, 'p1')
  t.ok(await eventually(() => runsExactly(fleet, ['p1'])), 'the worker runs p1')
  const assignment = assignments(fleet).get('p1')
  const pid = fleet.operator.profiles()[0].pid

  stepWallClock(t, HOUR_MS)
  // watch for three TTLs' worth of renewals (the worker renews every TTL / 3)
  const until = fleet.lease.served.length + 9
  const seen = { expired: false, moved: false }
  t.ok(await eventually(() => {
    if (fleet.allocator.summary().leases.w1?.state !== 'live') seen.expired = true
    if (assignments(fleet).get('p1') !== assignment) seen.moved = true
    return fleet.lease.served.length >= until
  }, 30_000), 'the worker went on renewing')
  t.notOk(seen.expired, 'the master never saw the lease lapse')
  t.notOk(seen.moved, 'p1 kept its assignment')
  const row = fleet.operator.profiles()[0]
  t.match(row, { name: 'p1', state: 'RUNNING', pid, restarts: 0 }, 'the same p1 process runs on')
})

t.test('the wall clock jumps an hour back: a worker that stopped renewing still loses its profiles after TTL + grace', async t => {
  const fleet = await leaseFleet(t, { ttlMs: 1500, graceMs: 1000 })
  await addProfile(fleet, 'p1')
  t.ok(await eventually(() => runsExactly(fleet, ['p1'])), 'the worker runs p1')
  const assignment = assignments(fleet).get('p1')

  // the worker goes silent (its operator stops, profiles included), then the clock steps back
  await fleet.operator.stop()
  stepWallClock(t, -HOUR_MS)
  t.ok(await eventually(() => fleet.allocator.summary().leases.w1?.state === 'expired', 20_000), 'the master saw the lease lapse')
  t.ok(await eventually(() => assignments(fleet).get('p1') !== assignment, 20_000), 'and removed the silent worker\'s assignment')
})

t.test('the wall clock of a worker jumps an hour ahead, then it freezes: its reaper still kills the profile at the lease\'s end', { skip: LONG_FAULT_RUN }, async t => {
  const master = await startMaster(t)
  const slave = await startSlave(t, master, 'slave-a', 5)
  // the worker process (not its reaper, nor the master) gets a wall clock a test can step
  const w1 = await startWorker(t, master, { name: 'w1', slave: 'slave-a', slots: 3, kinds: ['mta'], nodeArgs: ['--import', join(ROOT, 'test', 'helpers', 'clock-step.mjs')] })
  await insert(master, { subaccount: { name: 'acme', account: 'acme-inc' } })
  await profile(master, 'm', 'mta', 'acme')
  await waitRunning(w1, ['m'])
  const runner = await waitFor('m reporting from w1', async () => (await slaveRuns(slave)).runs.get('m')?.find(r => r.worker === 'w1')?.pid)
  t.teardown(() => { try { process.kill(runner, 'SIGKILL') } catch { /* gone */ } })

  w1.proc.kill('SIGUSR2')
  await waitFor('w1\'s wall clock to jump', () => w1.logs().includes('clock-step: the wall clock jumped') ? true : undefined)
  // two renewals after the jump: the reaper has been told the lease's end since
  let renewals = 0
  let last = Infinity
  await waitFor('two lease renewals of w1 after the jump', async () => {
    const left = (await getJson(w1, '/v1/profiles')).lease.expires_in_ms as number
    if (left > last) renewals++
    last = left
    return renewals >= 2 ? true : undefined
  }, { everyMs: 50 })

  w1.proc.kill('SIGSTOP')
  t.teardown(() => { w1.proc.kill('SIGCONT') })
  const killed = await waitFor('the frozen worker\'s runner to be killed', () => pidAlive(runner) ? undefined : true, { timeoutMs: 20_000 }).catch(() => false)
  t.ok(killed, 'the reaper killed the profile of the frozen worker although its wall clock had jumped')
})
