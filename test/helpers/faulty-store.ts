import { LedgerMeshError } from '../../src/base/errors.js'
import type { Entry, LedgerOp } from '../../src/ledger/entry.js'
import type { Head, SignedHead } from '../../src/ledger/head.js'
import type { LedgerStore, SignCommit, StoreBase } from '../../src/ledger/store.js'

/**
 * A real store with faults injected into its commit path, as etcd's tests inject them: the
 * commit can fail before anything is written (a store outage), or after the write is durable
 * (an ambiguous COMMIT: the server applied it, the client heard an error), or wait on a gate.
 * Everything else goes straight to the wrapped store.
 */
export class FaultyStore implements LedgerStore {
  /** commits that fail before writing, with store_unavailable */
  failBefore = 0
  /** commits that write durably, then report store_unavailable anyway */
  failAfter = 0
  /** while set, commits wait for it before going on */
  gate?: Promise<void>
  /** the next range() read waits for it (once), after the store has answered it */
  readGate?: Promise<void>
  commits = 0
  failed = 0

  constructor (readonly inner: LedgerStore) {}

  get kind (): LedgerStore['kind'] { return this.inner.kind }
  get location (): string { return this.inner.location }
  async open (): Promise<void> { await this.inner.open() }
  async close (): Promise<void> { await this.inner.close() }
  async head (): Promise<Head> { return await this.inner.head() }
  async signedHead (): Promise<SignedHead | undefined> { return await this.inner.signedHead() }
  async append (entries: Entry[], head: SignedHead): Promise<void> { await this.inner.append(entries, head) }
  async entriesAt (seqs: readonly number[]): Promise<Entry[]> { return await this.inner.entriesAt(seqs) }
  async base (): Promise<StoreBase | undefined> { return await this.inner.base() }
  async installBase (base: StoreBase, entries: Entry[], signed: SignedHead, opts?: { replace?: boolean }): Promise<void> { await this.inner.installBase(base, entries, signed, opts) }
  async compact (base: StoreBase, keep: ReadonlySet<number>, leaves: Buffer): Promise<void> { await this.inner.compact(base, keep, leaves) }
  async leafHashes (): Promise<Buffer> { return await this.inner.leafHashes() }

  async range (fromSeq: number, limit: number): Promise<Entry[]> {
    const entries = await this.inner.range(fromSeq, limit)
    const gate = this.readGate
    this.readGate = undefined
    await gate
    return entries
  }
  async truncate (seq: number): Promise<void> { await this.inner.truncate(seq) }
  async getMeta (key: string): Promise<string | undefined> { return await this.inner.getMeta(key) }
  async setMeta (key: string, value: string): Promise<void> { await this.inner.setMeta(key, value) }

  async commit (ops: LedgerOp[], signHead: SignCommit, expected?: Head): Promise<Entry[]> {
    this.commits++
    await this.gate
    if (this.failBefore > 0) {
      this.failBefore--
      this.failed++
      throw new LedgerMeshError('store_unavailable', 'injected fault: the store is unavailable')
    }
    const entries = await this.inner.commit(ops, signHead, expected)
    if (this.failAfter > 0) {
      this.failAfter--
      this.failed++
      throw new LedgerMeshError('store_unavailable', 'injected fault: the commit was applied, but its answer was lost')
    }
    return entries
  }
}
