import { EventEmitter } from 'node:events'
import { mkdir, rename } from 'node:fs/promises'
import { homedir, hostname } from 'node:os'
import { join } from 'node:path'
import { LedgerMeshError, errorMessage, isDefinitiveRefusal } from '../base/errors.js'
import { Executor } from '../commands/executor.js'
import { registerGeneralCommands } from '../commands/handlers/general.js'
import { registerNodeCommands } from '../commands/handlers/node.js'
import { registerLedgerCommands } from '../commands/handlers/ledger.js'
import { registerProfileCommands } from '../commands/handlers/profiles.js'
import { registerAdmissionCommands } from '../commands/handlers/admission.js'
import { Ledger } from '../ledger/ledger.js'
import { openStore } from '../ledger/open-store.js'
import type { LedgerOp } from '../ledger/entry.js'
import { policyId, policyType, type LedgerScope } from '../policies/policy.js'
import type { Ed25519Signer } from '../policies/keys.js'
import { checkSealedForMaster } from '../policies/sealed-settings.js'
import { BlockchainSync } from '../services/blockchain-sync.js'
import { Replicator, tcpAddress } from '../services/replicator.js'
import { InsertProtocol } from '../protocols/insert/index.js'
import { SyncProtocol } from '../protocols/sync/index.js'
import { Outbox } from '../ledger/outbox.js'
import type { P2PHost } from '../services/p2p.js'
import type { RestServer } from '../services/rest/server.js'
import { Scheduler } from '../services/scheduler.js'
import { NodeMetrics } from '../services/metrics.js'
import { Allocator } from '../services/allocation/index.js'
import { LeaseProtocol } from '../protocols/lease/index.js'
import { Operator } from '../services/operator/index.js'
import { ProfileReports } from '../services/profile-reports.js'
import { Gatekeeper, JoinProtocol } from '../services/admission/index.js'
import type { ProcessStatus, Service } from '../services/service.js'
import { configSecrets, type NodeConfig } from './config.js'
import type { Duration } from '../base/duration.js'
import { SecretMask, allowedProcessEnv } from '../base/secrets.js'
import { loadOrCreateIdentity } from './identity.js'
import type { Logger } from '../base/logger.js'

export { PACKAGE_ROOT, SCRIPTS_DIR } from './paths.js'
import { SCRIPTS_DIR } from './paths.js'

/** The rows of `get processes`, in AnyLog's order, then ledgermesh's own. */
export const PROCESS_NAMES = [
  'TCP', 'REST', 'Operator', 'Publisher', 'Blockchain Sync', 'Scheduler', 'Distributor',
  'Consumer', 'MQTT', 'Message Broker', 'SMTP', 'Streamer', 'Query Pool', 'Allocator'
] as const

/** How long a replica's insert waits for its own replica to hold the new entry. */
const READ_YOUR_WRITES_MS = 3000

export function defaultHome (nodeName: string): string {
  return process.env.LEDGERMESH_HOME ?? join(homedir(), '.ledgermesh', nodeName)
}

export interface InsertResult {
  id: string
  /** the entry's seq once ordered by the master */
  seq?: number
  ledger: LedgerScope
}

interface NodeEvents {
  /** `exit node` was asked for, with this exit code */
  exit: [code: number]
}

/**
 * One ledgermesh node: its config, identity, command executor, ledger and services.
 * Start-up runs the role's script (scripts/<role>.al) through the same executor the REPL
 * and REST use; the script's commands start the services.
 */
export class LedgerMeshNode extends EventEmitter<NodeEvents> {
  readonly config: NodeConfig
  readonly home: string
  readonly log: Logger
  readonly executor: Executor
  readonly scheduler: Scheduler
  readonly metrics: NodeMetrics
  readonly startedAt = new Date()
  signer!: Ed25519Signer
  tcp?: P2PHost
  rest?: RestServer
  sync?: BlockchainSync | Replicator
  syncProtocol?: SyncProtocol
  insertProtocol?: InsertProtocol
  leaseProtocol?: LeaseProtocol
  /** master: places sub-accounts and profiles, keeps workers' leases */
  allocator?: Allocator
  /** worker: runs the profiles assigned to it */
  operator?: Operator
  /** master: admission (join tokens, admit, revoke) */
  gatekeeper?: Gatekeeper
  joinProtocol?: JoinProtocol
  /** slave: which worker runs which profile, from the profiles' heartbeats */
  readonly profileReports = new ProfileReports()
  private outbox?: Outbox
  /** set when the replica was found corrupt at start and rebuilt from its source */
  replicaRecovery?: { reason: string, at: Date }
  private currentLedger?: Ledger
  private stopping?: Promise<void>

  /** the node's secret values (its config's, and secret-named variables'): never shown */
  readonly secrets: SecretMask

  /**
   * @param opts.secrets the mask the node's logger uses (the CLI builds it from the config);
   *   by default one is made from the config's secrets
   */
  constructor (opts: { config: NodeConfig, home?: string, log: Logger, secrets?: SecretMask }) {
    super()
    this.config = opts.config
    this.secrets = opts.secrets ?? new SecretMask(configSecrets(opts.config).values)
    this.home = opts.home ?? defaultHome(opts.config.nodeName)
    this.log = opts.log
    this.scheduler = new Scheduler(this.log)
    this.metrics = new NodeMetrics({
      headSeq: () => this.currentLedger?.head.seq ?? 0,
      lag: () => this.sync instanceof Replicator ? this.sync.lag : undefined,
      outbox: () => this.sync instanceof Replicator ? this.sync.outboxSize : undefined,
      sync: () => this.syncProtocol?.stats,
      profiles: () => this.operator?.countByState(),
      profileRestarts: () => this.operator?.restartsTotal,
      unassigned: () => {
        const unplaced = this.allocator?.summary().unplaced
        if (unplaced === undefined) return undefined
        return { subaccount: unplaced.filter(u => u.type === 'subaccount').length, profile: unplaced.filter(u => u.type === 'profile').length }
      },
      leases: () => {
        const leases = this.allocator?.summary().leases
        if (leases === undefined) return undefined
        const counts = { live: 0, expired: 0, unknown: 0, draining: 0 }
        for (const lease of Object.values(leases)) { counts[lease.state]++; if (lease.draining) counts.draining++ }
        return counts
      }
    }, { node: opts.config.nodeName, role: opts.config.nodeType })
    this.executor = new Executor({ env: name => this.envValue(name), secrets: this.secrets })
    registerGeneralCommands(this.executor, this)
    registerNodeCommands(this.executor, this)
    registerLedgerCommands(this.executor, this)
    registerProfileCommands(this.executor, this)
    registerAdmissionCommands(this.executor, this)
  }

  get role (): NodeConfig['nodeType'] { return this.config.nodeType }
  get name (): string { return this.config.nodeName }

  get ledger (): Ledger {
    if (this.currentLedger === undefined) {
      throw new LedgerMeshError('store_unavailable', 'no ledger store is connected (run `connect dbms blockchain where ...` first)')
    }
    return this.currentLedger
  }

  get hasLedger (): boolean { return this.currentLedger !== undefined }

  /**
   * `$NAME` in scripts: the config's effective values (defaults applied), the env file's keys,
   * then only the allow-listed process environment variables (PROCESS_ENV_ALLOWED), never the
   * rest of the process environment.
   */
  private envValue (name: string): string | undefined {
    return effectiveConfigEnv(this.config)[name] ?? this.config.env[name] ?? allowedProcessEnv(name)
  }

  /** Loads the identity and runs the role's start-up script. */
  async start (opts: { script?: string } = {}): Promise<void> {
    await mkdir(this.home, { recursive: true, mode: 0o700 })
    const identity = await loadOrCreateIdentity(this.home)
    this.signer = identity.signer
    this.log.info({ home: this.home, publicKey: this.signer.publicKey, created: identity.created }, 'node identity loaded')
    // The env as the node reads it; secret keys are redacted by the logger.
    this.log.debug({ source: this.config.source, env: this.config.env }, 'config loaded')
    this.executor.vars.set('local_scripts', SCRIPTS_DIR)
    this.executor.vars.set('hostname', hostname())
    const script = opts.script ?? join(SCRIPTS_DIR, `${this.role}.al`)
    this.log.info({ script }, 'running start-up script')
    await this.executor.run(`process ${JSON.stringify(script)}`, { via: 'script' })
    this.log.info('node started')
  }

  /** Opens the ledger on the store named by `connect dbms` (idempotent for the same store). */
  async connectLedger (store: { type: 'psql' | 'level', ip: string, port: number, user: string, password?: string, database: string }): Promise<Ledger> {
    if (this.currentLedger !== undefined) return this.currentLedger
    if (store.type === 'level' && this.config.db.type !== 'psql' && this.config.db.requested.toLowerCase() !== 'level') {
      this.log.info({ requested: this.config.db.requested }, `DB_TYPE=${this.config.db.requested}: the ledger uses the embedded LevelDB store`)
    }
    const ledgerStore = store.type === 'psql'
      ? openStore({ type: 'psql', host: store.ip, port: store.port, user: store.user, password: store.password, database: store.database })
      : openStore({ type: 'level', path: join(this.home, 'ledger'), durable: this.role === 'master' })
    const ledger = new Ledger({
      store: ledgerStore,
      log: this.log.child({ service: 'ledger' }),
      masterSigner: this.role === 'master' ? this.signer : undefined
    })
    try {
      await ledger.open()
    } catch (err) {
      // A replica's store is only a copy: when it is corrupt, set it aside and re-sync from
      // zero. The master's store is the original, so a master refuses to start instead.
      const code = err instanceof LedgerMeshError ? err.code : 'internal'
      if (this.role === 'master' || store.type !== 'level' || (code !== 'chain_broken' && code !== 'store_unavailable')) throw err
      const aside = join(this.home, `ledger.corrupt-${Date.now()}`)
      await ledgerStore.close().catch(() => {})
      await rename(join(this.home, 'ledger'), aside)
      this.log.warn({ err: errorMessage(err), movedTo: aside }, 'the local replica is corrupt: set aside, re-syncing from zero')
      this.replicaRecovery = { reason: errorMessage(err), at: new Date() }
      return await this.connectLedger(store)
    }
    this.currentLedger = ledger
    this.log.info({ store: ledgerStore.kind, location: ledgerStore.location, head: ledger.head.seq, policies: ledger.state.size }, 'ledger connected')
    return ledger
  }

  /**
   * Inserts a put or delete through the master. On the master it is ordered here; the result
   * comes once the write is durable.
   */
  async insertPolicy (op: LedgerOp, opts: { local: boolean, master?: string }): Promise<InsertResult> {
    const id = policyId(op.policy)
    const type = policyType(op.policy)
    try {
      if (this.ledger.isMaster) {
        checkSealedForMaster(op, this.signer)
        const entry = await this.ledger.submit(op)
        this.log.info({ id, type, op: op.op, seq: entry.seq }, 'policy accepted')
        this.metrics.inserts.inc({ result: 'accepted', reason: '' })
        return { id, seq: entry.seq, ledger: 'global' }
      }
      const result = await this.insertThroughMaster(op, opts)
      this.metrics.inserts.inc({ result: result.ledger === 'local' ? 'queued' : 'accepted', reason: '' })
      return result
    } catch (err) {
      this.metrics.inserts.inc({ result: 'rejected', reason: err instanceof LedgerMeshError ? err.code : 'internal' })
      this.log.warn({ id, type, op: op.op, code: (err as LedgerMeshError).code, err: errorMessage(err) }, 'policy rejected')
      throw err
    }
  }

  /**
   * A replica's insert: sent to the master over `/ledgermesh/insert/1.0.0`. With local=true
   * and the master unreachable, it waits in the durable outbox (visible here as "local") and
   * goes out when the master is back. On success the call returns once the replica itself
   * holds the entry (read-your-writes), or after a short wait if sync is slow.
   */
  private async insertThroughMaster (op: LedgerOp, opts: { local: boolean, master?: string }): Promise<InsertResult> {
    const id = policyId(op.policy)
    if (this.insertProtocol === undefined || !(this.sync instanceof Replicator)) {
      throw new LedgerMeshError('master_unreachable', 'blockchain sync is not running on this node (run blockchain sync first)')
    }
    try {
      const { seq } = await this.insertProtocol.submit(tcpAddress(opts.master ?? this.config.ledgerConn), op)
      this.log.info({ id, type: policyType(op.policy), seq }, 'policy accepted by the master')
      await this.ledger.waitForSeq(seq, READ_YOUR_WRITES_MS)
      return { id, seq, ledger: 'global' }
    } catch (err) {
      // local=true: anything but a refusal of this policy (the master unreachable, slow,
      // overloaded, its store failing) keeps the insert in the durable outbox. The master may
      // have committed it anyway; the outbox's re-submit then finds it already on the ledger.
      if (!opts.local || !(err instanceof LedgerMeshError) || err.code === 'duplicate_id' || isDefinitiveRefusal(err)) throw err
      await this.sync.keepLocal(op)
      this.log.warn({ id, type: policyType(op.policy), code: err.code, err: err.message }, 'the master did not take the insert now: kept in the outbox')
      void this.sync.flushOutbox()
      return { id, ledger: 'local' }
    }
  }

  /**
   * `run blockchain sync`: serves the sync protocol (every node can relay) and, on a replica,
   * keeps the replica current from its source and drains the outbox.
   */
  async startBlockchainSync (opts: { source: string, connection: string, interval: Duration }): Promise<Service> {
    if (this.sync !== undefined) return this.sync
    if (this.tcp?.running !== true) throw new LedgerMeshError('bad_command', 'run blockchain sync needs the p2p server: run tcp server first')
    const ledger = this.ledger
    const libp2p = this.tcp.libp2p
    const log = this.log.child({ service: 'sync' })
    this.syncProtocol = new SyncProtocol({ libp2p, ledger, log, onRefused: () => { this.metrics.unadmitted.inc({ what: 'sync' }) } })
    await this.syncProtocol.start()
    this.joinProtocol = new JoinProtocol({ libp2p, log: this.log.child({ service: 'admission' }) })
    this.insertProtocol = new InsertProtocol({
      libp2p,
      ledger,
      log: this.log.child({ service: 'insert' }),
      onServed: (code, reason) => {
        this.metrics.inserts.inc(code === undefined ? { result: 'accepted', reason: '' } : { result: 'rejected', reason: code })
        if (reason === 'not_admitted') this.metrics.unadmitted.inc({ what: 'insert' })
      },
      // the master keeps plain profile settings off the ledger (README, "Sealed settings")
      check: ledger.isMaster ? op => { checkSealedForMaster(op, this.signer) } : undefined
    })
    await this.insertProtocol.start()
    if (ledger.isMaster) await this.startGatekeeper(ledger, this.joinProtocol)
    const joinToken = this.config.joinToken
    const joinProtocol = this.joinProtocol
    const service: BlockchainSync | Replicator = ledger.isMaster
      ? new BlockchainSync({ source: 'master', connection: opts.connection, interval: opts.interval, isMaster: true })
      : new Replicator({
        ledger,
        sync: this.syncProtocol,
        insert: this.insertProtocol,
        outbox: await this.openOutbox(),
        scheduler: this.scheduler,
        log,
        source: opts.source,
        masterConn: opts.connection,
        interval: opts.interval,
        onOutboxDrop: drop => { this.metrics.outboxDropped.inc({ reason: drop.code }) },
        // JOIN_TOKEN: presented to the master on first contact, before the first pull
        join: joinToken === undefined
          ? undefined
          : async () => {
            const { seq } = await joinProtocol.join(tcpAddress(opts.connection), joinToken, this.name)
            this.log.info({ seq }, 'admitted to the network by the master')
          }
      })
    await service.start()
    this.sync = service
    return service
  }

  /** Master: serves joins and keeps the ledger's admission mode as ADMISSION says. */
  private async startGatekeeper (ledger: Ledger, joinProtocol: JoinProtocol): Promise<void> {
    const gatekeeper = new Gatekeeper({
      ledger,
      signer: this.signer,
      log: this.log.child({ service: 'admission' }),
      onRefused: () => { this.metrics.unadmitted.inc({ what: 'join' }) }
    })
    await joinProtocol.serve(gatekeeper.redeem)
    await gatekeeper.ensureMode(this.config.admission)
    this.gatekeeper = gatekeeper
  }

  /** `run allocator` (master): serves lease renewals and writes assignments. */
  async startAllocator (): Promise<Allocator> {
    if (this.allocator !== undefined) return this.allocator
    if (!this.hasLedger || !this.ledger.isMaster) throw new LedgerMeshError('bad_command', 'run allocator: only the master allocates (this node is a ' + this.role + ')')
    if (this.tcp?.running !== true) throw new LedgerMeshError('bad_command', 'run allocator needs the p2p server: run tcp server first')
    this.leaseProtocol ??= new LeaseProtocol({ libp2p: this.tcp.libp2p, log: this.log.child({ service: 'lease' }) })
    const allocator = new Allocator({
      ledger: this.ledger,
      signer: this.signer,
      lease: this.leaseProtocol,
      log: this.log.child({ service: 'allocator' }),
      ttlMs: this.config.leaseTtl.ms,
      graceMs: this.config.leaseGrace.ms,
      onUnadmitted: () => { this.metrics.unadmitted.inc({ what: 'lease' }) }
    })
    await allocator.start()
    this.allocator = allocator
    return allocator
  }

  /** `run operator` (worker): keeps the lease and runs the profiles assigned to this worker. */
  async startOperator (): Promise<Operator> {
    if (this.operator !== undefined) return this.operator
    if (this.role !== 'worker') throw new LedgerMeshError('bad_command', `run operator: only a worker runs profiles (this node is a ${this.role})`)
    if (this.tcp?.running !== true || !(this.sync instanceof Replicator)) {
      throw new LedgerMeshError('bad_command', 'run operator needs the p2p server and blockchain sync: run them first')
    }
    this.leaseProtocol ??= new LeaseProtocol({ libp2p: this.tcp.libp2p, log: this.log.child({ service: 'lease' }) })
    const operator = new Operator({
      ledger: this.ledger,
      lease: this.leaseProtocol,
      master: tcpAddress(this.config.ledgerConn),
      workerName: this.name,
      runners: this.config.profileRunners,
      // opens the profile settings the master sealed to this worker in its assignments
      signer: this.signer,
      stopGraceMs: this.config.profileStopGrace.ms,
      log: this.log.child({ service: 'operator' })
    })
    await operator.start()
    this.operator = operator
    return operator
  }

  /** The outbox of a replica; what it holds is shown locally as "ledger": "local". */
  private async openOutbox (): Promise<Outbox> {
    const outbox = new Outbox(join(this.home, 'outbox'))
    await outbox.open()
    this.outbox = outbox
    for (const op of await outbox.list()) this.ledger.state.addLocal(op.policy)
    return outbox
  }

  /** Starts a service once; the command that declares it is idempotent. */
  async startService<S extends Service> (slot: 'tcp' | 'rest', service: S): Promise<S> {
    const existing = this[slot]
    if (existing !== undefined) return existing as unknown as S
    await service.start()
    ;(this as Record<typeof slot, Service | undefined>)[slot] = service
    return service
  }

  processes (): Array<{ name: string } & ProcessStatus> {
    const services: Service[] = [this.tcp, this.rest, this.operator, this.sync, this.scheduler, this.allocator].filter((s): s is NonNullable<typeof s> => s !== undefined)
    const byName = new Map(services.map(s => [s.name, s.status()]))
    return PROCESS_NAMES.map(name => ({ name, ...(byName.get(name) ?? { status: 'Not declared' as const }) }))
  }

  /** `get processes where format=json`: AnyLog's shape, `{"TCP": {"Status": ..., "Details": ...}, ...}`. */
  processesJson (): Record<string, { Status: string, Details?: string }> {
    return Object.fromEntries(this.processes().map(p => [p.name, p.details === undefined ? { Status: p.status } : { Status: p.status, Details: p.details }]))
  }

  /** Asks the CLI to stop the node and exit with `code`. */
  requestExit (code = 0): void {
    this.emit('exit', code)
  }

  async stop (): Promise<void> {
    this.stopping ??= this.stopServices()
    await this.stopping
  }

  private async stopServices (): Promise<void> {
    // profiles stop first, while the lease still holds; then the rest
    for (const service of [this.operator, this.allocator, this.leaseProtocol, this.sync, this.rest, this.insertProtocol, this.syncProtocol, this.scheduler, this.tcp]) {
      if (service === undefined) continue
      try {
        await service.stop()
      } catch (err) {
        this.log.warn({ service: service.constructor.name, err: errorMessage(err) }, 'service did not stop cleanly')
      }
    }
    await this.outbox?.close().catch(err => this.log.warn({ err: errorMessage(err) }, 'outbox did not close cleanly'))
    await this.currentLedger?.close().catch(err => this.log.warn({ err: errorMessage(err) }, 'ledger did not close cleanly'))
    this.log.info('node stopped')
  }
}

/** The config keys with their effective values (defaults applied), as `$KEY` sees them. */
function effectiveConfigEnv (config: NodeConfig): Record<string, string> {
  const values: Record<string, string | number | undefined> = {
    NODE_TYPE: config.nodeType,
    NODE_NAME: config.nodeName,
    COMPANY_NAME: config.companyName,
    INTERNAL_IP: config.ip,
    EXTERNAL_IP: config.externalIp,
    ANYLOG_SERVER_PORT: config.serverPort,
    ANYLOG_REST_PORT: config.restPort,
    REST_BIND: config.restBind,
    LEDGER_CONN: config.ledgerConn,
    DB_TYPE: config.db.type,
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
    PROFILE_KINDS: config.profileKinds.join(',')
  }
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]))
}
