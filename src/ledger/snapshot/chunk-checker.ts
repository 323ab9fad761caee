import { availableParallelism } from 'node:os'
import type { Worker } from 'node:worker_threads'
import { LedgerMeshError, errorMessage } from '../../base/errors.js'
import type { Logger } from '../../base/logger.js'
import { spawnThread } from '../../base/threads.js'
import { type Entry, entryOfHashedText } from '../entry.js'
import { decodeBundle } from '../tlog/tiles.js'
import type { ChunkAnswer, ChunkRequest } from './chunk-worker.js'
import { type ChunkSpec, checkChunkAgainst } from './manifest.js'

/** Threads at most: each holds its own copy of the checking code and its garbage, and a node has other work than the check. */
const MAX_THREADS = 2
/**
 * Chunks handed to a thread and not yet answered, at most: one to check and the next waiting,
 * so a thread never idles between chunks while the calling thread checks others.
 */
const THREAD_QUEUE = 2
/**
 * A thread's answer is due within this long plus a millisecond per entry (a chunk of ~1,000
 * entries takes ~10 ms); past it the thread is taken for stuck and the calling thread checks.
 */
const ANSWER_BASE_MS = 10_000

interface Pending { resolve: (answer: ChunkAnswer) => void, reject: (err: Error) => void, timer: NodeJS.Timeout }
interface Thread { worker: Worker, inFlight: number }

export interface ChunkCheckerOptions {
  /** threads to start (default: one per core but one, at most MAX_THREADS); 0 checks every chunk on the calling thread */
  threads?: number
  /** the thread's file beside this one (tests name one that does not exist) */
  threadFile?: string
  /** where a thread's failure is reported */
  log?: Logger
}

/**
 * Checks a snapshot's chunks (checkChunkAgainst) on every core while they are fetched. Most of
 * a chunk's check is hashing (each entry's chain hash, leaf hash and state path, the chunk's
 * subtree): a chunk goes to a thread with room in its queue (THREAD_QUEUE), which answers each
 * entry's chain and leaf hash, and the calling thread then only parses the entries; when every
 * thread has its queue full, the calling thread checks the chunk itself, so the work spreads
 * over the cores however fast each goes. A thread that fails (crash,
 * exit, no answer) is ended and the chunk checked on the calling thread; the checker then
 * stops using threads. close() ends them.
 */
export class ChunkChecker {
  private readonly threads: Thread[] = []
  private readonly pending = new Map<number, Pending>()
  private nextId = 0
  private broken = false
  /** chunks answered by a thread, and checked on the calling thread (tests read it) */
  readonly stats = { byThread: 0, here: 0 }

  private readonly log?: Logger

  constructor (opts: ChunkCheckerOptions = {}) {
    this.log = opts.log
    const threads = opts.threads ?? Math.max(0, Math.min(MAX_THREADS, availableParallelism() - 1))
    for (let i = 0; i < threads; i++) {
      const worker = spawnThread(import.meta.filename, opts.threadFile ?? 'chunk-worker')
      worker.unref()
      worker.on('message', (answer: ChunkAnswer) => { this.answered(answer) })
      worker.on('error', err => { this.fail(err) })
      worker.on('exit', code => { if (this.threads.some(t => t.worker === worker)) this.fail(new Error(`chunk thread exited with code ${code}`)) })
      this.threads.push({ worker, inFlight: 0 })
    }
  }

  /** The chunk's entries (in the bundle's order), checked; snapshot_refused when it does not check. */
  async check (spec: ChunkSpec, size: number, bundle: Uint8Array): Promise<Entry[]> {
    const thread = this.broken ? undefined : this.threads.find(t => t.inFlight < THREAD_QUEUE)
    if (thread === undefined) return this.checkHere(spec, size, bundle)
    let answer: ChunkAnswer
    thread.inFlight++
    try {
      answer = await this.send(thread.worker, { id: this.nextId++, spec, size, bundle })
    } catch {
      return this.checkHere(spec, size, bundle)
    } finally {
      thread.inFlight--
    }
    if ('error' in answer) {
      if (answer.code === 'snapshot_refused') throw new LedgerMeshError('snapshot_refused', answer.error)
      // the thread's own failure, not the chunk's: checked here, so the error is the chunk's if any
      return this.checkHere(spec, size, bundle)
    }
    const entries = entriesOf(bundle, answer.hashes)
    if (entries === undefined) return this.checkHere(spec, size, bundle)
    this.stats.byThread++
    return entries
  }

  private checkHere (spec: ChunkSpec, size: number, bundle: Uint8Array): Entry[] {
    this.stats.here++
    return checkChunkAgainst(spec, size, bundle)
  }

  private async send (worker: Worker, request: ChunkRequest): Promise<ChunkAnswer> {
    return await new Promise<ChunkAnswer>((resolve, reject) => {
      const due = ANSWER_BASE_MS + request.spec.count
      const timer = setTimeout(() => { this.fail(new Error(`chunk thread gave no answer within ${due} ms`)) }, due)
      timer.unref()
      this.pending.set(request.id, { resolve, reject, timer })
      // a copy: the caller keeps the bundle (it is written to the scratch directory)
      worker.postMessage(request)
    })
  }

  private answered (answer: ChunkAnswer): void {
    const pending = this.pending.get(answer.id)
    if (pending === undefined) return
    clearTimeout(pending.timer)
    this.pending.delete(answer.id)
    pending.resolve(answer)
  }

  /** A thread failed: every chunk in flight is checked on the calling thread, and no thread is used again. */
  private fail (err: Error): void {
    if (this.broken) return
    this.broken = true
    this.log?.warn({ err: errorMessage(err) }, 'a snapshot chunk thread failed: the main thread checks the chunks')
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer)
      this.pending.delete(id)
      pending.reject(new Error(`chunk thread failed: ${errorMessage(err)}`))
    }
    void this.close()
  }

  async close (): Promise<void> {
    const threads = this.threads.splice(0)
    await Promise.all(threads.map(async t => await t.worker.terminate()))
  }
}

/** The entries of a bundle a thread checked, with the hashes it answered; undefined if they do not fit together. */
function entriesOf (bundle: Uint8Array, hashes: Uint8Array): Entry[] | undefined {
  const texts = decodeBundle(bundle)
  if (texts.length * 64 !== hashes.length) return undefined
  const view = Buffer.from(hashes.buffer, hashes.byteOffset, hashes.byteLength)
  const entries: Entry[] = []
  for (const [i, text] of texts.entries()) {
    const entry = entryOfHashedText(text, view.toString('hex', i * 64, i * 64 + 32), view.subarray(i * 64 + 32, i * 64 + 64))
    if (entry === undefined) return undefined
    entries.push(entry)
  }
  return entries
}
