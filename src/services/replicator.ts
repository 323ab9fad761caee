import type { Multiaddr } from '@multiformats/multiaddr'
import { LedgerMeshError, errorMessage } from '../base/errors.js'
import type { LedgerOp } from '../ledger/entry.js'
import type { Ledger } from '../ledger/ledger.js'
import type { Outbox } from '../ledger/outbox.js'
import type { InsertProtocol } from '../protocols/insert/index.js'
import type { SyncProtocol } from '../protocols/sync/index.js'
import { describeDuration, type Duration } from '../base/duration.js'
import type { Logger } from '../base/logger.js'
import { collectGarbage } from '../base/gc.js'
import { policyBody, policyId, policyType } from '../policies/policy.js'
import { NODE_POLICY_TYPES } from '../policies/schemas.js'
import type { Scheduler } from './scheduler.js'
import { type MasterList, retryDecision, tcpAddress } from './master-list.js'
import { givesUpInsert, submitToMasters } from './write-path.js'
import { Backoff } from '../net/backoff.js'
import type { AdmissionState, OutboxDrop, ReplicaSync, SyncLag } from './replica-sync.js'
import type { ProcessStatus } from './service.js'
import { TileMirror } from './tile-mirror.js'

/** Shortest and longest wait before re-opening a watch stream that closed. */
const RECONNECT_MIN_MS = 200
/** entries applied since the last collection that make a catch-up "bulk" (see noteApplied) */
const BULK_APPLIED = 10_000
/** quiet time after a bulk catch-up before the collection */
const COLLECT_AFTER_MS = 1000
const RECONNECT_MAX_MS = 5000
/** Backoff of the outbox after the master answered with a transient error, first and longest. */
const OUTBOX_RETRY_MIN_MS = 1000
const OUTBOX_RETRY_MAX_MS = 30_000

export type { OutboxDrop } from './replica-sync.js'

export interface ReplicatorOptions {
  ledger: Ledger
  sync: SyncProtocol
  insert: InsertProtocol
  outbox: Outbox
  scheduler: Scheduler
  log: Logger
  /** `master`, a peer's node name, or ip:port */
  source: string
  /** the masters (LEDGER_CONN and those the ledger declares): the source when it is `master` */
  masters: MasterList
  interval: Duration
  /** presents this node's join token to the master at `target`; run before pulls until it succeeds once */
  join?: (target: Multiaddr) => Promise<void>
  /** told of every outbox insert dropped because the master refused it for good (for metrics) */
  onOutboxDrop?: (drop: OutboxDrop) => void
  /** outbox inserts refused only because this node is not admitted yet wait for `admit node` (a node without JOIN_TOKEN) */
  keepUnadmitted?: boolean
  /** told when the master starts refusing this node's key, and when it serves it again */
  onAdmission?: (state: AdmissionState) => void
  /** TILES_MIRROR: a tiled copy of the log to catch up from when a pull from the masters fails */
  tilesMirror?: string
  /**
   * The source keeps the log whole only after this replica's head (it started from a snapshot,
   * or compacted): the replica starts again from a snapshot, as an etcd follower behind the
   * compacted revision does. `source` is the address that said so (it serves its snapshot).
   */
  onCompacted?: (source: string) => Promise<void>
}

export { tcpAddress } from './master-list.js'

/**
 * The "Blockchain Sync" process of a node that keeps a replica. It holds a watch stream open
 * to its source, so new entries arrive as the master commits them (pushed, not polled); a
 * pull every BLOCKCHAIN_SYNC interval is the anti-entropy fallback for anything a dropped
 * stream missed. It also drains the outbox of inserts made while the master was away.
 */
export class Replicator implements ReplicaSync {
  readonly name = 'Blockchain Sync'
  readonly keepsReplica = true
  private running = false
  private appliedSinceCollect = 0
  private collectTimer?: NodeJS.Timeout
  private watchHandle?: { close: () => void }
  private readonly reconnect = new Backoff(RECONNECT_MIN_MS, RECONNECT_MAX_MS)
  private reconnectTimer?: NodeJS.Timeout
  private lastSync?: Date
  private lastError?: string
  /** why the source refused this node's key (revoked there), until a sync works again */
  private refusal?: string
  /** whether the master serves this node's key: refused from its first refusal until a sync works */
  admission?: AdmissionState
  private sourceHead?: number
  private sourceAddress?: string
  recovered?: { from: number, to: number, at: Date }
  private flushing = false
  private joined = false
  private joinError?: string
  /** performance.now() before which the outbox waits (backoff after a transient error) */
  private outboxRetryAt = 0
  private readonly outboxBackoff = new Backoff(OUTBOX_RETRY_MIN_MS, OUTBOX_RETRY_MAX_MS)
  private outboxError?: string
  /** outbox inserts dropped since start, and the last one */
  outboxDropped = 0
  lastOutboxDrop?: OutboxDrop
  /** aborted by stop(): ends the retries of a pull, join or outbox insert through the masters */
  private stopped = new AbortController()

  private readonly mirror?: TileMirror

  constructor (private readonly opts: ReplicatorOptions) {
    if (opts.tilesMirror !== undefined) this.mirror = new TileMirror(opts.tilesMirror, opts.log)
  }

  async start (): Promise<void> {
    this.running = true
    this.stopped = new AbortController()
    this.opts.scheduler.every('blockchain-sync', this.opts.interval.ms, async () => { await this.pullOnce() })
    this.opts.scheduler.every('outbox', Math.min(this.opts.interval.ms, 2000), async () => { await this.flushOutbox() })
    await this.pullOnce()
    this.openWatch()
    void this.flushOutbox()
  }

  async stop (): Promise<void> {
    clearTimeout(this.collectTimer)
    this.running = false
    this.stopped.abort(new LedgerMeshError('timeout', 'blockchain sync is stopping'))
    clearTimeout(this.reconnectTimer)
    this.opts.scheduler.cancel('blockchain-sync')
    this.opts.scheduler.cancel('outbox')
    this.watchHandle?.close()
    this.watchHandle = undefined
  }

  /**
   * Where to sync from: the master, ip:port, or a peer named in the ledger (a worker syncing
   * from its slave). A named peer not yet in the replica means syncing from the master until
   * its declaration arrives.
   */
  private sourceConn (): string {
    const source = this.opts.source
    if (source === 'master') return this.opts.masters.current
    if (/^[\d.]+:\d+$/.test(source)) return source
    for (const type of NODE_POLICY_TYPES) {
      const policy = this.opts.ledger.state.findByName(type, source)
      if (policy === undefined) continue
      const body = policyBody(policy)
      const ip = body.ip ?? body.external_ip ?? body.local_ip ?? body.internal_ip
      if (typeof ip === 'string' && typeof body.port === 'number') return `${ip}:${body.port}`
    }
    return this.opts.masters.current
  }

  /** true when `conn` is a master's (the source is the master, or a named peer not known yet) */
  private fromMaster (conn: string): boolean {
    return this.opts.masters.addresses.includes(conn)
  }

  /**
   * A catch-up leaves several times its data in garbage (frames, parsed pages, batches for
   * the store); once a bulk one goes quiet, collect it so the replica shrinks back to the size
   * of its ledger instead of staying at its peak.
   */
  private noteApplied (count: number): void {
    this.appliedSinceCollect += count
    if (this.appliedSinceCollect < BULK_APPLIED) return
    clearTimeout(this.collectTimer)
    this.collectTimer = setTimeout(() => {
      const applied = this.appliedSinceCollect
      this.appliedSinceCollect = 0
      const before = process.memoryUsage().rss
      if (collectGarbage()) this.opts.log.debug({ applied, rss_mb_before: Math.round(before / 2 ** 20), rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20) }, 'collected the garbage of a bulk catch-up')
    }, COLLECT_AFTER_MS)
    this.collectTimer.unref()
  }

  async pullOnce (): Promise<void> {
    await this.joinOnce()
    let conn = this.sourceConn()
    try {
      // from the masters: each known one once, from the current one on (a relay: that one only)
      const result = !this.fromMaster(conn)
        ? await this.opts.sync.pull(tcpAddress(conn))
        : await this.opts.masters.withMaster(async address => {
          conn = address
          return await this.opts.sync.pull(tcpAddress(address), { signal: this.stopped.signal })
        }, { attempts: this.opts.masters.size, signal: this.stopped.signal })
      this.noteSync(conn, result.head.seq)
      if (result.recovered !== undefined) this.recovered = { ...result.recovered, at: new Date() }
      if (result.applied > 0) this.opts.log.info({ source: conn, applied: result.applied, head: result.head.seq }, 'sync pull applied entries')
      this.noteApplied(result.applied)
    } catch (err) {
      this.lastError = errorMessage(err)
      this.noteRefusal(err, conn)
      this.opts.log.warn({ source: conn, err: this.lastError }, 'sync pull failed')
      if (err instanceof LedgerMeshError && err.code === 'compacted') return await this.opts.onCompacted?.(conn)
      // no master answered (a refusal is an answer): the mirror, if any, may hold more
      if (!(err instanceof LedgerMeshError && err.code === 'unauthorized')) await this.pullFromMirror()
    }
  }

  private async pullFromMirror (): Promise<void> {
    if (this.mirror === undefined) return
    try {
      this.noteApplied(await this.mirror.catchUp(this.opts.ledger))
    } catch (err) {
      this.opts.log.warn({ mirror: this.opts.tilesMirror, err: errorMessage(err) }, 'catching up from the tile mirror failed')
    }
  }

  /** Joins the network (JOIN_TOKEN) once; until then every pull tries again. */
  private async joinOnce (): Promise<void> {
    if (this.opts.join === undefined || this.joined) return
    try {
      const join = this.opts.join
      await this.opts.masters.withMaster(async address => { await join(tcpAddress(address)) }, { attempts: this.opts.masters.size, signal: this.stopped.signal })
      this.joined = true
      this.joinError = undefined
    } catch (err) {
      const message = errorMessage(err)
      if (message !== this.joinError) this.opts.log.warn({ err: message }, 'join refused or not answered; trying again at the next pull')
      this.joinError = message
      this.lastError = `join: ${message}`
    }
  }

  private openWatch (): void {
    if (!this.running) return
    const conn = this.sourceConn()
    try {
      this.watchHandle = this.opts.sync.watch(tcpAddress(conn), {
        onApplied: (count, head) => {
          this.reconnect.reset()
          this.noteSync(conn, head.seq)
          if (count > 0) this.opts.log.info({ source: conn, applied: count, head: head.seq }, 'sync batch applied')
          this.noteApplied(count)
        },
        onClose: (err) => {
          this.watchHandle = undefined
          if (err !== undefined) this.lastError = errorMessage(err)
          this.noteRefusal(err, conn)
          if (err instanceof LedgerMeshError && err.code === 'compacted') void this.opts.onCompacted?.(conn)
          // a master that failed the watch: the next one gets the reconnect
          if (err !== undefined && retryDecision(err) === 'rotate' && this.fromMaster(conn)) this.opts.masters.rotate(conn)
          this.scheduleReconnect()
        }
      })
    } catch (err) {
      this.lastError = errorMessage(err)
      this.scheduleReconnect()
    }
  }

  private scheduleReconnect (): void {
    if (!this.running) return
    clearTimeout(this.reconnectTimer)
    this.reconnectTimer = setTimeout(() => { this.openWatch() }, this.reconnect.next())
    this.reconnectTimer.unref()
  }

  /**
   * A source that refuses this node's key has revoked it (or never admitted it): until a sync
   * works again, this node serves no relay clients of its own, since its state may not yet
   * hold its own revocation (the source cuts the stream before sending it).
   */
  private noteRefusal (err: unknown, conn: string): void {
    if (!(err instanceof LedgerMeshError && err.code === 'unauthorized')) return
    this.refusal = `its source refused it: ${err.message}`
    if (this.fromMaster(conn) && this.admission?.admitted !== false) this.noteAdmission({ admitted: false, source: conn, at: new Date(), joinError: this.joinError })
  }

  private noteAdmission (state: AdmissionState): void {
    this.admission = state
    this.opts.onAdmission?.(state)
  }

  /** Why this node may not serve its own sync clients now, or undefined. */
  get servingRefused (): string | undefined { return this.refusal }

  private noteSync (conn: string, sourceHead: number): void {
    this.refusal = undefined
    if (this.admission?.admitted !== true) this.noteAdmission({ admitted: true })
    const recovered = this.lastError !== undefined
    this.lastSync = new Date()
    this.sourceHead = sourceHead
    this.sourceAddress = conn
    this.lastError = undefined
    // Sync works again after failing (a partition healed, the master is back): what the outbox
    // holds goes now, not after a backoff that grew while the master was out of reach.
    if (recovered && this.outboxError !== undefined) {
      this.opts.log.info({ source: conn, outbox: this.outboxSize }, 'sync works again: sending the outbox now')
      this.outboxBackoff.reset()
      this.outboxRetryAt = 0
      void this.flushOutbox()
    }
  }

  /**
   * Re-submits outbox inserts, oldest first, one flush at a time. An insert leaves the outbox
   * only when the master has it (accepted now, or already on the ledger) or refuses that
   * policy for good (bad policy or signature, unauthorized, a conflict): such a drop is logged,
   * counted in `get status` and /metrics. Any other answer (unreachable, timeout, overloaded,
   * its store failing), and on a node without JOIN_TOKEN a refusal only because its key is
   * not admitted yet, keeps it, and the outbox backs off before trying again.
   */
  async flushOutbox (): Promise<void> {
    if (this.flushing || performance.now() < this.outboxRetryAt) return
    this.flushing = true
    try {
      await this.flushPending()
    } finally {
      this.flushing = false
    }
  }

  private async flushPending (): Promise<void> {
    const pending = await this.opts.outbox.list()
    this.outboxSize = pending.length
    for (const op of pending) {
      if (!this.running) return
      const id = policyId(op.policy)
      try {
        // it may have gone out before (then a duplicate_id means it is on the ledger): submitToMasters decides
        const answer = await submitToMasters(this.opts.insert, this.opts.masters, op, { sentBefore: true, signal: this.stopped.signal })
        if ('already' in answer) this.opts.log.info({ id }, 'outbox insert was already on the ledger')
        else this.opts.log.info({ id, type: policyType(op.policy), seq: answer.accepted.seq }, 'outbox insert accepted by the master')
      } catch (err) {
        if (givesUpInsert(err, this.opts.keepUnadmitted === true)) {
          this.dropFromOutbox(op, err as LedgerMeshError)
        } else {
          this.backOff(id, err)
          return
        }
      }
      this.outboxBackoff.reset()
      this.outboxError = undefined
      // Accepted ones stay visible: sync replaces the local copy with the ordered one.
      await this.opts.outbox.remove(id)
      this.outboxSize--
    }
  }

  private dropFromOutbox (op: LedgerOp, err: LedgerMeshError): void {
    const id = policyId(op.policy)
    const drop: OutboxDrop = { id, type: policyType(op.policy), code: err.code, message: err.message, at: new Date() }
    this.opts.log.warn({ id, type: drop.type, code: err.code, err: err.message }, 'outbox insert refused by the master for good; dropped from the outbox')
    this.opts.ledger.state.removeLocal(id)
    this.outboxDropped++
    this.lastOutboxDrop = drop
    this.opts.onOutboxDrop?.(drop)
  }

  /** The master could not take the insert now: keep it, and wait longer each time. */
  private backOff (id: string, err: unknown): void {
    const message = errorMessage(err)
    const wait = this.outboxBackoff.next()
    if (message !== this.outboxError) this.opts.log.warn({ id, err: message, retryInMs: wait }, 'outbox insert not accepted yet; kept for a retry')
    this.outboxError = message
    this.outboxRetryAt = performance.now() + wait
  }

  /** Puts an insert in the outbox (durable) and shows it locally as `"ledger": "local"`. */
  async keepLocal (op: LedgerOp): Promise<void> {
    await this.opts.outbox.add(op)
    this.opts.ledger.state.addLocal(op.policy)
    this.outboxSize++
  }

  /** inserts waiting for the master, as last counted */
  outboxSize = 0

  get lag (): SyncLag {
    return {
      seq: Math.max(0, (this.sourceHead ?? this.opts.ledger.head.seq) - this.opts.ledger.head.seq),
      seconds: this.lastSync === undefined ? undefined : (Date.now() - this.lastSync.getTime()) / 1000
    }
  }

  status (): ProcessStatus {
    if (!this.running) return { status: 'Not declared' }
    const every = `Sync every ${describeDuration(this.opts.interval)}`
    const source = this.opts.source === 'master' ? 'master' : `${this.opts.source} (relay)`
    const parts = [
      `${every} with ${source} using: ${this.sourceAddress ?? this.sourceConn()}`,
      `head seq ${this.opts.ledger.head.seq}`,
      `lag ${this.lag.seq}`,
      `last sync ${this.lastSync?.toISOString() ?? 'never'}`
    ]
    if (this.recovered !== undefined) parts.push(`recovered from seq ${this.recovered.from} to ${this.recovered.to} at ${this.recovered.at.toISOString()}`)
    if (this.outboxSize > 0) parts.push(`outbox ${this.outboxSize}${this.outboxError === undefined ? '' : ` (retrying: ${this.outboxError})`}`)
    if (this.lastOutboxDrop !== undefined) parts.push(`outbox inserts dropped ${this.outboxDropped}, last ${this.lastOutboxDrop.id.slice(0, 12)}… (${this.lastOutboxDrop.code}: ${this.lastOutboxDrop.message})`)
    if (this.lastError !== undefined) parts.push(`last error: ${this.lastError}`)
    return { status: 'Running', details: parts.join(', ') }
  }
}
