import { mkdir, rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { LedgerMeshError } from '../base/errors.js'
import { parseCheckpoint } from '../ledger/tlog/checkpoint.js'
import { parseNote } from '../ledger/tlog/note.js'
import { tilePath, tilesOf } from '../ledger/tlog/tiles.js'

/** Tiles fetched at once: enough to hide a round trip, few enough not to load the node. */
const CONCURRENCY = 8
const FETCH_TIMEOUT_MS = 30_000

/**
 * `ledgermesh export-tiles`: writes a node's log as the static files of a C2SP tiled log —
 * `checkpoint`, `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]` — for any web server or CDN
 * to serve. The tiles are those of the checkpoint fetched first; the checkpoint file is written
 * last, so a mirror never names a tree whose tiles it lacks.
 */
export async function exportTiles (nodeUrl: string, dir: string, opts: { token?: string } = {}): Promise<{ size: number, files: number, bytes: number }> {
  const headers: Record<string, string> = opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {}
  const get = async (path: string): Promise<Buffer> => {
    const res = await fetch(new URL(path, nodeUrl.endsWith('/') ? nodeUrl : `${nodeUrl}/`), { headers, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) })
    if (!res.ok) throw new LedgerMeshError('unreachable', `GET ${path}: ${res.status} ${(await res.text()).slice(0, 200)}`)
    return Buffer.from(await res.arrayBuffer())
  }
  const checkpoint = (await get('checkpoint')).toString('utf8')
  const size = parseCheckpoint(parseNote(checkpoint).text).size
  const tiles = tilesOf(size).map(tilePath)
  let bytes = 0
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < tiles.length) {
      const path = tiles[next++]
      const body = await get(path)
      await mkdir(dirname(join(dir, path)), { recursive: true })
      await writeFile(join(dir, path), body)
      bytes += body.length
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'checkpoint.tmp'), checkpoint)
  await rename(join(dir, 'checkpoint.tmp'), join(dir, 'checkpoint'))
  return { size, files: tiles.length + 1, bytes: bytes + checkpoint.length }
}
