import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { errorMessage } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import type { ForkWatch } from '../ledger/fork-watch.js'
import type { Ledger } from '../ledger/ledger.js'
import { SnapshotFiles } from '../ledger/snapshot/files.js'
import type { WitnessedCheckpoint } from '../ledger/witnessed.js'
import type { SnapshotProtocol } from '../protocols/snapshot/index.js'
import { AuthorCheck, type AuthorCheckStatus } from '../services/author-check.js'
import { tcpAddress } from '../services/master-list.js'
import { Compactor, type Retain } from '../services/compactor.js'
import { SnapshotBuilder } from '../services/snapshot-builder.js'
import { bootstrapFromSnapshot } from '../services/snapshot-bootstrap.js'
import { type SnapshotSource, mirrorSnapshotSource, peerSnapshotSource } from '../services/snapshot-sources.js'

/** Where a bootstrap keeps verified chunks until the snapshot is installed (under the node's home). */
const SCRATCH_DIR = 'snapshot-fetch'

export interface SnapshotSettings {
  /** BOOTSTRAP */
  bootstrap: 'auto' | 'snapshot' | 'full'
  /** SNAPSHOT_SOURCES: ip:port of peers, http(s) URLs of mirrors */
  sources: string[]
  /** the masters (LEDGER_CONN), asked after SNAPSHOT_SOURCES */
  masters: string[]
  /** TILES_MIRROR, asked last */
  mirror?: string
  /** SNAPSHOT_INTERVAL, ms */
  intervalMs: number
  /** RETAIN: a replica compacts its log to its snapshots */
  retain: Retain
}

/** What `get status` shows of a node's snapshots. */
export interface SnapshotSummary {
  /** the snapshot this node serves */
  serving?: { size: number, witnessed: boolean }
  /** the snapshot this node started from */
  bootstrap?: { size: number, policies: number, witnessed: boolean, bytes: number, sources: string[], ms: number }
  authors_verified?: AuthorCheckStatus
  /** the store keeps every entry after this seq, and only the live ones before (0: the whole log) */
  log_start: number
}

/**
 * A full node's snapshots: it takes them (SnapshotBuilder) for others to start from, and, when
 * it starts with an empty replica, starts from one itself (BOOTSTRAP), then checks every author
 * signature of it in the background. The snapshot protocol that serves them is started with
 * the node's other protocols.
 */
export class NodeSnapshots {
  readonly builder: SnapshotBuilder
  private check?: AuthorCheck
  private bootstrapped?: SnapshotSummary['bootstrap']

  constructor (private readonly opts: { ledger: Ledger, home: string, protocol: SnapshotProtocol, witnessed: WitnessedCheckpoint, forks: ForkWatch, settings: SnapshotSettings, log: Logger }) {
    this.builder = new SnapshotBuilder({
      ledger: () => opts.ledger,
      files: new SnapshotFiles(opts.home),
      witnessed: () => opts.witnessed.latest,
      intervalMs: opts.settings.intervalMs,
      following: () => opts.forks.current === undefined,
      compactor: new Compactor({ ledger: () => opts.ledger, retain: opts.settings.retain, log: opts.log.child({ service: 'compaction' }) }),
      log: opts.log.child({ service: 'snapshot' })
    })
  }

  private rebootstrapping?: Promise<void>

  /**
   * The replica's source keeps the log whole only after this replica's head: the replica
   * starts again from a snapshot (the source's first), its log replaced.
   */
  async rebootstrap (source: string): Promise<void> {
    this.rebootstrapping ??= this.bootstrap([peerSnapshotSource(this.opts.protocol, tcpAddress(source), `source ${source}`), ...this.sources()], true)
      .finally(() => { this.rebootstrapping = undefined })
    await this.rebootstrapping
  }

  summary (): SnapshotSummary {
    return { serving: this.builder.latest, bootstrap: this.bootstrapped, authors_verified: this.check?.status, log_start: this.opts.ledger.logStart }
  }

  /** A replica with an empty store starts from a snapshot when its settings allow one; then takes its own. */
  async start (): Promise<void> {
    const { ledger, settings, log } = this.opts
    if (!ledger.isMaster && ledger.head.seq === 0 && settings.bootstrap !== 'full') await this.bootstrap()
    this.builder.start()
    log.debug('snapshots: taken every %d ms at most', settings.intervalMs)
  }

  async stop (): Promise<void> {
    this.builder.stop()
    this.check?.stop()
  }

  private sources (): SnapshotSource[] {
    const { settings, protocol } = this.opts
    const peer = (address: string, what: string): SnapshotSource => peerSnapshotSource(protocol, tcpAddress(address), `${what} ${address}`)
    return [
      ...settings.sources.map(s => /^https?:\/\//.test(s) ? mirrorSnapshotSource(s) : peer(s, 'peer')),
      ...settings.masters.map(m => peer(m, 'master')),
      ...(settings.mirror !== undefined ? [mirrorSnapshotSource(settings.mirror)] : [])
    ]
  }

  private async bootstrap (sources = this.sources(), replace = false): Promise<void> {
    const { ledger, home, settings, forks, log } = this.opts
    const started = Date.now()
    const scratch = new SnapshotFiles(join(home, SCRATCH_DIR))
    try {
      // behind a compacted source, a master-signed snapshot will do where BOOTSTRAP=full would not help
      const mode = settings.bootstrap === 'auto' && !replace ? 'auto' : 'snapshot'
      const result = await bootstrapFromSnapshot({ ledger, sources, mode, scratch, replace, log })
      if (result === undefined) {
        log.info({ bootstrap: settings.bootstrap }, 'no snapshot to start from: replaying the log')
        return
      }
      const ms = Date.now() - started
      this.bootstrapped = { size: result.size, policies: result.policies, witnessed: result.witnessed, bytes: result.bytes, sources: result.sources, ms }
      log.info(this.bootstrapped, 'started from a snapshot; checking its authors\' signatures in the background')
      if (result.witnessed) await this.opts.witnessed.accept(result.checkpoint).catch(() => false)
      void result.stored.then(async () => { await rm(join(home, SCRATCH_DIR), { recursive: true, force: true }) },
        (err: unknown) => { log.error({ err: errorMessage(err) }, 'the snapshot could not be written to the store: the replica folded its store again and syncs from there') })
      this.check = new AuthorCheck({
        entries: result.entries,
        log,
        onInvalid: async reason => { await forks.detected(result.checkpoint, 'snapshot', reason) }
      })
      void this.check.run()
    } catch (err) {
      // a snapshot that did not check is refused whole: the replica stays empty and replays the log
      log.warn({ err: errorMessage(err) }, 'no snapshot accepted: replaying the log')
    }
  }
}
