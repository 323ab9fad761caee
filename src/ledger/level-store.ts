import { Mutex } from 'async-mutex'
import { mkdir } from 'node:fs/promises'
import { Level } from 'level'
import { LedgerMeshError, errorMessage } from '../base/errors.js'
import { type Entry, type LedgerOp, GENESIS_HASH } from './entry.js'
import type { Head, SignedHead } from './head.js'
import type { LedgerStore, StoreBase } from './store.js'
import { type SignCommit, chainAndSign, checkExpectedHead, checkAppendable, decodeEntry, decodeJson, opIds, uniqueIds } from './store-codec.js'

export interface LevelStoreConfig {
  /** directory of the LevelDB database; created when missing */
  path: string
  /**
   * fsync every write (default true). The master's store must be durable: an acknowledged
   * insert is on disk. A replica may turn it off: its writes still reach the OS (they survive
   * the process being killed) and anything an OS crash loses is re-synced from its source.
   */
  durable?: boolean
}

type Db = Level<string, string>

function stringSublevel (db: Db, name: string) {
  return db.sublevel<string, string>(name, { valueEncoding: 'utf8' })
}
type Sublevel = ReturnType<typeof stringSublevel>

function bufferSublevel (db: Db) {
  return db.sublevel<string, Buffer>('leaf', { valueEncoding: 'buffer' })
}

/**
 * Layout, as sublevels of one LevelDB database (values are JSON text):
 *
 *   entry!<seq, 16 digits zero-padded>  the Entry; padding makes key order = seq order
 *   id!<policy id>                      seq of the entry holding that policy (duplicate check)
 *   head!head / head!signed             the Head and the latest SignedHead
 *   head!base                           the StoreBase, in a store that began at a snapshot or was compacted
 *   leaf!<seq, 16 digits>               compaction: the leaf hashes from that seq to the next key's (32 bytes each)
 *   meta!<key>                          values set with setMeta
 *
 * Every write goes through `db.batch()`, which LevelDB applies atomically. A large append (a
 * replica's catch-up run) writes its entry rows ahead in batches of APPEND_CHUNK_BYTES, then
 * the id rows and the head in one last batch: the head moves only when everything is there,
 * and rows past the head that a crash left behind are deleted on open.
 */
const SEQ_DIGITS = 16
const HEAD_KEY = 'head'
const SIGNED_HEAD_KEY = 'signed'
const BASE_KEY = 'base'
/**
 * Entry rows per batch, in bytes of JSON text. One batch of a whole catch-up run (100,000
 * entries, ~130 MB) is one LevelDB write: its memtable (LevelDB flushes only at the next
 * write) and the allocator's pages from building it stayed in the process after the sync,
 * ~60 MB of a 100,000-policy replica's RSS. Batches this small left the least behind
 * (bench/replica-memory.ts: 370 MB whole, 350 MB in 4 MB batches, 311 MB in these).
 */
export const APPEND_CHUNK_BYTES = 256 * 1024

function seqKey (seq: number): string {
  return String(seq).padStart(SEQ_DIGITS, '0')
}

/** The embedded store every node uses by default. */
export class LevelStore implements LedgerStore {
  readonly kind = 'level' as const
  readonly location: string
  private db?: Db
  private entries!: Sublevel
  private ids!: Sublevel
  private heads!: Sublevel
  private meta!: Sublevel
  private leaves!: ReturnType<typeof bufferSublevel>
  /** the in-process write mutex: one writer at a time (commit, append, truncate) */
  private readonly writer = new Mutex()
  /**
   * The head as the last write left it, so a commit need not read it back from disk; dropped
   * when a write fails (its outcome unknown) and read again then.
   */
  private writtenHead?: Head

  /** fsync on write unless configured otherwise: commit() resolving means the entries are on disk */
  private readonly writeOptions: { sync: boolean }

  constructor (config: LevelStoreConfig) {
    this.writeOptions = { sync: config.durable ?? true }
    this.location = config.path
  }

  async open (): Promise<void> {
    if (this.db !== undefined) return
    const db: Db = new Level<string, string>(this.location, { valueEncoding: 'utf8' })
    try {
      await mkdir(this.location, { recursive: true })
      await db.open()
    } catch (err) {
      await db.close().catch(() => {})
      throw this.unavailable('open', err)
    }
    this.db = db
    this.entries = stringSublevel(db, 'entry')
    this.ids = stringSublevel(db, 'id')
    this.heads = stringSublevel(db, 'head')
    this.meta = stringSublevel(db, 'meta')
    this.leaves = bufferSublevel(db)
    // Reading the head at once makes damaged table files show up here, not at the first query.
    try {
      await this.dropRowsPastHead(await this.head())
    } catch (err) {
      await this.close()
      throw err
    }
  }

  async close (): Promise<void> {
    const db = this.db
    if (db === undefined) return
    this.db = undefined
    this.writtenHead = undefined
    await this.writer.waitForUnlock()
    await db.close()
  }

  async head (): Promise<Head> {
    const text = await this.attempt('read the head', async () => await this.heads.get(HEAD_KEY))
    if (text === undefined) return { seq: 0, hash: GENESIS_HASH }
    return decodeJson<Head>(text, `the head in ${this.location}`)
  }

  async signedHead (): Promise<SignedHead | undefined> {
    const text = await this.attempt('read the signed head', async () => await this.heads.get(SIGNED_HEAD_KEY))
    return text === undefined ? undefined : decodeJson<SignedHead>(text, `the signed head in ${this.location}`)
  }

  async commit (ops: LedgerOp[], signHead: SignCommit, expected?: Head): Promise<Entry[]> {
    if (ops.length === 0) return []
    const ids = uniqueIds(ops)
    return await this.writer.runExclusive(async () => {
      const head = await this.lastHead()
      checkExpectedHead(head, expected, this.location)
      const known = await this.attempt('check policy ids', async () => await this.ids.getMany(ids))
      const duplicates = ids.filter((_, i) => known[i] !== undefined)
      if (duplicates.length > 0) {
        throw new LedgerMeshError('duplicate_id', `policy ${duplicates[0]} is already in the ledger`, { id: duplicates[0], ids: duplicates })
      }
      const { entries, signed } = chainAndSign(head, ops, signHead)
      await this.writeEntries(entries, signed)
      return entries
    })
  }

  async append (entries: Entry[], head: SignedHead): Promise<void> {
    await this.writer.runExclusive(async () => {
      checkAppendable(await this.lastHead(), entries, head, this.location)
      await this.writeEntries(entries, head)
    })
  }

  async range (fromSeq: number, limit: number): Promise<Entry[]> {
    if (!(limit > 0)) return []
    const from = Math.max(0, Math.ceil(fromSeq))
    if (Math.floor(limit) === 1) {
      // one entry (a proof's, a sync check's): a point read costs about half an iterator's
      const text = await this.attempt('read an entry', async () => await this.entries.get(seqKey(from)))
      if (text !== undefined) return [decodeEntry(text, `entry ${from} in ${this.location}`)]
    }
    const rows = await this.attempt('read entries', async () => await this.entries.iterator({
      gte: seqKey(from),
      limit: Number.isFinite(limit) ? Math.floor(limit) : -1
    }).all())
    return rows.map(([key, text]) => decodeEntry(text, `entry ${Number(key)} in ${this.location}`))
  }

  async entriesAt (seqs: readonly number[]): Promise<Entry[]> {
    if (seqs.length === 0) return []
    const texts = await this.attempt('read entries', async () => await this.entries.getMany(seqs.map(seqKey)))
    return texts.map((text, i) => {
      if (text === undefined) throw new LedgerMeshError('not_found', `LevelDB store ${this.location} holds no entry ${seqs[i]}`, { seq: seqs[i] })
      return decodeEntry(text, `entry ${seqs[i]} in ${this.location}`)
    })
  }

  async base (): Promise<StoreBase | undefined> {
    const text = await this.attempt('read the base', async () => await this.heads.get(BASE_KEY))
    return text === undefined ? undefined : decodeJson<StoreBase>(text, `the snapshot base in ${this.location}`)
  }

  async installBase (base: StoreBase, entries: Entry[], signed: SignedHead, opts: { replace?: boolean } = {}): Promise<void> {
    await this.writer.runExclusive(async () => {
      if (opts.replace === true) {
        // a replica's log is a copy: emptied (meta kept) for a snapshot that replaces it
        this.writtenHead = undefined
        await this.attempt('empty the log', async () => { for (const sub of [this.entries, this.ids, this.heads, this.leaves]) await sub.clear() })
      }
      const head = await this.lastHead()
      if (head.seq !== 0) throw new LedgerMeshError('conflict', `LevelDB store ${this.location} holds a log already (head ${head.seq}): a snapshot goes into an empty store`)
      this.writtenHead = undefined
      const baseHead: Head = { seq: base.seq, hash: base.hash }
      await this.attempt('write the snapshot', async () => {
        // no id index rows: it serves the duplicate checks of a master's commits, and a replica makes none
        const batch = await this.rowsAhead(entries)
        batch.put(HEAD_KEY, JSON.stringify(baseHead), { sublevel: this.heads })
        batch.put(SIGNED_HEAD_KEY, JSON.stringify(signed), { sublevel: this.heads })
        batch.put(BASE_KEY, JSON.stringify(base), { sublevel: this.heads })
        await batch.write(this.writeOptions)
      })
      this.writtenHead = baseHead
    })
  }

  async compact (base: StoreBase, keep: ReadonlySet<number>, leaves: Buffer): Promise<void> {
    await this.writer.runExclusive(async () => {
      const old = await this.base()
      const from = old?.seq ?? 0
      if (base.seq < from || base.seq > (await this.lastHead()).seq) throw new LedgerMeshError('bad_command', `LevelDB store ${this.location}: cannot compact to seq ${base.seq} (its base is ${from}, its head ${(await this.lastHead()).seq})`)
      if (leaves.length !== 32 * (base.seq - from)) throw new LedgerMeshError('bad_command', `compaction to seq ${base.seq} needs the ${base.seq - from} leaf hashes after seq ${from}, not ${leaves.length / 32}`)
      await this.attempt('compact', async () => {
        const batch = this.db!.batch()
        for await (const key of this.entries.keys({ lte: seqKey(base.seq) })) {
          if (!keep.has(Number(key))) batch.del(key, { sublevel: this.entries })
        }
        // the id index serves duplicate checks (a master's): dropped with the entries here
        for await (const [id, seq] of this.ids.iterator()) {
          if (Number(seq) <= base.seq && !keep.has(Number(seq))) batch.del(id, { sublevel: this.ids })
        }
        if (leaves.length > 0) batch.put(seqKey(from + 1), leaves, { sublevel: this.leaves })
        batch.put(BASE_KEY, JSON.stringify(base), { sublevel: this.heads })
        await batch.write(this.writeOptions)
      })
    })
  }

  async leafHashes (): Promise<Buffer> {
    return Buffer.concat(await this.attempt('read leaf hashes', async () => await this.leaves.values().all()))
  }

  async truncate (seq: number): Promise<void> {
    await this.writer.runExclusive(async () => {
      this.writtenHead = undefined
      const base = await this.base()
      if (base !== undefined && seq < base.seq) throw new LedgerMeshError('compacted', `LevelDB store ${this.location} began at a snapshot at seq ${base.seq}: it cannot be cut back to seq ${seq}`, { seq, base: base.seq })
      const current = await this.head()
      const removed = seq < current.seq ? await this.range(seq + 1, Infinity) : []
      let newHead: Head = current
      if (seq <= 0) {
        newHead = { seq: 0, hash: GENESIS_HASH }
      } else if (seq < current.seq) {
        const [kept] = await this.range(seq, 1)
        if (kept?.seq !== seq) {
          throw new LedgerMeshError('chain_broken', `LevelDB store ${this.location} has no entry ${seq} to truncate to`, { path: this.location, seq })
        }
        newHead = { seq: kept.seq, hash: kept.hash }
      }
      const removedIds = opIds(removed)
      await this.attempt('truncate', async () => {
        const batch = this.db!.batch()
        removed.forEach((entry, i) => {
          batch.del(seqKey(entry.seq), { sublevel: this.entries })
          batch.del(removedIds[i], { sublevel: this.ids })
        })
        batch.put(HEAD_KEY, JSON.stringify(newHead), { sublevel: this.heads })
        batch.del(SIGNED_HEAD_KEY, { sublevel: this.heads })
        await batch.write(this.writeOptions)
      })
      this.writtenHead = newHead
    })
  }

  async getMeta (key: string): Promise<string | undefined> {
    return await this.attempt(`read meta ${key}`, async () => await this.meta.get(key))
  }

  async setMeta (key: string, value: string, opts: { durable?: boolean } = {}): Promise<void> {
    await this.attempt(`write meta ${key}`, async () => {
      await this.db!.batch().put(key, value, { sublevel: this.meta }).write(opts.durable === true ? { sync: true } : this.writeOptions)
    })
  }

  /**
   * The entries, their id index rows, the new head and its signature. The head moves in the
   * last batch, with the id rows; entry rows past APPEND_CHUNK_BYTES go ahead of it (rows past
   * the head are invisible: readers stop at the head, and open drops them).
   */
  private async writeEntries (entries: Entry[], signed: SignedHead): Promise<void> {
    const last = entries[entries.length - 1]
    const head: Head = last === undefined ? await this.lastHead() : { seq: last.seq, hash: last.hash }
    this.writtenHead = undefined
    await this.attempt('write entries', async () => {
      const batch = await this.rowsAhead(entries)
      opIds(entries).forEach((id, i) => { batch.put(this.ids.prefixKey(id, 'utf8'), String(entries[i].seq)) })
      batch.put(HEAD_KEY, JSON.stringify(head), { sublevel: this.heads })
      batch.put(SIGNED_HEAD_KEY, JSON.stringify(signed), { sublevel: this.heads })
      await batch.write(this.writeOptions)
    })
    this.writtenHead = head
  }

  /**
   * The entries' rows: those past each APPEND_CHUNK_BYTES written ahead, the rest in the batch
   * returned, for the caller to add the head to and write. Rows (and id rows) go in under
   * their sublevel's prefixed key on the root database: a chained batch's put with the
   * `sublevel` option left ~1 kB of garbage per row that lived until V8's next full GC (97 MB
   * against 6 MB for 100,000 rows, measured), the largest part of a catch-up's peak.
   */
  private async rowsAhead (entries: Entry[]): Promise<ReturnType<Db['batch']>> {
    let batch = this.db!.batch()
    let bytes = 0
    for (const { seq, op, policy, prevHash, hash } of entries) {
      const text = JSON.stringify({ seq, op, policy, prevHash, hash })
      batch.put(this.entries.prefixKey(seqKey(seq), 'utf8'), text)
      bytes += text.length
      if (bytes >= APPEND_CHUNK_BYTES) {
        await batch.write(this.writeOptions)
        batch = this.db!.batch()
        bytes = 0
      }
    }
    return batch
  }

  /** Deletes entry rows past the head: the rows an append wrote ahead before a crash cut it short. */
  private async dropRowsPastHead (head: Head): Promise<void> {
    const keys = await this.attempt('read entries past the head', async () => await this.entries.keys({ gt: seqKey(head.seq) }).all())
    if (keys.length === 0) return
    await this.attempt('drop entries past the head', async () => {
      await this.entries.batch(keys.map(key => ({ type: 'del' as const, key })))
    })
  }

  /** The head for a writer (under the write mutex): as the last write left it, else from disk. */
  private async lastHead (): Promise<Head> {
    this.writtenHead ??= await this.head()
    return this.writtenHead
  }

  /** Runs one LevelDB operation, reporting any failure as store_unavailable. */
  private async attempt<T> (what: string, fn: () => Promise<T>): Promise<T> {
    this.requireOpen(what)
    try {
      return await fn()
    } catch (err) {
      throw this.unavailable(what, err)
    }
  }

  private requireOpen (what: string): void {
    if (this.db === undefined) {
      throw new LedgerMeshError('store_unavailable', `LevelDB store ${this.location} is not open (tried to ${what})`, { path: this.location })
    }
  }

  /** LevelDB reports the real reason (corruption, lock held, I/O) as the error's cause. */
  private unavailable (what: string, err: unknown): LedgerMeshError {
    if (err instanceof LedgerMeshError) return err
    const cause = (err as { cause?: unknown }).cause ?? err
    const causeCode = (cause as { code?: unknown }).code
    return new LedgerMeshError(
      'store_unavailable',
      `LevelDB store ${this.location}: could not ${what}: ${errorMessage(cause)}`,
      { path: this.location, cause: errorMessage(cause), ...(typeof causeCode === 'string' ? { causeCode } : {}) }
    )
  }
}
