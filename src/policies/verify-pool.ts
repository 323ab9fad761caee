import { availableParallelism } from 'node:os'
import { extname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { Policy } from './policy.js'
import { verifyPolicy } from './validate.js'

/** Batches smaller than this are verified on the calling thread: handing them off costs more. */
const MIN_PARALLEL = 256
/** Threads end after this long without a batch. */
const IDLE_MS = 2000

interface Pending { resolve: (bad: number) => void, reject: (err: Error) => void }

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
  private idleTimer?: NodeJS.Timeout

  constructor (private readonly threads = Math.max(0, availableParallelism() - 1)) {}

  private start (): void {
    if (this.workers.length > 0 || this.threads === 0) return
    for (let i = 0; i < this.threads; i++) {
      const worker = spawnVerifyWorker()
      worker.unref()
      worker.on('message', ({ id, bad }: { id: number, bad: number }) => {
        this.pending.get(id)?.resolve(bad)
        this.pending.delete(id)
      })
      worker.on('error', err => {
        // a pool that cannot run verifies on the calling thread from now on
        this.broken = err.message
        for (const p of this.pending.values()) p.reject(err)
        this.pending.clear()
      })
      this.workers.push(worker)
    }
  }

  /** The index of the first policy whose signature does not verify, or -1 when all do. */
  async firstInvalid (policies: Policy[]): Promise<number> {
    if (policies.length < MIN_PARALLEL || this.threads === 0 || this.broken !== undefined) return firstInvalidHere(policies, 0, policies.length)
    this.start()
    // threads exist only around bursts (a catch-up): idle ones end, so none outlives its use
    this.armIdleTimer()
    // equal shares: measured faster here than giving the calling thread less (with only two
    // cores, the threads also share the machine with the rest of the node)
    const localSize = Math.ceil(policies.length / (this.workers.length + 1))
    const size = Math.ceil((policies.length - localSize) / this.workers.length)
    const remote = this.workers.map(async (worker, w) => {
      const from = localSize + w * size
      const slice = policies.slice(from, from + size)
      if (slice.length === 0) return -1
      const id = this.nextId++
      const bad = await new Promise<number>((resolve, reject) => {
        this.pending.set(id, { resolve, reject })
        worker.postMessage({ id, policies: slice })
      })
      return bad < 0 ? -1 : from + bad
    })
    const local = firstInvalidHere(policies, 0, Math.min(localSize, policies.length))
    let others: number[]
    try {
      others = await Promise.all(remote)
    } catch {
      return firstInvalidHere(policies, 0, policies.length)
    }
    const results = [local, ...others].filter(i => i >= 0)
    return results.length === 0 ? -1 : Math.min(...results)
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
 * The worker thread: verify-worker.js beside this file; when running from TypeScript sources
 * (tests, benchmarks under tsx) the .ts file, loaded through tsx, since a worker thread does
 * not inherit the main thread's module hooks.
 */
function spawnVerifyWorker (): Worker {
  const file = join(import.meta.dirname, `verify-worker${extname(import.meta.filename)}`)
  if (file.endsWith('.js')) return new Worker(file)
  const bootstrap = `import('tsx/esm/api').then(tsx => { tsx.register(); return import(${JSON.stringify(pathToFileURL(file).href)}) })`
  return new Worker(bootstrap, { eval: true })
}

function firstInvalidHere (policies: Policy[], from: number, to: number): number {
  for (let i = from; i < to; i++) {
    try { verifyPolicy(policies[i]) } catch { return i }
  }
  return -1
}

/** One pool per process, shared by every ledger in it. */
export const verifyPool = new VerifyPool()
