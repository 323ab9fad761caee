import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { Logger } from '../../base/logger.js'
import type { Reaper } from './reaper.js'

export const PROCESS_STATES = ['STARTING', 'RUNNING', 'STOPPING', 'STOPPED', 'ERROR'] as const
export type ProcessState = typeof PROCESS_STATES[number]

/** Restart backoff: BACKOFF_MIN_MS doubling per consecutive failure up to BACKOFF_MAX_MS. */
export const BACKOFF_MIN_MS = 500
export const BACKOFF_MAX_MS = 30_000
/** A process up this long has recovered: the next failure starts the backoff from the bottom. */
export const HEALTHY_AFTER_MS = 10_000

/**
 * What a node runs for one assignment: a worker one process per profile, a slave one process
 * per kind (SUBACCOUNT_PROCESSES) for each of its sub-accounts.
 */
export interface ProcessSpec {
  /** one process per id: the assignment's policy id (a sub-account's: with its id and the kind) */
  id: string
  assignmentId: string
  /** what the process runs for, as log lines and status rows name it */
  unit: 'profile' | 'subaccount'
  /** what the master is told may run here (the lease's `running`): the profile's or sub-account's policy id */
  unitId: string
  name: string
  kind: string
  command: string
  /** added to the node's environment; a profile's plain settings are here (PROFILE_SETTINGS), so no log line shows it */
  env: Record<string, string>
}

/** One row of `get profiles` on a worker or a slave. */
export interface ProcessStatus {
  assignment: string
  /** a worker's row: the profile */
  profile_id?: string
  /** a slave's row: the sub-account */
  subaccount_id?: string
  name: string
  kind: string
  state: ProcessState
  pid: number | null
  restarts: number
  uptime_seconds: number | null
  last_exit: string | null
  next_restart_ms: number | null
  /** why the node does not start this one (a profile's settings do not open here); null for a process */
  problem: string | null
}

/** How log lines name a process: `profile acme-li-1`, `sub-account acme ingest`. */
export function processLabel (spec: Pick<ProcessSpec, 'unit' | 'name' | 'kind'>): string {
  return spec.unit === 'profile' ? `profile ${spec.name}` : `sub-account ${spec.name} ${spec.kind}`
}

/**
 * One supervised process (a worker's profile, a slave's sub-account process). It runs
 * `command` through /bin/sh in its own process group (so a stop reaches whatever the command
 * starts) with its spec's env, restarts it with exponential backoff when it exits, and stops
 * it with SIGTERM, then SIGKILL after the grace period. Every state change is logged with the
 * profile's (sub-account's) id.
 */
export class SupervisedProcess {
  state: ProcessState = 'STOPPED'
  restarts = 0
  private child?: ChildProcess
  /** performance.now() times: uptime and backoff must not follow wall-clock steps */
  private startedAt?: number
  private failures = 0
  private lastExit?: string
  private restartTimer?: NodeJS.Timeout
  private restartAt?: number
  private wanted = false
  private exited?: Promise<void>

  /** log fields naming the process: `{ profile: id, name }` or `{ subaccount: id, name, kind }` */
  private readonly fields: Record<string, string>

  constructor (readonly spec: ProcessSpec, private readonly opts: {
    reaper: Reaper
    log: Logger
    onChange: () => void
    /** asked before every restart: may this node run processes right now (lease valid, replica current)? */
    mayRun: () => boolean
  }) {
    this.fields = { [spec.unit]: spec.unitId, name: spec.name }
  }

  private setState (state: ProcessState, fields: Record<string, unknown> = {}): void {
    if (state === this.state) return
    const from = this.state
    this.state = state
    const level = state === 'ERROR' ? 'warn' : 'info'
    this.opts.log[level]({ ...this.fields, kind: this.spec.kind, from, to: state, ...fields }, `${processLabel(this.spec)} ${state}`)
    this.opts.onChange()
  }

  start (): void {
    this.wanted = true
    this.spawnChild()
  }

  private spawnChild (): void {
    if (!this.wanted) return
    this.restartAt = undefined
    this.setState('STARTING', { command: this.spec.command })
    const { spec } = this
    const child = spawn('/bin/sh', ['-c', spec.command], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...spec.env }
    })
    this.child = child
    const pid = child.pid
    if (pid !== undefined) this.opts.reaper.watch(pid)
    let resolveExit!: () => void
    this.exited = new Promise(resolve => { resolveExit = resolve })
    for (const [name, stream] of [['stdout', child.stdout], ['stderr', child.stderr]] as const) {
      if (stream === null) continue
      createInterface({ input: stream }).on('line', line => {
        this.opts.log.info({ ...this.fields, ...(spec.unit === 'profile' ? {} : { kind: spec.kind }), stream: name, pid }, line)
      })
    }
    child.on('spawn', () => {
      this.startedAt = performance.now()
      this.setState('RUNNING', { pid })
    })
    child.on('error', err => { this.lastExit = err.message })
    child.on('close', (code, signal) => {
      // whatever the command left behind in its group goes with it
      if (pid !== undefined) {
        try { process.kill(-pid, 'SIGKILL') } catch { /* group already empty */ }
        this.opts.reaper.forget(pid)
      }
      this.child = undefined
      const upMs = this.startedAt === undefined ? 0 : performance.now() - this.startedAt
      this.startedAt = undefined
      resolveExit()
      if (!this.wanted) {
        this.setState('STOPPED', { code, signal })
        return
      }
      this.lastExit = signal !== null ? `killed by ${signal}` : `exit code ${String(code)}`
      this.failures = upMs >= HEALTHY_AFTER_MS ? 1 : this.failures + 1
      const delay = Math.min(BACKOFF_MIN_MS * 2 ** (this.failures - 1), BACKOFF_MAX_MS)
      this.restarts++
      this.restartAt = performance.now() + delay
      this.setState('ERROR', { code, signal, restartInMs: delay, restarts: this.restarts })
      this.restartTimer = setTimeout(() => { this.restartWhenAllowed() }, delay)
    })
  }

  /** A restart waits while the node may not run processes (its lease lapsed meanwhile). */
  private restartWhenAllowed (): void {
    if (!this.wanted) return
    if (this.opts.mayRun()) { this.spawnChild(); return }
    this.restartTimer = setTimeout(() => { this.restartWhenAllowed() }, 200)
  }

  /** SIGTERM to the process group, SIGKILL after `graceMs`; resolves once it has exited. */
  async stop (graceMs: number): Promise<void> {
    this.wanted = false
    clearTimeout(this.restartTimer)
    this.restartAt = undefined
    const child = this.child
    if (child === undefined || child.pid === undefined) {
      this.setState('STOPPED')
      return
    }
    this.setState('STOPPING', { pid: child.pid, graceMs })
    const pid = child.pid
    const signal = (sig: NodeJS.Signals) => { try { process.kill(-pid, sig) } catch { /* gone */ } }
    signal('SIGTERM')
    const killer = setTimeout(() => {
      this.opts.log.warn({ ...this.fields, pid, graceMs }, `${processLabel(this.spec)} did not stop after SIGTERM: SIGKILL`)
      signal('SIGKILL')
    }, graceMs)
    await this.exited
    clearTimeout(killer)
  }

  /** Not fully stopped: it runs, or will again after its backoff. */
  get active (): boolean { return this.state !== 'STOPPED' }

  status (): ProcessStatus {
    return {
      assignment: this.spec.assignmentId,
      ...(this.spec.unit === 'profile' ? { profile_id: this.spec.unitId } : { subaccount_id: this.spec.unitId }),
      name: this.spec.name,
      kind: this.spec.kind,
      state: this.state,
      pid: this.child?.pid ?? null,
      restarts: this.restarts,
      uptime_seconds: this.startedAt === undefined ? null : Math.round((performance.now() - this.startedAt) / 1000),
      last_exit: this.lastExit ?? null,
      next_restart_ms: this.restartAt === undefined ? null : Math.max(0, Math.round(this.restartAt - performance.now())),
      problem: null
    }
  }
}
