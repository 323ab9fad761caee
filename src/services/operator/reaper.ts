import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import type { Logger } from '../../node/logger.js'

/** The worker's side of the reaper (see reaper-main.ts). */
export class Reaper {
  private child?: ChildProcess

  constructor (private readonly log: Logger) {}

  start (): void {
    // its own process group, so a terminal's Ctrl-C reaches the worker and not the reaper
    this.child = spawn(process.execPath, [join(import.meta.dirname, 'reaper-main.js')], { stdio: ['pipe', 'ignore', 'inherit'], detached: true })
    this.child.on('error', err => { this.log.error({ err: err.message }, 'profile reaper failed to start') })
    this.child.on('exit', (code, signal) => {
      if (this.child !== undefined) this.log.warn({ code, signal }, 'profile reaper exited')
      this.child = undefined
    })
    this.child.stdin?.on('error', () => {})
    // neither the reaper nor its pipe keeps the worker alive
    this.child.unref()
    ;(this.child.stdin as unknown as { unref?: () => void }).unref?.()
  }

  /** A new process group to kill if the worker dies. */
  watch (pgid: number): void { this.child?.stdin?.write(`+${pgid}\n`) }
  forget (pgid: number): void { this.child?.stdin?.write(`-${pgid}\n`) }
  /**
   * If `delayMs` pass without a newer call, the reaper kills every group it watches. A delay,
   * not a time: the reaper counts it on its own monotonic clock, so no wall-clock step (and no
   * difference between the two processes' clocks) can move the kill earlier or later. It
   * starts counting when it reads the line, a moment after it was written; the margin between
   * the kill grace and the master's grace covers that.
   */
  killAfter (delayMs: number): void { this.child?.stdin?.write(`~${Math.max(0, Math.ceil(delayMs))}\n`) }

  stop (): void {
    const child = this.child
    this.child = undefined
    child?.stdin?.end()
  }
}
