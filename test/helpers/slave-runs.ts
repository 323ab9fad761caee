import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { waitFor } from './net.js'
import { ROOT, type NodeProcess } from './node-process.js'
import { tmpDir } from './tmp.js'
import { getJson } from './fleet.js'

// Sub-account processes on slaves (test/slave-processes and test/slave-faults): each process
// (scripts/demo-subaccount-runner.mjs) appends its own heartbeats to a file; those records show
// where each ran, and that no sub-account ran on two slaves at once.

export const KINDS = ['ingest', 'plan', 'timeline']

export interface Beat { event: string, subaccount: string, subaccount_id: string, kind: string, slave: string, pid: number, t: number }
export interface SubRun { slave: string, pid: number, first: number, last: number }

/** The runner command, recording into a fresh file; and a reader of what it recorded. */
export async function runLog (t: Parameters<typeof tmpDir>[0]): Promise<{ command: string, beats: () => Beat[] }> {
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
export function subRuns (beats: Beat[]): { runs: Map<string, SubRun[]>, overlaps: string[] } {
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
export function inTurn (places: string[]): string[] {
  return places.filter((place, i) => i === 0 || places[i - 1] !== place)
}
export const slavesInTurn = (runs: SubRun[]): string[] => inTurn([...runs].sort((a, b) => a.first - b.first).map(r => r.slave))

/** A slave's sub-account processes (GET /v1/profiles on the slave). */
export async function slaveProcesses (slave: NodeProcess): Promise<Array<{ name: string, kind: string, state: string, pid: number | null, restarts: number, subaccount_id: string, last_exit: string | null }>> {
  return (await getJson(slave, '/v1/profiles')).processes
}

/** Waits until the slave runs exactly every kind for each of `subs`, all RUNNING; answers with their pids. */
export async function waitSubsRunning (slave: NodeProcess, subs: string[], timeoutMs = 40_000): Promise<number[]> {
  const want = subs.flatMap(s => KINDS.map(k => `${s}/${k}`)).sort().join(',')
  return await waitFor(`${slave.name} to run exactly [${want}]`, async () => {
    const rows = await slaveProcesses(slave)
    const running = rows.filter(r => r.state === 'RUNNING').map(r => `${r.name}/${r.kind}`).sort().join(',')
    return rows.length === subs.length * KINDS.length && running === want ? rows.map(r => r.pid!) : undefined
  }, { timeoutMs, everyMs: 200 })
}

/** Where the master says a sub-account runs (`get profiles` on the master, /v1/profiles). */
export async function subaccountOn (master: NodeProcess, name: string): Promise<{ slave: string | null, lease: string | null, status: string } | undefined> {
  return ((await getJson(master, '/v1/profiles')).subaccounts as Array<{ name: string, slave: string | null, lease: string | null, status: string }>).find(s => s.name === name)
}

/** Whether `node`'s log shows `pattern` within a few seconds (log lines arrive through a pipe). */
export async function logged (node: NodeProcess, pattern: RegExp): Promise<boolean> {
  return await waitFor(`${node.name}'s log to show ${String(pattern)}`, () => pattern.test(node.logs()) ? true : undefined, { timeoutMs: 10_000 }).catch(() => false)
}
