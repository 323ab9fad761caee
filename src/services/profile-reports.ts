import type { ProfileReportView } from '../commands/port.js'

/**
 * The slave's record of which worker runs which profile, from the heartbeats profile
 * processes send to it (POST /v1/profiles/heartbeat). Each profile keeps its recent runs: one
 * run per (worker, pid), from its first heartbeat to its last, so an operator (or a test) can
 * see where a profile ran and that two runs never overlapped.
 */
export interface Heartbeat {
  profile_id: string
  profile_name?: string
  kind?: string
  worker: string
  pid: number
  state?: string
}

export interface ProfileRun {
  worker: string
  pid: number
  first_seen: string
  last_seen: string
  /** the same instants in ms since the epoch, for arithmetic */
  first_seen_ms: number
  last_seen_ms: number
  beats: number
  state: string
}

/** A profile as its heartbeats show it: the view `get profiles` shows (ProfileReportView), with its runs. */
export interface ProfileReport extends ProfileReportView {
  runs: ProfileRun[]
}

/** Runs kept per profile, and profiles kept in all (oldest dropped first). */
const MAX_RUNS = 50
const MAX_PROFILES = 10_000

export class ProfileReports {
  private readonly byProfile = new Map<string, { name: string | null, kind: string | null, runs: ProfileRun[] }>()

  record (beat: Heartbeat, now = Date.now()): void {
    let entry = this.byProfile.get(beat.profile_id)
    if (entry === undefined) {
      if (this.byProfile.size >= MAX_PROFILES) this.byProfile.delete(this.byProfile.keys().next().value!)
      entry = { name: beat.profile_name ?? null, kind: beat.kind ?? null, runs: [] }
      this.byProfile.set(beat.profile_id, entry)
    }
    entry.name = beat.profile_name ?? entry.name
    entry.kind = beat.kind ?? entry.kind
    const at = new Date(now).toISOString()
    const run = entry.runs.find(r => r.worker === beat.worker && r.pid === beat.pid)
    if (run !== undefined) {
      run.last_seen = at
      run.last_seen_ms = now
      run.beats++
      run.state = beat.state ?? run.state
      return
    }
    entry.runs.push({ worker: beat.worker, pid: beat.pid, first_seen: at, last_seen: at, first_seen_ms: now, last_seen_ms: now, beats: 1, state: beat.state ?? 'running' })
    if (entry.runs.length > MAX_RUNS) entry.runs.shift()
  }

  list (): ProfileReport[] {
    return [...this.byProfile].map(([id, entry]) => {
      const latest = entry.runs.reduce((a, b) => b.last_seen_ms >= a.last_seen_ms ? b : a)
      return { profile_id: id, profile_name: entry.name, kind: entry.kind, worker: latest.worker, pid: latest.pid, last_seen: latest.last_seen, runs: entry.runs }
    }).sort((a, b) => String(a.profile_name) < String(b.profile_name) ? -1 : 1)
  }
}
