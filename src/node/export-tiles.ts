import { mkdir, rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { LedgerMeshError } from '../base/errors.js'
import { SnapshotFiles, chunkPath, latestPath, manifestPath, parseLatest } from '../ledger/snapshot/files.js'
import { decodeManifest } from '../ledger/snapshot/manifest.js'
import { parseCheckpoint } from '../ledger/tlog/checkpoint.js'
import { parseNote } from '../ledger/tlog/note.js'
import { tilePath, tilesOf } from '../ledger/tlog/tiles.js'
import { TileClient } from '../services/tile-client.js'
import { mirrorSnapshotSource, type SnapshotSource } from '../services/snapshot-sources.js'

/** Chunks fetched at once: enough to hide a round trip, few enough not to load the node. */
const CHUNK_CONCURRENCY = 8

export interface ExportedTiles {
  /** the tree size of the exported checkpoint */
  size: number
  files: number
  bytes: number
  /** the snapshot exported with the tiles: its size and chunk count; undefined when the node has none yet */
  snapshot?: { size: number, chunks: number }
}

/**
 * `ledgermesh export-tiles`: writes a node's log as the static files of a C2SP tiled log —
 * `checkpoint`, `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]` — for any web server or CDN
 * to serve. The tiles are those of the checkpoint fetched first; the checkpoint file is written
 * last, so a mirror never names a tree whose tiles it lacks. The node's latest snapshot, when it
 * has one, goes with them (`snapshot/...`, see src/ledger/snapshot/files.ts), so the mirror
 * also serves a new node's bootstrap.
 */
export async function exportTiles (nodeUrl: string, dir: string, opts: { token?: string } = {}): Promise<ExportedTiles> {
  const headers: Record<string, string> = opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {}
  const client = new TileClient(nodeUrl, headers)
  const checkpoint = (await client.get('checkpoint')).toString('utf8')
  const size = parseCheckpoint(parseNote(checkpoint).text).size
  const tiles = tilesOf(size).map(tilePath)
  const sizes = await client.getAll(tiles, async (body, path) => {
    await mkdir(dirname(join(dir, path)), { recursive: true })
    await writeFile(join(dir, path), body)
    return body.length
  })
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'checkpoint.tmp'), checkpoint)
  await rename(join(dir, 'checkpoint.tmp'), join(dir, 'checkpoint'))
  const exported: ExportedTiles = { size, files: tiles.length + 1, bytes: sizes.reduce((a, b) => a + b, checkpoint.length) }
  const snapshot = await exportSnapshot(mirrorSnapshotSource(client.url, { headers }), new SnapshotFiles(dir))
  if (snapshot === undefined) return exported
  return { size, files: exported.files + snapshot.files, bytes: exported.bytes + snapshot.bytes, snapshot: { size: snapshot.size, chunks: snapshot.chunks } }
}

/**
 * Copies the latest snapshot of `source` into `into`: its chunks, then its manifest, then
 * `latest`, so the copy names a snapshot only once it is whole (and drops older copies as a
 * node does). Undefined when the source has no snapshot yet.
 */
async function exportSnapshot (source: SnapshotSource, into: SnapshotFiles): Promise<{ size: number, chunks: number, files: number, bytes: number } | undefined> {
  let latest: Buffer
  try {
    latest = await source.get(latestPath())
  } catch (err) {
    if (err instanceof LedgerMeshError && err.code === 'not_found') return undefined
    throw err
  }
  const size = parseLatest(latest.toString('utf8'))
  const manifest = await source.get(manifestPath(size))
  // the manifest says how many chunks there are (2^depth); it is checked whole by whoever bootstraps from it
  const chunks = decodeManifest(manifest.toString('utf8')).chunks.length
  let bytes = manifest.length + latest.length
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < chunks) {
      const index = next++
      const chunk = await source.get(chunkPath(size, index))
      await into.writeChunk(size, index, chunk)
      bytes += chunk.length
    }
  }
  await Promise.all(Array.from({ length: Math.min(CHUNK_CONCURRENCY, chunks) }, worker))
  await into.writeManifest(size, manifest.toString('utf8'))
  await into.publish(size)
  return { size, chunks, files: chunks + 2, bytes }
}
