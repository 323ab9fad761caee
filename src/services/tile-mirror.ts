import { LedgerMeshError } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import { type Entry, parseEntryText } from '../ledger/entry.js'
import { headFromNote, logOrigin } from '../ledger/head.js'
import type { Ledger } from '../ledger/ledger.js'
import { TILE_WIDTH, decodeBundle, tilePath } from '../ledger/tlog/tiles.js'
import { TileClient } from './tile-client.js'

/**
 * A static copy of the log (`ledgermesh export-tiles` on any web server: TILES_MIRROR) a
 * replica catches up from when no master answers. Nothing the mirror says is trusted: its
 * checkpoint must be signed by a master key the replica already trusts, for this network's
 * origin, and the entries it serves go through the replica's usual checks (chain links,
 * authors' signatures and rights, and the Merkle root the checkpoint signs).
 */
export class TileMirror {
  private readonly client: TileClient

  constructor (private readonly url: string, private readonly log: Logger) {
    this.client = new TileClient(url)
  }

  /** Applies what the mirror's checkpoint holds past the ledger's head; answers how many entries. */
  async catchUp (ledger: Ledger): Promise<number> {
    const pinned = ledger.masterKey
    if (pinned === undefined) throw new LedgerMeshError('bad_signature', `tile mirror ${this.url}: this replica trusts no master key yet (it must sync once from a master first)`)
    // the checkpoint is verified before any entry is fetched for it
    const checkpoint = headFromNote((await this.client.get('checkpoint')).toString('utf8'), logOrigin(pinned), ledger.masterKeys)
    const from = ledger.head.seq
    const size = checkpoint.seq
    if (size <= from) return 0
    const entries = await this.entries(from, size)
    await ledger.applyBatch(entries, { ...checkpoint, hash: entries[entries.length - 1].hash })
    this.log.info({ mirror: this.url, from, to: size }, 'caught up from the tile mirror')
    return entries.length
  }

  /** The entries after seq `from` up to `size`, from the bundles that hold them. */
  private async entries (from: number, size: number): Promise<Entry[]> {
    const first = Math.floor(from / TILE_WIDTH)
    const bundles = Array.from({ length: Math.floor((size - 1) / TILE_WIDTH) - first + 1 }, (_, i) => first + i)
    const widthOf = (index: number): number => Math.min(TILE_WIDTH, size - index * TILE_WIDTH)
    const paths = bundles.map(index => tilePath({ index, width: widthOf(index) < TILE_WIDTH ? widthOf(index) : undefined }))
    const texts = await this.client.getAll(paths, (body, _path, at) => {
      const index = bundles[at]
      const bundle = decodeBundle(body)
      if (bundle.length !== widthOf(index)) throw new LedgerMeshError('bad_message', `tile mirror ${this.url}: entry bundle ${index} holds ${bundle.length} entries, not ${widthOf(index)}`)
      return bundle
    })
    const entries: Entry[] = []
    for (const [i, bundle] of texts.entries()) {
      for (const [j, text] of bundle.entries()) {
        const seq = (bundles[i] * TILE_WIDTH) + j + 1
        if (seq <= from) continue
        const entry = parseEntryText(text)
        if (entry === undefined || entry.seq !== seq) throw new LedgerMeshError('bad_message', `tile mirror ${this.url}: entry ${seq} is not an entry's bytes`)
        entries.push(entry)
      }
    }
    return entries
  }
}
