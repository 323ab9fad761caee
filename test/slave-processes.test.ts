import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { waitFor } from './helpers/net.js'
import { ROOT, type NodeProcess } from './helpers/node-process.js'
import { tmpDir } from './helpers/tmp.js'
import { getJson, insert, pidAlive, processesOf, profile, slaveRuns, startMaster, startSlave, startWorker, waitRunning } from './helpers/fleet.js'

// Slaves run processes per sub-account (ingest, plan, ...), supervised as workers supervise
// profiles, under a lease of their own: real master, slaves and workers on 127.0.0.1. Each
// sub-account process (scripts/demo-subaccount-runner.mjs) appends its own heartbeats to a
// file; those records show where each ran, and that no sub-account ran on two slaves at once.
// Nothing here asserts a duration.

const KINDS = ['ingest', 'plan', 'timeline']

interface Beat { event: string, subaccount: string, subaccount_id: string, kind: string, slave: string, pid: number, t: number }
interface SubRun { slave: string, pid: number, first: number, last: number }

/** The runner command, recording into a fresh file; and a reader of what it recorded. */
async function runLog (t: Parameters<typeof tmpDir>[0]): Promise<{ command: string, beats: () => Beat[] }> {
  const file = join(await tmpDir(t, 'lm-subproc-'), 'runs.jsonl')
  // exec: the runner is the process the slave supervises (its pid is the row's pid)
  const command = `exec ${process.execPath} ${join(ROOT, 'scripts', 'demo-subaccount-runner.mjs')} ${file}`
  const beats = (): Beat[] => {
    let text = ''
    try { text = readFileSync(file, 'utf8') } catch { return [] }
    return text.split('\n').filter(line => line.trim() !== '').map(line => JSON.parse(line) as Beat)
  }
  return { command, beats }
}

/** Per `sub/kind`, its runs (one per pid) in start order; `overlaps`: runs on two slaves whose records intersect. */
function subRuns (beats: Beat[]): { runs: Map<string, SubRun[]>, overlaps: string[] } {
  const byPid = new Map<string, SubRun & { key: string }>()
  for (const b of beats) {
    const key = `${b.subaccount}/${b.kind}`
    const run = byPid.get(`${key}/${b.pid}`)
    if (run === undefined) byPid.set(`${key}/${b.pid}`, { key, slave: b.slave, pid: b.pid, first: b.t, last: b.t })
    else run.last = Math.max(run.last, b.t)
  }
  const runs = new Map<string, SubRun[]>()
  for (const { key, ...run } of byPid.values()) runs.set(key, [...(runs.get(key) ?? []), run])
  const overlaps: string[] = []
  for (const [key, list] of runs) {
    list.sort((a, b) => a.first - b.first)
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        if (list[i].slave !== list[j].slave && list[j].first <= list[i].last) overlaps.push(`${key}: ${list[i].slave} (pid ${list[i].pid}) until ${list[i].last} and ${list[j].slave} (pid ${list[j].pid}) from ${list[j].first}`)
      }
    }
  }
  return { runs, overlaps }
}

/**
 * The places (slaves, workers) a process ran on, in turn, from its runs sorted by start. Runs
 * one after another in one place count once: a node whose lease renewal came late on a loaded
 * machine stops its processes and starts them again, a restart in place, not a move.
 */
function inTurn (places: string[]): string[] {
  return places.filter((place, i) => i === 0 || places[i - 1] !== place)
}
const slavesInTurn = (runs: SubRun[]): string[] => inTurn([...runs].sort((a, b) => a.first - b.first).map(r => r.slave))

/** A slave's sub-account processes (GET /v1/profiles on the slave). */
async function slaveProcesses (slave: NodeProcess): Promise<Array<{ name: string, kind: string, state: string, pid: number | null, restarts: number, subaccount_id: string, last_exit: string | null }>> {
  return (await getJson(slave, '/v1/profiles')).processes
}

/** Waits until the slave runs exactly every kind for each of `subs`, all RUNNING; answers with their pids. */
async function waitSubsRunning (slave: NodeProcess, subs: string[], timeoutMs = 40_000): Promise<number[]> {
  const want = subs.flatMap(s => KINDS.map(k => `${s}/${k}`)).sort().join(',')
  return await waitFor(`${slave.name} to run exactly [${want}]`, async () => {
    const rows = await slaveProcesses(slave)
    const running = rows.filter(r => r.state === 'RUNNING').map(r => `${r.name}/${r.kind}`).sort().join(',')
    return rows.length === subs.length * KINDS.length && running === want ? rows.map(r => r.pid!) : undefined
  }, { timeoutMs, everyMs: 200 })
}

/** Where the master says a sub-account runs (`get profiles` on the master, /v1/profiles). */
async function subaccountOn (master: NodeProcess, name: string): Promise<{ slave: string | null, lease: string | null, status: string } | undefined> {
  return ((await getJson(master, '/v1/profiles')).subaccounts as Array<{ name: string, slave: string | null, lease: string | null, status: string }>).find(s => s.name === name)
}

/** Whether `node`'s log shows `pattern` within a few seconds (log lines arrive through a pipe). */
async function logged (node: NodeProcess, pattern: RegExp): Promise<boolean> {
  return await waitFor(`${node.name}'s log to show ${String(pattern)}`, () => pattern.test(node.logs()) ? true : undefined, { timeoutMs: 10_000 }).catch(() => false)
}

t.test('a slave runs every declared process for each of its sub-accounts; a crashing one restarts with backoff', async t => {
  const { command, beats } = await runLog(t)
  const master = await startMaster(t)
  const slave = await startSlave(t, master, 'slave-a', 5, { kinds: KINDS, command })
  const acme = await insert(master, { subaccount: { name: 'acme', account: 'acme-inc', settings: { heartbeat_ms: 150, region: 'eu' } } })
  await insert(master, { subaccount: { name: 'crashy', account: 'crashy-inc', settings: { heartbeat_ms: 150, crash_after_ms: 200 } } })

  await waitFor('acme\'s three processes running on slave-a', async () => {
    const rows = (await slaveProcesses(slave)).filter(r => r.name === 'acme' && r.state === 'RUNNING')
    return rows.length === KINDS.length ? rows : undefined
  }, { timeoutMs: 40_000 })
  const recorded = await waitFor('acme\'s processes to record heartbeats', () => {
    const mine = beats().filter(b => b.subaccount === 'acme')
    return KINDS.every(k => mine.some(b => b.kind === k)) ? mine : undefined
  })
  t.same([...new Set(recorded.map(b => b.kind))].sort(), KINDS, 'one process per declared kind')
  t.ok(recorded.every(b => b.slave === 'slave-a' && b.subaccount_id === acme.id), 'each got SLAVE_NAME and SUBACCOUNT_ID (the sub-account policy\'s id)')
  // the runner's output reaches the slave's log through a pipe: it may come after its first heartbeat
  t.ok(await logged(slave, /"stream":"stdout".*ingest of sub-account acme started on slave-a .*region\W+eu/), 'its output (settings from SUBACCOUNT_SETTINGS) is in the slave\'s log')

  const crashed = await waitFor('crashy\'s processes to have restarted twice', async () => {
    const rows = (await slaveProcesses(slave)).filter(r => r.name === 'crashy')
    return rows.length === KINDS.length && rows.every(r => r.restarts >= 2) ? rows : undefined
  }, { timeoutMs: 40_000 })
  t.ok(crashed.every(r => r.last_exit === 'exit code 3'), 'the exits are recorded')
  t.ok(await logged(slave, /"msg":"sub-account crashy plan ERROR"/), 'each state change is logged with the sub-account and kind')

  const view = (await slave.ok('get profiles')).text
  t.match(view, /Slave slave-a: 6 sub-account processes, lease valid/, 'get profiles on the slave: its processes and its lease')
  t.match(view, /acme\s*\|ingest\s*\|RUNNING\s*\|\d+\s*\|0\s/, 'state, pid and restarts per process')
  const metrics = await (await fetch(`${slave.url}/metrics`)).text()
  t.match(metrics, /ledgermesh_subaccount_processes\{[^}]*state="RUNNING"[^}]*\} [1-9]/, '/metrics counts the slave\'s processes by state')
  t.match(metrics, /ledgermesh_subaccount_process_restarts\{[^}]*\} [1-9]/, 'and their restarts')
  const where = await waitFor('the master to show acme on slave-a', async () => { const s = await subaccountOn(master, 'acme'); return s?.slave === 'slave-a' ? s : undefined })
  t.match(where, { lease: 'live', status: 'assigned' }, 'get profiles on the master: where the sub-account runs, and its slave\'s lease')
  t.match((await master.ok('get profiles')).text, /acme\s*\|slave-a\s*\|live/, 'in the text table too')
  const masterMetrics = await (await fetch(`${master.url}/metrics`)).text()
  t.match(masterMetrics, /ledgermesh_slave_leases\{[^}]*state="live"[^}]*\} 1/, 'the master counts slave leases')
})

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
