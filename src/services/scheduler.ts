import type { Logger } from '../base/logger.js'
import { errorMessage } from '../base/errors.js'
import type { ProcessStatus, Service } from './service.js'

interface Job {
  name: string
  everyMs: number
  run: () => Promise<void> | void
  timer?: NodeJS.Timeout
  running: boolean
}

/**
 * Runs the node's periodic jobs (anti-entropy sync, outbox retries, ...). Scheduler 0 is
 * the system's and always exists; `run scheduler 1` declares the user scheduler, as in
 * AnyLog. A job never overlaps itself: a tick that finds the previous run busy is skipped.
 */
export class Scheduler implements Service {
  readonly name = 'Scheduler'
  private readonly jobs = new Map<string, Job>()
  private readonly ids = new Set<number>()
  private started = false

  constructor (private readonly log: Logger) {}

  /** Declares scheduler `id` (AnyLog's `run scheduler 1`) and starts the jobs. */
  async runScheduler (id: number): Promise<void> {
    this.ids.add(id)
    await this.start()
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    for (const job of this.jobs.values()) this.arm(job)
  }

  async stop (): Promise<void> {
    this.started = false
    for (const job of this.jobs.values()) clearInterval(job.timer)
  }

  /** Adds or replaces a periodic job. */
  every (name: string, everyMs: number, run: () => Promise<void> | void): void {
    const old = this.jobs.get(name)
    if (old !== undefined) clearInterval(old.timer)
    const job: Job = { name, everyMs, run, running: false }
    this.jobs.set(name, job)
    if (this.started) this.arm(job)
  }

  cancel (name: string): void {
    clearInterval(this.jobs.get(name)?.timer)
    this.jobs.delete(name)
  }

  private arm (job: Job): void {
    job.timer = setInterval(() => {
      if (job.running) return
      job.running = true
      Promise.resolve()
        .then(job.run)
        .catch(err => this.log.warn({ job: job.name, err: errorMessage(err) }, 'scheduled job failed'))
        .finally(() => { job.running = false })
    }, job.everyMs)
    job.timer.unref()
  }

  status (): ProcessStatus {
    if (!this.started) return { status: 'Not declared' }
    const ids = ['[0 (system)]', ...[...this.ids].filter(id => id !== 0).sort().map(id => `[${id} (user)]`)]
    return { status: 'Running', details: `Schedulers IDs in use: ${ids.join(' ')}, Jobs: ${this.jobs.size}` }
  }
}
