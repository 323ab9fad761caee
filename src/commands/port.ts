import type { Duration } from '../base/duration.js'
import type { Bind } from '../net/bind.js'
import type { LedgerOp } from '../ledger/entry.js'
import type { Ledger } from '../ledger/ledger.js'
import type { ForkReport } from '../ledger/fork-watch.js'
import type { WitnessedView } from '../ledger/witnessed.js'
import type { Ed25519Signer } from '../policies/keys.js'
import type { DatabaseSummary } from '../ledger/pg-replication.js'
import type { LedgerScope } from '../policies/policy.js'

/**
 * The node as the command language sees it: the one door through which the command handlers
 * (src/commands/handlers) and the REST routes reach the node. Handlers parse arguments, call
 * the port and format its answer; they never see the node's services or build them. The
 * types here are the commands' own: the services' real types satisfy them structurally.
 */
export interface NodePort {
  readonly name: string
  readonly role: NodeRole
  /** every role the node holds (several in a stand-alone node; `role` is the first) */
  readonly roles: readonly NodeRole[]
  /** the node's key: prepares, signs and seals what its commands write */
  readonly signer: Ed25519Signer
  /** the ledger's database name (DB_NAME); `connect dbms` takes it or AnyLog's `blockchain` */
  readonly ledgerDatabase: string
  /** whether `connect dbms` has connected the ledger store yet */
  readonly hasLedger: boolean
  /** the ledger; throws store_unavailable while no store is connected */
  readonly ledger: Ledger
  /** the latest checkpoint a quorum of the network's witnesses cosigned, when it has witnesses */
  readonly witnessed?: WitnessedView
  /** `reset fork`: clears the fork this node detected; answers the report cleared */
  resetFork: () => Promise<ForkReport | undefined>

  /** `blockchain insert` and `delete policy`: through the write path (ordered by the master) */
  insert: (op: LedgerOp, opts: { local: boolean, master?: string }) => Promise<InsertResult>

  /** the rows of `get processes`, in AnyLog's order */
  processes: () => ProcessRow[]
  /** `get processes where format=json`: `{"TCP": {"Status": ..., "Details": ...}, ...}` */
  processesJson: () => Record<string, { Status: string, Details?: string }>
  /** what `get status` shows */
  status: () => NodeStatus
  /** what `get profiles` shows, by what this node runs; undefined when it has no profiles */
  profiles: () => ProfilesData | undefined
  /** GET /v1/network: the nodes the ledger declares, with what this node knows of each */
  network: () => NetworkData

  /**
   * `run tcp server`: the p2p host (idempotent); options left out take the config's values.
   * `bind` is AnyLog's: true listens on `ip` only, false on every interface (src/net/bind.ts).
   */
  startTcpServer: (opts: { ip?: string, port?: number, bind?: Bind }) => Promise<{ ip: string, port: number, peerId: string }>
  /** `run rest server` (idempotent); `bind` as for the p2p host */
  startRestServer: (opts: { ip?: string, port?: number, bind?: Bind, timeoutSeconds?: number }) => Promise<{ ip: string, port: number | undefined }>
  /** `connect dbms`: opens the ledger on that store (idempotent for the same store) */
  connectDbms: (opts: { database: string, type?: string, ip?: string, port?: string, user?: string, password?: string }) => Promise<Ledger>
  /** `run blockchain sync`; answers with the values it runs with */
  startBlockchainSync: (opts: { source?: string, connection?: string, interval?: Duration }) => Promise<{ source: string, connection: string, interval: Duration }>
  /** `run scheduler <id>` */
  runScheduler: (id: number) => Promise<void>
  /** `run allocator` (master) */
  startAllocator: () => Promise<ProcessRowStatus>
  /** `run operator` (worker, slave): `worker` is the node's name, `role` whose operator it is */
  startOperator: () => Promise<{ worker: string, role: string, kinds: string[] }>
  /** `worker drain` / `worker resume` (a slave's too); false when this node runs no operator */
  setDraining: (draining: boolean) => Promise<boolean>
  /** `approve master` (MASTER_APPROVAL=manual): declares a master registered in the database on the ledger */
  approveMaster: (key: string) => Promise<{ key: string, name: string, seq: number | undefined, already: boolean }>
  /** join tokens, admitting and revoking keys: the master's, once its blockchain sync runs */
  readonly admission: Admission | undefined
  /** the node's home directory (its key, its embedded ledger, its outbox) */
  readonly home: string
  /** `trace level`: the node's log level from now on */
  setLogLevel: (level: string) => void
  /** `blockchain seed from`: a replica pulls from its master now; the master has nothing to pull */
  seedLedger: () => Promise<{ seq: number, pulled: boolean }>
  /** `exit node`: asks the node to stop and the process to exit with `code` */
  exit: (code: number) => void
}

export type NodeRole = 'master' | 'slave' | 'worker' | 'member'

export interface InsertResult {
  id: string
  /** the entry's seq once ordered by the master */
  seq?: number
  ledger: LedgerScope
}

export interface ProcessRowStatus {
  status: string
  details?: string
}

export type ProcessRow = { name: string } & ProcessRowStatus

export interface Admission {
  createToken: (opts: { ttlMs?: number, uses?: number }) => Promise<{ token: string, tokenId: string, expires: string, uses: number }>
  admit: (key: string, opts: { name?: string, via: 'admin' }) => Promise<{ seq: number, already: boolean }>
  revoke: (key: string, reason?: string) => Promise<{ declarations: string[], already: boolean }>
}

/** The master's placement, as its allocator last computed it. */
export interface AllocationView {
  unplaced: Array<{ type: string, name: string, reason: string }>
  leases: Record<string, { state: string, draining: boolean }>
  /** slaves' leases, by slave name */
  slave_leases: Record<string, { state: string, draining: boolean }>
  /** where every sub-account runs, and its slave's lease */
  subaccounts: Array<{ name: string, slave: string | null, lease: string | null, draining: boolean, status: string }>
  /** profile id → the live worker whose last renewal reported it running */
  running_on: Record<string, string>
}

/** A worker's lease with the master. */
export interface LeaseView {
  valid: boolean
  draining: boolean
  waiting: string | null
}

/** One of a worker's profile processes, or of a slave's sub-account processes. */
export interface WorkerProfileView {
  /** a slave's row: the sub-account's id */
  subaccount_id?: string
  name: string
  kind: string
  state: string
  pid: number | null
  restarts: number
  uptime_seconds: number | null
  last_exit: string | null
  problem: string | null
}

/** A profile as a slave knows it from its heartbeats. */
export interface ProfileReportView {
  profile_id: string
  profile_name: string | null
  kind: string | null
  /** the worker of the latest run */
  worker: string
  pid: number
  last_seen: string
  runs: unknown[]
}

/** What `get profiles` is made of: a worker's processes, the master's placement, a slave's reports. */
export type ProfilesData =
  | { role: 'worker', lease: LeaseView, profiles: WorkerProfileView[], slave?: { lease: LeaseView, processes: WorkerProfileView[] } }
  | { role: 'master', allocation: AllocationView }
  | { role: 'slave', reports: ProfileReportView[], lease: LeaseView | undefined, processes: WorkerProfileView[] }

/** `get status where format=json`. */
export interface NodeStatus {
  assigned_name: string
  status: 'running'
  role: NodeRole
  /** NODE_TYPE as written: the role, or AnyLog's operator, query, publisher, generic, master-operator, ... */
  node_type: string
  node: string
  peer_id: string | undefined
  private_network: false | { key_id: string }
  public_key: string
  uptime_seconds: number
  ledger: { store: string, head: { seq: number }, policies: number, master_key: string | undefined, master_keys: string[] } | undefined
  sync: Record<string, unknown> | undefined
  allocation: AllocationView | undefined
  /** a master among several over one PostgreSQL: which writes, since when, the lease epoch, each master's last registration refresh */
  master_role?: {
    role: 'active' | 'standby' | 'waiting'
    since: string
    epoch: number
    active_master: string | null
    lease_renewed: string | null
    masters: Array<{ name: string, key: string, address: string, trusted: boolean, seen: string }>
  }
  /** a master on PostgreSQL: its servers, the primary it writes to, the replication that primary reports, the failovers ridden through */
  database?: DatabaseSummary
  profiles: { lease: LeaseView, by_state: Record<string, number> } | undefined
  /**
   * A replica's admission: whether its master serves its key. While it refuses it, why and the
   * two ways in, with `message` (the same text as the node's log line and the REPL's banner).
   * Undefined on a master, and before the master's first answer.
   */
  admission?: AdmissionView
  /** set once the node was shown two checkpoints no one history holds: it stopped following the log (docs/verifiable-log.md) */
  fork_detected?: ForkReport
  /**
   * A full node's snapshots: the one it serves, the one it started from, and how far the
   * background check of that one's author signatures got (`authors_verified`)
   */
  snapshot?: {
    serving?: { size: number, witnessed: boolean }
    bootstrap?: { size: number, policies: number, witnessed: boolean, bytes: number, sources: string[], ms: number }
    authors_verified?: { verified: number, total: number, done: boolean, failed?: { id: string, seq: number } }
    /** the store keeps every entry after this seq, and only the live ones before (0: the whole log) */
    log_start: number
  }
}

/** `get status`'s admission (src/node/admission-notice.ts builds it). */
export type AdmissionView =
  | { admitted: true, key: string }
  | { admitted: false, key: string, reason: string, since: string, ways_in: string[], message: string }

/** GET /v1/network (src/node/network-view.ts). */
export interface NetworkNode {
  name: string
  /** the declaration's type: master, slave, worker, member, or an AnyLog node type */
  type: string
  company: string | null
  /** where it takes p2p connections, as it publishes them (ip:port) */
  address: string | null
  /** its REST server (ip:rest_port), when it publishes one */
  rest: string | null
  peer_id: string | null
  /** the key that signed its declaration: the node's own */
  key: string
  /** true for the node answering */
  self: boolean
  /** the head it holds, as far as this node knows */
  seq: number | null
  /** this node's head minus that */
  lag: number | null
  /** when it last synced from this node (ISO time) */
  last_sync: string | null
  /** whether it holds a watch stream on this node now */
  watching: boolean | null
  /** a worker's or slave's lease, on the active master */
  lease: { state: string, draining: boolean, running: number, renewed_ms_ago: number | null } | null
}

export interface NetworkData {
  /** the node answering, and its head */
  node: string
  role: string
  head: number
  nodes: NetworkNode[]
  /** on a master over PostgreSQL: its database, as in `get status` */
  database?: DatabaseSummary
}
