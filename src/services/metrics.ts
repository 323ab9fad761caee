import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'

/** What the metrics read from the node when scraped. */
export interface MetricsSource {
  headSeq: () => number
  /** (type, field) indexes the live state keeps, eager and built on demand for queries */
  ledgerIndexes?: () => number | undefined
  lag: () => { seq: number, seconds: number | undefined } | undefined
  /** a replica: inserts waiting in its outbox for the master */
  outbox?: () => number | undefined
  sync: () => { bytesIn: number, bytesOut: number, entriesIn: number, entriesOut: number, rejected: number } | undefined
  /** worker: its profile processes by state */
  profiles?: () => Record<string, number> | undefined
  profileRestarts?: () => number | undefined
  /** slave: its sub-account processes by state, and their restarts */
  subaccountProcesses?: () => Record<string, number> | undefined
  subaccountRestarts?: () => number | undefined
  /** master: sub-accounts and profiles waiting for capacity */
  unassigned?: () => Record<string, number> | undefined
  /** master: workers' leases by state */
  leases?: () => Record<string, number> | undefined
  /** master: slaves' leases by state */
  slaveLeases?: () => Record<string, number> | undefined
  /** 1 once the node detected a fork of the log (two checkpoints no one history holds) */
  forkDetected?: () => boolean
  /** a node started from a snapshot: its author signatures checked so far, of how many */
  authorsVerified?: () => { verified: number, total: number } | undefined
}

/**
 * The node's Prometheus metrics (prom-client, own registry): default process metrics plus the
 * ledger's. Names carry units; gauges are read from the node at scrape time.
 */
export class NodeMetrics {
  readonly registry = new Registry()
  readonly inserts: Counter<'result' | 'reason'>
  readonly restRequests: Counter<'status'>
  readonly outboxDropped: Counter<'reason'>
  readonly unadmitted: Counter<'what'>
  /** light requests this full node answered or refused */
  readonly lightServed: Counter<'result'>
  /** light answers and signed lease answers this light worker refused, by what */
  readonly lightRefused: Counter<'what'>

  constructor (source: MetricsSource, labels: { node: string, role: string }) {
    this.registry.setDefaultLabels(labels)
    collectDefaultMetrics({ register: this.registry })
    const registers = [this.registry]
    new Gauge({ name: 'ledgermesh_ledger_head_seq', help: 'Seq of the last entry in the local ledger', registers, collect () { this.set(source.headSeq()) } })
    new Gauge({ name: 'ledgermesh_ledger_indexes', help: 'Indexes (policy type and field) the live ledger state keeps, eager and built on demand for queries (the on-demand ones are capped)', registers, collect () { this.set(source.ledgerIndexes?.() ?? 0) } })
    new Gauge({ name: 'ledgermesh_fork_detected', help: '1 once this node was shown two checkpoints of its network\'s log that no one history holds, and stopped following it', registers, collect () { this.set(source.forkDetected?.() === true ? 1 : 0) } })
    new Gauge({ name: 'ledgermesh_snapshot_authors_verified', help: 'A node started from a snapshot: the author signatures of its policies checked so far (in the background)', registers, collect () { this.set(source.authorsVerified?.()?.verified ?? 0) } })
    new Gauge({ name: 'ledgermesh_snapshot_authors', help: 'A node started from a snapshot: how many policies it held, whose author signatures it checks', registers, collect () { this.set(source.authorsVerified?.()?.total ?? 0) } })
    new Gauge({ name: 'ledgermesh_replica_lag_seq', help: 'Entries the replica is behind its sync source', registers, collect () { this.set(source.lag()?.seq ?? 0) } })
    new Gauge({ name: 'ledgermesh_replica_lag_seconds', help: 'Seconds since the replica last heard from its sync source', registers, collect () { this.set(source.lag()?.seconds ?? 0) } })
    // The sync counters live in the protocol; each scrape copies them into these counters.
    const fromSync = (pick: (stats: NonNullable<ReturnType<MetricsSource['sync']>>) => Record<string, number>) =>
      function (this: Counter<string>) {
        const stats = source.sync()
        this.reset()
        if (stats === undefined) return
        for (const [direction, value] of Object.entries(pick(stats))) this.inc(direction === '' ? {} : { direction }, value)
      }
    new Counter({ name: 'ledgermesh_sync_bytes_total', help: 'Bytes moved on sync streams', labelNames: ['direction'], registers, collect: fromSync(s => ({ in: s.bytesIn, out: s.bytesOut })) })
    new Counter({ name: 'ledgermesh_sync_entries_total', help: 'Ledger entries moved on sync streams', labelNames: ['direction'], registers, collect: fromSync(s => ({ in: s.entriesIn, out: s.entriesOut })) })
    new Counter({ name: 'ledgermesh_sync_batches_rejected_total', help: 'Sync batches that failed verification', registers, collect: fromSync(s => ({ '': s.rejected })) })
    const byLabel = (label: string, read: (() => Record<string, number> | undefined) | undefined) => function (this: Gauge<string>) {
      this.reset()
      for (const [value, count] of Object.entries(read?.() ?? {})) this.set({ [label]: value }, count)
    }
    new Gauge({ name: 'ledgermesh_profile_processes', help: 'Profile processes on this worker, by state', labelNames: ['state'], registers, collect: byLabel('state', source.profiles) })
    new Gauge({ name: 'ledgermesh_profile_restarts', help: 'Restarts of this worker\'s current profile processes', registers, collect () { this.set(source.profileRestarts?.() ?? 0) } })
    new Gauge({ name: 'ledgermesh_subaccount_processes', help: 'Sub-account processes on this slave, by state', labelNames: ['state'], registers, collect: byLabel('state', source.subaccountProcesses) })
    new Gauge({ name: 'ledgermesh_subaccount_process_restarts', help: 'Restarts of this slave\'s current sub-account processes', registers, collect () { this.set(source.subaccountRestarts?.() ?? 0) } })
    new Gauge({ name: 'ledgermesh_unassigned', help: 'Sub-accounts and profiles waiting for capacity (master)', labelNames: ['type'], registers, collect: byLabel('type', source.unassigned) })
    new Gauge({ name: 'ledgermesh_worker_leases', help: 'Workers\' leases by state (master)', labelNames: ['state'], registers, collect: byLabel('state', source.leases) })
    new Gauge({ name: 'ledgermesh_slave_leases', help: 'Slaves\' leases by state (master)', labelNames: ['state'], registers, collect: byLabel('state', source.slaveLeases) })
    this.inserts = new Counter({ name: 'ledgermesh_inserts_total', help: 'Inserts handled by this node, by result and rejection reason', labelNames: ['result', 'reason'], registers })
    new Gauge({ name: 'ledgermesh_outbox_pending', help: 'Inserts waiting in this replica\'s outbox for the master', registers, collect () { this.set(source.outbox?.() ?? 0) } })
    this.outboxDropped = new Counter({ name: 'ledgermesh_outbox_dropped_total', help: 'Outbox inserts dropped because the master refused them for good, by error code', labelNames: ['reason'], registers })
    this.unadmitted = new Counter({ name: 'ledgermesh_unadmitted_total', help: 'Requests refused because the key is not admitted (or its join token is bad), by what was asked: join, sync, lease, insert', labelNames: ['what'], registers })
    this.lightServed = new Counter({ name: 'ledgermesh_light_served_total', help: 'Light requests (/ledgermesh/light/1.0.0) this node served, by result: answered or the refusal\'s code', labelNames: ['result'], registers })
    this.lightRefused = new Counter({ name: 'ledgermesh_light_refused_total', help: 'Answers a light worker refused because they do not verify, by what: light (a proof or checkpoint) or lease (a signed lease answer)', labelNames: ['what'], registers })
    this.restRequests = new Counter({ name: 'ledgermesh_rest_requests_total', help: 'REST requests answered, by HTTP status', labelNames: ['status'], registers })
  }
}
