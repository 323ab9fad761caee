import { setTimeout as sleep } from 'node:timers/promises'
import { ensureWitnessPolicy } from '../services/cosigner.js'
import { LedgerMeshError, errorMessage } from '../base/errors.js'
import type { LedgerOp, Policy } from '../policies/policy.js'
import { preparePolicy } from '../policies/prepare.js'
import type { Logger } from '../base/logger.js'
import type { Ledger } from '../ledger/ledger.js'
import type { PgStore } from '../ledger/pg-store.js'
import type { Ed25519Signer } from '../policies/keys.js'
import { Allocator } from '../services/allocation/index.js'
import { Gatekeeper, type JoinProtocol } from '../services/admission/index.js'
import { MasterRole } from '../services/master-role.js'
import { resealForMasters, settingsRequests, touchesSettingsCopies } from '../services/settings-copies.js'
import { policyBody, policyType } from '../policies/policy.js'
import type { Entry } from '../ledger/entry.js'
import type { NodeMetrics } from '../services/metrics.js'
import type { LeaseProtocol } from '../protocols/lease/index.js'
import type { ProcessStatus } from '../services/service.js'
import type { NodeConfig } from './config.js'

/** How long a new master waits at start for the active master to declare its key (MASTER_APPROVAL=auto). */
const TRUST_WAIT_MS = 15_000

export interface MasterServicesOptions {
  config: NodeConfig
  signer: Ed25519Signer
  ledger: Ledger
  metrics: NodeMetrics
  log: Logger
  /** sends a write through the node's write path (deferred writes go out with it once trusted) */
  write: (op: LedgerOp) => Promise<{ seq?: number }>
  /** the latest witnessed checkpoint the node holds: a light worker's lease answer carries it when it is the current one */
  witnessed?: () => { size: number, note: string } | undefined
}

/**
 * The master's own services: admission (the gatekeeper), the allocator, and, over a
 * PostgreSQL database other masters may share, the master role that decides which master
 * writes. The services that write to the ledger run on the active master only: a standby
 * serves joins and lease renewals with `not_active` (naming the active master), and starts
 * them when it takes over. The allocator of a new active master starts with every worker's
 * lease unknown, so no profile moves before its worker had TTL + grace to renew.
 */
export class MasterServices {
  private role?: MasterRole
  private allocator?: Allocator
  private gatekeeper?: Gatekeeper
  private leaseProtocol?: LeaseProtocol
  private allocatorWanted = false
  /** `local=true` writes of a master whose key is not trusted yet: sent once it is */
  private readonly deferred: LedgerOp[] = []
  /** the settings-copies run in progress, and whether another is due after it */
  private resealing?: Promise<void>
  private resealDue = false
  /** profiles this master asked a settings copy for (once per profile id while it runs) */
  private readonly requested = new Set<string>()
  /** activation and stand-down run one at a time, in order */
  private transition: Promise<void> = Promise.resolve()

  constructor (private readonly opts: MasterServicesOptions) {}

  /** Whether this master writes: always for a single master, the lease holder among several. */
  get isWriter (): boolean { return this.role === undefined || this.role.isActive }
  get masterRole (): MasterRole | undefined { return this.role }
  get admission (): Gatekeeper | undefined { return this.gatekeeper }
  get runningAllocator (): Allocator | undefined { return this.allocator }

  /**
   * While this master stands by: where its writes go (the active master's address, null when
   * none holds the lease), and whether the ledger trusts its key yet. Undefined while it writes.
   */
  activeMaster (): { address: string | null, trusted: boolean, defer: (op: LedgerOp) => void } | undefined {
    if (this.isWriter) return undefined
    return { address: this.role!.activeAddress, trusted: this.role!.trusted, defer: op => { this.deferred.push(op) } }
  }

  /** Refuses a write here while this master stands by (the error names the active master). */
  checkWriter (): void {
    if (!this.isWriter) throw this.role!.notActiveError()
  }

  /** DB_TYPE=psql: register this master, follow the writer, and run for the writer lease. */
  async startRole (store: PgStore, address: string): Promise<void> {
    if (this.role !== undefined) return
    const { config, signer, ledger, log } = this.opts
    const role = new MasterRole({
      ledger,
      store,
      signer,
      name: config.nodeName,
      address,
      leaseTtlMs: config.masterLeaseTtl.ms,
      approval: config.masterApproval,
      log: log.child({ service: 'master-role' })
    })
    this.role = role
    role.on('trusted', () => { void this.sendDeferred().then(() => { this.requestCopies(ledger.state.policiesOfType('profile')) }) })
    ledger.on('appended', this.onAppended)
    role.on('active', active => { this.transition = this.transition.then(() => this.onActive(active)) })
    await role.start()
    // A master joining a ledger another master began waits (bounded) until the active master
    // declared its key: its own declaration and writes are refused until then.
    if (!role.trusted) {
      const waitMs = config.masterApproval === 'auto' ? TRUST_WAIT_MS : 0
      const deadline = performance.now() + waitMs
      while (!role.trusted && performance.now() < deadline) await sleep(100)
      if (!role.trusted) {
        log.warn({ key: signer.publicKey }, config.masterApproval === 'auto'
          ? 'this master\'s key is registered in the database but no active master declared it yet: it stands by until one does'
          : 'MASTER_APPROVAL=manual: this master stands by until an admin runs `approve master where key = ' + signer.publicKey + '`')
      }
    }
    await this.transition
  }

  /** Admission: serves joins (the active master redeems them) and keeps ADMISSION's mode. */
  async startGatekeeper (joinProtocol: JoinProtocol): Promise<void> {
    if (this.gatekeeper !== undefined) return
    const { signer, ledger, metrics, log } = this.opts
    const gatekeeper = new Gatekeeper({
      ledger,
      signer,
      log: log.child({ service: 'admission' }),
      onRefused: () => { metrics.unadmitted.inc({ what: 'join' }) },
      // on a standby, `create join token`, `admit node` and `revoke node` go to the active master
      submit: async op => this.isWriter ? await ledger.submit(op) : await this.opts.write(op)
    })
    await joinProtocol.serve(async (...args) => { this.checkWriter(); return await gatekeeper.redeem(...args) })
    this.gatekeeper = gatekeeper
    if (this.isWriter) {
      await gatekeeper.ensureMode(this.opts.config.admission)
      await ensureWitnessPolicy(ledger, signer, this.opts.config.witnesses, async op => await ledger.submit(op))
    }
  }

  /** `run allocator`: starts now on the writer; a standby starts it when it takes over. */
  async startAllocator (leaseProtocol: LeaseProtocol): Promise<ProcessStatus> {
    this.leaseProtocol = leaseProtocol
    this.allocatorWanted = true
    await this.transition
    if (this.isWriter) await this.runAllocator()
    else await this.refuseLeases()
    return this.allocatorStatus()
  }

  allocatorStatus (): ProcessStatus {
    if (this.allocator !== undefined) return this.allocator.status()
    if (this.allocatorWanted) return { status: 'Running', details: 'Standby: allocates once this master holds the writer lease' }
    return { status: 'Not declared' }
  }

  /** `approve master`: the master_key policy declaring a master registered in the database. */
  async masterKeyPolicy (key: string): Promise<{ name: string, policy: Policy } | { name: string, already: true }> {
    if (this.role === undefined) throw new LedgerMeshError('bad_command', 'approve master: only a master over a PostgreSQL database shares its ledger with other masters (DB_TYPE=psql)')
    const registered = (await this.role.registeredMasters()).find(m => m.key === key)
    if (registered === undefined) throw new LedgerMeshError('not_found', `approve master: no master with key ${key.slice(0, 12)}… registered in this database (a master registers when it starts with the same DB_* settings)`)
    if (this.opts.ledger.masterKeys.includes(key)) return { name: registered.name, already: true }
    return { name: registered.name, policy: preparePolicy({ master_key: { key, name: registered.name, address: registered.address } }, this.opts.signer) }
  }

  async stop (): Promise<void> {
    this.opts.ledger.off('appended', this.onAppended)
    await this.role?.stop()
    await this.resealing
    await this.transition
    await this.allocator?.stop()
    await this.leaseProtocol?.stop()
  }

  /**
   * New master keys or profiles: the active master seals copies of settings for the keys a box
   * lacks; a standby checks that the new profiles' settings open for it, and asks for a copy
   * where they do not.
   */
  private readonly onAppended = (entries: Entry[]): void => {
    if (this.role?.isActive === true && touchesSettingsCopies(entries)) this.reseal()
    if (this.role?.isActive === false && this.role.trusted) {
      const profiles = entries.filter(e => e.op === 'put' && policyType(e.policy) === 'profile').map(e => e.policy)
      if (profiles.length > 0) this.requestCopies(profiles)
    }
  }

  /** A standby's settings requests for `profiles` whose settings do not open for it (settingsRequests). */
  private requestCopies (profiles: Iterable<Policy>): void {
    const { ledger, signer, log } = this.opts
    if (this.role?.isActive !== false) return
    const fresh = [...profiles].filter(p => !this.requested.has(String(policyBody(p).id)))
    for (const op of settingsRequests(ledger, fresh, signer)) {
      const body = policyBody(op.policy)
      this.requested.add(String(body.profile_id))
      log.warn({ profile: body.profile, profile_id: body.profile_id }, 'this master cannot open a profile\'s settings addressed to it: asking the active master for a copy (settings_request)')
      this.opts.write(op).catch((err: unknown) => {
        this.requested.delete(String(body.profile_id))
        log.warn({ profile: body.profile, err: errorMessage(err) }, 'asking for a settings copy failed (asked again when the profile changes or this master restarts)')
      })
    }
  }

  /** One run of resealForMasters at a time; a run asked for during one follows it. */
  private reseal (): void {
    if (this.resealing !== undefined) { this.resealDue = true; return }
    const { ledger, signer, log } = this.opts
    this.resealing = resealForMasters({ ledger, signer, log: log.child({ service: 'settings-copies' }) })
      .then(() => {}, (err: unknown) => { log.warn({ err: errorMessage(err) }, 'sealing settings copies for the masters failed (tried again on the next change)') })
      .finally(() => {
        this.resealing = undefined
        if (this.resealDue && this.role?.isActive === true) { this.resealDue = false; this.reseal() }
      })
  }

  /** The writes this master made before its key was trusted (its own declaration), sent now. */
  private async sendDeferred (): Promise<void> {
    for (const op of this.deferred.splice(0)) {
      await this.opts.write(op).catch((err: unknown) => { this.opts.log.warn({ err: errorMessage(err) }, 'a write deferred until this master was trusted failed') })
    }
  }

  /** A standby serves lease renewals with `not_active` naming the active master, so workers go there. */
  private async refuseLeases (): Promise<void> {
    const role = this.role
    if (role !== undefined) await this.leaseProtocol?.serve(async () => { throw role.notActiveError() })
  }

  private async runAllocator (): Promise<void> {
    if (this.allocator !== undefined || this.leaseProtocol === undefined) return
    const { config, signer, ledger, metrics, log } = this.opts
    // a standby's not_active handler gives way to the allocator's grantor
    await this.leaseProtocol.stop()
    const allocator = new Allocator({
      ledger,
      signer,
      lease: this.leaseProtocol,
      log: log.child({ service: 'allocator' }),
      ttlMs: config.leaseTtl.ms,
      graceMs: config.leaseGrace.ms,
      onUnadmitted: () => { metrics.unadmitted.inc({ what: 'lease' }) },
      grantRefused: () => this.role === undefined || this.role.holdsLease ? undefined : 'its writer lease is not confirmed (the database did not answer in time)',
      witnessed: this.opts.witnessed
    })
    await allocator.start()
    this.allocator = allocator
  }

  private async onActive (active: boolean): Promise<void> {
    const { log, config } = this.opts
    try {
      if (active) {
        await this.gatekeeper?.ensureMode(config.admission)
        this.reseal()
        if (this.allocatorWanted) await this.runAllocator()
      } else {
        const allocator = this.allocator
        this.allocator = undefined
        await allocator?.stop()
        if (this.allocatorWanted) await this.refuseLeases()
      }
    } catch (err) {
      log.error({ err: errorMessage(err), active }, active ? 'taking over as the active master failed' : 'standing down failed')
    }
  }
}

