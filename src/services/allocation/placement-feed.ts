import type { Entry } from '../../ledger/entry.js'
import type { LedgerState } from '../../ledger/state.js'
import { type JsonValue, type Policy, policyBody, policyType } from '../../policies/policy.js'
import { IncrementalPlacement } from './incremental.js'
import type { PlacementInput, ProfileInfo, SlaveInfo, SubaccountInfo, WorkerInfo } from './placement.js'

/** The policy types placement reads; deletes of any of them count. */
const NAMED = ['slave', 'worker', 'subaccount', 'profile'] as const
type Named = typeof NAMED[number]
/** Types whose policies decide whether a worker's key is admitted (ledger-rules.ts admitsKey). */
const KEYED = new Set(['admission', 'revocation', 'admin', 'master_key'])

const str = (v: JsonValue | undefined): string | undefined => typeof v === 'string' ? v : undefined
const num = (v: JsonValue | undefined): number => typeof v === 'number' ? v : 0

export function slaveInfo (p: Policy): SlaveInfo { const b = policyBody(p); return { name: String(b.name), slots: num(b.slots) } }
export function workerInfo (p: Policy): WorkerInfo {
  const b = policyBody(p)
  return { name: String(b.name), slave: str(b.slave), slots: num(b.slots), kinds: Array.isArray(b.profile_kinds) ? b.profile_kinds.map(k => String(k).toLowerCase()) : [] }
}
export function subaccountInfo (p: Policy): SubaccountInfo { const b = policyBody(p); return { id: String(b.id), name: String(b.name), slave: str(b.slave) } }
export function profileInfo (p: Policy, held: string | undefined): ProfileInfo {
  const b = policyBody(p)
  return { id: String(b.id), name: String(b.name), kind: String(b.kind).toLowerCase(), subaccount: String(b.subaccount), held }
}

/**
 * Feeds the ledger's changes into an IncrementalPlacement: what placement.ts's input reads of
 * the state (the global policies of the named types, the assignments, which workers' keys are
 * admitted, which profiles' settings this master cannot open), one entry at a time. Several
 * live policies of one name (a slave or worker declared again) count as the last one, and a
 * worker only with an admitted key, as the full round reads them.
 */
export class PlacementFeed {
  readonly placement = new IncrementalPlacement()
  /** id → what a delete of it changes */
  private readonly known = new Map<string, { type: string, name?: string, key?: string }>()
  /** per type, name → the ids of its live policies, oldest first */
  private readonly byName: Record<Named, Map<string, string[]>> = { slave: new Map(), worker: new Map(), subaccount: new Map(), profile: new Map() }
  /** a key → the names of the workers it declared */
  private readonly workersByKey = new Map<string, Set<string>>()
  /** profiles whose settings this master could not open, by name */
  private readonly heldProfiles = new Set<string>()

  constructor (private readonly opts: {
    /** the ledger's state (a getter: a fold or a snapshot replaces it, and the feed with it) */
    state: () => LedgerState
    admits: (key: string | undefined) => boolean
    held: (profile: Policy) => string | undefined
  }) {}

  /** Starts from what the state holds. */
  load (): void {
    const state = this.opts.state()
    for (const type of [...NAMED, 'assignment', 'network', ...KEYED]) {
      for (const policy of state.policiesOfType(type)) {
        const id = String(policyBody(policy).id)
        if (!state.isLocal(id)) this.put(id, type, policy)
      }
    }
  }

  /** Follows appended entries; true when placement may see a change (a round is due). */
  apply (entries: readonly Entry[]): boolean {
    let changed = false
    const keys = new Set<string>()
    let network = false
    for (const entry of entries) {
      if (entry.op === 'put') {
        const type = policyType(entry.policy)
        const id = String(policyBody(entry.policy).id)
        if (type === 'network') network = true
        if (KEYED.has(type)) keys.add(String(policyBody(entry.policy).key))
        if (this.put(id, type, entry.policy)) changed = true
      } else {
        const id = String(policyBody(entry.policy).policy_id)
        const known = this.known.get(id)
        if (known === undefined) continue
        this.known.delete(id)
        // a deleted network policy may change who is admitted
        if (known.type === 'network') { network = true; continue }
        changed = true
        if (known.key !== undefined) keys.add(known.key)
        if (known.type === 'assignment') this.placement.deleteAssignment(id)
        else if (known.name !== undefined) this.drop(known.type as Named, known.name, id)
      }
    }
    if (network) { changed = true; for (const name of this.byName.worker.keys()) this.refresh('worker', name) }
    for (const key of keys) for (const name of this.workersByKey.get(key) ?? []) { changed = true; this.refresh('worker', name) }
    return changed
  }

  /** Profiles held back may open now (a settings copy or a master key arrived): asks again. */
  recheckHeld (): void {
    for (const name of [...this.heldProfiles]) this.refresh('profile', name)
  }

  private put (id: string, type: string, policy: Policy): boolean {
    if (type === 'assignment') {
      const b = policyBody(policy)
      this.known.set(id, { type })
      if (typeof b.profile === 'string' && typeof b.worker === 'string') this.placement.putProfileAssignment({ id, profile: b.profile, profileId: str(b.profile_id), worker: b.worker })
      else if (b.profile === undefined && typeof b.subaccount === 'string' && typeof b.slave === 'string') this.placement.putSubaccountAssignment({ id, subaccount: b.subaccount, slave: b.slave })
      return true
    }
    if (KEYED.has(type)) { this.known.set(id, { type, key: String(policyBody(policy).key) }); return false }
    if (type === 'network') { this.known.set(id, { type }); return false }
    if (!(NAMED as readonly string[]).includes(type)) return false
    const named = type as Named
    const b = policyBody(policy)
    const name = String(b.name)
    this.known.set(id, { type, name })
    const ids = (this.byName[named].get(name) ?? []).filter(x => x !== id)
    ids.push(id)
    this.byName[named].set(name, ids)
    if (named === 'worker') {
      const key = String(b.public_key)
      let names = this.workersByKey.get(key)
      if (names === undefined) { names = new Set(); this.workersByKey.set(key, names) }
      names.add(name)
    }
    this.refresh(named, name)
    return true
  }

  private drop (type: Named, name: string, id: string): void {
    const ids = (this.byName[type].get(name) ?? []).filter(x => x !== id)
    if (ids.length === 0) this.byName[type].delete(name)
    else this.byName[type].set(name, ids)
    this.refresh(type, name)
  }

  /** Tells placement what counts now under `name`: the last live policy (a worker's: with an admitted key). */
  private refresh (type: Named, name: string): void {
    const state = this.opts.state()
    let current: Policy | undefined
    for (const id of this.byName[type].get(name) ?? []) {
      const policy = state.get(id)
      if (policy === undefined) continue
      if (type === 'worker' && !this.opts.admits(String(policyBody(policy).public_key))) continue
      current = policy
    }
    const p = this.placement
    if (type === 'slave') p.setSlave(name, current === undefined ? undefined : slaveInfo(current))
    else if (type === 'worker') p.setWorker(name, current === undefined ? undefined : workerInfo(current))
    else if (type === 'subaccount') p.setSubaccount(name, current === undefined ? undefined : subaccountInfo(current))
    else {
      const held = current === undefined ? undefined : this.opts.held(current)
      if (held === undefined) this.heldProfiles.delete(name)
      else this.heldProfiles.add(name)
      p.setProfile(name, current === undefined ? undefined : profileInfo(current, held))
    }
  }
}

/**
 * What a full round reads, straight from the ledger's state (the periodic check compares the
 * incremental placement with planPlacement over this): global policies only, workers with an
 * admitted key, profiles with the reason this master cannot open their settings.
 */
export function placementInputFromState (state: LedgerState, opts: {
  admits: (key: string) => boolean
  held: (profile: Policy) => string | undefined
  leases: Pick<PlacementInput, 'lease' | 'reports' | 'releasing' | 'slaveLease' | 'slaveReports' | 'slaveReleasing'>
}): PlacementInput {
  const global = (type: string) => [...state.policiesOfType(type)].filter(p => !state.isLocal(String(policyBody(p).id)))
  const assignments = global('assignment')
  return {
    slaves: global('slave').map(slaveInfo),
    workers: global('worker').filter(p => opts.admits(String(policyBody(p).public_key))).map(workerInfo),
    subaccounts: global('subaccount').map(subaccountInfo),
    profiles: global('profile').map(p => profileInfo(p, opts.held(p))),
    subaccountAssignments: assignments.flatMap(p => {
      const b = policyBody(p)
      return b.profile === undefined && typeof b.subaccount === 'string' && typeof b.slave === 'string' ? [{ id: String(b.id), subaccount: b.subaccount, slave: b.slave }] : []
    }),
    profileAssignments: assignments.flatMap(p => {
      const b = policyBody(p)
      return typeof b.profile === 'string' && typeof b.worker === 'string' ? [{ id: String(b.id), profile: b.profile, profileId: str(b.profile_id), worker: b.worker }] : []
    }),
    ...opts.leases
  }
}
