import { type ChildProcess, spawn } from 'node:child_process'
import { extname, join } from 'node:path'
import type { Logger } from '../../base/logger.js'

/** A reaper that exits sooner than this after it started is failing to start, not killed. */
const STAYS_UP_MS = 1000
/** Wait this long before starting a reaper again after one failed to start. */
const RESTART_DELAY_MS = 1000

/**
 * The worker's side of the reaper (see reaper-main.ts). It mirrors what it told the reaper
 * (the process groups, the kill deadline), so that a reaper that dies — kill -9, the OOM
 * killer — is replaced at once by one that knows the same: the guarantee the reaper gives must
 * not end silently with it. A reaper that cannot start is retried every second; meanwhile
 * `alive` is false, and the operator runs no profiles (see Operator.desired).
 */
export class Reaper {
  private child?: ChildProcess
  private running = false
  private readonly groups = new Set<number>()
  /** performance.now() at which the last killAfter expires */
  private killAt?: number
  private restartTimer?: NodeJS.Timeout

  constructor (private readonly log: Logger) {}

  start (): void {
    if (this.running) return
    this.running = true
    this.spawnReaper()
  }

  /** A reaper process is running (or starting): profiles may run. */
  get alive (): boolean { return this.child !== undefined }

  private spawnReaper (): void {
    this.restartTimer = undefined
    const startedAt = performance.now()
    // its own process group, so a terminal's Ctrl-C reaches the worker and not the reaper
    const child = spawn(process.execPath, reaperArgs(), { stdio: ['pipe', 'ignore', 'inherit'], detached: true })
    this.child = child
    child.on('error', err => {
      this.log.error({ err: err.message }, 'profile reaper failed to start')
      this.lost(child, startedAt)
    })
    child.on('exit', (code, signal) => {
      if (this.child === child) this.log.warn({ code, signal }, 'profile reaper exited')
      this.lost(child, startedAt)
    })
    child.stdin?.on('error', () => {})
    // neither the reaper nor its pipe keeps the worker alive
    child.unref()
    ;(child.stdin as unknown as { unref?: () => void }).unref?.()
    // a new reaper learns what the one it replaces knew: lines wait in the pipe until it reads
    for (const pgid of this.groups) this.send(`+${pgid}`)
    if (this.killAt !== undefined) this.send(`~${Math.max(0, Math.ceil(this.killAt - performance.now()))}`)
  }

  /** The reaper `child` is gone: start another unless the worker is stopping it. */
  private lost (child: ChildProcess, startedAt: number): void {
    if (this.child !== child) return // already replaced, or stopped
    this.child = undefined
    if (!this.running) return
    if (performance.now() - startedAt >= STAYS_UP_MS) {
      this.log.warn({ groups: this.groups.size }, 'profile reaper died: started a new one, which watches the same profile processes')
      this.spawnReaper()
      return
    }
    this.log.error({ retryInMs: RESTART_DELAY_MS }, 'profile reaper exited right after it started: no profiles run until one stays up')
    this.restartTimer = setTimeout(() => { this.spawnReaper() }, RESTART_DELAY_MS)
    this.restartTimer.unref()
  }

  private send (line: string): void { this.child?.stdin?.write(`${line}\n`) }

  /** A new process group to kill if the worker dies. */
  watch (pgid: number): void {
    this.groups.add(pgid)
    this.send(`+${pgid}`)
  }

  forget (pgid: number): void {
    this.groups.delete(pgid)
    this.send(`-${pgid}`)
  }

  /**
   * If `delayMs` pass without a newer call, the reaper kills every group it watches. A delay,
   * not a time: the reaper counts it on its own monotonic clock, so no wall-clock step (and no
   * difference between the two processes' clocks) can move the kill earlier or later. It
   * starts counting when it reads the line, a moment after it was written; the margin between
   * the kill grace and the master's grace covers that.
   */
  killAfter (delayMs: number): void {
    this.killAt = performance.now() + delayMs
    this.send(`~${Math.max(0, Math.ceil(delayMs))}`)
  }

  stop (): void {
    this.running = false
    clearTimeout(this.restartTimer)
    const child = this.child
    this.child = undefined
    child?.stdin?.end()
  }
}

/**
 * reaper-main.js beside this file; when running from TypeScript sources (tests) the .ts file,
 * loaded through tsx, since a child process does not inherit this one's module hooks.
 */
function reaperArgs (): string[] {
  const file = join(import.meta.dirname, `reaper-main${extname(import.meta.filename)}`)
  return file.endsWith('.ts') ? ['--import', import.meta.resolve('tsx/esm'), file] : [file]
}
