import { LedgerMeshError } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import { type Entry, parseEntryText } from '../ledger/entry.js'
import { headFromNote, logOrigin } from '../ledger/head.js'
import type { Ledger } from '../ledger/ledger.js'
import { TILE_WIDTH, decodeBundle, tilePath } from '../ledger/tlog/tiles.js'

/** One GET of the mirror gives up after this long. */
const FETCH_TIMEOUT_MS = 30_000
/** Entry bundles fetched at once. */
const CONCURRENCY = 8

/**
 * A static copy of the log (`ledgermesh export-tiles` on any web server: TILES_MIRROR) a
 * replica catches up from when no master answers. Nothing the mirror says is trusted: its
 * checkpoint must be signed by a master key the replica already trusts, for this network's
 * origin, and the entries it serves go through the replica's usual checks (chain links,
 * authors' signatures and rights, and the Merkle root the checkpoint signs).
 */
export class TileMirror {
  constructor (private readonly url: string, private readonly log: Logger) {}

  private async get (path: string): Promise<Buffer> {
    const res = await fetch(new URL(path, this.url.endsWith('/') ? this.url : `${this.url}/`), { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) })
    if (!res.ok) throw new LedgerMeshError('unreachable', `tile mirror ${this.url}: GET ${path} answered ${res.status}`)
    return Buffer.from(await res.arrayBuffer())
  }

  /** Applies what the mirror's checkpoint holds past the ledger's head; answers how many entries. */
  async catchUp (ledger: Ledger): Promise<number> {
    const pinned = ledger.masterKey
    if (pinned === undefined) throw new LedgerMeshError('bad_signature', `tile mirror ${this.url}: this replica trusts no master key yet (it must sync once from a master first)`)
    const note = (await this.get('checkpoint')).toString('utf8')
    const from = ledger.head.seq
    const size = Number(note.split('\n')[1])
    if (!Number.isSafeInteger(size) || size <= from) return 0
    const entries = await this.entries(from, size)
    const head = headFromNote(note, logOrigin(pinned), ledger.masterKeys, entries[entries.length - 1].hash)
    await ledger.applyBatch(entries, head)
    this.log.info({ mirror: this.url, from, to: size }, 'caught up from the tile mirror')
    return entries.length
  }

  /** The entries after seq `from` up to `size`, from the bundles that hold them. */
  private async entries (from: number, size: number): Promise<Entry[]> {
    const first = Math.floor(from / TILE_WIDTH)
    const bundles = Array.from({ length: Math.floor((size - 1) / TILE_WIDTH) - first + 1 }, (_, i) => first + i)
    const texts: string[][] = new Array(bundles.length)
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < bundles.length) {
        const at = next++
        const index = bundles[at]
        const width = Math.min(TILE_WIDTH, size - index * TILE_WIDTH)
        texts[at] = decodeBundle(await this.get(tilePath({ index, width: width < TILE_WIDTH ? width : undefined })))
        if (texts[at].length !== width) throw new LedgerMeshError('bad_message', `tile mirror ${this.url}: entry bundle ${index} holds ${texts[at].length} entries, not ${width}`)
      }
    }
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, bundles.length) }, worker))
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
