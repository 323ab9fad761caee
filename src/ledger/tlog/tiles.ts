import { LedgerMeshError } from '../../base/errors.js'
import type { MerkleTree } from './merkle-tree.js'
import { HASH_SIZE } from './rfc6962.js'

/**
 * C2SP tiled logs (c2sp.org/tlog-tiles): the tree as tiles of 256 hashes (level L holds the
 * roots of complete subtrees of 256^L leaves) and the entries as bundles of 256, each entry
 * prefixed with its length as a big-endian uint16. Paths: `tile/<L>/<N>[.p/<W>]` and
 * `tile/entries/<N>[.p/<W>]`, N written as 3-digit groups, all but the last with an `x`.
 */
export const TILE_WIDTH = 256
const TILE_HEIGHT = 8
/** An entry longer than this does not fit a bundle's 2-byte length prefix. */
export const MAX_BUNDLED_ENTRY_BYTES = 0xffff

export interface TileId {
  /** the tree level of the tile (0 for leaf hashes); undefined for an entry bundle */
  level?: number
  index: number
  /** the width of a partial tile (1 to 255); undefined for a full one */
  width?: number
}

const bad = (message: string): LedgerMeshError => new LedgerMeshError('bad_command', `tile: ${message}`)

/** `x001/x234/067` for 1234067. */
export function encodeTileIndex (index: number): string {
  if (!Number.isSafeInteger(index) || index < 0) throw bad(`index ${index} is not a non-negative integer`)
  const groups: string[] = []
  let n = index
  do {
    groups.unshift(String(n % 1000).padStart(3, '0'))
    n = Math.floor(n / 1000)
  } while (n > 0)
  return groups.map((g, i) => i < groups.length - 1 ? `x${g}` : g).join('/')
}

export function tilePath (tile: TileId): string {
  const head = tile.level === undefined ? 'tile/entries' : `tile/${tile.level}`
  return `${head}/${encodeTileIndex(tile.index)}${tile.width !== undefined ? `.p/${tile.width}` : ''}`
}

/** Parses the part of a tile URL after `tile/`: `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`. */
export function parseTilePath (path: string): TileId {
  const match = /^(entries|0|[1-9][0-9]?)\/((?:x[0-9]{3}\/)*[0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/.exec(path)
  if (match === null) throw bad(`'${path.slice(0, 80)}' is not <level>/<index>[.p/<width>] or entries/<index>[.p/<width>]`)
  const level = match[1] === 'entries' ? undefined : Number(match[1])
  if (level !== undefined && level > 63) throw bad(`level ${level} is over 63`)
  const width = match[3] === undefined ? undefined : Number(match[3])
  if (width !== undefined && width > 255) throw bad(`width ${width} is over 255`)
  const index = Number(match[2].replace(/x/g, '').replace(/\//g, ''))
  if (!Number.isSafeInteger(index)) throw bad('index is too large')
  return { level, index, width }
}

/** The width the tile has in a tree of `size` leaves: 256 when full, else its partial width (0: no such tile). */
export function tileWidth (tile: TileId, size: number): number {
  const span = TILE_WIDTH ** (tile.level ?? 0)
  const hashes = Math.floor(size / span)
  const before = tile.index * TILE_WIDTH
  return Math.max(0, Math.min(TILE_WIDTH, hashes - before))
}

/** Checks a requested tile against a tree of `size` leaves: it must exist, full or as the partial tile of that size. */
export function checkTile (tile: TileId, size: number): number {
  const width = tileWidth(tile, size)
  if (width === 0) throw new LedgerMeshError('not_found', `${tilePath(tile)} is beyond the tree of ${size} entries`)
  if (tile.width === undefined && width !== TILE_WIDTH) throw new LedgerMeshError('not_found', `${tilePath(tile)} is not full yet in the tree of ${size} entries (it has ${width})`)
  if (tile.width !== undefined && tile.width !== width) throw new LedgerMeshError('not_found', `${tilePath(tile)}: at tree size ${size} this tile has ${width} hashes`)
  return width
}

/** Every tile and entry bundle of a tree of `size` leaves: the full ones, and each level's partial one. */
export function tilesOf (size: number): TileId[] {
  const tiles: TileId[] = []
  for (let level = 0; Math.floor(size / TILE_WIDTH ** level) > 0 && level < 64; level++) {
    const hashes = Math.floor(size / TILE_WIDTH ** level)
    const full = Math.floor(hashes / TILE_WIDTH)
    const partial = hashes % TILE_WIDTH
    for (const l of level === 0 ? [undefined, 0] : [level]) {
      for (let index = 0; index < full; index++) tiles.push({ level: l, index })
      if (partial > 0) tiles.push({ level: l, index: full, width: partial })
    }
  }
  return tiles
}

/** The hashes of a Merkle tile: the complete subtrees of 256^L leaves it spans, stored at tree level 8L. */
export function hashTile (tree: MerkleTree, tile: TileId, size: number): Buffer {
  const width = checkTile(tile, size)
  const level = (tile.level ?? 0) * TILE_HEIGHT
  const out = Buffer.alloc(width * HASH_SIZE)
  for (let i = 0; i < width; i++) tree.subtreeAt(level, tile.index * TILE_WIDTH + i).copy(out, i * HASH_SIZE)
  return out
}

/** An entry bundle: each entry's bytes after its length, a big-endian uint16. */
export function encodeBundle (entries: readonly string[]): Buffer {
  const parts: Buffer[] = []
  for (const text of entries) {
    const bytes = Buffer.from(text)
    if (bytes.length > MAX_BUNDLED_ENTRY_BYTES) throw bad(`an entry of ${bytes.length} bytes does not fit a bundle's 2-byte length`)
    const length = Buffer.alloc(2)
    length.writeUInt16BE(bytes.length)
    parts.push(length, bytes)
  }
  return Buffer.concat(parts)
}

export function decodeBundle (bundle: Uint8Array): string[] {
  const buf = Buffer.from(bundle.buffer, bundle.byteOffset, bundle.byteLength)
  const entries: string[] = []
  for (let at = 0; at < buf.length;) {
    if (at + 2 > buf.length) throw bad('a bundle ends inside an entry\'s length')
    const length = buf.readUInt16BE(at)
    if (at + 2 + length > buf.length) throw bad(`a bundle ends inside its entry ${entries.length} (${length} bytes announced)`)
    entries.push(buf.subarray(at + 2, at + 2 + length).toString('utf8'))
    at += 2 + length
  }
  return entries
}
