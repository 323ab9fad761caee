import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { LedgerMeshError } from '../../base/errors.js'

/**
 * Where snapshots live, as files: the same layout on a node's disk (under its home), behind
 * its HTTP routes and in a static mirror (`ledgermesh export-tiles`), so one fetcher reads
 * them from a peer or a web server alike:
 *
 *   snapshot/latest                  the size of the newest complete snapshot, decimal
 *   snapshot/<size>/manifest.json    its manifest (see manifest.ts)
 *   snapshot/<size>/chunk/<index>    its chunks: entry bundles
 *
 * A snapshot is complete once `latest` names it: its chunks and manifest are written first.
 */
export const SNAPSHOT_DIR = 'snapshot'
/** snapshots kept besides the newest one (a fetch that began on it can finish) */
const KEEP_OLDER = 1

export const latestPath = (): string => `${SNAPSHOT_DIR}/latest`
export const manifestPath = (size: number): string => `${SNAPSHOT_DIR}/${size}/manifest.json`
export const chunkPath = (size: number, index: number): string => `${SNAPSHOT_DIR}/${size}/chunk/${index}`

/** Reads a `snapshot/...` path as the layout above names it: undefined when it is not one. */
export function parseSnapshotPath (path: string): { kind: 'latest' } | { kind: 'manifest', size: number } | { kind: 'chunk', size: number, index: number } | undefined {
  if (path === latestPath()) return { kind: 'latest' }
  const m = /^snapshot\/(0|[1-9][0-9]{0,15})\/(?:(manifest\.json)|chunk\/(0|[1-9][0-9]{0,5}))$/.exec(path)
  if (m === null || !Number.isSafeInteger(Number(m[1]))) return undefined
  return m[2] !== undefined ? { kind: 'manifest', size: Number(m[1]) } : { kind: 'chunk', size: Number(m[1]), index: Number(m[3]) }
}

export function parseLatest (text: string): number {
  const size = text.trim()
  if (!/^(0|[1-9][0-9]{0,15})$/.test(size) || !Number.isSafeInteger(Number(size))) throw new LedgerMeshError('snapshot_refused', `snapshot: ${latestPath()} holds ${JSON.stringify(text.slice(0, 40))}, not a size`)
  return Number(size)
}

/** A node's snapshots, under `root` (its home): written by the snapshot builder, read to serve. */
export class SnapshotFiles {
  constructor (readonly root: string) {}

  private file (path: string): string { return join(this.root, path) }

  async latest (): Promise<number | undefined> {
    const text = await readFile(this.file(latestPath()), 'utf8').catch(() => undefined)
    return text === undefined ? undefined : parseLatest(text)
  }

  /** The bytes at a snapshot path of the layout; undefined when this node has none there. */
  async read (path: string): Promise<Buffer | undefined> {
    if (parseSnapshotPath(path) === undefined) return undefined
    return await readFile(this.file(path)).catch(() => undefined)
  }

  /** The indices of the chunks of snapshot `size` this node holds (one directory listing, not a read per chunk). */
  async chunksKept (size: number): Promise<Set<number>> {
    const names = await readdir(this.file(`${SNAPSHOT_DIR}/${size}/chunk`)).catch(() => [] as string[])
    return new Set(names.filter(name => /^(0|[1-9][0-9]{0,5})$/.test(name)).map(Number))
  }

  async writeChunk (size: number, index: number, bundle: Uint8Array): Promise<void> {
    await this.writeAtomically(chunkPath(size, index), bundle)
  }

  async writeManifest (size: number, manifest: string): Promise<void> {
    await this.writeAtomically(manifestPath(size), manifest)
  }

  /** Makes `size` the snapshot served, and removes all but the newest older ones. */
  async publish (size: number): Promise<void> {
    await this.writeAtomically(latestPath(), `${size}\n`)
    const sizes = (await readdir(this.file(SNAPSHOT_DIR)).catch(() => [] as string[]))
      .filter(name => /^[0-9]+$/.test(name)).map(Number).filter(s => s !== size).sort((a, b) => b - a)
    for (const old of sizes.slice(KEEP_OLDER)) await rm(this.file(`${SNAPSHOT_DIR}/${old}`), { recursive: true, force: true })
  }

  /** Drops a snapshot that was being written and will not be finished. */
  async discard (size: number): Promise<void> {
    if (await this.latest().catch(() => undefined) === size) return
    await rm(this.file(`${SNAPSHOT_DIR}/${size}`), { recursive: true, force: true })
  }

  private async writeAtomically (path: string, data: string | Uint8Array): Promise<void> {
    const file = this.file(path)
    await mkdir(join(file, '..'), { recursive: true })
    const temp = `${file}.tmp-${process.pid}`
    await writeFile(temp, data)
    await rename(temp, file)
  }
}
