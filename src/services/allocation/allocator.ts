import { settleAll } from '../../base/settle.js'
import { LedgerMeshError, errorMessage } from '../../base/errors.js'
import type { Ledger } from '../../ledger/ledger.js'
import type { Entry } from '../../ledger/entry.js'
import type { Logger } from '../../base/logger.js'
import type { Signer } from '../../policies/keys.js'
import { type Policy, type PolicyBody, policyBody, policyType } from '../../policies/policy.js'
import { preparePolicy, prepareTombstone } from '../../policies/prepare.js'
import { type JsonObject, type SealKey, sealTo } from '../../policies/seal.js'
import { assignmentContext, hasSettings } from '../../policies/sealed-settings.js'
import type { LeaseGrant, LeaseProtocol, LeaseRequest, LeaseRole } from '../../protocols/lease/index.js'
import type { ProcessStatus, Service } from '../service.js'
import { openSettingsFor } from '../settings-copies.js'
import { type Plan, type PlacementInput, planPlacement } from './placement.js'
import { PlacementFeed, placementInputFromState } from './placement-feed.js'
import { type LeaseRow, LeaseTable } from './lease-table.js'
import { Releases } from './releases.js'
import { lightGrant } from './light-grant.js'

/** Types that can make a profile's settings open for this master after they did not (a copy for its key, trust in a copy's author). */
const OPENING_TYPES: ReadonlySet<string> = new Set(['settings_copy', 'master_key'])

/** How often lapsed leases are looked for; the wait after a failed allocation round before the next. */
const TICK_MS = 250
const RETRY_MS = 1000
/** How often a round is a full one (planPlacement over the whole ledger), checked against the incremental placement (incremental.ts) of the rounds between. */
const FULL_ROUND_MS = 60_000

export interface AllocatorOptions {
  ledger: Ledger
  /** the master's key: assignments are signed with it, and profile settings (or their copies for it) opened with it */
  signer: Signer & SealKey
  lease: LeaseProtocol
  log: Logger
  ttlMs: number
  graceMs: number
  /** told of every renewal refused because the node's key is not admitted (for metrics) */
  onUnadmitted?: () => void
  /**
   * Why this master may not grant leases now (its writer lease not confirmed in time, with
   * several masters), or undefined. Checked at every renewal: a master whose database calls
   * hang stops granting before another master can take over and move the profiles.
   */
  grantRefused?: () => string | undefined
  /** the latest witnessed checkpoint (for light workers' answers: the note with its cosignatures) */
  witnessed?: () => { size: number, note: string } | undefined
}

/** At most this many profiles' settings verdicts are kept (one per live profile id). */
const MAX_VERDICTS = 100_000

export interface AllocationSummary {
  unplaced: Plan['unplaced']
  moving: Plan['moving']
  /** workers' leases by worker name */
  leases: Record<string, LeaseRow>
  slave_leases: Record<string, LeaseRow>
  /** profile id → the live worker whose last renewal reported it running */
  running_on: Record<string, string>
  /** where every sub-account runs, and how its slave's lease stands */
  subaccounts: Array<{ name: string, slave: string | null, lease: LeaseRow['state'] | null, draining: boolean, status: string }>
}

/**
 * The master's allocator ("Allocator" in `get processes`): serves workers' lease renewals and
 * keeps the assignments on the ledger in line with the declarations, the sub-accounts, the
 * profiles and the leases (see placement.ts for the rules). Rounds run one at a time, after
 * any ledger change or lease event; each writes its assignment puts and deletes as signed
 * policies through the ledger like any other insert.
 */
export class Allocator implements Service {
  readonly name = 'Allocator'
  /** workers' and slaves' leases, on the monotonic clock (see LeaseTable) */
  private readonly leases: LeaseTable
  /** units whose assignment went away, until their node shows them stopped */
  private readonly releases: Releases
  private started = false
  private dirty = false
  private round?: Promise<void>
  private timer?: NodeJS.Timeout
  private lastError?: string
  private rounds = 0
  /** the ledger and the leases as placement reads them, followed change by change */
  private feed: PlacementFeed
  private lastFullRound = -Infinity
  /** full rounds run, and how many found the incremental placement wrong */
  private fullRounds = 0
  private mismatches = 0
  /**
   * Per profile id: why its settings cannot be opened with the master's key (so it is not
   * placed), or null when they can (or it has none). A profile's id covers its settings, so a
   * verdict that they open never changes; one that they do not is dropped when a settings copy
   * or a master key arrives (it may open now). Verdicts of profiles no longer on the ledger are
   * dropped each round.
   */
  private readonly verdicts = new Map<string, string | null>()

  constructor (private readonly opts: AllocatorOptions) {
    this.leases = new LeaseTable(opts)
    this.releases = new Releases(opts.ledger.state)
    // empty until start() loads it: `get status` before then shows nothing placed
    this.feed = this.newFeed(false)
  }

  /** A feed built from the ledger's state and the lease table as they are now (`load` false: empty). */
  private newFeed (load = true): PlacementFeed {
    const feed = new PlacementFeed({ state: () => this.opts.ledger.state, admits: key => this.opts.ledger.admits(key), held: p => this.settingsVerdict(p) ?? undefined })
    if (!load) return feed
    feed.load()
    const placement = feed.placement
    for (const role of ['worker', 'slave'] as const) for (const name of this.leases.names(role)) placement.setLease(role, name, this.leases.leaseOf(role, name))
    placement.setDefaultLease(this.leases.unrecordedState())
    return feed
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    this.feed = this.newFeed()
    this.opts.ledger.on('appended', this.onAppended)
    await this.opts.lease.serve(this.renewLease)
    this.timer = setInterval(() => { this.checkLeases() }, TICK_MS)
    this.timer.unref()
    this.schedule()
  }

  async stop (): Promise<void> {
    this.started = false
    clearInterval(this.timer)
    this.opts.ledger.off('appended', this.onAppended)
    await this.opts.lease.stop()
    await this.round
  }

  /** Only changes placement can see start a round: a burst of other policies costs no rounds. */
  private readonly onAppended = (entries: Entry[]): void => {
    this.releases.note(entries, this.opts.ledger.state)
    // no entries: the state was folded again or replaced (a snapshot): follow it anew
    if (entries.length === 0) {
      this.feed = this.newFeed()
      this.schedule()
      return
    }
    const opening = entries.some(e => e.op === 'put' && OPENING_TYPES.has(policyType(e.policy)))
    if (opening) {
      for (const [id, verdict] of this.verdicts) if (verdict !== null) this.verdicts.delete(id)
    }
    const changed = this.feed.apply(entries)
    if (opening) this.feed.recheckHeld()
    if (changed || opening) this.schedule()
  }

  /** Marks leases that lapsed past TTL + grace (their units move in the next round); starts the periodic full round when due. */
  private checkLeases (): void {
    const placement = this.feed.placement
    const changed = this.leases.check((role, name) => { placement.setLease(role, name, this.leases.leaseOf(role, name)) })
    placement.setDefaultLease(this.leases.unrecordedState())
    if (changed || performance.now() - this.lastFullRound >= FULL_ROUND_MS) this.schedule()
  }

  /**
   * The lease protocol's grantor: renews `request.worker`'s lease, a worker's or (role
   * 'slave') a slave's, once the peer is the one its declaration names and its key is admitted.
   */
  readonly renewLease = async (request: LeaseRequest, remotePeer: string, remoteKey?: string): Promise<LeaseGrant> => {
    const { ledger } = this.opts
    const refused = this.opts.grantRefused?.()
    if (refused !== undefined) throw new LedgerMeshError('not_active', `this master grants no lease now: ${refused}`)
    const role = roleOf(request)
    const declaration = ledger.state.findByName(role, request.worker)
    if (declaration === undefined) {
      throw new LedgerMeshError('not_found', `no ${role} '${request.worker}' is declared on the ledger`)
    }
    if (policyBody(declaration).peer_id !== remotePeer) {
      throw new LedgerMeshError('unauthorized', `peer ${remotePeer} is not ${role} '${request.worker}' (declared peer ${String(policyBody(declaration).peer_id)})`)
    }
    const key = String(policyBody(declaration).public_key)
    // the peer id is a field its author wrote; the connection's key is proven (noise): the
    // lease goes only to the key that signed the declaration
    if (remoteKey !== undefined && remoteKey !== key) {
      throw new LedgerMeshError('unauthorized', `peer ${remotePeer} (key ${remoteKey.slice(0, 12)}…) did not sign ${role} '${request.worker}' (its key is ${key.slice(0, 12)}…): no lease`)
    }
    if (!ledger.admits(key)) {
      this.opts.onUnadmitted?.()
      throw new LedgerMeshError('unauthorized', `${role} '${request.worker}' (key ${key.slice(0, 12)}…) is not admitted to this network (or was revoked): no lease`, { reason: 'not_admitted' })
    }
    this.checkLeases()
    this.leases.refuseStale(role, request)
    if (this.leases.get(role, request.worker)?.expired === true) {
      // What it ran was (or is being) moved: the node must see those deletes before it
      // starts anything, so answer only once the round that wrote them is done.
      await this.settled()
      // a newer renewal of this node may have been applied while this one waited
      this.leases.refuseStale(role, request)
      this.opts.log.info({ [role]: request.worker }, `${role} lease renewed after it lapsed`)
    }
    const applied = this.leases.apply(role, request, remotePeer)
    if (applied) this.feed.placement.setLease(role, request.worker, this.leases.leaseOf(role, request.worker))
    if (applied || this.releases.waitsOn(role, request.worker)) {
      this.schedule()
      // a light worker learns its assignments only from these answers: answer once the round
      // this renewal started has written them (a full worker's replica gets them pushed)
      if (request.draining || request.light === true) await this.settled()
    }
    if (request.light !== true || role !== 'worker') return { ttlMs: this.opts.ttlMs, graceMs: this.opts.graceMs, minSeq: ledger.head.seq }
    return lightGrant(ledger, request, { ttlMs: this.opts.ttlMs, graceMs: this.opts.graceMs }, this.opts.signer, this.opts.witnessed?.())
  }

  /** Runs a round soon; rounds never overlap, and a request during a round runs one more. */
  schedule (): void {
    if (!this.started) return
    this.dirty = true
    this.round ??= this.runRounds().finally(() => { this.round = undefined })
  }

  /** Resolves when no round is running or asked for. */
  async settled (): Promise<void> {
    while (this.round !== undefined) await this.round
  }

  private async runRounds (): Promise<void> {
    while (this.dirty && this.started) {
      this.dirty = false
      try {
        await this.allocateOnce()
        this.lastError = undefined
      } catch (err) {
        this.lastError = errorMessage(err)
        this.opts.log.warn({ err: this.lastError }, 'allocation round failed; retrying')
        await new Promise(resolve => setTimeout(resolve, RETRY_MS).unref())
        this.dirty = true
      }
    }
  }

  /**
   * Reads the ledger and the leases, plans, and writes the plan's deletes, then its puts, each
   * set at once: inserts that arrive together are one transaction (group commit), not an
   * fsync each. No node sees a put on it before the deletes that made room.
   */
  private async allocateOnce (): Promise<void> {
    const { ledger, signer, log } = this.opts
    const placement = this.feedReleases()
    const plan = performance.now() - this.lastFullRound >= FULL_ROUND_MS ? this.fullRound() : placement.round()
    this.rounds++
    await settleAll(plan.deletes.map(async ({ id, reason }) => {
      // the box is ciphertext, but a log line has no use for it
      const assignment = ledger.state.get(id)
      const { settings: _sealed, ...shown } = assignment !== undefined ? policyBody(assignment) : {}
      await this.write({ op: 'delete', policy: prepareTombstone(id, signer) })
      log.info({ assignment: id, ...shown, reason }, 'assignment removed')
    }))
    await settleAll(plan.puts.map(async put => {
      // epoch: a profile placed again on the same worker gets a new policy id (a deleted id is retired)
      const body: PolicyBody = { ...put, epoch: ledger.head.seq + 1 }
      if ('profile' in put) {
        const settings = this.sealedForWorker(put.profile, put.profile_id, put.worker)
        if (settings === undefined) return
        if (settings !== null) body.settings = settings
      }
      const entry = await this.write({ op: 'put', policy: preparePolicy({ assignment: body }, signer) })
      log.info({ ...put, seq: entry.seq, ...('profile' in put ? { settings: body.settings !== undefined ? 'sealed to the worker' : 'none' } : {}) }, 'profile' in put ? 'profile assigned to worker' : 'sub-account assigned to slave')
    }))
  }

  /**
   * The profile's settings, opened with the master's key (from the profile's box or a copy for
   * this master) and sealed to the worker's (the key of its declaration): a new box for every
   * assignment. null when the profile has none; undefined when the put must not be written
   * (the profile or worker changed meanwhile; the next round sees it).
   */
  private sealedForWorker (profileName: string, profileId: string, workerName: string): PolicyBody | null | undefined {
    const { ledger, signer } = this.opts
    const profile = ledger.state.get(profileId)
    const worker = ledger.state.findByName('worker', workerName)
    // changed since the plan (a write in between): the change's own round places it
    if (profile === undefined || worker === undefined) return undefined
    if (!hasSettings(policyBody(profile).settings)) return null
    let settings: JsonObject
    try {
      settings = openSettingsFor(ledger, profile, signer)
    } catch (err) {
      // (its verdict said it opens: only a bug gets here) the next round leaves it unplaced, saying why
      this.verdicts.set(profileId, errorMessage(err))
      this.opts.log.warn({ profile: profileName, id: profileId, err: errorMessage(err) }, 'profile not placed: its settings cannot be opened with the master\'s key')
      this.dirty = true
      return undefined
    }
    const box = sealTo(String(policyBody(worker).public_key), settings, assignmentContext(profileName, profileId, workerName))
    return box as unknown as PolicyBody
  }

  /**
   * Whether the master can open a profile's settings; refused profiles are logged once and
   * kept out of placement (docs/workers-and-allocation.md, "Sealed settings"): a worker must
   * never run a profile with settings other than those its author sealed, and without them a
   * runner would start with none (an empty session, a missing key).
   */
  private settingsVerdict (profile: Policy): string | null {
    const body = policyBody(profile)
    const id = String(body.id)
    const known = this.verdicts.get(id)
    if (known !== undefined) return known
    let verdict: string | null = null
    if (hasSettings(body.settings)) {
      try {
        openSettingsFor(this.opts.ledger, profile, this.opts.signer)
      } catch (err) {
        verdict = errorMessage(err)
        this.opts.log.warn({ profile: body.name, id, err: verdict }, 'profile not placed: its settings cannot be opened with the master\'s key')
      }
    }
    if (this.verdicts.size >= MAX_VERDICTS) this.verdicts.clear()
    this.verdicts.set(id, verdict)
    return verdict
  }

  private async write (op: Parameters<Ledger['submit']>[0]): Promise<{ seq: number }> {
    try {
      return await this.opts.ledger.submit(op)
    } catch (err) {
      // A concurrent admin write can make an op moot (already deleted, duplicate): re-plan.
      if (err instanceof LedgerMeshError && (err.code === 'not_found' || err.code === 'duplicate_id' || err.code === 'conflict')) {
        this.opts.log.info({ code: err.code, err: err.message }, 'assignment write skipped; re-planning')
        this.dirty = true
        return { seq: this.opts.ledger.head.seq }
      }
      throw err
    }
  }

  /**
   * The periodic check: planPlacement (placement.ts, the rules as one function) over everything
   * the incremental placement holds, compared with the incremental placement's own round.
   * They agree unless the incremental placement has a bug; then the full round's plan is
   * written, the placement is built again from the ledger, and the difference is logged (and
   * counted in `get status`).
   */
  private fullRound (): Pick<Plan, 'deletes' | 'puts'> {
    this.lastFullRound = performance.now()
    this.fullRounds++
    const { state } = this.opts.ledger
    // verdicts of profiles no longer on the ledger go
    for (const id of this.verdicts.keys()) if (!state.has(id)) this.verdicts.delete(id)
    const placement = this.feed.placement
    const input = placement.input()
    const full = planPlacement(input)
    const incremental = placement.plan()
    const drift = planDifference(full, incremental)
    if (drift.length > 0) {
      this.mismatches++
      this.opts.log.warn({ differences: drift.slice(0, 10) }, 'incremental placement differed from the full round: writing the full round\'s plan, and following the ledger anew')
      this.feed = this.newFeed()
      this.feedReleases().round()
    }
    return full
  }

  /** Tells the placement which units wait for their node to show them stopped; answers it. */
  private feedReleases (): PlacementFeed['placement'] {
    const releases = this.releases.check(this.leases)
    const placement = this.feed.placement
    for (const role of ['worker', 'slave'] as const) placement.setReleasing(role, releases.filter(r => r.role === role).map(r => ({ node: r.node, name: r.name })))
    return placement
  }

  /**
   * How the placement followed change by change differs from a full round over the ledger's
   * state read afresh (empty: it does not). For tests and checks: it reads the whole ledger.
   */
  placementDrift (): string[] {
    const placement = this.feedReleases()
    return planDifference(planPlacement(this.placementInput()), planPlacement(placement.input()))
  }

  /** What the full round reads, from the ledger's state and the lease table (the incremental placement is not consulted). */
  private placementInput (): PlacementInput {
    const state = this.opts.ledger.state
    const now = performance.now()
    const releases = this.releases.check(this.leases)
    return placementInputFromState(state, {
      admits: key => this.opts.ledger.admits(key),
      held: p => this.settingsVerdict(p) ?? undefined,
      leases: {
        lease: worker => this.leases.leaseOf('worker', worker, now),
        reports: this.leases.reports('worker').map(({ name, running }) => ({ worker: name, running })),
        releasing: releases.filter(r => r.role === 'worker').map(r => ({ node: r.node, name: r.name })),
        slaveReleasing: releases.filter(r => r.role === 'slave').map(r => ({ node: r.node, name: r.name })),
        slaveLease: slave => this.leases.leaseOf('slave', slave, now),
        slaveReports: this.leases.reports('slave').map(({ name, running }) => ({ slave: name, running }))
      }
    })
  }

  /** For `get status`, `get profiles` and /metrics. */
  summary (): AllocationSummary {
    const now = performance.now()
    const { state } = this.opts.ledger
    const declared = (type: string) => [...state.policiesOfType(type)].map(p => String(policyBody(p).name))
    const slaveLeases = this.leases.rows('slave', declared('slave'), now)
    const slaveOf = new Map<string, string>()
    for (const p of state.policiesOfType('assignment')) {
      const b = policyBody(p)
      if (b.profile === undefined && typeof b.subaccount === 'string' && typeof b.slave === 'string') slaveOf.set(b.subaccount, b.slave)
    }
    const unplaced = this.feed.placement.unplaced()
    const waiting = new Map(unplaced.filter(u => u.type === 'subaccount').map(u => [u.name, u.reason]))
    const subaccounts = declared('subaccount').sort().map(name => {
      const slave = slaveOf.get(name)
      const lease = slave === undefined ? undefined : slaveLeases[slave]
      const status = slave !== undefined ? 'assigned' : `unassigned: ${waiting.get(name) ?? 'not placed yet'}`
      return { name, slave: slave ?? null, lease: lease?.state ?? null, draining: lease?.draining ?? false, status }
    })
    // what each live worker last reported running: the profiles' process state, seen from here
    const workers = declared('worker')
    const runningOn: Record<string, string> = {}
    for (const worker of workers) {
      const lease = this.leases.leaseOf('worker', worker, now)
      if (lease.state === 'live') for (const id of lease.running) runningOn[id] = worker
    }
    return { unplaced, moving: this.feed.placement.moving(), leases: this.leases.rows('worker', workers, now), slave_leases: slaveLeases, subaccounts, running_on: runningOn }
  }

  status (): ProcessStatus {
    if (!this.started) return { status: 'Stopped' }
    if (this.lastError !== undefined) return { status: 'Error', details: this.lastError }
    const unplaced = this.feed.placement.unplaced()
    const subs = unplaced.filter(u => u.type === 'subaccount').length
    const summary = this.summary()
    const live = Object.values(summary.leases).filter(l => l.state === 'live').length
    const liveSlaves = Object.values(summary.slave_leases).filter(l => l.state === 'live').length
    return { status: 'Running', details: `Rounds: ${this.rounds} (full: ${this.fullRounds}, incremental placement wrong: ${this.mismatches}), Live worker leases: ${live}, Live slave leases: ${liveSlaves}, Unassigned: ${subs} sub-accounts, ${unplaced.length - subs} profiles, Lease TTL: ${this.opts.ttlMs} ms + ${this.opts.graceMs} ms grace` }
  }
}

/** What one plan holds that the other does not (`full:` or `incremental:` before each item). */
function planDifference (full: Plan, incremental: Plan): string[] {
  const items = (plan: Plan) => new Set([...plan.deletes.map(d => `delete ${JSON.stringify(d)}`), ...plan.puts.map(p => `put ${JSON.stringify(p)}`), ...plan.unplaced.map(u => `unplaced ${JSON.stringify(u)}`), ...plan.moving.map(m => `moving ${JSON.stringify(m)}`), ...plan.movingSubaccounts.map(m => `moving ${JSON.stringify(m)}`)])
  const a = items(full)
  const b = items(incremental)
  return [...[...a].filter(x => !b.has(x)).map(x => `full: ${x}`), ...[...b].filter(x => !a.has(x)).map(x => `incremental: ${x}`)]
}

/** A request's role; a direct caller (a test) may leave it out: a worker, as on the wire. */
function roleOf (request: LeaseRequest): LeaseRole {
  const role = (request.role as string | undefined) ?? ''
  if (role === '' || role === 'worker') return 'worker'
  if (role === 'slave') return 'slave'
  throw new LedgerMeshError('bad_message', `malformed lease request: role ${JSON.stringify(role)} is not one of worker, slave`)
}
