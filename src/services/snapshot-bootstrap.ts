import { LedgerMeshError, errorMessage } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import type { Entry } from '../ledger/entry.js'
import { type SignedHead, headFromNote, logOrigin } from '../ledger/head.js'
import type { Ledger } from '../ledger/ledger.js'
import { trustedMasterKeys } from '../ledger/ledger-rules.js'
import { type SnapshotFiles, chunkPath, latestPath, manifestPath, parseLatest } from '../ledger/snapshot/files.js'
import { type SnapshotManifest, checkChunk, checkManifest, decodeManifest } from '../ledger/snapshot/manifest.js'
import { LedgerState } from '../ledger/state.js'
import { parseCheckpoint, parseStateLine } from '../ledger/tlog/checkpoint.js'
import { parseNote } from '../ledger/tlog/note.js'
import { cosignersOf, witnessSetOf } from '../ledger/witnessed.js'
import { policyBody, policyType } from '../policies/policy.js'
import type { SnapshotSource } from './snapshot-sources.js'

/** Chunks fetched at once, spread over the sources that serve the snapshot. */
const PARALLEL_CHUNKS = 4

export interface BootstrapOptions {
  ledger: Ledger
  sources: SnapshotSource[]
  /**
   * `auto`: only a snapshot whose checkpoint the network's witnesses cosigned (a network
   * without witnesses replays the log); `snapshot`: a master-signed one will do there.
   */
  mode: 'auto' | 'snapshot'
  /** where verified chunks wait until the snapshot is installed: a restart resumes from them */
  scratch: SnapshotFiles
  /** a replica behind its source's compaction: the snapshot replaces the log it holds */
  replace?: boolean
  log: Logger
}

export interface BootstrapResult {
  size: number
  policies: number
  /** the checkpoint note it was checked against */
  checkpoint: string
  witnessed: boolean
  /** the entries installed, for the background check of their authors' signatures */
  entries: Entry[]
  bytes: number
  sources: string[]
  /** settles once the store holds the snapshot (reads see it before) */
  stored: Promise<void>
}

const refused = (message: string): LedgerMeshError => new LedgerMeshError('snapshot_refused', `snapshot: ${message}`)

/**
 * A replica with an empty store starts from a snapshot: the newest one its sources serve, every
 * chunk checked against the manifest and the manifest against the checkpoint's state line, the
 * checkpoint signed by the network's master keys and (on a network with witnesses) cosigned by
 * a quorum of them. Then it holds the live state at that checkpoint and syncs on from there.
 * Answers undefined when no source serves one it can accept (the caller replays the log).
 */
export async function bootstrapFromSnapshot (opts: BootstrapOptions): Promise<BootstrapResult | undefined> {
  const { log } = opts
  const offers = await newestOffers(opts.sources, log)
  if (offers === undefined) return undefined
  const { size, sources } = offers
  for (const source of sources) {
    let manifest: SnapshotManifest
    let head: ReturnType<typeof unverifiedHead>
    try {
      manifest = decodeManifest((await source.get(manifestPath(size))).toString('utf8'))
      head = unverifiedHead(manifest.checkpoint, size)
      checkManifest(manifest, head)
    } catch (err) {
      log.warn({ source: source.name, size, err: errorMessage(err) }, 'snapshot manifest refused')
      continue
    }
    const fetched = await fetchChunks(manifest, size, sources, opts)
    const result = accept(manifest, head.origin, fetched.entries, opts)
    if (opts.replace === true && size <= opts.ledger.head.seq) throw refused(`the newest snapshot (at ${size}) is not past this replica's head (${opts.ledger.head.seq})`)
    const { stored } = await opts.ledger.installSnapshot(result.base, fetched.entries, result.state, result.signed, result.root, { replace: opts.replace })
    // the verified chunks are kept until the store holds the snapshot: a crash before resumes from them
    void stored.then(async () => { await opts.scratch.discard(size) }, () => {})
    return { size, policies: fetched.entries.length, checkpoint: manifest.checkpoint, witnessed: result.witnessed, entries: fetched.entries, bytes: fetched.bytes, sources: sources.map(s => s.name), stored }
  }
  return undefined
}

/** The sources that serve the newest snapshot any of them has, and its size. */
async function newestOffers (sources: SnapshotSource[], log: Logger): Promise<{ size: number, sources: SnapshotSource[] } | undefined> {
  const offers = await Promise.all(sources.map(async source => {
    try {
      return { source, size: parseLatest((await source.get(latestPath())).toString('utf8')) }
    } catch (err) {
      log.debug({ source: source.name, err: errorMessage(err) }, 'no snapshot from this source')
      return undefined
    }
  }))
  const served = offers.filter(o => o !== undefined && o.size > 0) as Array<{ source: SnapshotSource, size: number }>
  if (served.length === 0) return undefined
  const size = Math.max(...served.map(o => o.size))
  return { size, sources: served.filter(o => o.size === size).map(o => o.source) }
}

/** The checkpoint as it reads, before its signatures are checked (accept() checks them). */
function unverifiedHead (note: string, size: number): { seq: number, root: string, origin: string, state: SignedHead['state'] } {
  const checkpoint = parseCheckpoint(parseNote(note).text)
  if (checkpoint.size !== size) throw refused(`the manifest of the snapshot at ${size} carries a checkpoint of size ${checkpoint.size}`)
  const state = parseStateLine(checkpoint.extensions)
  return { seq: checkpoint.size, root: checkpoint.root.toString('hex'), origin: checkpoint.origin, state: state === undefined ? undefined : { size: state.size, root: state.root.toString('hex') } }
}

/**
 * Every chunk, from the scratch directory when a previous try kept it, else from the sources
 * in turn (a chunk one source serves wrong is refused, logged and fetched from the next).
 */
async function fetchChunks (manifest: SnapshotManifest, size: number, sources: SnapshotSource[], opts: BootstrapOptions): Promise<{ entries: Entry[], bytes: number }> {
  const parts: Entry[][] = new Array(manifest.chunks.length)
  let bytes = 0
  let next = 0
  const kept = await opts.scratch.chunksKept(size)
  // written beside the fetch, not before the next one: the scratch copy only serves a restart
  const writes: Array<Promise<void>> = []
  const keep = (index: number, bundle: Uint8Array): void => {
    writes.push(opts.scratch.writeChunk(size, index, bundle).catch(err => {
      opts.log.warn({ chunk: index, err: errorMessage(err) }, 'could not keep a snapshot chunk on disk (a restart fetches it again)')
    }))
  }
  const worker = async (): Promise<void> => {
    for (let index = next++; index < manifest.chunks.length; index = next++) {
      const bundle = kept.has(index) ? await opts.scratch.read(chunkPath(size, index)) : undefined
      if (bundle !== undefined) {
        try { parts[index] = checkChunk(manifest, size, index, bundle); continue } catch { /* fetched again below */ }
      }
      const problems: string[] = []
      for (let attempt = 0; attempt < sources.length && parts[index] === undefined; attempt++) {
        const source = sources[(index + attempt) % sources.length]
        try {
          const bundle = await source.get(chunkPath(size, index))
          parts[index] = checkChunk(manifest, size, index, bundle)
          bytes += bundle.length
          keep(index, bundle)
        } catch (err) {
          problems.push(`${source.name}: ${errorMessage(err)}`)
          opts.log.warn({ source: source.name, chunk: index, err: errorMessage(err) }, 'snapshot chunk refused; asking the next source')
        }
      }
      if (parts[index] === undefined) throw refused(`no source served chunk ${index} of the snapshot at ${size} that checks (${problems.join('; ')})`)
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(PARALLEL_CHUNKS, manifest.chunks.length) }, worker))
  } finally {
    await Promise.all(writes)
  }
  return { entries: parts.flat().sort((a, b) => a.seq - b.seq), bytes: bytes + Buffer.byteLength(manifest.checkpoint) }
}

/**
 * Whom to trust, from the snapshot itself as a replica's first sync does (trust on first use),
 * unless this node pinned a master key already: the first master's key is the one the
 * checkpoint's origin names; the master keys it declared must have signed the checkpoint; on a
 * network whose policy names witnesses, a quorum of them must have cosigned it.
 */
function accept (manifest: SnapshotManifest, origin: string, entries: Entry[], opts: BootstrapOptions): { base: Parameters<Ledger['installSnapshot']>[0], signed: SignedHead, root: string, witnessed: boolean, state: LedgerState } {
  const state = new LedgerState()
  for (const entry of entries) state.apply(entry)
  const root = opts.ledger.masterKey ?? rootKeyOf(entries, origin)
  if (root === undefined || logOrigin(root) !== origin) throw refused(`the checkpoint's origin ${origin} is not the log of ${root === undefined ? 'any master key the snapshot declares' : `the master key this node trusts (${root.slice(0, 12)}…)`}`)
  const keys = [...trustedMasterKeys(state, root)]
  const head = headFromNote(manifest.checkpoint, origin, keys)
  const set = witnessSetOf({ state })
  const cosigners = set === undefined ? [] : cosignersOf(manifest.checkpoint, set)
  if (set !== undefined && cosigners.length < set.quorum) throw refused(`the checkpoint at ${head.seq} is cosigned by ${cosigners.length} of the network's witnesses, fewer than its quorum of ${set.quorum}`)
  if (set === undefined && opts.mode === 'auto') throw refused('this network names no witnesses: BOOTSTRAP=auto replays the log instead (BOOTSTRAP=snapshot trusts the master\'s signature alone)')
  const signed: SignedHead = { ...head, hash: manifest.headHash }
  const base = { seq: head.seq, hash: manifest.headHash, frontier: manifest.frontier.map(h => h.toString('hex')), checkpoint: manifest.checkpoint, state: head.state! }
  return { base, signed, root, witnessed: set !== undefined, state }
}

/** The master key whose log the origin names, among the keys the snapshot's policies carry. */
function rootKeyOf (entries: Entry[], origin: string): string | undefined {
  for (const entry of entries) {
    const body = policyBody(entry.policy)
    const keys = [body.public_key, policyType(entry.policy) === 'master_key' ? body.key : undefined]
    for (const key of keys) if (typeof key === 'string' && logOrigin(key) === origin) return key
  }
  return undefined
}
