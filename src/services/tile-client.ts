import { LedgerMeshError } from '../base/errors.js'

/** One GET gives up after this long. */
const FETCH_TIMEOUT_MS = 30_000
/** Tiles fetched at once: enough to hide a round trip, few enough not to load the server. */
const CONCURRENCY = 8

/**
 * Reads a tiled log over HTTP: a node's `/checkpoint` and `/tile/...`, or a static copy of
 * them on any web server. `export-tiles` copies one; a replica catches up from one.
 */
export class TileClient {
  private readonly base: string

  constructor (url: string, private readonly headers: Record<string, string> = {}) {
    this.base = url.endsWith('/') ? url : `${url}/`
  }

  get url (): string { return this.base }

  async get (path: string): Promise<Buffer> {
    const res = await fetch(new URL(path, this.base), { headers: this.headers, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) })
    if (!res.ok) throw new LedgerMeshError('unreachable', `${this.base}: GET ${path} answered ${res.status} ${(await res.text()).slice(0, 200)}`.trimEnd())
    return Buffer.from(await res.arrayBuffer())
  }

  /** Fetches every path, a few at a time, and answers what `each` makes of each body, in the order of `paths`. */
  async getAll<T> (paths: readonly string[], each: (body: Buffer, path: string, index: number) => Promise<T> | T): Promise<T[]> {
    const results: T[] = new Array(paths.length)
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < paths.length) {
        const at = next++
        results[at] = await each(await this.get(paths[at]), paths[at], at)
      }
    }
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, paths.length) }, worker))
    return results
  }
}
