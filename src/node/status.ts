import type { NodeStatus, ProcessRow, ProfilesData } from '../commands/port.js'
import type { Ledger } from '../ledger/ledger.js'
import type { ForkWatch } from '../ledger/fork-watch.js'
import type { Ed25519Signer } from '../policies/keys.js'
import type { MasterServices } from './master-services.js'
import type { MetricsSource } from '../services/metrics.js'
import type { Operator } from '../services/operator/index.js'
import type { P2PHost } from '../services/p2p.js'
import type { ProfileReports } from '../services/profile-reports.js'
import type { ReplicaSync } from '../services/replica-sync.js'
import type { RestServer } from '../services/rest/server.js'
import type { Scheduler } from '../services/scheduler.js'
import type { Service } from '../services/service.js'
import type { NodeConfig } from './config.js'
import { admissionView } from './admission-notice.js'
import type { DatabaseWatch } from '../services/database-watch.js'
import type { SnapshotSummary } from './snapshots.js'

/** The rows of `get processes`, in AnyLog's order, then ledgermesh's own. */
export const PROCESS_NAMES = [
  'TCP', 'REST', 'Operator', 'Publisher', 'Blockchain Sync', 'Scheduler', 'Distributor',
  'Consumer', 'MQTT', 'Message Broker', 'SMTP', 'Streamer', 'Query Pool', 'Allocator', 'Master Role'
] as const

/** What the node's reports (`get processes`, `get status`, `get profiles`, /metrics) read of it. */
export interface NodeView {
  config: NodeConfig
  signer: Ed25519Signer
  startedAt: Date
  /** the ledger, once connected */
  ledger?: Ledger
  /** the watch over the checkpoints the node is shown, with the ledger */
  forks?: ForkWatch
  /** set when the replica was found corrupt at start and rebuilt from its source */
  replicaRecovery?: { reason: string, at: Date }
  scheduler: Scheduler
  profileReports: ProfileReports
  tcp?: P2PHost
  rest?: RestServer
  sync?: ReplicaSync
  /** the sync protocol's counters, once it serves */
  syncStats?: { bytesIn: number, bytesOut: number, entriesIn: number, entriesOut: number, rejected: number }
  /** where each client of this node's sync server stands (a master: every replica) */
  syncPeers?: { get: (peer: string) => { seq: number, at: number, watching: boolean } | undefined }
  /** the master's own services: allocator, admission, the master role among several */
  master?: MasterServices
  /** the worker's and the slave's supervisors (both on a stand-alone node) */
  operators: ReadonlyMap<'worker' | 'slave', Operator>
  /** a full node's snapshots, once its protocols run */
  snapshots?: SnapshotSummary
  /** a master on PostgreSQL: the watch over its database */
  database?: DatabaseWatch
}

export function processRows (node: NodeView): ProcessRow[] {
  const services: Service[] = [node.tcp, node.rest, ...node.operators.values(), node.sync, node.scheduler].filter((s): s is NonNullable<typeof s> => s !== undefined)
  const byName = new Map(services.map(s => [s.name, s.status()]))
  if (node.master !== undefined) {
    byName.set('Allocator', node.master.allocatorStatus())
    const role = node.master.masterRole
    if (role !== undefined) byName.set('Master Role', role.status())
  }
  return PROCESS_NAMES.map(name => ({ name, ...(byName.get(name) ?? { status: 'Not declared' as const }) }))
}

/** `get processes where format=json`: AnyLog's shape, `{"TCP": {"Status": ..., "Details": ...}, ...}`. */
export function processesJson (rows: ProcessRow[]): Record<string, { Status: string, Details?: string }> {
  return Object.fromEntries(rows.map(p => [p.name, p.details === undefined ? { Status: p.status } : { Status: p.status, Details: p.details }]))
}

/** `get status`: who the node is, its ledger, its sync, and what its allocator or operator does. */
export function nodeStatus (node: NodeView): NodeStatus {
  const { config, tcp, sync, ledger } = node
  const address = `${config.externalIp}:${tcp?.running === true ? tcp.port : config.serverPort}`
  return {
    assigned_name: `${config.nodeName}@${address}`,
    status: 'running',
    role: config.role,
    node_type: config.nodeType,
    node: config.nodeName,
    peer_id: tcp?.running === true ? tcp.peerId : undefined,
    // NETWORK_KEY: the key's fingerprint, to compare nodes' keys without showing them
    private_network: config.networkKey === undefined ? false : { key_id: config.networkKey.id },
    public_key: node.signer.publicKey,
    uptime_seconds: Math.round((Date.now() - node.startedAt.getTime()) / 1000),
    ledger: ledger !== undefined
      ? { store: ledger.store.kind, head: ledger.head, policies: ledger.state.size, master_key: ledger.masterKey, master_keys: ledger.masterKeys }
      : undefined,
    sync: node.syncStats === undefined
      ? undefined
      : {
          ...node.syncStats,
          ...(sync?.keepsReplica === true ? { lag: sync.lag, recovered: sync.recovered, outbox: sync.outboxSize, outbox_dropped: sync.outboxDropped, ...(sync.lastOutboxDrop !== undefined ? { last_outbox_drop: sync.lastOutboxDrop } : {}) } : {}),
          ...(node.replicaRecovery !== undefined ? { rebuilt_from_zero: node.replicaRecovery } : {}),
          // LEDGER_MODE=light: what the worker holds with proofs, and the answers it refused
          ...(sync?.light !== undefined ? { light: sync.light } : {})
        },
    allocation: node.master?.runningAllocator?.summary(),
    master_role: node.master?.masterRole?.summary(),
    ...(node.database !== undefined ? { database: node.database.summary() } : {}),
    profiles: primaryOperator(node) === undefined ? undefined : { lease: primaryOperator(node)!.leaseSummary(), by_state: primaryOperator(node)!.countByState() },
    admission: admissionView(node.signer.publicKey, sync?.admission),
    ...(node.snapshots !== undefined ? { snapshot: node.snapshots } : {}),
    ...(node.forks?.current !== undefined ? { fork_detected: node.forks.current } : {})
  }
}

/** What `get profiles` shows: a worker's processes, the master's placement, a slave's reports and processes. */
export function profilesData (node: NodeView): ProfilesData | undefined {
  const operator = primaryOperator(node)
  if (operator !== undefined && operator.role === 'slave') return { role: 'slave', reports: node.profileReports.list(), lease: operator.leaseSummary(), processes: operator.profiles() }
  if (operator !== undefined) {
    // a stand-alone node's slave role runs sub-account processes beside the worker's profiles
    const slave = node.operators.get('slave')
    return { role: 'worker', lease: operator.leaseSummary(), profiles: operator.profiles(), ...(slave !== undefined ? { slave: { lease: slave.leaseSummary(), processes: slave.profiles() } } : {}) }
  }
  const allocator = node.master?.runningAllocator
  if (allocator !== undefined) return { role: 'master', allocation: allocator.summary() }
  if (node.config.roles.includes('slave')) return { role: 'slave', reports: node.profileReports.list(), lease: undefined, processes: [] }
  return undefined
}

/** What /metrics reads of the node at each scrape. */
export function metricsSource (view: () => NodeView): MetricsSource {
  return {
    headSeq: () => view().ledger?.head.seq ?? 0,
    forkDetected: () => view().forks?.current !== undefined,
    authorsVerified: () => view().snapshots?.authors_verified,
    ledgerIndexes: () => view().ledger?.state.indexCount,
    lag: () => view().sync?.lag,
    outbox: () => view().sync?.outboxSize,
    sync: () => view().syncStats,
    profiles: () => workerOperator(view())?.countByState(),
    profileRestarts: () => workerOperator(view())?.restartsTotal,
    subaccountProcesses: () => slaveOperator(view())?.countByState(),
    subaccountRestarts: () => slaveOperator(view())?.restartsTotal,
    unassigned: () => {
      const unplaced = view().master?.runningAllocator?.summary().unplaced
      if (unplaced === undefined) return undefined
      return { subaccount: unplaced.filter(u => u.type === 'subaccount').length, profile: unplaced.filter(u => u.type === 'profile').length }
    },
    leases: () => leaseCounts(view().master?.runningAllocator?.summary().leases),
    slaveLeases: () => leaseCounts(view().master?.runningAllocator?.summary().slave_leases)
  }
}

/** A worker's operator, else a slave's: what `get profiles` and `get status` show first. */
const primaryOperator = (node: NodeView): Operator | undefined => node.operators.get('worker') ?? node.operators.get('slave')
const workerOperator = (node: NodeView): Operator | undefined => node.operators.get('worker')
const slaveOperator = (node: NodeView): Operator | undefined => node.operators.get('slave')

function leaseCounts (leases: Record<string, { state: 'live' | 'expired' | 'unknown', draining: boolean }> | undefined): Record<string, number> | undefined {
  if (leases === undefined) return undefined
  const counts = { live: 0, expired: 0, unknown: 0, draining: 0 }
  for (const lease of Object.values(leases)) { counts[lease.state]++; if (lease.draining) counts.draining++ }
  return counts
}

/** The config keys with their effective values (defaults applied), as `$KEY` sees them. */
export function effectiveConfigEnv (config: NodeConfig): Record<string, string> {
  const values: Record<string, string | number | undefined> = {
    NODE_TYPE: config.nodeType,
    NODE_NAME: config.nodeName,
    COMPANY_NAME: config.companyName,
    INTERNAL_IP: config.ip,
    EXTERNAL_IP: config.externalIp,
    ANYLOG_SERVER_PORT: config.serverPort,
    ANYLOG_REST_PORT: config.restPort,
    REST_BIND: String(config.restBind),
    TCP_BIND: String(config.tcpBind),
    // every master listed, without spaces, so `master = !ledger_conn` stays one word in a script
    LEDGER_CONN: config.ledgerConns.join(','),
    // AnyLog's scripts know psql and sqlite: the embedded store answers as sqlite unless the env file says otherwise
    DB_TYPE: (config.env.DB_TYPE ?? '').trim() !== '' ? config.env.DB_TYPE.trim() : config.db.type === 'psql' ? 'psql' : 'sqlite',
    DB_IP: config.db.ip,
    DB_PORT: config.db.port,
    DB_USER: config.db.user,
    DB_PASSWD: config.db.password ?? '',
    DB_NAME: config.db.name,
    BLOCKCHAIN_SYNC: config.blockchainSync.text,
    BLOCKCHAIN_SOURCE: config.blockchainSource,
    LOC: config.loc,
    COUNTRY: config.country,
    STATE: config.state,
    CITY: config.city,
    SLOTS: config.slots,
    SLAVE_NAME: config.slaveName,
    PROFILE_KINDS: config.profileKinds.join(','),
    SUBACCOUNT_PROCESSES: Object.keys(config.subaccountRunners).join(',') || undefined
  }
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]))
}
