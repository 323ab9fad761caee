import { EventEmitter } from 'node:events'
import { mkdir } from 'node:fs/promises'
import { homedir, hostname } from 'node:os'
import { join } from 'node:path'
import { LedgerMeshError, errorMessage } from '../base/errors.js'
import { Executor } from '../commands/executor.js'
import type { InsertResult, NodePort, ProcessRow, ProfilesData, NodeStatus, NetworkData } from '../commands/port.js'
import { registerGeneralCommands } from '../commands/handlers/general.js'
import { registerNodeCommands } from '../commands/handlers/node.js'
import { registerAnyLogCommands } from '../commands/handlers/anylog.js'
import { registerScriptValueCommands } from '../commands/handlers/script-values.js'
import { registerLedgerCommands } from '../commands/handlers/ledger.js'
import { registerProfileCommands } from '../commands/handlers/profiles.js'
import { registerAdmissionCommands } from '../commands/handlers/admission.js'
import type { Ledger } from '../ledger/ledger.js'
import { type ConnectDbmsOptions, type LedgerStoreSpec, ledgerStoreSpec, openNodeLedger, watchForks } from './open-ledger.js'
import type { ForkReport, ForkWatch } from '../ledger/fork-watch.js'
import { WitnessedCheckpoint, type WitnessedView } from '../ledger/witnessed.js'
import { type NodeProtocols, nodeProtocolServices, startNodeProtocols } from './node-protocols.js'
import type { Witness } from '../ledger/tlog/witness.js'
import { nodeWitness } from '../services/witness-node.js'
import type { LedgerOp } from '../ledger/entry.js'
import type { Ed25519Signer } from '../policies/keys.js'
import { BlockchainSync } from '../services/blockchain-sync.js'
import { Replicator } from '../services/replicator.js'
import { trustedMasterCheck } from './trusted-masters.js'
import { type LightReplica, type Multiaddr, startLight } from './light-worker.js'
import type { ReplicaSync } from '../services/replica-sync.js'
import { Outbox } from '../ledger/outbox.js'
import { P2PHost } from '../services/p2p.js'
import { RestServer } from '../services/rest/server.js'
import { Scheduler } from '../services/scheduler.js'
import { NodeMetrics } from '../services/metrics.js'
import { LeaseProtocol } from '../protocols/lease/index.js'
import type { Operator } from '../services/operator/index.js'
import { newOperator, operatorKinds } from './operators.js'
import { ProfileReports } from '../services/profile-reports.js'
import type { Gatekeeper } from '../services/admission/index.js'
import type { PgStore } from '../ledger/pg-store.js'
import { MasterServices } from './master-services.js'
import type { ProcessStatus } from '../services/service.js'
import { WritePath } from '../services/write-path.js'
import { configSecrets, type NodeConfig } from './config.js'
import type { Duration } from '../base/duration.js'
import { ALL_INTERFACES, listenAddress, type Bind } from '../net/bind.js'
import { SecretMask, allowedProcessEnv } from '../base/secrets.js'
import { libp2pPrivateKey, loadOrCreateIdentity } from './identity.js'
import type { Logger } from '../base/logger.js'

export { PACKAGE_ROOT, SCRIPTS_DIR } from './paths.js'
import { SCRIPTS_DIR } from './paths.js'
import { effectiveConfigEnv, metricsSource, nodeStatus, processRows, processesJson, profilesData, type NodeView } from './status.js'
import { networkData } from './network-view.js'
import type { DatabaseWatch } from '../services/database-watch.js'
import { logAdmission } from './admission-notice.js'
export { PROCESS_NAMES } from './status.js'

export function defaultHome (nodeName: string): string {
  return process.env.LEDGERMESH_HOME ?? join(homedir(), '.ledgermesh', nodeName)
}

interface NodeEvents {
  /** `exit node` was asked for, with this exit code */
  exit: [code: number]
}

/**
 * One ledgermesh node: its config, identity, command executor, ledger and services.
 * Start-up runs the role's script (scripts/<role>.al) through the same executor the REPL
 * and REST use; the script's commands start the services. The node is the only place that
 * builds and wires services: commands (and the REST server) reach it through NodePort.
 */
export class LedgerMeshNode extends EventEmitter<NodeEvents> implements NodePort {
  readonly config: NodeConfig
  readonly home: string
  readonly log: Logger
  readonly executor: Executor
  readonly scheduler: Scheduler
  readonly metrics: NodeMetrics
  readonly startedAt = new Date()
  signer!: Ed25519Signer
  /** puts and deletes: ordered here on the master, through the master on a replica */
  private readonly writePath: WritePath
  private tcp?: P2PHost
  private rest?: RestServer
  private sync?: ReplicaSync
  /** inserts and lease renewals go only to masters this node's ledger trusts */
  private readonly checkMaster = trustedMasterCheck(() => this.light ?? this.currentLedger)
  /** LEDGER_MODE=light: the policies this worker needs, with proofs (light-worker.ts) */
  private light?: LightReplica
  /** the protocols every node serves once `run blockchain sync` starts */
  private protocols?: NodeProtocols
  private leaseProtocol?: LeaseProtocol
  /** master: admission, the allocator and, over a shared PostgreSQL, which master writes */
  private master?: MasterServices
  /** worker, slave (both on a stand-alone node): the supervisor of what is assigned here */
  private readonly operators = new Map<'worker' | 'slave', Operator>()
  /** slave: which worker runs which profile, from the profiles' heartbeats */
  private readonly profileReports = new ProfileReports()
  private outbox?: Outbox
  /** set when the replica was found corrupt at start and rebuilt from its source */
  private replicaRecovery?: { reason: string, at: Date }
  /** a master on PostgreSQL: the watch over its database */
  private database?: DatabaseWatch
  private currentLedger?: Ledger
  /** the watch over the checkpoints this node is shown (with the ledger), and their gossip */
  private forks?: ForkWatch
  /** the latest checkpoint a quorum of the network's witnesses cosigned, with the ledger */
  private witnessedCheckpoint?: WitnessedCheckpoint
  /** WITNESS=true: this node's witness (REST and the witness protocol) */
  private witness?: Witness
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
    this.metrics = new NodeMetrics(metricsSource(() => this.view()), { node: opts.config.nodeName, role: opts.config.nodeType })
    this.writePath = new WritePath({
      ledger: () => this.ledger,
      signer: () => this.signer,
      sync: () => this.sync,
      insert: () => this.protocols?.insert,
      masterConns: opts.config.ledgerConns,
      learnMasters: opts.config.mastersFromLedger,
      ...(opts.config.ledgerMode === 'light' ? { masterSource: () => this.light, readYourWrites: false } : {}),
      metrics: this.metrics,
      log: this.log,
      standby: () => this.master?.activeMaster(),
      keepUnadmitted: opts.config.joinToken === undefined
    })
    this.executor = new Executor({ env: name => this.envValue(name), secrets: this.secrets, onError: (where, text) => this.log.warn({ where }, `command failed: ${text}`) })
    registerGeneralCommands(this.executor, this)
    registerNodeCommands(this.executor, this)
    registerLedgerCommands(this.executor, this)
    registerProfileCommands(this.executor, this)
    registerAdmissionCommands(this.executor, this)
    registerAnyLogCommands(this.executor, this)
    registerScriptValueCommands(this.executor, this)
  }

  get role (): NodeConfig['role'] { return this.config.role }
  get roles (): NodeConfig['roles'] { return this.config.roles }
  get name (): string { return this.config.nodeName }

  get ledger (): Ledger {
    if (this.currentLedger === undefined) {
      throw new LedgerMeshError('store_unavailable', 'no ledger store is connected (run `connect dbms blockchain where ...` first)')
    }
    return this.currentLedger
  }

  get hasLedger (): boolean { return this.currentLedger !== undefined }
  get witnessed (): WitnessedView | undefined { return this.witnessedCheckpoint?.latest }
  async resetFork (): Promise<ForkReport | undefined> { return await this.forks?.reset() }
  get ledgerDatabase (): string { return this.config.db.name }
  setLogLevel (level: string): void { this.log.level = level }

  async seedLedger (): Promise<{ seq: number, pulled: boolean }> {
    const sync = this.sync
    const pulled = sync !== undefined && sync.keepsReplica
    if (pulled) await sync.pullOnce()
    return { seq: this.hasLedger ? this.ledger.head.seq : 0, pulled }
  }

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
    if (this.config.witness) this.witness = nodeWitness({ ledger: () => this.currentLedger, signer: this.signer, forks: () => this.forks, log: this.log.child({ service: 'witness' }) })
    this.log.info({ home: this.home, publicKey: this.signer.publicKey, created: identity.created }, 'node identity loaded')
    // The env as the node reads it; secret keys are redacted by the logger.
    this.log.debug({ source: this.config.source, env: this.config.env }, 'config loaded')
    this.executor.vars.set('local_scripts', SCRIPTS_DIR)
    this.executor.vars.set('hostname', hostname())
    // AnyLog's dictionary starts with the node's addresses; its scripts read !ip and !external_ip
    for (const [name, value] of [['ip', this.config.ip], ['external_ip', this.config.externalIp]]) this.executor.vars.set(name, value)
    // a node holding several roles (stand-alone) runs each role's script in turn
    const script = opts.script ?? join(SCRIPTS_DIR, this.config.roles.length > 1 ? 'standalone.al' : `${this.role}.al`)
    this.log.info({ script }, 'running start-up script')
    await this.executor.run(`process ${JSON.stringify(script)}`, { via: 'script' })
    this.log.info('node started')
  }

  /** `connect dbms`: options left out take the config's DB_* values. */
  async connectDbms (opts: ConnectDbmsOptions): Promise<Ledger> {
    return await this.connectLedger(ledgerStoreSpec(this.config.db, opts))
  }

  /** Opens the ledger on the store named by `connect dbms` (idempotent for the same store). */
  private async connectLedger (store: LedgerStoreSpec): Promise<Ledger> {
    if (this.currentLedger !== undefined) return this.currentLedger
    if (store.type === 'level' && this.config.db.type !== 'psql' && this.config.db.requested.toLowerCase() !== 'level') {
      this.log.info({ requested: this.config.db.requested }, `DB_TYPE=${this.config.db.requested}: the ledger uses the embedded LevelDB store`)
    }
    const opened = await openNodeLedger({ store, home: this.home, isMaster: this.role === 'master', signer: this.signer, log: this.log, light: this.config.ledgerMode === 'light' })
    const { ledger } = opened
    const ledgerStore = ledger.store
    if (opened.recovery !== undefined) this.replicaRecovery = opened.recovery
    this.database = opened.database
    this.forks = await watchForks(ledger, this.log, () => this.protocols?.gossip)
    this.witnessedCheckpoint = new WitnessedCheckpoint(ledger)
    await this.witnessedCheckpoint.load()
    this.currentLedger = ledger
    this.log.info({ store: ledgerStore.kind, location: ledgerStore.location, head: ledger.head.seq, policies: ledger.state.size }, 'ledger connected')
    if (this.role === 'master') {
      this.master = new MasterServices({ config: this.config, signer: this.signer, ledger, metrics: this.metrics, log: this.log, write: async op => await this.insert(op, { local: false }), witnessed: () => this.witnessed })
      // several masters may share a PostgreSQL database: the writer lease decides which writes.
      // The lease row shows the others where to forward: the address they reach (EXTERNAL_IP),
      // not the one this host listens on behind a NAT or a relay.
      if (ledgerStore.kind === 'psql') await this.master.startRole(ledgerStore as PgStore, `${this.config.externalIp}:${this.tcp?.running === true ? this.tcp.port : this.config.serverPort}`)
    }
    return ledger
  }

  insert (op: LedgerOp, opts: { local: boolean, master?: string }): Promise<InsertResult> {
    return this.writePath.insert(op, opts)
  }

  /**
   * `run blockchain sync`: serves the sync protocol (every node can relay) and, on a replica,
   * keeps the replica current from its source and drains the outbox.
   */
  async startBlockchainSync (args: { source?: string, connection?: string, interval?: Duration }): Promise<{ source: string, connection: string, interval: Duration }> {
    const opts = { source: args.source ?? this.config.blockchainSource, connection: args.connection ?? this.config.ledgerConn, interval: args.interval ?? this.config.blockchainSync }
    if (this.sync !== undefined) return opts
    if (this.tcp?.running !== true) throw new LedgerMeshError('bad_command', 'run blockchain sync needs the p2p server: run tcp server first')
    const ledger = this.ledger
    const protocols = await startNodeProtocols({
      libp2p: this.tcp.libp2p,
      ledger,
      forks: this.forks!,
      witnessed: this.witnessedCheckpoint!,
      witness: this.witness,
      cosign: this.master === undefined ? undefined : { isWriter: () => this.master?.isWriter === true },
      signer: this.signer,
      log: this.log,
      metrics: this.metrics,
      joinToken: this.config.joinToken,
      checkMaster: this.checkMaster,
      servingRefused: () => this.sync instanceof Replicator ? this.sync.servingRefused : undefined,
      checkWriter: () => { this.master?.checkWriter() },
      light: this.config.ledgerMode === 'light',
      home: this.home,
      snapshots: { bootstrap: this.config.bootstrap, sources: this.config.snapshotSources, masters: this.config.ledgerConns, mirror: this.config.tilesMirror, intervalMs: this.config.snapshotInterval.ms, retain: this.config.retain }
    })
    this.protocols = protocols
    const log = this.log.child({ service: 'sync' })
    if (this.master !== undefined) await this.master.startGatekeeper(protocols.join)
    const [joinToken, joinProtocol, mirror] = [this.config.joinToken, protocols.join, this.config.tilesMirror]
    const join = joinToken === undefined ? undefined : async (master: Multiaddr): Promise<void> => { this.log.info({ seq: (await joinProtocol.join(master, joinToken, this.name)).seq }, 'admitted to the network by the master') }
    const light = this.config.ledgerMode === 'light' ? startLight({ worker: this.name, ledger, light: protocols.light, masters: this.writePath.masters, metrics: this.metrics, log: this.log, join }) : undefined
    this.light = light?.replica
    const service: ReplicaSync = light !== undefined ? light.sync : ledger.isMaster
      ? new BlockchainSync({ source: 'master', connection: opts.connection, interval: opts.interval, isMaster: true })
      : new Replicator({
        ledger,
        sync: protocols.sync,
        insert: protocols.insert,
        outbox: await this.openOutbox(),
        scheduler: this.scheduler,
        log,
        source: opts.source,
        masters: this.writePath.mastersAt(opts.connection),
        interval: opts.interval,
        onOutboxDrop: drop => { this.metrics.outboxDropped.inc({ reason: drop.code }) },
        tilesMirror: mirror,
        // without JOIN_TOKEN, a node not admitted yet keeps running (and its declaration) for `admit node`
        keepUnadmitted: joinToken === undefined,
        onAdmission: logAdmission(this.log, () => this.signer.publicKey),
        // JOIN_TOKEN: presented to the master on first contact, before the first pull
        join,
        onCompacted: async source => { await protocols.snapshots?.rebootstrap(source) }
      })
    await service.start()
    this.sync = service
    return opts
  }

  /** `run allocator` (master): serves lease renewals and writes assignments (on the active master). */
  async startAllocator (): Promise<ProcessStatus> {
    if (!this.hasLedger || !this.ledger.isMaster || this.master === undefined) throw new LedgerMeshError('bad_command', 'run allocator: only the master allocates (this node is a ' + this.role + ')')
    if (this.tcp?.running !== true) throw new LedgerMeshError('bad_command', 'run allocator needs the p2p server: run tcp server first')
    this.leaseProtocol ??= new LeaseProtocol({ libp2p: this.tcp.libp2p, log: this.log.child({ service: 'lease' }), checkPeer: this.checkMaster })
    return await this.master.startAllocator(this.leaseProtocol)
  }

  /**
   * `run operator` (worker, slave): keeps the lease and runs the profiles (sub-account
   * processes) assigned here. A node holding both roles (stand-alone) runs one operator for each.
   */
  async startOperator (): Promise<{ worker: string, role: string, kinds: string[] }> {
    const roles = this.config.roles.filter((r): r is 'worker' | 'slave' => r === 'worker' || r === 'slave')
    if (roles.length === 0) throw new LedgerMeshError('bad_command', `run operator: only a worker (profiles) or a slave (sub-account processes) runs an operator (this node is a ${this.role})`)
    const started = { worker: this.name, role: roles.join(','), kinds: roles.flatMap(role => operatorKinds(role, this.config)) }
    if (roles.every(role => this.operators.has(role))) return started
    // a stand-alone node's operators read the master's own ledger: no replica to keep
    if (this.tcp?.running !== true || (this.sync?.keepsReplica !== true && !(this.sync !== undefined && this.ledger.isMaster))) {
      throw new LedgerMeshError('bad_command', 'run operator needs the p2p server and blockchain sync: run them first')
    }
    this.leaseProtocol ??= new LeaseProtocol({ libp2p: this.tcp.libp2p, log: this.log.child({ service: 'lease' }), checkPeer: this.checkMaster })
    for (const role of roles) {
      if (this.operators.has(role)) continue
      const operator = newOperator(role, { config: this.config, ledger: this.light ?? this.ledger, checkGrant: this.light?.checkGrant, lease: this.leaseProtocol, masters: this.writePath.masters, signer: this.signer, log: this.log.child({ service: roles.length > 1 ? `${role}-operator` : 'operator' }) })
      await operator.start()
      this.operators.set(role, operator)
    }
    return started
  }

  async approveMaster (key: string): Promise<{ key: string, name: string, seq: number | undefined, already: boolean }> {
    if (this.master === undefined) throw new LedgerMeshError('bad_command', `approve master: only a master declares other masters (this node is a ${this.role})`)
    const made = await this.master.masterKeyPolicy(key)
    if ('already' in made) return { key, name: made.name, seq: undefined, already: true }
    const { seq } = await this.insert({ op: 'put', policy: made.policy }, { local: false })
    return { key, name: made.name, seq, already: false }
  }

  /** `worker drain` / `worker resume` (`slave drain` / `slave resume`): false when this node runs no operator. */
  async setDraining (draining: boolean): Promise<boolean> {
    if (this.operators.size === 0) return false
    for (const operator of this.operators.values()) await operator.setDraining(draining)
    return true
  }

  get admission (): Gatekeeper | undefined { return this.master?.admission }

  /** The outbox of a replica; what it holds is shown locally as "ledger": "local". */
  private async openOutbox (): Promise<Outbox> {
    const outbox = new Outbox(join(this.home, 'outbox'))
    await outbox.open()
    this.outbox = outbox
    for (const op of await outbox.list()) this.ledger.state.addLocal(op.policy)
    return outbox
  }

  /**
   * `run tcp server`: the p2p host, started once (the command that declares it is idempotent).
   * It listens where `bind` says (see bindAddress); without `bind` or `ip`, as TCP_BIND says.
   */
  async startTcpServer (opts: { ip?: string, port?: number, bind?: Bind }): Promise<{ ip: string, port: number, peerId: string }> {
    const ip = this.bindAddress(opts, this.config.tcpBind)
    this.tcp ??= await started(new P2PHost({
      privateKey: libp2pPrivateKey(this.signer),
      ip,
      port: opts.port ?? this.config.serverPort,
      allow: [...new Set([ip, this.config.ip, this.config.externalIp, '127.0.0.1'])].filter(a => a !== ALL_INTERFACES),
      networkKey: this.config.networkKey,
      log: this.log.child({ service: 'p2p' })
    }))
    return { ip, port: this.tcp.port, peerId: this.tcp.peerId }
  }

  /**
   * `run rest server`: the AnyLog command interface and the JSON API, started once. It listens
   * where `bind` says (see bindAddress); without `bind` or `ip`, as REST_BIND says (default loopback).
   */
  async startRestServer (opts: { ip?: string, port?: number, bind?: Bind, timeoutSeconds?: number }): Promise<{ ip: string, port: number | undefined }> {
    const ip = this.bindAddress(opts, this.config.restBind)
    this.rest ??= await started(new RestServer({
      ip,
      port: opts.port ?? this.config.restPort,
      timeoutSeconds: opts.timeoutSeconds,
      executor: this.executor,
      log: this.log,
      node: this,
      metrics: this.metrics,
      profileReports: this.profileReports,
      sync: () => this.sync,
      syncIntervalMs: this.config.blockchainSync.ms,
      token: this.config.restToken,
      readAuth: this.config.restReadAuth, witness: this.witness
    }))
    return { ip, port: this.rest.port }
  }

  /**
   * A server's listen address, as AnyLog's `run ... server where internal_ip=... and bind=...`:
   * bind=true listens on `ip` (default INTERNAL_IP) only, false on every interface, an address
   * on that address; without `bind`, on `ip`, else as the config's setting says.
   */
  private bindAddress (opts: { ip?: string, bind?: Bind }, setting: Bind): string {
    if (opts.bind === undefined && opts.ip !== undefined) return opts.ip
    return listenAddress(opts.bind ?? setting, opts.ip ?? this.config.ip)
  }

  async runScheduler (id: number): Promise<void> { await this.scheduler.runScheduler(id) }

  processes (): ProcessRow[] { return processRows(this.view()) }
  processesJson (): Record<string, { Status: string, Details?: string }> { return processesJson(this.processes()) }
  status (): NodeStatus { return nodeStatus(this.view()) }
  profiles (): ProfilesData | undefined { return profilesData(this.view()) }
  network (): NetworkData { return networkData(this.view()) }

  /** What the node's reports read of it (status.ts). */
  private view (): NodeView {
    const { config, signer, startedAt, currentLedger: ledger, forks, replicaRecovery, scheduler, profileReports, tcp, rest, sync, master, database } = this
    return { config, signer, startedAt, ledger, forks, replicaRecovery, database, scheduler, profileReports, tcp, rest, sync, syncStats: this.protocols?.sync.stats, syncPeers: this.protocols?.sync.peers, master, operators: this.operators, snapshots: this.protocols?.snapshots?.summary() }
  }

  /** Asks the CLI to stop the node and exit with `code`. */
  exit (code = 0): void { this.emit('exit', code) }

  async stop (): Promise<void> {
    this.stopping ??= this.stopServices()
    await this.stopping
  }

  private async stopServices (): Promise<void> {
    // profiles stop first, while the lease still holds; then the rest
    for (const service of [...this.operators.values(), this.master, this.leaseProtocol, this.sync, ...nodeProtocolServices(this.protocols), this.rest, this.scheduler, this.tcp]) {
      if (service === undefined) continue
      try {
        await service.stop()
      } catch (err) {
        this.log.warn({ service: service.constructor.name, err: errorMessage(err) }, 'service did not stop cleanly')
      }
    }
    await this.database?.stop()
    await this.outbox?.close().catch(err => this.log.warn({ err: errorMessage(err) }, 'outbox did not close cleanly'))
    await this.currentLedger?.close().catch(err => this.log.warn({ err: errorMessage(err) }, 'ledger did not close cleanly'))
    this.log.info('node stopped')
  }
}

/** Starts a service and answers with it. */
async function started<S extends { start: () => Promise<void> }> (service: S): Promise<S> {
  await service.start()
  return service
}
