import { availableParallelism } from 'node:os'
import { setImmediate as yieldToEvents } from 'node:timers/promises'
import { extname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { Policy } from './policy.js'
import { invalidPolicies, verifyPolicy } from './validate.js'

/** Batches smaller than this are verified on the calling thread: handing them off costs more. */
const MIN_PARALLEL = 256
/**
 * Larger batches (a catch-up run: 100,000 policies) go out in slices of this many, taken in
 * turn by the threads and the calling thread: a thread handed its whole share at once holds a
 * copy of all of it (verifying 100,000 policies with one thread raised the process's peak RSS
 * by 58–89 MB that way, by 20–52 MB in slices), and an even split leaves the faster threads
 * idle at the end.
 */
const SLICE = 1024
/** Slices handed to a thread and not yet answered: the next one waits while it verifies one. */
const SLICES_PER_THREAD = 2
/** Threads end after this long without a batch. */
const IDLE_MS = 2000
/**
 * A thread's answer is due within this long plus a millisecond per policy (about ten times
 * what a loaded thread needs); past it the thread is taken for stuck, ended, and its share
 * is verified on the calling thread.
 */
const ANSWER_BASE_MS = 5000
/** Thread failures (crash, exit, no answer) after which the pool verifies on the calling thread only. */
const MAX_FAILURES = 3

interface Pending { worker: Worker, timer: NodeJS.Timeout, resolve: (invalid: number[]) => void, reject: (err: Error) => void }

/**
 * Verifies the author signatures of many policies at once (a replica's catch-up) on every
 * core: Ed25519 verification is most of a replica's work per entry, and node:crypto's verify
 * is synchronous. The calling thread verifies its own share while worker threads verify
 * theirs. Threads start on first use and never keep the process alive.
 */
export class VerifyPool {
  private readonly workers: Worker[] = []
  private readonly pending = new Map<number, Pending>()
  private nextId = 0
  private broken?: string
  private failures = 0
  private idleTimer?: NodeJS.Timeout

  constructor (private readonly threads = Math.max(0, availableParallelism() - 1)) {}

  private start (): void {
    if (this.workers.length > 0 || this.threads === 0) return
    for (let i = 0; i < this.threads; i++) {
      const worker = spawnVerifyWorker()
      worker.unref()
      worker.on('message', ({ id, invalid }: { id: number, invalid: number[] }) => {
        const pending = this.pending.get(id)
        if (pending === undefined) return
        clearTimeout(pending.timer)
        this.pending.delete(id)
        pending.resolve(invalid)
      })
      worker.on('error', err => { this.fail(worker, err) })
      // a thread that ends on its own (killed, out of memory) would leave its batches unanswered
      worker.on('exit', code => { if (this.workers.includes(worker)) this.fail(worker, new Error(`verify thread exited with code ${code}`)) })
      this.workers.push(worker)
    }
  }

  /** The index of the first policy whose signature does not verify, or -1 when all do. */
  async firstInvalid (policies: Policy[]): Promise<number> {
    const invalid = policies.length < MIN_PARALLEL ? invalidPolicies(policies, false) : await this.check(policies, false)
    return invalid[0] ?? -1
  }

  /** The indices of every policy whose id or signature does not verify (the master's inserts). */
  async invalidAmong (policies: Policy[]): Promise<number[]> {
    return await this.check(policies, true)
  }

  /**
   * Checks `policies` in equal shares at once: one on the calling thread, one on each worker
   * thread (equal shares measured faster here than giving the calling thread less; with two
   * cores the threads share the machine with the rest of the node). Returns the failing
   * indices in order: every one with `all`, else at least the first.
   */
  private async check (policies: Policy[], all: boolean): Promise<number[]> {
    if (this.threads === 0 || this.broken !== undefined) return invalidPolicies(policies, all)
    this.start()
    // threads exist only around bursts (a catch-up): idle ones end, so none outlives its use
    this.armIdleTimer()
    if (policies.length > SLICE * (this.workers.length + 1)) return await this.checkInSlices(policies, all)
    const size = Math.ceil(policies.length / (this.workers.length + 1))
    const remote = this.workers.map(async (worker, w) => {
      const from = (w + 1) * size
      const slice = policies.slice(from, from + size)
      if (slice.length === 0) return []
      return (await this.send(worker, slice, all)).map(i => from + i)
    })
    const local = invalidPolicies(policies.slice(0, size), all)
    try {
      return [...local, ...(await Promise.all(remote)).flat()]
    } catch {
      return invalidPolicies(policies, all)
    }
  }

  /** check() of a large batch, slice by slice (SLICE): the threads take the next slice as they finish one, and so does the calling thread. */
  private async checkInSlices (policies: Policy[], all: boolean): Promise<number[]> {
    let next = 0
    const take = (): number | undefined => {
      if (next >= policies.length) return undefined
      next += SLICE
      return next - SLICE
    }
    const invalid: number[] = []
    const verify = (from: number, found: number[]): void => { for (const i of found) invalid.push(from + i) }
    const lanes = this.workers.flatMap(worker => Array.from({ length: SLICES_PER_THREAD }, async () => {
      for (let from = take(); from !== undefined; from = take()) verify(from, await this.send(worker, policies.slice(from, from + SLICE), all))
    }))
    // the calling thread's own slices, one at a time, letting the threads' answers in between
    const local = (async () => {
      for (let from = take(); from !== undefined; from = take()) {
        verify(from, invalidPolicies(policies.slice(from, from + SLICE), all))
        await yieldToEvents()
      }
    })()
    try {
      await Promise.all([...lanes, local])
    } catch {
      next = policies.length // the lanes still running take nothing more
      return invalidPolicies(policies, all)
    }
    return invalid.sort((a, b) => a - b)
  }

  private async send (worker: Worker, policies: Policy[], all: boolean): Promise<number[]> {
    const id = this.nextId++
    return await new Promise<number[]>((resolve, reject) => {
      const timer = setTimeout(() => { this.fail(worker, new Error(`verify thread gave no answer within ${ANSWER_BASE_MS + policies.length} ms`)) }, ANSWER_BASE_MS + policies.length)
      timer.unref()
      this.pending.set(id, { worker, timer, resolve, reject })
      worker.postMessage({ id, policies, all })
    })
  }

  /**
   * A thread crashed, ended or hung: its batches fail (check() then verifies them on the
   * calling thread) and it is ended; the next batch starts a fresh one. After MAX_FAILURES the
   * pool verifies on the calling thread from then on.
   */
  private fail (worker: Worker, err: Error): void {
    const index = this.workers.indexOf(worker)
    if (index < 0) return
    this.workers.splice(index, 1)
    void worker.terminate()
    for (const [id, pending] of this.pending) {
      if (pending.worker !== worker) continue
      clearTimeout(pending.timer)
      this.pending.delete(id)
      pending.reject(err)
    }
    if (++this.failures >= MAX_FAILURES) this.broken = err.message
    // the survivors are ended too, so the pool restarts whole (start() only runs when empty)
    if (this.workers.length > 0 && this.pending.size === 0) void this.close()
  }

  private armIdleTimer (): void {
    clearTimeout(this.idleTimer)
    this.idleTimer = setTimeout(() => {
      if (this.pending.size > 0) this.armIdleTimer()
      else void this.close()
    }, IDLE_MS)
    this.idleTimer.unref()
  }

  async close (): Promise<void> {
    clearTimeout(this.idleTimer)
    const workers = this.workers.splice(0)
    await Promise.all(workers.map(async w => await w.terminate()))
  }
}

/**
 * The worker thread: verify-worker.js beside this file (verify-worker.cjs in the bundle); when
 * running from TypeScript sources (tests, benchmarks under tsx) the .ts file, loaded through
 * tsx, since a worker thread does not inherit the main thread's module hooks.
 */
function spawnVerifyWorker (): Worker {
  const file = join(import.meta.dirname, `verify-worker${extname(import.meta.filename)}`)
  if (!file.endsWith('.ts')) return new Worker(file)
  const bootstrap = `import('tsx/esm/api').then(tsx => { tsx.register(); return import(${JSON.stringify(pathToFileURL(file).href)}) })`
  return new Worker(bootstrap, { eval: true })
}

/**
 * Verifies the author signatures of concurrent inserts in batches on the pool's threads. A lone
 * insert (no commit running, nothing queued or in flight) is checked on the spot: handing one
 * policy to a thread costs more latency than checking it. A policy that fails is checked again here, so its error
 * names the problem exactly as verifyPolicy words it.
 */
export class InsertVerifier {
  private queue: Array<{ policy: Policy, resolve: () => void, reject: (err: Error) => void }> = []
  private inFlight = 0

  constructor (private readonly pool: VerifyPool = verifyPool) {}

  /** `busy`: other inserts are being committed, so this one will wait anyway. */
  async verify (policy: Policy, busy: boolean): Promise<void> {
    if (!busy && this.queue.length === 0 && this.inFlight === 0) {
      verifyPolicy(policy)
      return
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    this.queue.push({ policy, resolve, reject })
    if (this.queue.length === 1) setImmediate(() => { void this.flush() })
    return await promise
  }

  private async flush (): Promise<void> {
    const batch = this.queue
    this.queue = []
    this.inFlight++
    try {
      const invalid = new Set(await this.pool.invalidAmong(batch.map(b => b.policy)))
      batch.forEach(({ policy, resolve, reject }, i) => {
        if (!invalid.has(i)) { resolve(); return }
        try { verifyPolicy(policy); resolve() } catch (err) { reject(err as Error) }
      })
    } catch (err) {
      for (const { reject } of batch) reject(err as Error)
    } finally {
      this.inFlight--
    }
  }
}

/** One pool per process, shared by every ledger in it. */
export const verifyPool = new VerifyPool()
