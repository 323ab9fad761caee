import { execFileSync } from 'node:child_process'
import t from 'tap'
import { waitFor } from './helpers/net.js'
import type { NodeProcess } from './helpers/node-process.js'
import type { Teardown } from './helpers/tmp.js'
import { insert, profile, startMaster, startSlave, startWorker, waitRunning } from './helpers/fleet.js'

// A worker's reaper killed by kill -9 (issue 12, part of defect 9): the guarantee it gives —
// no profile process outlives its worker, nor the worker's lease when the worker is frozen —
// must still hold afterwards. Real node processes; the reaper is found among the worker's
// children by its command line.

/** Reaper faults take half a minute each, and the worker dies or freezes: they run in `npm run torture` (TORTURE=1), not in `npm test`. */
const LONG_FAULT_RUN = process.env.TORTURE === '1' ? false : 'a long fault run: npm run torture runs it'

/** The pid of `worker`'s reaper process, if one runs. */
function reaperOf (worker: NodeProcess): number | undefined {
  let out: string
  try {
    out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(worker.proc.pid)], { encoding: 'utf8' })
  } catch {
    return undefined // ps exits with 1 when there is no such child
  }
  const line = out.split('\n').find(l => l.includes('reaper-main'))
  return line === undefined ? undefined : Number(line.trim().split(/\s+/)[0])
}

/** Whether any process of the group `pgid` still runs. */
function groupAlive (pgid: number): boolean {
  try { process.kill(-pgid, 0); return true } catch { return false }
}

/**
 * A master, a slave and worker w1 running profile `m` (the demo runner); w1's reaper is then
 * killed with kill -9. Resolves with w1, the profile's process group and whether a new reaper
 * came up; whatever the test does not stop is killed at teardown.
 */
async function workerWithKilledReaper (t: Teardown): Promise<{ w1: NodeProcess, group: number, replaced: boolean }> {
  const master = await startMaster(t)
  await startSlave(t, master, 'slave-a', 5)
  const w1 = await startWorker(t, master, { name: 'w1', slave: 'slave-a', slots: 3, kinds: ['mta'] })
  await insert(master, { subaccount: { name: 'acme', account: 'acme-inc' } })
  // a runner that writes nothing once started: one that logs would die of the broken pipe
  // when its worker dies, and hide whether the reaper did its job
  await profile(master, 'm', 'mta', 'acme', { work_ms: 3_600_000 })
  const [row] = await waitRunning(w1, ['m'])
  const group = row.pid!
  // without a reaper nothing would kill the profile's group: do it at the end in any case
  t.teardown(() => { try { process.kill(-group, 'SIGKILL') } catch { /* gone */ } })

  const first = await waitFor('w1\'s reaper', () => reaperOf(w1))
  process.kill(first, 'SIGKILL')
  const second = await waitFor('a new reaper of w1', () => { const pid = reaperOf(w1); return pid !== undefined && pid !== first ? pid : undefined }, { timeoutMs: 10_000 }).catch(() => undefined)
  t.teardown(() => { if (second !== undefined) try { process.kill(second, 'SIGKILL') } catch { /* gone */ } })
  return { w1, group, replaced: second !== undefined }
}

t.test('kill -9 the reaper, then kill -9 the worker: the profile process still dies with its worker', { skip: LONG_FAULT_RUN }, async t => {
  const { w1, group, replaced } = await workerWithKilledReaper(t)
  t.ok(replaced, 'the worker started a new reaper')
  t.ok(groupAlive(group), 'the profile runs on meanwhile')

  await w1.kill()
  const died = await waitFor('the killed worker\'s profile to exit', () => groupAlive(group) ? undefined : true, { timeoutMs: 10_000 }).catch(() => false)
  t.ok(died, 'no profile process outlives its worker')
})

t.test('kill -9 the reaper, then freeze the worker: the profile process still dies when the lease runs out', { skip: LONG_FAULT_RUN }, async t => {
  const { w1, group, replaced } = await workerWithKilledReaper(t)
  t.ok(replaced, 'the worker started a new reaper')

  w1.proc.kill('SIGSTOP')
  t.teardown(() => { w1.proc.kill('SIGCONT') })
  const died = await waitFor('the frozen worker\'s profile to be killed', () => groupAlive(group) ? undefined : true, { timeoutMs: 20_000 }).catch(() => false)
  t.ok(died, 'the frozen worker\'s profile was killed at the end of its lease')
})
