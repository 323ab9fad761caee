import { mkdir, rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { parseCheckpoint } from '../ledger/tlog/checkpoint.js'
import { parseNote } from '../ledger/tlog/note.js'
import { tilePath, tilesOf } from '../ledger/tlog/tiles.js'
import { TileClient } from '../services/tile-client.js'

/**
 * `ledgermesh export-tiles`: writes a node's log as the static files of a C2SP tiled log —
 * `checkpoint`, `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]` — for any web server or CDN
 * to serve. The tiles are those of the checkpoint fetched first; the checkpoint file is written
 * last, so a mirror never names a tree whose tiles it lacks.
 */
export async function exportTiles (nodeUrl: string, dir: string, opts: { token?: string } = {}): Promise<{ size: number, files: number, bytes: number }> {
  const client = new TileClient(nodeUrl, opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {})
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
  return { size, files: tiles.length + 1, bytes: sizes.reduce((a, b) => a + b, checkpoint.length) }
}
